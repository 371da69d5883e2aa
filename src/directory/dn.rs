//! Distinguished names as bytes: parsing (RFC 4514, with the LDAPv2 leniency
//! of RFC 1779 that old clients rely on) and the normalised key that makes
//! every spelling of one name find one entry.
//!
//! Pure functions, called on the connection worker threads.

use crate::directory::filter::fold;
use crate::directory::schema::Attr;

/// One relative distinguished name: `type=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdn {
    /// The attribute type, resolved through the schema's aliases.
    pub attr: Attr,
    /// The value with escapes and surrounding spaces removed, as written.
    pub value: Vec<u8>,
}

/// A parsed DN, most specific RDN first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Dn {
    pub rdns: Vec<Rdn>,
}

/// Why a DN could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidDn;

impl Dn {
    /// Parses a DN. The empty string is the root (no RDNs).
    pub fn parse(input: &[u8]) -> Result<Dn, InvalidDn> {
        let mut rdns = Vec::new();
        if input.iter().all(|&b| b == b' ') {
            return Ok(Dn { rdns });
        }
        for part in split_unescaped(input, |b| b == b',' || b == b';') {
            let part = trim(part);
            let eq = part.iter().position(|&b| b == b'=').ok_or(InvalidDn)?;
            let name = trim(&part[..eq]);
            if name.is_empty()
                || !name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-.;:".contains(&b))
            {
                return Err(InvalidDn);
            }
            let value = unescape_value(trim(&part[eq + 1..]))?;
            rdns.push(Rdn {
                attr: Attr::from_name(name),
                value,
            });
        }
        Ok(Dn { rdns })
    }

    /// The DN built from RDNs.
    pub fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        Dn { rdns }
    }

    /// The normalised key: types by their schema name in lowercase, values
    /// as equality compares them ([`fold`]: lower case, without the spaces
    /// at either end, even escaped ones), one space-free separator. Two spellings
    /// of one name have one key.
    pub fn key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                key.push(b',');
            }
            key.extend(rdn.attr.name().iter().map(u8::to_ascii_lowercase));
            key.push(b'=');
            for &b in fold(&rdn.value).iter() {
                // Separators inside values are written as hex escapes, so
                // that a ',' in a key is always a separator and a suffix
                // test on keys is a subtree test.
                if matches!(b, b',' | b'\\' | b'+' | b';' | b'=') {
                    key.extend_from_slice(format!("\\{b:02x}").as_bytes());
                } else {
                    key.push(b);
                }
            }
        }
        key
    }

    /// The DN written out in RFC 4514 form, values escaped where needed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(rdn.attr.name());
            out.push(b'=');
            for (j, &b) in rdn.value.iter().enumerate() {
                let edge_space = b == b' ' && (j == 0 || j + 1 == rdn.value.len());
                if matches!(b, b',' | b'\\' | b'+' | b';' | b'"' | b'<' | b'>' | b'=')
                    || edge_space
                    || (j == 0 && b == b'#')
                {
                    out.push(b'\\');
                }
                out.push(b);
            }
        }
        out
    }

    /// The DN without its first RDN.
    pub fn parent(&self) -> Dn {
        Dn {
            rdns: self.rdns.iter().skip(1).cloned().collect(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.rdns.is_empty()
    }
}

/// Splits on separator bytes that are neither escaped nor inside quotes.
/// A quote opens a quoted value only where the value starts (RFC 1779);
/// elsewhere it is part of the value, as in a name NetMeeting sends
/// unescaped.
fn split_unescaped(input: &[u8], sep: impl Fn(u8) -> bool) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut i, mut quoted) = (0, 0, false);
    // Whether the part's `=` was met, and whether only spaces followed.
    let (mut named, mut at_value) = (false, false);
    while i < input.len() {
        match input[i] {
            b'\\' => {
                i += 1;
                at_value = false;
            }
            b'"' if quoted => quoted = false,
            b'"' if at_value && closed(&input[i + 1..], &sep) => {
                quoted = true;
                at_value = false;
            }
            b'=' if !quoted && !named => (named, at_value) = (true, true),
            b' ' => {}
            b if !quoted && sep(b) => {
                parts.push(&input[start..i]);
                start = i + 1;
                (named, at_value) = (false, false);
            }
            _ => at_value = false,
        }
        i += 1;
    }
    parts.push(&input[start..]);
    parts
}

