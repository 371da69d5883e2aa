//! The operator's rules against abuse: names no one may register
//! (`deny-name`, a `*` glob matched without regard to case against what
//! a registration shows of a person: cn, givenName, surName, comment,
//! location) and addresses that may not write (`deny-address`, IPv4 or
//! IPv6 CIDR blocks).
//!
//! Read by the operations on the worker threads, and by the server at a
//! reload, when entries that the new rules deny are removed.

use std::net::IpAddr;

use crate::directory::entry::Entry;
use crate::directory::filter::fold;
use crate::directory::schema::{Attr, attr};

/// The attributes a `deny-name` pattern is matched against.
pub const MODERATED: [Attr; 5] = [
    attr::CN,
    attr::GIVEN_NAME,
    attr::SURNAME,
    attr::COMMENT,
    attr::LOCATION,
];

/// A `*` glob, folded to lower case as names are compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePattern {
    text: String,
    parts: Vec<Vec<u8>>,
}

impl NamePattern {
    pub fn parse(text: &str) -> Result<NamePattern, String> {
        let text = text.trim();
        if text.is_empty() || text.bytes().all(|b| b == b'*') {
            return Err(format!(
                "'{text}' would deny every name; give some letters to match"
            ));
        }
        let parts = text
            .split('*')
            .map(|p| fold(p.as_bytes()).into_owned())
            .collect();
        Ok(NamePattern {
            text: text.to_string(),
            parts,
        })
    }

    /// Whether a value matches the whole pattern, in any case (Windows-1252
    /// and UTF-8 letters folded as searches fold them).
    pub fn matches(&self, value: &[u8]) -> bool {
        let value = fold(value);
        let (first, rest) = self.parts.split_first().expect("split yields one part");
        let Some(mut left) = value.strip_prefix(first.as_slice()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return left.is_empty();
        };
        for part in middle {
            match left
                .windows(part.len().max(1))
                .position(|w| w == part.as_slice())
            {
                Some(at) if !part.is_empty() => left = &left[at + part.len()..],
                _ if part.is_empty() => {}
                _ => return false,
            }
        }
        left.len() >= last.len() && left.ends_with(last)
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An address block: an address and how many of its leading bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `192.0.2.0/24`, `2001:db8::/32`, or one address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let bad = || format!("'{text}' is not an address or ADDRESS/BITS");
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse::<u8>().ok().filter(|&b| b <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = u32::from(self.bits);
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// The rules in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moderation {
    pub names: Vec<NamePattern>,
    pub addresses: Vec<Cidr>,
    /// Whether denied addresses may not search either.
    pub address_search: bool,
}

impl Moderation {
    /// The rule that bars writes from an address, if one does.
    pub fn denied_address(&self, ip: IpAddr) -> Option<&Cidr> {
        self.addresses.iter().find(|c| c.contains(ip))
    }

    /// The pattern a value of a moderated attribute matches, if any.
    pub fn denied_value(&self, a: &Attr, value: &[u8]) -> Option<&NamePattern> {
        if !MODERATED.contains(a) {
            return None;
        }
        self.names.iter().find(|p| p.matches(value))
    }

    /// The pattern a stored entry matches, if any.
    pub fn denied_entry(&self, entry: &Entry) -> Option<&NamePattern> {
        if self.names.is_empty() {
            return None;
        }
        MODERATED.iter().find_map(|a| {
            entry
                .attrs
                .get(a)
                .find_map(|v| self.names.iter().find(|p| p.matches(v)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whole_globs_in_any_case() {
        let p = NamePattern::parse("*Spam*").unwrap();
        assert!(p.matches(b"spam"));
        assert!(p.matches(b"Buy SPAM now"));
        assert!(!p.matches(b"spa m"));
        let exact = NamePattern::parse("admin").unwrap();
        assert!(exact.matches(b"ADMIN") && !exact.matches(b"admins"));
        let ends = NamePattern::parse("*@example.com").unwrap();
        assert!(ends.matches(b"Eve@Example.COM") && !ends.matches(b"eve@example.com.evil"));
        let both = NamePattern::parse("a*b*c").unwrap();
        assert!(both.matches(b"aXbYc") && both.matches(b"abc") && !both.matches(b"acb"));
        assert!(!NamePattern::parse("ab*ba").unwrap().matches(b"aba"));
        // Windows-1252 bytes fold like their UTF-8 letters: Ü and ü.
        assert!(NamePattern::parse("*ü*").unwrap().matches(b"M\xdcLLER"));
        assert!(NamePattern::parse("**").is_err());
        assert!(NamePattern::parse(" ").is_err());
    }

    #[test]
    fn cidr_blocks_hold_their_addresses() {
        let v4 = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(v4.contains("192.0.2.200".parse().unwrap()));
        assert!(v4.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!v4.contains("192.0.3.1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.2").unwrap();
        assert!(one.contains("127.0.0.2".parse().unwrap()));
        assert!(!one.contains("127.0.0.3".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
