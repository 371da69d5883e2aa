//! Bind (RFC 4511 section 4.2, [MS-TAIL] 3.5.2): LDAPv2 and LDAPv3,
//! anonymous or simple with an account from the configuration (by DN, or
//! as `DOMAIN\\name` or `name@realm` against the NTLM accounts), and
//! NTLM, the one SASL mechanism of ILS, in its Sicily form (the binds of
//! the Windows TAPI Dialer) and its SASL form.
//!
//! An NTLM logon is checked against the accounts when `ntlm` is `verify`
//! ([`crate::auth::ntlm`]), and ends a verified identity or
//! invalidCredentials; with `accept-any` it completes whatever the
//! password and the session stays anonymous; with `off` it is refused.

use ldap3_proto::LdapResultCode;
use subtle::ConstantTimeEq;

use crate::auth::helper::Verdict;
use crate::auth::ntlm;
use crate::auth::{NtlmMode, dn_identity, user_identity};
use crate::directory::dn::Dn;
use crate::protocol::{BindAuth, LdapResult, Responder, SicilyStep};
use crate::session::{Limits, Session, Shared};
use crate::throttle::Throttle;

pub fn bind(
    shared: &Shared,
    session: &mut Session,
    version: i64,
    name: &[u8],
    auth: BindAuth,
    resp: &mut Responder<'_>,
) {
    if let BindAuth::Sasl {
        mechanism,
        credentials,
    } = &auth
        && mechanism.eq_ignore_ascii_case(b"NTLM")
    {
        let (result, challenge) = sasl_ntlm(shared, session, credentials);
        return resp.bind(&result, challenge.as_deref());
    }
    let result = check(shared, session, version, name, auth);
    resp.bind(&result, None);
}

/// The SASL form of an NTLM bind, which the root DSE announces: the
/// NEGOTIATE message is answered saslBindInProgress with the CHALLENGE
/// as the server's credentials, and the AUTHENTICATE that follows is
/// checked, as in a Sicily bind.
fn sasl_ntlm(
    shared: &Shared,
    session: &mut Session,
    credentials: &[u8],
) -> (LdapResult, Option<Vec<u8>>) {
    session.log_out();
    if ntlm::message_type(credentials) == Some(3) {
        return (ntlm_authenticate(shared, session, credentials), None);
    }
    match ntlm_negotiate(shared, session, credentials) {
        Ok(challenge) => (
            LdapResult::new(LdapResultCode::SaslBindInProgress, ""),
            Some(challenge),
        ),
        Err(e) => (e, None),
    }
}

/// Answers a NEGOTIATE with a CHALLENGE, which this connection's next
/// AUTHENTICATE alone may answer.
fn ntlm_negotiate(
    shared: &Shared,
    session: &mut Session,
    negotiate: &[u8],
) -> Result<Vec<u8>, LdapResult> {
    let names = {
        let limits = shared.limits.read();
        if limits.ntlm.mode == NtlmMode::Off {
            return Err(ntlm_off());
        }
        limits.ntlm.names.clone()
    };
    let (message, challenge) = ntlm::challenge(negotiate, &names).map_err(|e| {
        log::error!("no random bytes for an NTLM challenge: {e}");
        LdapResult::new(LdapResultCode::Unavailable, "cannot make a challenge now")
    })?;
    session.ntlm = Some(challenge);
    Ok(message)
}

fn ntlm_off() -> LdapResult {
    LdapResult::new(
        LdapResultCode::AuthMethodNotSupported,
        "NTLM logons are turned off here",
    )
}

