//! The dispatcher: the one `match` on the LDAP operation, and the state a
//! connection's requests share.
//!
//! Runs on the worker threads. Handlers never see a socket: they take a
//! request, the shared state and the session, and write responses into a
//! buffer, so each can be tested without a network.

use std::net::SocketAddr;

use bytes::BytesMut;
use ldap3_proto::LdapResultCode;
use parking_lot::RwLock;

use crate::config::{Account, Config};
use crate::ops;
use crate::store::Store;
use crate::wire::{LdapResult, Op, Request, Responder, tag};

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
    pub idle_timeout: std::time::Duration,
    pub stop_timeout: std::time::Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            accounts: config.accounts.clone(),
            observed_ip: config.observed_ip,
            size_limit: config.size_limit,
            time_limit: config.time_limit,
            max_request_size: config.max_request_size,
            max_request_elements: config.max_request_elements,
            max_values: config.max_values,
            idle_timeout: config.idle_timeout,
            stop_timeout: config.stop_timeout,
            max_connections: config.max_connections,
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
        let config = Config::default();
        let ttl = crate::store::TtlPolicy::new(config.default_ttl, config.min_ttl, config.max_ttl);
        let shared = Shared {
            store: std::sync::Arc::new(Store::new(ttl, tx)),
            limits: RwLock::new(Limits::from_config(&config)),
        };
        crate::store::load_static_tree(&mut shared.store.write());
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

/// Whether the session goes on after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Close,
}

/// Writes bytes produced so far to the client: given to handlers that can
/// produce many responses, so that they need not hold them all.
pub type Flush<'a> = &'a mut dyn FnMut(&mut BytesMut) -> std::io::Result<()>;

/// The response tag of a request, if it has one.
fn response_tag(op: &Op) -> Option<u8> {
    Some(match op {
        Op::Bind { .. } => tag::BIND,
        Op::Search(_) => tag::SEARCH_DONE,
        Op::Modify { .. } => tag::MODIFY,
        Op::Add { .. } => tag::ADD,
        Op::Delete { .. } => tag::DELETE,
        Op::ModifyDn { .. } => tag::MODIFY_DN,
        Op::Compare { .. } => tag::COMPARE,
        Op::Extended { .. } => tag::EXTENDED,
        Op::Invalid { response, .. } => *response,
        Op::Unbind | Op::Abandon(_) => return None,
    })
}

/// Serves one request.
pub fn handle(
    shared: &Shared,
    session: &mut Session,
    req: Request,
    out: &mut BytesMut,
    flush: Flush<'_>,
) -> Outcome {
    session.ops += 1;
    let mut resp = Responder {
        msgid: req.msgid,
        out,
    };
    log::debug!("{} msgid {} {}", session.peer, req.msgid, req.op.name());
    if let Op::Unbind = req.op {
        // Controls on an Unbind are ignored, critical or not (RFC 4511
        // section 4.1.11): nothing may keep the session open.
        return Outcome::Close;
    }
    if let Some(control) = req.controls.iter().find(|c| c.critical) {
        // No control is implemented; a critical one must not be ignored
        // (RFC 4511 section 4.1.11). Server-side sorting is one of them
        // ([MS-TAIL] 2.2.6).
        if let Some(t) = response_tag(&req.op) {
            let message = format!(
                "critical control {} is not supported",
                String::from_utf8_lossy(&control.oid)
            );
            let result = LdapResult::new(LdapResultCode::UnavailableCriticalExtension, message);
            if t == tag::EXTENDED {
                resp.extended(&result, None, None);
            } else {
                resp.result(t, &result);
            }
        }
        return Outcome::Continue;
    }
    match req.op {
        Op::Bind {
            version,
            name,
            auth,
        } => ops::bind::bind(shared, session, version, &name, auth, &mut resp),
        Op::Unbind => return Outcome::Close,
        Op::Search(s) => ops::search::search(shared, s, &mut resp, flush),
        Op::Add { dn, attrs } => ops::add::add(shared, session, &dn, attrs, &mut resp),
        Op::Modify { dn, changes } => ops::modify::modify(shared, session, &dn, changes, &mut resp),
        Op::Delete { dn } => ops::delete::delete(shared, &dn, &mut resp),
        Op::ModifyDn { .. } => resp.result(
            tag::MODIFY_DN,
            &LdapResult::new(
                LdapResultCode::UnwillingToPerform,
                "ILS entries cannot be renamed; delete and add instead",
            ),
        ),
        Op::Compare { dn, attr, value } => {
            ops::compare::compare(shared, &dn, &attr, &value, &mut resp)
        }
        // Requests are served one at a time, so by the time an Abandon is
        // read the operation it names has finished: nothing to do, and
        // Abandon has no response.
        Op::Abandon(_) => {}
        Op::Extended { oid, value } => {
            ops::extended::extended(shared, session, &oid, value.as_deref(), &mut resp)
        }
        Op::Invalid { response, why } => resp.result(
            response,
            &LdapResult::new(LdapResultCode::ProtocolError, why),
        ),
    }
    Outcome::Continue
}
