//! Bind (RFC 4511 section 4.2, [MS-TAIL] 3.5.2): LDAPv2 and LDAPv3,
//! anonymous or simple with an account from the configuration, and NTLM,
//! the one SASL mechanism of ILS, in its Sicily form (the binds of the
//! Windows TAPI Dialer) and its SASL form.
//!
//! ILS knows no Windows accounts: [MS-TAIL] 3.5.2 leaves NTLM to Active
//! Directory principals, and an ILS directory lets anyone register. So an
//! NTLM bind is carried through its steps and ends anonymous: the
//! Dialer can log on, and gains nothing an anonymous client lacks.

use ldap3_proto::LdapResultCode;

use crate::auth::dn_identity;
use crate::directory::dn::Dn;
use crate::protocol::{BindAuth, LdapResult, Responder, SicilyStep};
use crate::session::{Session, Shared};
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
        let (result, challenge) = sasl_ntlm(session, credentials);
        return resp.bind(&result, challenge.as_deref());
    }
    let result = check(shared, session, version, name, auth);
    resp.bind(&result, None);
}

/// The SASL form of an NTLM bind, which the root DSE announces: the
/// NEGOTIATE message is answered saslBindInProgress with the CHALLENGE
/// as the server's credentials, and the AUTHENTICATE that follows ends
/// anonymous, as a Sicily bind does.
fn sasl_ntlm(session: &mut Session, credentials: &[u8]) -> (LdapResult, Option<Vec<u8>>) {
    session.log_out();
    let challenged = std::mem::take(&mut session.ntlm_challenged);
    if ntlm_type(credentials) == Some(3) {
        return (ntlm_authenticated(session, challenged), None);
    }
    session.ntlm_challenged = true;
    let result = LdapResult::new(LdapResultCode::SaslBindInProgress, "");
    (result, Some(ntlm_challenge(credentials)))
}

/// The end of an NTLM bind: anonymous if a challenge was sent.
fn ntlm_authenticated(session: &Session, challenged: bool) -> LdapResult {
    if !challenged {
        return LdapResult::new(
            LdapResultCode::InvalidCredentials,
            "no NTLM negotiation in progress",
        );
    }
    log::info!(
        "{}: NTLM bind accepted as anonymous (no Windows accounts here)",
        session.peer
    );
    LdapResult::success()
}