/// The end of an NTLM logon: the AUTHENTICATE is checked against the
/// challenge this connection was sent, which it uses up.
fn ntlm_authenticate(shared: &Shared, session: &mut Session, message: &[u8]) -> LdapResult {
    let Some(challenge) = session.ntlm.take() else {
        return LdapResult::new(
            LdapResultCode::InvalidCredentials,
            "no NTLM negotiation in progress on this connection",
        );
    };
    let Some(auth) = ntlm::Authenticate::parse(message) else {
        return LdapResult::new(LdapResultCode::InvalidCredentials, "malformed NTLM message");
    };
    wait_after_failures(shared, session);
    let limits = shared.limits.read();
    let policy = &limits.ntlm;
    match policy.mode {
        NtlmMode::Off => return ntlm_off(),
        NtlmMode::AcceptAny => {
            log::info!(
                "{}: NTLM logon as {}\\{} accepted, not verified (ntlm accept-any): the session stays anonymous",
                session.peer,
                shown(&auth.domain),
                shown(&auth.user)
            );
            return LdapResult::success();
        }
        NtlmMode::Verify => {}
    }
    let name = format!("NTLM {}\\{}", auth.domain, auth.user);
    let (how, domain) = match policy.accounts.get(&auth.user) {
        // A local account: its responses are checked here, and it is a
        // user of this server's domain whatever domain the client named.
        Some(hash) => {
            let form = ntlm::verify(&auth, &challenge, hash, policy.allow_v1);
            let domain = policy.names.domain.clone();
            drop(limits);
            match form {
                Some(form) => (format!("{form:?}"), domain),
                None => return refused(shared, session, &name),
            }
        }
        // Else the domain's, through the helper, without holding the
        // settings while it answers. NTLMv1 (a 24-byte response, or none)
        // is refused here unless allowed, whatever the domain would say.
        None => {
            let v1 = auth.nt_response.len() <= 24;
            let helper = policy.helper.clone().filter(|_| policy.allow_v1 || !v1);
            let default_domain = policy.names.domain.clone();
            drop(limits);
            let Some(helper) = helper else {
                return refused(shared, session, &name);
            };
            let verdict = helper.check_ntlm(
                &auth.user,
                &auth.domain,
                &challenge.server_challenge,
                &auth.lm_response,
                &auth.nt_response,
            );
            let domain = match auth.domain.is_empty() {
                true => default_domain,
                false => auth.domain.clone(),
            };
            match verdict {
                Verdict::Yes => ("the domain".to_string(), domain),
                Verdict::No(_) => return refused(shared, session, &name),
                Verdict::Unavailable(why) => return helper_unavailable(session, &why),
            }
        }
    };
    let limits = shared.limits.read();
    let identity = user_identity(&domain, &auth.user);
    log::info!("{}: NTLM logon as {identity} ({how})", session.peer);
    session.admin = limits.admins.contains(&identity);
    session.identity = Some(identity);
    shared.backoff.succeeded(session.peer.ip());
    LdapResult::success()
}

/// A logon the domain could not answer: unavailable (52), so that the
/// client tries again rather than taking the password for wrong.
fn helper_unavailable(session: &Session, why: &str) -> LdapResult {
    static UNAVAILABLE: Throttle = Throttle::new();
    UNAVAILABLE.warn(|n| {
        format!(
            "{}: the NTLM helper gave no answer: {why} ({n} logon(s) unanswered since the last warning)",
            session.peer
        )
    });
    LdapResult::new(
        LdapResultCode::Unavailable,
        "the domain cannot be asked now; try again",
    )
}

/// A name from a client, escaped and cut short for the log.
fn shown(name: &str) -> String {
    name.chars()
        .take(100)
        .flat_map(char::escape_debug)
        .collect()
}

/// A failed logon: counted against its address, logged (throttled) with
/// the peer and the name, never the password or the responses.
fn refused(shared: &Shared, session: &Session, name: &str) -> LdapResult {
    shared.backoff.failed(session.peer.ip());
    static FAILED: Throttle = Throttle::new();
    FAILED.warn(|n| {
        format!(
            "{}: bind as {} refused: invalid credentials ({n} failed bind(s) since the last warning)",
            session.peer,
            shown(name)
        )
    });
    LdapResult::new(LdapResultCode::InvalidCredentials, "invalid credentials")
}

