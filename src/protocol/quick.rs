//! A decoder for the search requests clients send all day: keep-alives,
//! look-ups and listings. Runs on the worker threads, inside
//! [`super::decode`].
//!
//! The general decoder parses a frame into `ldap3_lber`'s tree, escapes
//! every string so that `ldap3_proto` can hold it in a `String`, converts,
//! and unescapes into [`Request`]: five passes and an allocation per node.
//! That took about 3.5 us of a 7 us keep-alive (measured in-process with
//! a 10,000-user directory), and as much again under load, where the
//! workers share two cores with their clients. This one reads the frame
//! once, in place, and allocates only what [`Request`] keeps.
//!
//! It takes only the plain form of a search: definite lengths, the
//! universal tags RFC 4511 gives each field, no controls, no extra
//! elements, scope and derefAliases in range, and filters of the kinds
//! ILS clients use (and, or, not, equality, substrings, ordering, presence,
//! approximate) nested at most [`MAX_FILTER_DEPTH`] deep. Anything else is
//! left to the general decoder, which decides what it means: both give the
//! same [`Request`] for every frame this one takes (tested against each
//! other).

use super::ber::header;
use super::request::{Op, Request, Scope, SearchRequest};
use crate::directory::filter::{Filter, Substrings};

/// Filters nested deeper are left to the general decoder, whose parser
/// counts the depth of the whole message.
const MAX_FILTER_DEPTH: usize = 32;

/// One element: its tag byte and its contents.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Reads elements off the front of a slice.
#[derive(Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next element, if its header is one [`header`] reads and its
    /// contents are there.
    fn next(&mut self) -> Option<Tlv<'a>> {
        let (tag, head, len) = header(self.0)?;
        let body = self.0.get(head..head.checked_add(len)?)?;
        self.0 = &self.0[head + len..];
        Some(Tlv { tag, body })
    }

    /// The next element if it has this tag.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|t| t.tag == tag).map(|t| t.body)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes a frame if it is a search request in the plain form; `None`
/// leaves it to the general decoder.
pub fn search(frame: &[u8]) -> Option<Request> {
    let mut outer = Reader(frame);
    let mut message = Reader(outer.expect(0x30)?);
    if !outer.is_empty() {
        return None;
    }
    let msgid = message_id(message.expect(0x02)?)?;
    let mut fields = Reader(message.expect(0x63)?);
    if !message.is_empty() {
        // Controls, or trailing elements.
        return None;
    }
    let base = fields.expect(0x04)?.to_vec();
    let scope = match enumerated(fields.expect(0x0a)?)? {
        0 => Scope::Base,
        1 => Scope::OneLevel,
        2 => Scope::Subtree,
        3 => Scope::Children,
        _ => return None,
    };
    if !(0..=3).contains(&enumerated(fields.expect(0x0a)?)?) {
        return None;
    }
    let size_limit = limit(fields.expect(0x02)?)?;
    let time_limit = limit(fields.expect(0x02)?)?;
    let types_only = *fields.expect(0x01)?.first()? != 0;
    let filter = filter(fields.next()?, MAX_FILTER_DEPTH)?;
    let mut list = Reader(fields.expect(0x30)?);
    if !fields.is_empty() {
        return None;
    }
    let mut attrs = Vec::new();
    while !list.is_empty() {
        attrs.push(list.expect(0x04)?.to_vec());
    }
    Some(Request {
        msgid,
        op: Op::Search(SearchRequest {
            base,
            scope,
            size_limit,
            time_limit,
            types_only,
            filter,
            attrs,
        }),
        controls: Vec::new(),
    })
}

/// A messageID from 0 to 2^31 - 1, as the general decoder takes it.
fn message_id(bytes: &[u8]) -> Option<i32> {
    if !(1..=4).contains(&bytes.len()) || bytes[0] & 0x80 != 0 {
        return None;
    }
    Some(bytes.iter().fold(0i32, |v, &b| (v << 8) | b as i32))
}

/// An ENUMERATED of one byte (scope and derefAliases are 0 to 3).
fn enumerated(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [v] => Some(*v),
        _ => None,
    }
}

/// A size or time limit read as `ldap3_proto` reads it: up to eight bytes,
/// without sign extension, cut to 32 bits. Clients that mean "no limit"
/// send 2^32 - 1 (PTLib) or 0.
fn limit(bytes: &[u8]) -> Option<i32> {
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |v, &b| (v << 8) | b as u64) as i32)
}

/// The octet strings of an attribute–value assertion.
fn assertion(body: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut r = Reader(body);
    let attr = r.expect(0x04)?;
    let value = r.expect(0x04)?;
    r.is_empty().then(|| (attr.to_vec(), value.to_vec()))
}

