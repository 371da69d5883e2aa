//! The directory: entries, their names (DNs), filters, the schema, the
//! store with its indexes, and the expiry heap that forgets dynamic
//! entries nobody refreshed (RFC 2589).
//!
//! The worker threads read and write the store under its lock; the expiry
//! thread ([`expiry`]) removes what is due. This is the bottom layer: it
//! knows nothing of LDAP messages, the ILS dialect, sockets or the daemon,
//! and imports nothing of the crate outside this folder.

pub mod dn;
pub mod entry;
pub mod expiry;
pub mod filter;
pub mod owner;
pub mod query;
pub mod schema;
pub mod store;