/// Whether a quote that opens a value is closed: by a quote followed by
/// nothing but spaces up to a separator or the end. `"bob@x.com,...`
/// is a name NetMeeting sends as typed, not a quoted value.
fn closed(rest: &[u8], sep: &impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 1,
            b'"' => {
                let after = rest[i + 1..].iter().find(|&&b| b != b' ');
                return after.is_none_or(|&b| sep(b));
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Strips the spaces around a DN part, but not an escaped last one
/// (`cn=x\ `, RFC 4514 section 2.4).
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        let backslashes = rest.iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 1 {
            break;
        }
        s = rest;
    }
    s
}

fn unescape_value(value: &[u8]) -> Result<Vec<u8>, InvalidDn> {
    if let [b'"', inner @ .., b'"'] = value {
        return unescape_value_inner(inner);
    }
    if let Some(ber) = value.strip_prefix(b"#").and_then(hex_ber_value) {
        return Ok(ber);
    }
    unescape_value_inner(value)
}

/// The value of the `#` form (RFC 4514 section 2.4): the hex digits of a
/// BER-encoded primitive, such as `#04036A6F65` for `joe`. Anything else
/// after a `#` is taken as written: NetMeeting does not escape a name that
/// starts with one.
fn hex_ber_value(digits: &[u8]) -> Option<Vec<u8>> {
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| Some(hex(pair[0])? << 4 | hex(pair[1])?))
        .collect::<Option<_>>()?;
    // A primitive with a short-form length that covers the rest exactly.
    match bytes.as_slice() {
        [tag, len, content @ ..]
            if tag & 0x20 == 0 && (*len as usize) == content.len() && *len < 0x80 =>
        {
            Some(content.to_vec())
        }
        _ => None,
    }
}

