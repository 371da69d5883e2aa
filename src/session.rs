//! What a request is served with: the state every thread shares
//! ([`Shared`]: the store and the limits in force) and one connection's
//! [`Session`].
//!
//! Made by the server, read by the operations on the worker threads. It
//! sits between the two so that neither imports the other's internals:
//! it imports only authentication and the directory.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::RwLock;

use crate::auth::NtlmPolicy;
use crate::auth::backoff::Backoff;
use crate::auth::moderation::Moderation;
use crate::auth::ntlm::Challenge;
use crate::directory::owner::Owner;
use crate::directory::store::Store;
use crate::metrics::Metrics;

pub use crate::auth::Account;

/// Who may change a registration (`ownership`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// Its owner and administrators: the identity of the session that
    /// registered it, or else the address it came from.
    #[default]
    Address,
    /// The same, and registering needs a logon.
    Identity,
    /// Anyone, as before owners were recorded.
    None,
}

/// Settings the handlers and connections read on every request; a reload
/// replaces them while the server runs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub accounts: Vec<Account>,
    /// The authorization IDs of the administrators ([`crate::auth::admin_identity`]).
    pub admins: Vec<String>,
    pub ownership: Ownership,
    pub moderation: Moderation,
    pub ntlm: NtlmPolicy,
    pub observed_ip: bool,
    pub size_limit: usize,
    pub time_limit: u64,
    pub max_request_size: usize,
    pub max_request_elements: usize,
    pub max_values: usize,
    pub idle_timeout: Duration,
    pub stop_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Failed binds from one address within a minute before its binds
    /// wait; 0 for never.
    pub bind_failures: u32,
    /// The longest such wait.
    pub bind_delay_max: Duration,
}

/// The defaults of the settings, for the server's configuration too.
impl Default for Limits {
    fn default() -> Limits {
        Limits {
            accounts: Vec::new(),
            admins: Vec::new(),
            ownership: Ownership::Address,
            moderation: Moderation::default(),
            ntlm: NtlmPolicy::default(),
            observed_ip: false,
            size_limit: 0,
            time_limit: 0,
            max_request_size: 256 * 1024,
            max_request_elements: 10_000,
            max_values: 256,
            idle_timeout: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_address: 256,
            bind_failures: 5,
            bind_delay_max: Duration::from_secs(30),
        }
    }
}

/// What every thread of the server shares.
pub struct Shared {
    pub store: std::sync::Arc<Store>,
    pub limits: RwLock<Limits>,
    /// Failed binds by address, to slow down password guessing.
    pub backoff: Backoff,
    /// What the server counts, for cn=Monitor and `/metrics`.
    pub counters: Metrics,
    /// Whether `deny-address` lists any address, kept in step with the
    /// limits so that requests need not read them to know.
    pub any_denied_address: AtomicBool,
}

impl Shared {
    /// Puts new limits in force (a reload).
    pub fn set_limits(&self, limits: Limits) {
        let denies = !limits.moderation.addresses.is_empty();
        *self.limits.write() = limits;
        self.any_denied_address
            .store(denies, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn new(store: std::sync::Arc<Store>, limits: Limits) -> Shared {
        let any_denied_address = AtomicBool::new(!limits.moderation.addresses.is_empty());
        Shared {
            store,
            any_denied_address,
            limits: RwLock::new(limits),
            backoff: Backoff::default(),
            counters: Metrics::default(),
        }
    }
}

#[cfg(test)]
impl Shared {
    /// The state of a server with the default configuration and the static
    /// tree, without its threads, for the operations' unit tests.
    pub fn for_tests() -> Shared {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let ttl = crate::directory::store::TtlPolicy::default();
        let shared = Shared::new(std::sync::Arc::new(Store::new(ttl, tx)), Limits::default());
        crate::directory::store::load_static_tree(&mut shared.store.write());
        shared
    }
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    pub peer: SocketAddr,
    /// The DN of a successful authenticated bind, as the client wrote it.
    pub bound: Option<Vec<u8>>,
    /// The verified identity of that bind, as an authorization ID.
    pub identity: Option<String>,
    /// Whether that identity is an administrator's.
    pub admin: bool,
    /// Requests served, for the log.
    pub ops: u64,
    /// The NTLM challenge sent on this connection, which one AUTHENTICATE
    /// may answer.
    pub ntlm: Option<Challenge>,
}

impl Session {
    pub fn new(peer: SocketAddr) -> Session {
        Session {
            peer,
            bound: None,
            identity: None,
            admin: false,
            ops: 0,
            ntlm: None,
        }
    }
}

impl Session {
    /// Who owns what this session registers: its verified identity, or
    /// else its address (not the port: NetMeeting opens a connection for
    /// every operation).
    pub fn owner(&self) -> Owner {
        match &self.identity {
            Some(id) => Owner::Identity(id.as_str().into()),
            None => Owner::address(self.peer.ip()),
        }
    }

    /// Whether this session is `owner`, compared without building the
    /// session's own owner: an sttl refresh asks it of every match.
    pub fn is(&self, owner: &Owner) -> bool {
        match (owner, &self.identity) {
            (Owner::Identity(id), Some(mine)) => **id == **mine,
            (Owner::Address(ip), None) => *ip == self.peer.ip().to_canonical(),
            _ => false,
        }
    }

    /// Forgets the authentication: every bind starts with this.
    pub fn log_out(&mut self) {
        self.bound = None;
        self.identity = None;
        self.admin = false;
    }
}

/// Writes bytes produced so far to the client: given to handlers that can
/// produce many responses, so that they need not hold them all.
pub type Flush<'a> = &'a mut dyn FnMut(&mut BytesMut) -> std::io::Result<()>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_the_owner_it_would_record_and_no_other() {
        let mut session = Session::new("[::ffff:127.0.0.2]:1503".parse().unwrap());
        assert!(session.is(&session.owner()));
        assert!(session.is(&Owner::address("127.0.0.2".parse().unwrap())));
        assert!(!session.is(&Owner::address("127.0.0.3".parse().unwrap())));
        session.identity = Some("u:example\\alice".into());
        assert!(session.is(&session.owner()));
        assert!(
            !session.is(&Owner::address("127.0.0.2".parse().unwrap())),
            "a logon owns by name"
        );
        assert!(!session.is(&Owner::Identity("u:example\\bob".into())));
    }
}
