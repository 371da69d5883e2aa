//! What a request is served with: the state every thread shares
//! ([`Shared`]: the store and the limits in force) and one connection's
//! [`Session`].
//!
//! Made by the server, read by the operations on the worker threads. It
//! sits between the two so that neither imports the other's internals:
//! it imports only the directory.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::RwLock;

use crate::directory::store::Store;

/// A simple-bind account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The normalised DN.
    pub key: Vec<u8>,
    pub password: Vec<u8>,
}

/// Settings the handlers and connections read on every request; a reload
/// replaces them while the server runs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub accounts: Vec<Account>,
    pub observed_ip: bool,
    pub size_limit: usize,
    pub time_limit: u64,
    pub max_request_size: usize,
    pub max_request_elements: usize,
    pub max_values: usize,
    pub idle_timeout: Duration,
    pub stop_timeout: Duration,
    pub max_connections: usize,
}

/// The defaults of the settings, for the server's configuration too.
impl Default for Limits {
    fn default() -> Limits {
        Limits {
            accounts: Vec::new(),
            observed_ip: false,
            size_limit: 0,
            time_limit: 0,
            max_request_size: 256 * 1024,
            max_request_elements: 10_000,
            max_values: 256,
            idle_timeout: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// What every thread of the server shares.
pub struct Shared {
    pub store: std::sync::Arc<Store>,
    pub limits: RwLock<Limits>,
}

#[cfg(test)]
impl Shared {
    /// The state of a server with the default configuration and the static
    /// tree, without its threads, for the operations' unit tests.
    pub fn for_tests() -> Shared {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let ttl = crate::directory::store::TtlPolicy::default();
        let shared = Shared {
            store: std::sync::Arc::new(Store::new(ttl, tx)),
            limits: RwLock::new(Limits::default()),
        };
        crate::directory::store::load_static_tree(&mut shared.store.write());
        shared
    }
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    pub peer: SocketAddr,
    /// The DN of a successful authenticated bind.
    pub bound: Option<Vec<u8>>,
    /// Requests served, for the log.
    pub ops: u64,
    /// A Sicily NTLM negotiation awaits the client's response.
    pub ntlm_challenged: bool,
}

impl Session {
    pub fn new(peer: SocketAddr) -> Session {
        Session {
            peer,
            bound: None,
            ops: 0,
            ntlm_challenged: false,
        }
    }
}

/// Writes bytes produced so far to the client: given to handlers that can
/// produce many responses, so that they need not hold them all.
pub type Flush<'a> = &'a mut dyn FnMut(&mut BytesMut) -> std::io::Result<()>;
