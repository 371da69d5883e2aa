//! ilsd: an Internet Locator Service server.
//!
//! ILS ([MS-TAIL]) is the LDAP dialect that Microsoft NetMeeting, the
//! Windows TAPI Phone Dialer, GnomeMeeting, Ekiga and H.323 endpoints use to
//! find one another: clients register themselves as dynamic objects
//! (RFC 2589) that the server forgets unless refreshed, search, and
//! unregister. This crate is the server as a library; the `ilsd` binary is
//! a thin command line around [`server::Server`].
//!
//! Threads: one acceptor per listening socket, a pool of workers that each
//! serve one connection at a time ([`connection`]), and one expiry thread
//! ([`expiry`]). They share the [`store::Store`].

pub mod bench;
pub mod ber;
pub mod config;
pub mod connection;
pub mod daemon;
pub mod dn;
pub mod entry;
pub mod expiry;
pub mod filter;
pub mod handler;
pub mod ils;
pub mod ops;
pub mod quick;
pub mod schema;
pub mod server;
pub mod store;
pub mod throttle;
pub mod wire;
