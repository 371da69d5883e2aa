//! ilsd: an Internet Locator Service server.
//!
//! ILS ([MS-TAIL]) is the LDAP dialect that Microsoft NetMeeting, the
//! Windows TAPI Phone Dialer, GnomeMeeting, Ekiga and H.323 endpoints use to
//! find one another: clients register themselves as dynamic objects
//! (RFC 2589) that the server forgets unless refreshed, search, and
//! unregister. This crate is the server as a library; the `ilsd` binary is
//! a thin command line around [`daemon`] and [`server::Server`].
//!
//! The folders are the layers, top to bottom; ARCHITECTURE.md draws them
//! and says what each may import:
//!
//! * [`daemon`]: options, the configuration file, signals, privileges;
//! * [`server`]: listeners, the worker pool, a connection's loop;
//! * [`ops`]: the dispatcher and one module per LDAP operation, working
//!   with the [`session`] a connection carries;
//! * [`ils`]: the ILS dialect, translating requests into plans;
//! * [`protocol`]: BER, the request types, the decoders, the encoder;
//! * [`directory`]: entries, DNs, filters, the schema, the store and the
//!   expiry heap.
//!
//! Threads: one acceptor per listening socket, a pool of workers that each
//! serve one connection at a time ([`server::connection`]), and one expiry
//! thread ([`directory::expiry`]). They share the
//! [`directory::store::Store`].

pub mod auth;
pub mod daemon;
pub mod directory;
pub mod http;
pub mod ils;
pub mod memory;
pub mod metrics;
pub mod ops;
pub mod protocol;
pub mod publish;
pub mod server;
pub mod session;
pub mod state;
pub mod throttle;
