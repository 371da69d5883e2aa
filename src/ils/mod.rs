//! The ILS dialect: one translation layer between what ILS clients send
//! and the standard directory underneath ([MS-TAIL] 2.2.5, 2.2.6, 3.5;
//! `interop.md` of the project's shared notes).
//!
//! * DNs: NetMeeting names its entry `c=-,o=Microsoft,cn=EMAIL,objectClass=rtPerson`
//!   and other clients vary it; every such short form names
//!   `cn=EMAIL,ou=Dynamic,o=Intranet` ([`target`]).
//! * Names: `sappid` is `applicationID`, `sttl` is `entryTTL` in minutes,
//!   and common aliases resolve to one attribute ([`crate::directory::schema`]).
//! * Search: the base `objectClass=rtPerson` means "all persons"; `%` is a
//!   wildcard inside equality values; `(sttl=N)` is a refresh command, not a
//!   condition ([`search`]).
//! * Modify: `smodop` selects what a Modify changes: the person or its
//!   application entry ([`modify`]).
//! * Results: a person is shown merged with its application entries
//!   ([`PersonView`]), under the attribute names the client asked for.
//!
//! Pure translation, run on the worker threads; the operation modules
//! apply the plans to the store.

pub mod add;
pub mod modify;
pub mod names;
pub mod search;
pub mod shape;
pub mod ttl;
pub mod view;

pub use add::{AddPlan, add, ensure_value};
pub use modify::{AttrChange, ModifyPlan, Smodop, application_name, modify};
pub use names::{Target, application_dn, target};
pub use search::{Base, Picks, Requested, SearchPlan, Want, picks, requested, search};
pub use view::PersonView;

/// The suffix every entry lives under.
pub const SUFFIX: &[u8] = b"o=intranet";
pub const DYNAMIC_KEY: &[u8] = b"ou=dynamic,o=intranet";
pub const APPLICATIONS_KEY: &[u8] = b"ou=applications,o=intranet";

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

/// The ipAddress encoding of [MS-TAIL] 2.2.3: the IPv4 address as a
/// little-endian 32-bit number, in decimal (10.70.41.96 is 1613317642).
pub fn ip_address_value(peer: std::net::SocketAddr) -> Option<Vec<u8>> {
    let v4 = match peer.ip() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
    };
    Some(u32::from_le_bytes(v4.octets()).to_string().into_bytes())
}

/// The IPv4 address an ipAddress value of [MS-TAIL] 2.2.3 gives.
pub fn ip_address_of(value: &[u8]) -> Option<std::net::Ipv4Addr> {
    let n: u32 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some(std::net::Ipv4Addr::from(n.to_le_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_address_values_read_back() {
        let peer: std::net::SocketAddr = "10.70.41.96:1".parse().unwrap();
        let value = ip_address_value(peer).unwrap();
        assert_eq!(ip_address_of(&value), Some("10.70.41.96".parse().unwrap()));
        assert_eq!(ip_address_of(b"x"), None);
    }

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
