//! Extended operations: the RFC 2589 refresh and WhoAmI (RFC 4532).

use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{PL, StructureTag};
use ldap3_proto::LdapResultCode;

use crate::directory::entry::class;
use crate::ils;
use crate::ops::entries::{live, may_change, no_such_object, not_owner};
use crate::protocol::ber::Encoder;
use crate::protocol::{LdapResult, Responder};
use crate::session::{Session, Shared};

pub const REFRESH: &[u8] = b"1.3.6.1.4.1.1466.101.119.1";
pub const WHO_AM_I: &[u8] = b"1.3.6.1.4.1.4203.1.11.3";

pub fn extended(
    shared: &Shared,
    session: &Session,
    oid: &[u8],
    value: Option<&[u8]>,
    resp: &mut Responder<'_>,
) {
    match oid {
        REFRESH => match refresh(shared, session, value) {
            Ok(ttl) => {
                // SEQUENCE { responseTtl [1] INTEGER }
                let mut body = bytes::BytesMut::new();
                let mut enc = Encoder::new(&mut body);
                enc.start(0x30);
                enc.integer(0x81, ttl as i64);
                enc.end();
                resp.extended(&LdapResult::success(), Some(REFRESH), Some(&body));
            }
            Err(e) => resp.extended(&e, Some(REFRESH), None),
        },
        WHO_AM_I => {
            // The DN as the client bound with it; a Windows logon as its
            // user name (RFC 4513 section 5.2.1.8).
            let authz = match (&session.identity, &session.bound) {
                (Some(id), _) if id.starts_with("u:") => id.as_bytes().to_vec(),
                (_, Some(dn)) => [&b"dn:"[..], dn].concat(),
                _ => Vec::new(),
            };
            resp.extended(&LdapResult::success(), None, Some(&authz));
        }
        _ => resp.extended(
            &LdapResult::new(
                LdapResultCode::ProtocolError,
                format!(
                    "extended operation {} is not supported",
                    String::from_utf8_lossy(oid)
                ),
            ),
            None,
            None,
        ),
    }
}

/// Reads `SEQUENCE { entryName [0] LDAPDN, requestTtl [1] INTEGER }`.
fn parse_refresh(value: &[u8]) -> Option<(Vec<u8>, u64)> {
    let (rest, tag) = Parser::new(4).parse(value).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let PL::C(parts) = tag.payload else {
        return None;
    };
    let mut name = None;
    let mut ttl = None;
    for StructureTag { class, id, payload } in parts {
        match (class, id, payload) {
            (TagClass::Context, 0, PL::P(dn)) => name = Some(dn),
            (TagClass::Context, 1, PL::P(n)) if !n.is_empty() && n.len() <= 8 => {
                if n[0] & 0x80 != 0 {
                    return None;
                }
                ttl = Some(n.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64));
            }
            _ => return None,
        }
    }
    Some((name?, ttl?))
}

/// Refreshes an entry; returns the TTL granted.
fn refresh(shared: &Shared, session: &Session, value: Option<&[u8]>) -> Result<u32, LdapResult> {
    let (name, requested) = value.and_then(parse_refresh).ok_or_else(|| {
        LdapResult::new(LdapResultCode::ProtocolError, "malformed refresh request")
    })?;
    let target = ils::target(&name)?;
    let ownership = shared.limits.read().ownership;
    let now = shared.store.now();
    let dir = shared.store.read();
    let Some(entry) = live(&dir, &target.key, now) else {
        return Err(no_such_object(&dir, &target.dn, now));
    };
    if !entry.is(class::DYNAMIC) {
        return Err(LdapResult::new(
            LdapResultCode::ObjectClassViolation,
            "not a dynamic object",
        ));
    }
    if !may_change(&dir, entry, session, ownership) {
        return Err(not_owner());
    }
    let ttl = shared.store.ttl.clamp(requested);
    let granted = shared.store.refresh(&dir, entry, ttl);
    Ok(u32::try_from(granted).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_request_value_is_parsed() {
        // SEQUENCE { [0] "cn=a", [1] 300 }
        let v = [
            0x30, 0x0a, 0x80, 0x04, b'c', b'n', b'=', b'a', 0x81, 0x02, 0x01, 0x2c,
        ];
        assert_eq!(parse_refresh(&v), Some((b"cn=a".to_vec(), 300)));
        assert_eq!(parse_refresh(&v[..6]), None);
        let negative = [
            0x30, 0x09, 0x80, 0x04, b'c', b'n', b'=', b'a', 0x81, 0x01, 0xff,
        ];
        assert_eq!(parse_refresh(&negative), None);
    }
}