fn filter(t: Tlv<'_>, depth: usize) -> Option<Filter<Vec<u8>>> {
    let depth = depth.checked_sub(1)?;
    Some(match t.tag {
        0xa0 | 0xa1 => {
            let mut r = Reader(t.body);
            let mut parts = Vec::new();
            while !r.is_empty() {
                parts.push(filter(r.next()?, depth)?);
            }
            if t.tag == 0xa0 {
                Filter::And(parts)
            } else {
                Filter::Or(parts)
            }
        }
        0xa2 => {
            let mut r = Reader(t.body);
            let inner = filter(r.next()?, depth)?;
            if !r.is_empty() {
                return None;
            }
            Filter::Not(Box::new(inner))
        }
        0xa3 | 0xa5 | 0xa6 | 0xa8 => {
            let (a, v) = assertion(t.body)?;
            match t.tag {
                0xa3 => Filter::Equal(a, v),
                0xa5 => Filter::GreaterOrEqual(a, v),
                0xa6 => Filter::LessOrEqual(a, v),
                _ => Filter::Approx(a, v),
            }
        }
        0x87 => Filter::Present(t.body.to_vec()),
        0xa4 => {
            let mut r = Reader(t.body);
            let attr = r.expect(0x04)?.to_vec();
            let mut pieces = Reader(r.expect(0x30)?);
            if !r.is_empty() || pieces.is_empty() {
                return None;
            }
            let mut s = Substrings {
                initial: None,
                any: Vec::new(),
                last: None,
            };
            let mut first = true;
            while !pieces.is_empty() {
                let piece = pieces.next()?;
                let value = piece.body.to_vec();
                match piece.tag {
                    0x80 if first => s.initial = Some(value),
                    0x81 => s.any.push(value),
                    0x82 if pieces.is_empty() => s.last = Some(value),
                    _ => return None,
                }
                first = false;
            }
            Filter::Substrings(attr, s)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::ber::Encoder;
    use super::super::decode::{decode, decode_general};
    use super::*;
    use bytes::BytesMut;
    use ldap3_proto::proto::{
        LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope,
        LdapSubstringFilter,
    };
    use tokio_util::codec::Encoder as _;

    /// Both decoders' reading of a frame, when this one takes it.
    fn both(frame: &[u8]) -> Option<(String, String)> {
        let quick = search(frame)?;
        let general = decode_general(frame);
        Some((format!("{quick:?}"), format!("{general:?}")))
    }

    /// This decoder takes the frame and reads it as the general one does.
    fn taken_alike(frame: &[u8]) {
        let (quick, general) = both(frame).unwrap_or_else(|| panic!("not taken: {frame:02x?}"));
        assert_eq!(format!("Ok({quick})"), general, "{frame:02x?}");
    }

    /// A search encoded by ldap3_proto, an encoder this server did not write.
    fn encoded(filter: LdapFilter, attrs: &[&str], sizelimit: i32) -> Vec<u8> {
        let msg = LdapMsg {
            msgid: 77,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: "ou=Dynamic,o=Intranet".into(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Always,
                sizelimit,
                timelimit: 30,
                typesonly: true,
                filter,
                attrs: attrs.iter().map(|a| a.to_string()).collect(),
            }),
            ctrl: Vec::new(),
        };
        let mut buf = BytesMut::new();
        ldap3_proto::LdapCodec::default()
            .encode(msg, &mut buf)
            .unwrap();
        buf.to_vec()
    }

    fn every_kind_of_filter() -> LdapFilter {
        let eq = |a: &str, v: &str| LdapFilter::Equality(a.into(), v.into());
        LdapFilter::And(vec![
            eq("objectClass", "rtPerson"),
            LdapFilter::Or(vec![
                LdapFilter::Substring(
                    "cn".into(),
                    LdapSubstringFilter {
                        initial: Some("jo".into()),
                        any: vec!["h".into(), "n".into()],
                        final_: Some("@x".into()),
                    },
                ),
                LdapFilter::Substring(
                    "givenName".into(),
                    LdapSubstringFilter {
                        initial: None,
                        any: vec!["é".into()],
                        final_: None,
                    },
                ),
                LdapFilter::Not(Box::new(LdapFilter::Present("sFlags".into()))),
            ]),
            LdapFilter::GreaterOrEqual("sport".into(), "1000".into()),
            LdapFilter::LessOrEqual("sport".into(), "2000".into()),
            LdapFilter::Approx("surName".into(), "Smith".into()),
            LdapFilter::And(Vec::new()),
            LdapFilter::Or(Vec::new()),
        ])
    }

    /// Searches with values that are not UTF-8, or hold the characters
    /// the general decoder uses to escape such bytes.
    fn with_raw_values() -> Vec<u8> {
        let mut buf = BytesMut::new();
        let mut e = Encoder::new(&mut buf);
        e.start(0x30);
        e.integer(0x02, 0x7fff_ffff);
        e.start(0x63);
        e.octets(b"cn=Jos\xe9,ou=Dynamic,o=Intranet");
        e.integer(0x0a, 3);
        e.integer(0x0a, 0);
        // 2^32 - 1, as PTLib sends "no limit", and an empty INTEGER.
        e.primitive(0x02, &[0, 0xff, 0xff, 0xff, 0xff]);
        e.primitive(0x02, &[]);
        e.primitive(0x01, &[0xff]);
        e.start(0xa1);
        e.start(0xa3);
        e.octets(b"cn");
        e.octets(b"J\xd6RG \xee\xbe\x80");
        e.end();
        e.start(0xa4);
        e.octets(b"cn");
        e.start(0x30);
        e.primitive(0x82, b"\xff");
        e.end();
        e.end();
        e.end();
        e.start(0x30);
        e.end();
        e.end();
        e.end();
        buf.to_vec()
    }

    fn corpus() -> Vec<Vec<u8>> {
        vec![
            encoded(every_kind_of_filter(), &["cn", "sttl", "*", "1.1"], 0),
            encoded(LdapFilter::Present("objectClass".into()), &[], -1),
            encoded(
                LdapFilter::Equality("cn".into(), "x".repeat(300)),
                &["cn"],
                1,
            ),
            with_raw_values(),
        ]
    }

    #[test]
    fn searches_decode_as_the_general_decoder_decodes_them() {
        for frame in corpus() {
            taken_alike(&frame);
        }
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        // An Active Directory search with a control: left to the general
        // decoder.
        let ad = std::fs::read(format!("{data}/ldap-valid/message-search-request-01.bin")).unwrap();
        assert!(search(&ad).is_none());
        assert_eq!(decode(&ad).unwrap().controls.len(), 1);
        // The PROTOS searches: whatever this decoder takes, it reads alike.
        let mut taken = 0;
        for case in 0..100 {
            let frame = std::fs::read(format!("{data}/protos-c06-enc/{case:08}")).unwrap();
            if let Some((quick, general)) = both(&frame) {
                assert_eq!(format!("Ok({quick})"), general, "case {case}");
                taken += 1;
            }
        }
        assert!(taken >= 90, "{taken} PROTOS cases taken");
    }

    #[test]
    fn no_change_to_a_byte_makes_the_decoders_disagree() {
        let (mut taken, mut left) = (0, 0);
        for frame in corpus() {
            for at in 0..frame.len() {
                let b = frame[at];
                for to in [
                    0x00,
                    0x01,
                    0x02,
                    0x04,
                    0x30,
                    0x7f,
                    0x80,
                    0x81,
                    0x84,
                    0xff,
                    b ^ 0x20,
                    b.wrapping_add(1),
                    b.wrapping_sub(1),
                ] {
                    let mut mutated = frame.clone();
                    mutated[at] = to;
                    match both(&mutated) {
                        Some((quick, general)) => {
                            assert_eq!(format!("Ok({quick})"), general, "{mutated:02x?}");
                            taken += 1;
                        }
                        None => left += 1,
                    }
                }
            }
            for len in 0..frame.len() {
                assert!(search(&frame[..len]).is_none());
            }
        }
        // Both kinds of outcome were exercised.
        assert!(taken > 1000 && left > 1000, "{taken} taken, {left} left");
    }

    #[test]
    fn unusual_forms_are_left_to_the_general_decoder() {
        let mut frame = encoded(LdapFilter::Present("cn".into()), &[], 0);
        assert!(search(&frame).is_some());
        // A scope out of range: the general decoder answers protocolError.
        let scope = frame
            .windows(3)
            .position(|w| w == [0x0a, 0x01, 0x02])
            .unwrap();
        frame[scope + 2] = 7;
        assert!(search(&frame).is_none());
        assert!(matches!(
            decode(&frame),
            Ok(Request {
                op: Op::Invalid { .. },
                ..
            })
        ));
        // An extensible match.
        let rule = LdapFilter::Extensible(ldap3_proto::proto::LdapMatchingRuleAssertion {
            matching_rule: Some("caseExactMatch".into()),
            type_: Some("cn".into()),
            match_value: "X".into(),
            dn_attributes: false,
        });
        assert!(search(&encoded(rule, &[], 0)).is_none());
        // Filters nested deeper than MAX_FILTER_DEPTH.
        let deep = (0..MAX_FILTER_DEPTH).fold(LdapFilter::Present("cn".into()), |f, _| {
            LdapFilter::Not(Box::new(f))
        });
        assert!(search(&encoded(deep, &[], 0)).is_none());
        // Controls.
        let mut msg = encoded(LdapFilter::Present("cn".into()), &[], 0);
        let control = [0xa0, 0x05, 0x30, 0x03, 0x04, 0x01, b'1'];
        msg.extend_from_slice(&control);
        msg[1] += control.len() as u8;
        assert!(search(&msg).is_none());
        assert_eq!(decode(&msg).unwrap().controls.len(), 1);
    }
}
