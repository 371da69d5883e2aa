//! What an ILS server's serviceInstance in Active Directory holds
//! ([MS-TAIL] 3.5.9): the ILS service class GUID, the instance version,
//! and its addresses in the binary form that the Windows Sockets
//! name-space provider for Active Directory reads.
//!
//! A `winsockAddresses` value is one CSADDR_INFO, with its two pointers
//! replaced by offsets so that 32- and 64-bit Windows read the same
//! bytes: six little-endian 32-bit fields (0, the local sockaddr's length,
//! 0, the remote sockaddr's length, the socket type, the protocol), then
//! the local sockaddr, then the remote one. The sockaddrs are Windows'
//! `sockaddr_in` (16 bytes, family 2) and `sockaddr_in6` (28 bytes, family
//! 23), with the port and address in network order. ilsd gives each
//! address as both the local and the remote sockaddr, with SOCK_STREAM
//! and IPPROTO_TCP. Pure functions, run by whichever thread publishes or
//! lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// The ILS service class, {C9F17940-79A7-11D1-B008-00C04FC301EE}, as the
/// 16 bytes Active Directory stores (the GUID's own byte order).
pub const ILS_SERVICE_CLASS: [u8; 16] = [
    0x40, 0x79, 0xF1, 0xC9, 0xA7, 0x79, 0xD1, 0x11, 0xB0, 0x08, 0x00, 0xC0, 0x4F, 0xC3, 0x01, 0xEE,
];

/// serviceInstanceVersion as [MS-TAIL] 3.5.9 gives it: a WSAVERSION of
/// version 5, compared "not less".
pub const INSTANCE_VERSION: [u8; 8] = [0x05, 0, 0, 0, 0x01, 0, 0, 0];

const AF_INET: u16 = 2;
/// AF_INET6 on Windows (not Linux's 10).
const AF_INET6: u16 = 23;
const SOCK_STREAM: u32 = 1;
const IPPROTO_TCP: u32 = 6;
const HEADER: usize = 24;

/// Windows' sockaddr for `addr`.
fn sockaddr(addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    match addr {
        SocketAddr::V4(a) => {
            out.extend(AF_INET.to_le_bytes());
            out.extend(a.port().to_be_bytes());
            out.extend(a.ip().octets());
            out.extend([0u8; 8]);
        }
        SocketAddr::V6(a) => {
            out.extend(AF_INET6.to_le_bytes());
            out.extend(a.port().to_be_bytes());
            out.extend(a.flowinfo().to_be_bytes());
            out.extend(a.ip().octets());
            out.extend(a.scope_id().to_le_bytes());
        }
    }
    out
}

fn parse_sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
    match (family, bytes.len()) {
        (AF_INET, 16) => {
            let ip: [u8; 4] = bytes[4..8].try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (AF_INET6, 28) => {
            let flow = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
            let ip: [u8; 16] = bytes[8..24].try_into().ok()?;
            let scope = u32::from_le_bytes(bytes[24..28].try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

/// The `winsockAddresses` value for a TCP service at `addr`.
pub fn encode_address(addr: SocketAddr) -> Vec<u8> {
    let sa = sockaddr(addr);
    let len = sa.len() as u32;
    let mut out = Vec::with_capacity(HEADER + 2 * sa.len());
    for field in [0, len, 0, len, SOCK_STREAM, IPPROTO_TCP] {
        out.extend(field.to_le_bytes());
    }
    out.extend(&sa);
    out.extend(&sa);
    out
}

/// The address a `winsockAddresses` value gives clients to connect to:
/// the remote sockaddr, or the local one when there is no remote. `None`
/// for a value too short for what its header says, or of another family.
pub fn decode_address(value: &[u8]) -> Option<SocketAddr> {
    let field = |i: usize| -> Option<usize> {
        let b = value.get(4 * i..4 * i + 4)?;
        usize::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok()
    };
    let (local, remote) = (field(1)?, field(3)?);
    let local_bytes = value.get(HEADER..HEADER.checked_add(local)?)?;
    let remote_at = HEADER + local;
    let remote_bytes = value.get(remote_at..remote_at.checked_add(remote)?)?;
    match remote {
        0 => parse_sockaddr(local_bytes),
        _ => parse_sockaddr(remote_bytes),
    }
}

/// An RDN value escaped for a DN string (RFC 4514 2.4).
pub fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_address_is_a_40_byte_csaddr() {
        let v = encode_address("192.0.2.10:1002".parse().unwrap());
        assert_eq!(v.len(), 24 + 16 + 16);
        assert_eq!(
            &v[..24],
            &[
                0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0
            ]
        );
        // family 2 little-endian, port 1002 big-endian, the address.
        assert_eq!(&v[24..32], &[2, 0, 0x03, 0xEA, 192, 0, 2, 10]);
        assert_eq!(&v[24..40], &v[40..56]);
        assert_eq!(decode_address(&v), Some("192.0.2.10:1002".parse().unwrap()));
    }

    #[test]
    fn an_ipv6_address_uses_windows_family_23() {
        let addr: SocketAddr = "[2001:db8::7]:389".parse().unwrap();
        let v = encode_address(addr);
        assert_eq!(v.len(), 24 + 28 + 28);
        assert_eq!(&v[24..28], &[23, 0, 0x01, 0x85]);
        assert_eq!(decode_address(&v), Some(addr));
    }

    #[test]
    fn short_or_foreign_values_decode_to_nothing() {
        let v = encode_address("192.0.2.10:1002".parse().unwrap());
        for cut in [0, 3, 24, 39, 55] {
            assert_eq!(decode_address(&v[..cut]), None, "{cut}");
        }
        let mut ipx = v.clone();
        ipx[40] = 6; // AF_IPX
        ipx[24] = 6;
        assert_eq!(decode_address(&ipx), None);
        let mut negative = v;
        negative[12..16].copy_from_slice(&(-1i32).to_le_bytes());
        assert_eq!(decode_address(&negative), None);
    }

    #[test]
    fn rdn_values_are_escaped() {
        assert_eq!(escape_rdn_value("ils.example.org"), "ils.example.org");
        assert_eq!(escape_rdn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rdn_value("#x "), "\\#x\\ ");
    }

    #[test]
    fn the_service_class_is_the_guid_of_the_spec() {
        // {C9F17940-79A7-11D1-B008-00C04FC301EE}: Data1..Data3 little-endian.
        assert_eq!(
            u32::from_le_bytes(ILS_SERVICE_CLASS[..4].try_into().unwrap()),
            0xC9F17940
        );
        assert_eq!(
            u16::from_le_bytes([ILS_SERVICE_CLASS[4], ILS_SERVICE_CLASS[5]]),
            0x79A7
        );
        assert_eq!(
            u16::from_le_bytes([ILS_SERVICE_CLASS[6], ILS_SERVICE_CLASS[7]]),
            0x11D1
        );
        assert_eq!(
            &ILS_SERVICE_CLASS[8..],
            &[0xB0, 0x08, 0x00, 0xC0, 0x4F, 0xC3, 0x01, 0xEE]
        );
    }
}