fn check(
    shared: &Shared,
    session: &mut Session,
    version: i64,
    name: &[u8],
    auth: BindAuth,
) -> LdapResult {
    // Any bind first ends the previous authentication; a Sicily
    // response uses up the challenge of the negotiate before it.
    session.log_out();
    if version != 2 && version != 3 {
        return LdapResult::new(LdapResultCode::ProtocolError, "LDAP version 2 or 3 only");
    }
    let password = match auth {
        BindAuth::Simple(password) => password,
        BindAuth::Sasl { mechanism, .. } => {
            return LdapResult::new(
                LdapResultCode::AuthMethodNotSupported,
                format!(
                    "SASL mechanism {} is not supported",
                    String::from_utf8_lossy(&mechanism)
                ),
            );
        }
        BindAuth::Sicily(SicilyStep::Discovery, _) => {
            session.ntlm = None;
            if shared.limits.read().ntlm.mode == NtlmMode::Off {
                return ntlm_off();
            }
            // The packages offered, in matchedDN ([MS-ADTS] 5.1.1.1.3).
            return LdapResult::success().with_matched(b"NTLM".to_vec());
        }
        BindAuth::Sicily(SicilyStep::Negotiate, negotiate) => {
            return match ntlm_negotiate(shared, session, &negotiate) {
                Ok(challenge) => LdapResult::success().with_matched(challenge),
                Err(e) => e,
            };
        }
        BindAuth::Sicily(SicilyStep::Response, authenticate) => {
            return ntlm_authenticate(shared, session, &authenticate);
        }
        BindAuth::Other => {
            session.ntlm = None;
            return LdapResult::new(
                LdapResultCode::AuthMethodNotSupported,
                "only simple binds are supported",
            );
        }
    };
    wait_after_failures(shared, session);
    let limits = shared.limits.read();
    // An empty password is an unauthenticated bind (RFC 4513 section
    // 5.1.2): anonymous, whatever the name, as ILS clients send it. Not
    // for an account's name, though, so that an application that checks
    // an account's password by binding never takes an empty one for it.
    if password.is_empty() {
        if !name.is_empty()
            && !limits.accounts.is_empty()
            && let Ok(dn) = Dn::parse(name)
            && limits.accounts.iter().any(|a| a.key == dn.key())
        {
            return LdapResult::new(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated bind (empty password) as an account",
            );
        }
        return LdapResult::success();
    }
    if let Some(windows) = windows_name(name) {
        // A Windows account name and its password, checked against the
        // NTLM accounts by the password's NT hash.
        let hash = std::str::from_utf8(&password).ok().map(ntlm::nt_hash);
        let local = limits.ntlm.accounts.get(windows.user).copied();
        let helper = limits.ntlm.basic_helper.clone();
        // A local account is a user of this server's domain, whatever
        // domain or realm the client named.
        let local_identity = user_identity(&limits.ntlm.names.domain, windows.user);
        drop(limits);
        let identity = match (local, hash, helper) {
            (Some(stored), Some(hash), _) if bool::from(stored.ct_eq(&hash)) => {
                Some(local_identity)
            }
            (Some(_), _, _) => None,
            // Not a local account: the domain's, through the helper.
            (None, _, Some(helper)) => match helper.check_password(windows.full, &password) {
                Verdict::Yes => Some(windows.identity),
                Verdict::No(_) => None,
                Verdict::Unavailable(why) => return helper_unavailable(session, &why),
            },
            (None, _, None) => None,
        };
        let Some(identity) = identity else {
            return refused(shared, session, windows.full);
        };
        let limits = shared.limits.read();
        return logged_on(shared, session, &limits, name, identity);
    }
    let Ok(dn) = Dn::parse(name) else {
        return LdapResult::new(LdapResultCode::InvalidDNSyntax, "invalid DN syntax");
    };
    let key = dn.key();
    // Checked without the settings held: an argon2 hash takes a while,
    // and a reload waiting for them would hold every other reader back.
    let stored = limits
        .accounts
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.password.clone());
    drop(limits);
    if !stored.is_some_and(|p| p.verify(&password)) {
        return refused(shared, session, &String::from_utf8_lossy(name));
    }
    let limits = shared.limits.read();
    logged_on(shared, session, &limits, name, dn_identity(&key))
}

/// A bind that proved `identity`.
fn logged_on(
    shared: &Shared,
    session: &mut Session,
    limits: &Limits,
    name: &[u8],
    identity: String,
) -> LdapResult {
    shared.backoff.succeeded(session.peer.ip());
    session.admin = limits.admins.contains(&identity);
    session.identity = Some(identity);
    session.bound = Some(name.to_vec());
    LdapResult::success()
}

/// A bind name that is a Windows account rather than a DN.
struct WindowsName<'a> {
    /// The user alone, as the NTLM accounts name it.
    user: &'a str,
    /// As the domain knows it: `DOMAIN\\name` or `name@realm`.
    full: &'a str,
    /// The identity it becomes: `u:domain\\name`, or `u:name@realm` (a
    /// realm's NetBIOS domain cannot be told from its DNS name).
    identity: String,
}

fn windows_name(name: &[u8]) -> Option<WindowsName<'_>> {
    let full = std::str::from_utf8(name).ok()?;
    if full.contains('=') {
        return None;
    }
    if let Some((domain, user)) = full.split_once('\\') {
        let identity = user_identity(domain, user);
        return Some(WindowsName {
            user,
            full,
            identity,
        });
    }
    let (user, _realm) = full.split_once('@')?;
    let identity = format!("u:{}", full.to_lowercase());
    Some(WindowsName {
        user,
        full,
        identity,
    })
}

/// Makes a bind wait when its address has failed too often of late
/// (`bind-failures`): on this connection's own thread, which serves
/// nothing else meanwhile.
fn wait_after_failures(shared: &Shared, session: &Session) {
    let (threshold, max) = {
        let limits = shared.limits.read();
        (limits.bind_failures, limits.bind_delay_max)
    };
    let wait = shared.backoff.delay(session.peer.ip(), threshold, max);
    if !wait.is_zero() {
        shared
            .counters
            .binds_delayed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(wait);
    }
}