fn check(
    shared: &Shared,
    session: &mut Session,
    version: i64,
    name: &[u8],
    auth: BindAuth,
) -> LdapResult {
    // Any bind first ends the previous authentication.
    session.log_out();
    let challenged = std::mem::take(&mut session.ntlm_challenged);
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
            // The packages offered, in matchedDN ([MS-ADTS] 5.1.1.1.3).
            return LdapResult::success().with_matched(b"NTLM".to_vec());
        }
        BindAuth::Sicily(SicilyStep::Negotiate, negotiate) => {
            session.ntlm_challenged = true;
            return LdapResult::success().with_matched(ntlm_challenge(&negotiate));
        }
        BindAuth::Sicily(SicilyStep::Response, _) => {
            return ntlm_authenticated(session, challenged);
        }
        BindAuth::Other => {
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
    let Ok(dn) = Dn::parse(name) else {
        return LdapResult::new(LdapResultCode::InvalidDNSyntax, "invalid DN syntax");
    };
    let key = dn.key();
    let known = limits
        .accounts
        .iter()
        .any(|a| a.key == key && a.password.verify(&password));
    if known {
        shared.backoff.succeeded(session.peer.ip());
        let identity = dn_identity(&key);
        session.admin = limits.admins.contains(&identity);
        session.identity = Some(identity);
        session.bound = Some(name.to_vec());
        LdapResult::success()
    } else {
        shared.backoff.failed(session.peer.ip());
        static FAILED: Throttle = Throttle::new();
        FAILED.warn(|n| {
            // The client's bytes, escaped and cut short: no line breaks
            // or page-long names in the log.
            let shown = name.get(..200).unwrap_or(name).escape_ascii();
            format!(
                "{}: bind as {shown} refused: invalid credentials ({n} failed bind(s) since the last warning)",
                session.peer
            )
        });
        LdapResult::new(LdapResultCode::InvalidCredentials, "invalid credentials")
    }
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

/// NTLM negotiate flags ([MS-NLMP] 2.2.2.5).
mod flag {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const KEY_128: u32 = 0x2000_0000;
    pub const KEY_EXCHANGE: u32 = 0x4000_0000;
    pub const KEY_56: u32 = 0x8000_0000;
}

/// The type of an NTLM message ([MS-NLMP] 2.2.1): 1 NEGOTIATE,
/// 2 CHALLENGE, 3 AUTHENTICATE.
fn ntlm_type(message: &[u8]) -> Option<u32> {
    match message {
        [
            b'N',
            b'T',
            b'L',
            b'M',
            b'S',
            b'S',
            b'P',
            0,
            t0,
            t1,
            t2,
            t3,
            ..,
        ] => Some(u32::from_le_bytes([*t0, *t1, *t2, *t3])),
        _ => None,
    }
}

/// The server's name in NTLM messages.
const NTLM_NAME: &str = "ILSD";

/// An NTLM CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2) answering a
/// NEGOTIATE_MESSAGE: the client's flags that this server can honour, the
/// server's name, and a challenge. Nothing is verified with it.
fn ntlm_challenge(negotiate: &[u8]) -> Vec<u8> {
    let asked = match negotiate.get(12..16) {
        Some(f) if ntlm_type(negotiate) == Some(1) => u32::from_le_bytes([f[0], f[1], f[2], f[3]]),
        _ => flag::UNICODE,
    };
    let echoed = flag::ALWAYS_SIGN
        | flag::EXTENDED_SESSION_SECURITY
        | flag::KEY_128
        | flag::KEY_56
        | flag::KEY_EXCHANGE;
    let unicode = asked & flag::UNICODE != 0 || asked & flag::OEM == 0;
    let flags = (asked & echoed)
        | if unicode { flag::UNICODE } else { flag::OEM }
        | flag::REQUEST_TARGET
        | flag::NTLM
        | flag::TARGET_TYPE_SERVER
        | flag::TARGET_INFO;
    let text = |s: &str, unicode: bool| -> Vec<u8> {
        if unicode {
            s.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else {
            s.as_bytes().to_vec()
        }
    };
    let name = text(NTLM_NAME, unicode);
    // AV pairs: the NetBIOS computer and domain names, then MsvAvEOL.
    let mut info = Vec::new();
    for id in [1u16, 2] {
        let value = text(NTLM_NAME, true);
        info.extend(id.to_le_bytes());
        info.extend((value.len() as u16).to_le_bytes());
        info.extend(value);
    }
    info.extend([0, 0, 0, 0]);
    let challenge = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.finish().to_le_bytes()
    };
    const HEADER: usize = 48;
    let field = |len: usize, at: usize| -> [u8; 8] {
        let mut f = [0u8; 8];
        f[..2].copy_from_slice(&(len as u16).to_le_bytes());
        f[2..4].copy_from_slice(&(len as u16).to_le_bytes());
        f[4..].copy_from_slice(&(at as u32).to_le_bytes());
        f
    };
    let mut m = Vec::with_capacity(HEADER + name.len() + info.len());
    m.extend(b"NTLMSSP\0");
    m.extend(2u32.to_le_bytes());
    m.extend(field(name.len(), HEADER));
    m.extend(flags.to_le_bytes());
    m.extend(challenge);
    m.extend([0u8; 8]);
    m.extend(field(info.len(), HEADER + name.len()));
    m.extend(&name);
    m.extend(&info);
    m
}

/// Compares without stopping at the first difference, so that response
/// times say nothing about how much of a password was right.
#[cfg(test)]
mod tests {
    use super::*;

    fn target_name(challenge: &[u8]) -> &[u8] {
        let len = u16::from_le_bytes([challenge[12], challenge[13]]) as usize;
        let at = u32::from_le_bytes(challenge[16..20].try_into().unwrap()) as usize;
        &challenge[at..at + len]
    }

    fn flags(challenge: &[u8]) -> u32 {
        u32::from_le_bytes(challenge[20..24].try_into().unwrap())
    }

    #[test]
    fn the_challenge_speaks_the_clients_character_set() {
        let negotiate = |f: u32| {
            let mut m = b"NTLMSSP\0\x01\0\0\0".to_vec();
            m.extend(f.to_le_bytes());
            m
        };
        let oem = ntlm_challenge(&negotiate(flag::OEM | flag::NTLM | flag::KEY_128));
        assert_eq!(target_name(&oem), b"ILSD");
        assert_eq!(flags(&oem) & (flag::OEM | flag::UNICODE), flag::OEM);
        assert_ne!(flags(&oem) & flag::KEY_128, 0, "honoured");
        for unicode in [
            ntlm_challenge(&negotiate(flag::UNICODE)),
            ntlm_challenge(b"junk"),
        ] {
            assert_eq!(target_name(&unicode), b"I\0L\0S\0D\0");
            assert_eq!(flags(&unicode) & (flag::OEM | flag::UNICODE), flag::UNICODE);
            assert_eq!(flags(&unicode) & flag::KEY_128, 0, "not asked for");
        }
        // Target info: two AV pairs and MsvAvEOL, all within the message.
        let len = u16::from_le_bytes([oem[40], oem[41]]) as usize;
        let at = u32::from_le_bytes(oem[44..48].try_into().unwrap()) as usize;
        assert_eq!(at + len, oem.len());
        assert_eq!(&oem[oem.len() - 4..], &[0, 0, 0, 0]);
    }
}
