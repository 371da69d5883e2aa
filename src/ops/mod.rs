//! One module per LDAP operation, called by [`crate::handler`] on the
//! worker threads, and what they share: finding entries and their
//! nearest existing ancestor, and checking an entry against the schema.

pub mod add;
pub mod bind;
pub mod compare;
pub mod delete;
pub mod extended;
pub mod modify;
pub mod search;

use ldap3_proto::LdapResultCode;

use crate::dn::Dn;
use crate::entry::{AttrValues, Entry};
use crate::ils::APPLICATIONS_KEY;
use crate::schema::{self, attr};
use crate::store::Directory;
use crate::throttle::Throttle;
use crate::wire::LdapResult;

/// Whether a key names a container that exists without an entry: the
/// `appName=APP,ou=Applications,o=Intranet` level, which the Dialer adds
/// entries under without creating it ([MS-TAIL] 4.5.2).
pub fn implicit_container(key: &[u8]) -> bool {
    key.starts_with(b"appname=")
        && key.len() > APPLICATIONS_KEY.len()
        && key.ends_with(APPLICATIONS_KEY)
        && key[..key.len() - APPLICATIONS_KEY.len()]
            .iter()
            .filter(|&&b| b == b',')
            .count()
            == 1
}

/// Looks up an entry that is there for clients at `now`.
pub fn live<'a>(dir: &'a Directory, key: &[u8], now: u64) -> Option<&'a Entry> {
    dir.get(key).filter(|e| dir.alive(e, now))
}

/// The noSuchObject answer for `dn`, naming the nearest ancestor that
/// exists (RFC 4511 section 4.1.9).
pub fn no_such_object(dir: &Directory, dn: &Dn, now: u64) -> LdapResult {
    let mut ancestor = dn.parent();
    while !ancestor.is_root() {
        let key = ancestor.key();
        if let Some(e) = live(dir, &key, now) {
            return LdapResult::new(LdapResultCode::NoSuchObject, "no such object")
                .with_matched(e.dn().into_owned());
        }
        if implicit_container(&key) {
            return LdapResult::new(LdapResultCode::NoSuchObject, "no such object")
                .with_matched(ancestor.to_bytes());
        }
        ancestor = ancestor.parent();
    }
    LdapResult::new(LdapResultCode::NoSuchObject, "no such object")
}

/// The answer to a request that would leave an entry with more than
/// `max-values` values.
pub fn too_many_values(max_values: usize) -> LdapResult {
    LdapResult::new(
        LdapResultCode::AdminLimitExceeded,
        format!("an entry holds at most {max_values} attribute values (max-values)"),
    )
}

/// Refuses a change that would grow the entries' footprint by `more`
/// bytes past `max-memory`: a directory that is full turns new
/// registrations away instead of growing until the system runs out of
/// memory.
/// [`warn_if_full`] logs it, once the lock is let go.
pub fn check_room(dir: &Directory, more: usize) -> Result<(), LdapResult> {
    if dir.has_room(more) {
        return Ok(());
    }
    Err(LdapResult::new(
        LdapResultCode::AdminLimitExceeded,
        format!(
            "{FULL}: its entries may take {} bytes (max-memory)",
            dir.max_footprint()
        ),
    ))
}

const FULL: &str = "the directory is full";

/// Warns, at most every ten seconds, that a change was refused by
/// [`check_room`]. Called without the lock: a log that blocks must not
/// stall the directory.
pub fn warn_if_full(result: &LdapResult) {
    static REFUSED: Throttle = Throttle::new();
    if result.code == LdapResultCode::AdminLimitExceeded && result.message.starts_with(FULL) {
        REFUSED.warn(|n| {
            format!(
                "{} ({n} registration(s) or change(s) refused since the last warning)",
                result.message
            )
        });
    }
}

/// Checks attributes against the schema: every objectClass value is
/// known, and every class's required attributes are present; and that the
/// entry holds at most `max_values` values, so that no client can make
/// one entry cost every search that meets it.
pub fn check_schema(attrs: &[AttrValues], max_values: usize) -> Result<(), LdapResult> {
    let values: usize = attrs.iter().map(|(_, v)| v.len()).sum();
    if values > max_values {
        return Err(too_many_values(max_values));
    }
    let violation = |m: String| Err(LdapResult::new(LdapResultCode::ObjectClassViolation, m));
    let Some((_, classes)) = attrs.iter().find(|(a, _)| *a == attr::OBJECT_CLASS) else {
        return violation("objectClass is required".into());
    };
    if !classes.iter().any(|c| schema::is_ils_class(c)) {
        return violation("an entry must be an rtPerson, rtApplicationUser or rtConference".into());
    }
    for name in classes {
        let Some(class) = schema::object_class(name) else {
            return violation(format!(
                "unknown object class {}",
                String::from_utf8_lossy(name)
            ));
        };
        for required in class.must {
            if !attrs.iter().any(|(a, v)| a == required && !v.is_empty()) {
                return violation(format!(
                    "{} requires {}",
                    class.name,
                    String::from_utf8_lossy(required.name())
                ));
            }
        }
    }
    Ok(())
}

/// The ipAddress encoding of [MS-TAIL] 2.2.3: the IPv4 address as a
/// little-endian 32-bit number, in decimal (10.70.41.96 is 1613317642).
pub fn ip_address_value(peer: std::net::SocketAddr) -> Option<Vec<u8>> {
    let v4 = match peer.ip() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
    };
    Some(u32::from_le_bytes(v4.octets()).to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_address_is_little_endian_decimal() {
        let peer = "10.70.41.96:1002".parse().unwrap();
        assert_eq!(ip_address_value(peer).unwrap(), b"1613317642");
        let mapped = "[::ffff:10.70.41.96]:1".parse().unwrap();
        assert_eq!(ip_address_value(mapped).unwrap(), b"1613317642");
        assert_eq!(ip_address_value("[::1]:1".parse().unwrap()), None);
    }

    #[test]
    fn application_containers_exist_implicitly() {
        assert!(implicit_container(
            b"appname=ms-netmeeting,ou=applications,o=intranet"
        ));
        assert!(!implicit_container(b"ou=applications,o=intranet"));
        assert!(!implicit_container(
            b"cn=x,appname=y,ou=applications,o=intranet"
        ));
    }
}
