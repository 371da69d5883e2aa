//! The operations: the dispatcher, which holds the one `match` on the
//! LDAP operation, one module per operation, and the entries the server
//! computes rather than stores ([`computed`]).
//!
//! Runs on the worker threads. Operations never see a socket: they take a
//! request, the shared state and the session, and write responses into a
//! buffer, so each can be tested without a network. They translate the
//! request with the dialect ([`crate::ils`]), work on the directory, and
//! answer through the protocol's encoder; they never import the server.

pub mod add;
pub mod bind;
pub mod compare;
pub mod computed;
pub mod delete;
pub mod entries;
pub mod extended;
pub mod modify;
pub mod search;

use std::time::Instant;

use bytes::BytesMut;
use ldap3_proto::LdapResultCode;

use crate::metrics::OpKind;
use crate::protocol::response::take_result_code;
use crate::protocol::{LdapResult, Op, Request, Responder, tag};
use crate::session::{Flush, Session, Shared};

/// Whether the session goes on after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Close,
}

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

/// Why a request is answered without being performed, if it is: a
/// critical control, which no operation here implements and none may
/// ignore (RFC 4511 section 4.1.11; server-side sorting is one, [MS-TAIL]
/// 2.2.6), or a write from an address that `deny-address` bars (a read
/// too, with `deny-address-search`). Administrators are not barred.
fn refusal(shared: &Shared, session: &Session, req: &Request) -> Option<LdapResult> {
    if let Some(control) = req.controls.iter().find(|c| c.critical) {
        let message = format!(
            "critical control {} is not supported",
            String::from_utf8_lossy(&control.oid)
        );
        return Some(LdapResult::new(
            LdapResultCode::UnavailableCriticalExtension,
            message,
        ));
    }
    // Most servers deny no address: then nothing is read of the settings
    // here, on the path of every request.
    if !shared
        .any_denied_address
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return None;
    }
    let writes = match &req.op {
        Op::Add { .. } | Op::Modify { .. } | Op::Delete { .. } | Op::ModifyDn { .. } => true,
        Op::Extended { oid, .. } => oid == extended::REFRESH,
        Op::Search(_) | Op::Compare { .. } => false,
        _ => return None,
    };
    if session.admin {
        return None;
    }
    let limits = shared.limits.read();
    let moderation = &limits.moderation;
    let rule = moderation.denied_address(session.peer.ip())?;
    if !writes && !moderation.address_search {
        return None;
    }
    crate::metrics::Metrics::add(&shared.counters.refused_denied, 1);
    entries::refused(|| {
        format!(
            "{}: {} refused: the address is denied (deny-address {rule})",
            session.peer,
            req.op.name()
        )
    });
    Some(LdapResult::new(
        LdapResultCode::UnwillingToPerform,
        "requests from this address are refused by the administrator",
    ))
}

/// What a request counts as in the metrics.
fn kind(op: &Op) -> OpKind {
    match op {
        Op::Bind { .. } => OpKind::Bind,
        Op::Unbind => OpKind::Unbind,
        Op::Search(_) => OpKind::Search,
        Op::Modify { .. } => OpKind::Modify,
        Op::Add { .. } => OpKind::Add,
        Op::Delete { .. } => OpKind::Delete,
        Op::ModifyDn { .. } => OpKind::ModifyDn,
        Op::Compare { .. } => OpKind::Compare,
        Op::Abandon(_) => OpKind::Abandon,
        Op::Extended { .. } => OpKind::Extended,
        Op::Invalid { response, .. } => match *response {
            tag::BIND => OpKind::Bind,
            tag::SEARCH_DONE => OpKind::Search,
            tag::MODIFY => OpKind::Modify,
            tag::ADD => OpKind::Add,
            tag::DELETE => OpKind::Delete,
            tag::MODIFY_DN => OpKind::ModifyDn,
            tag::COMPARE => OpKind::Compare,
            _ => OpKind::Extended,
        },
    }
}

/// Serves one request, and counts it.
pub fn handle(
    shared: &Shared,
    session: &mut Session,
    req: Request,
    out: &mut BytesMut,
    flush: Flush<'_>,
) -> Outcome {
    let started = Instant::now();
    let kind = kind(&req.op);
    // A result left by whatever this thread answered before (a refused
    // connection's notice) is not this request's.
    take_result_code();
    let outcome = serve(shared, session, req, out, flush);
    shared
        .counters
        .served(kind, take_result_code(), started.elapsed());
    outcome
}

fn serve(
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
    if let Some(result) = refusal(shared, session, &req) {
        if let Some(t) = response_tag(&req.op) {
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
        } => bind::bind(shared, session, version, &name, auth, &mut resp),
        Op::Unbind => return Outcome::Close,
        Op::Search(s) => search::search(shared, session, s, &mut resp, flush),
        Op::Add { dn, attrs } => add::add(shared, session, &dn, attrs, &mut resp),
        Op::Modify { dn, changes } => modify::modify(shared, session, &dn, changes, &mut resp),
        Op::Delete { dn } => delete::delete(shared, session, &dn, &mut resp),
        Op::ModifyDn { .. } => resp.result(
            tag::MODIFY_DN,
            &LdapResult::new(
                LdapResultCode::UnwillingToPerform,
                "ILS entries cannot be renamed; delete and add instead",
            ),
        ),
        Op::Compare { dn, attr, value } => {
            compare::compare(shared, session, &dn, &attr, &value, &mut resp)
        }
        // Requests are served one at a time, so by the time an Abandon is
        // read the operation it names has finished: nothing to do, and
        // Abandon has no response.
        Op::Abandon(_) => {}
        Op::Extended { oid, value } => {
            extended::extended(shared, session, &oid, value.as_deref(), &mut resp)
        }
        Op::Invalid { response, why } => resp.result(
            response,
            &LdapResult::new(LdapResultCode::ProtocolError, why),
        ),
    }
    Outcome::Continue
}