fn unescape_value_inner(value: &[u8]) -> Result<Vec<u8>, InvalidDn> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'\\' {
            // A backslash that ends the DN escapes what is not there.
            let next = *value.get(i + 1).ok_or(InvalidDn)?;
            if let (Some(h), Some(l)) = (hex(next), value.get(i + 2).and_then(|&b| hex(b))) {
                out.push(h << 4 | l);
                i += 3;
            } else if next.is_ascii_punctuation() || next == b' ' {
                // The special characters of RFC 4514, and other
                // punctuation that some clients escape too.
                out.push(next);
                i += 2;
            } else {
                // Before a letter, a digit or other bytes, a backslash
                // escapes nothing: it is part of a name NetMeeting sends
                // as typed.
                out.push(b'\\');
                i += 1;
            }
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::schema::attr;

    #[test]
    fn the_hex_form_is_the_value_it_encodes() {
        let dn = Dn::parse(b"cn=#04036A6F65,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(dn.rdns[0].value, b"joe");
        assert_eq!(
            dn.key(),
            Dn::parse(b"cn=joe,ou=Dynamic,o=Intranet").unwrap().key()
        );
        // Not BER, or not hex: a name that starts with #, as written.
        for (dn, want) in [
            (&b"cn=#04026A6F65"[..], &b"#04026A6F65"[..]),
            (b"cn=#hash@x.org", b"#hash@x.org"),
            (b"cn=#", b"#"),
        ] {
            assert_eq!(Dn::parse(dn).unwrap().rdns[0].value, want);
        }
    }

    #[test]
    fn an_escaped_last_space_is_part_of_the_value() {
        let dn = Dn::parse(b"cn=trail\\ ,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(dn.rdns[0].value, b"trail ");
        let dn = Dn::parse(b"cn=trail\\\\ ,ou=Dynamic").unwrap();
        assert_eq!(
            dn.rdns[0].value, b"trail\\",
            "an escaped backslash, then a space"
        );
        assert_eq!(Dn::parse(b"cn=a\\20 ").unwrap().rdns[0].value, b"a ");
    }

    #[test]
    fn spellings_of_one_name_share_a_key() {
        let a = Dn::parse(b"cn=Eric,ou=Dynamic,o=Intranet").unwrap();
        let b = Dn::parse(b"CN = eric , OU=dynamic,  o = INTRANET").unwrap();
        let c = Dn::parse(b"commonName=ERIC;ou=Dynamic;o=Intranet").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), c.key());
        assert_eq!(a.key(), b"cn=eric,ou=dynamic,o=intranet");
        // Windows-1252 and UTF-8, either case.
        let d = Dn::parse(b"cn=J\xd6RG,ou=Dynamic,o=Intranet").unwrap();
        let e = Dn::parse("cn=j\u{f6}rg,ou=Dynamic,o=Intranet".as_bytes()).unwrap();
        assert_eq!(d.key(), e.key());
        assert_ne!(
            d.key(),
            Dn::parse(b"cn=jorg,ou=Dynamic,o=Intranet").unwrap().key()
        );
        // Spaces at either end do not count, escaped or not, as in equality.
        assert_eq!(
            Dn::parse(b"cn=Eric\\20,ou=Dynamic,o=Intranet")
                .unwrap()
                .key(),
            a.key()
        );
    }

    #[test]
    fn escapes_and_quotes_are_values_not_separators() {
        let dn = Dn::parse(br#"cn=Gruber\, Eric,ou=x"#).unwrap();
        assert_eq!(dn.rdns.len(), 2);
        assert_eq!(dn.rdns[0].value, b"Gruber, Eric");
        let dn = Dn::parse(br#"cn="a,b",ou=x"#).unwrap();
        assert_eq!(dn.rdns[0].value, b"a,b");
        let dn = Dn::parse(br"cn=Jos\c3\a9").unwrap();
        assert_eq!(dn.rdns[0].value, "Jos\u{e9}".as_bytes());
        assert_eq!(Dn::parse(b"cn=a\\,b").unwrap().to_bytes(), b"cn=a\\,b");
        // A quote inside a value, and a backslash that escapes nothing,
        // are part of the value, as NetMeeting sends names unescaped.
        let dn = Dn::parse(br#"c=-,o=Microsoft,cn=q"z@x.com,objectClass=rtPerson"#).unwrap();
        assert_eq!(dn.rdns.len(), 4);
        assert_eq!(dn.rdns[2].value, br#"q"z@x.com"#);
        let dn = Dn::parse(br"cn=back\slash@x.com,objectClass=rtPerson").unwrap();
        assert_eq!(dn.rdns[0].value, br"back\slash@x.com");
        let dn = Dn::parse(br#"cn= "a;b" ,ou=x"#).unwrap();
        assert_eq!(
            dn.rdns[0].value, b"a;b",
            "a quote after spaces opens a value"
        );
        // ... if it is closed before the next separator.
        let dn = Dn::parse(br#"c=-,cn="bob@x.com,objectClass=rtPerson"#).unwrap();
        assert_eq!(dn.rdns.len(), 3);
        assert_eq!(dn.rdns[1].value, br#""bob@x.com"#);
        let dn = Dn::parse(br#"cn="john smith"@x.com,objectClass=rtPerson"#).unwrap();
        assert_eq!(dn.rdns[0].value, br#""john smith"@x.com"#);
        assert_eq!(Dn::parse(br"cn=a\*b").unwrap().rdns[0].value, b"a*b");
    }

    #[test]
    fn raw_latin1_bytes_are_kept() {
        let dn = Dn::parse(b"cn=Jos\xe9,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(dn.rdns[0].value, b"Jos\xe9");
        assert_eq!(dn.rdns[0].attr, attr::CN);
    }

    #[test]
    fn malformed_names_are_refused() {
        assert_eq!(Dn::parse(b"no equals sign"), Err(InvalidDn));
        assert_eq!(Dn::parse(b"cn=a,,o=b"), Err(InvalidDn));
        assert_eq!(Dn::parse(b"=value"), Err(InvalidDn));
        assert_eq!(Dn::parse(b"cn=trailing\\"), Err(InvalidDn));
        assert!(Dn::parse(b"").unwrap().is_root());
    }
}
