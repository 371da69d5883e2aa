//! Decoding a frame into a [`Request`]: the one entry point, [`decode`],
//! and the general decoder behind it.
//!
//! A search in its plain form, most of all requests, is read in one pass
//! by [`super::quick`]. Any other frame is parsed into a BER tree with
//! `ldap3_lber`, its controls are read off, its strings are escaped
//! ([`super::ber::escape_request`]) and `ldap3_proto` decodes the
//! operation; the result is turned into a [`Request`] whose names and
//! values are the client's bytes again. Runs on the worker threads.

use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{PL, StructureTag};
use ldap3_proto::proto::{
    LdapBindCred, LdapFilter, LdapModifyType, LdapMsg, LdapOp, LdapSearchScope,
};

use super::ber::{escape_request, unescape_owned};
use super::quick;
use super::request::*;
use super::response::tag;
use crate::directory::filter::{Filter, Rule, Substrings};

/// The deepest BER nesting accepted (filters nest; nothing else does).
const MAX_DEPTH: usize = 64;

/// Application tags of the requests a client may send.
const REQUEST_TAGS: [u64; 10] = [0, 2, 3, 6, 8, 10, 12, 14, 16, 23];

/// The requests whose operation is primitive: DelRequest and
/// AbandonRequest. UnbindRequest (2) is primitive too, but ldap3_proto
/// takes it in either form, silently; the others are constructed.
const PRIMITIVE_REQUESTS: [u64; 2] = [10, 16];

/// Checks a request's messageID: an INTEGER from 0 to 2^31 - 1. LDAPv3
/// keeps 0 for unsolicited notifications (RFC 4511 section 4.1.1), but
/// LDAPv2 allows it in requests (RFC 1777 section 4), and the version is
/// not known before the Bind, if there is one. ldap3_proto reads the ID
/// without its sign and cut to 32 bits, so that -1 would be answered as
/// 255 and 2^32 + 5 as 5.
fn message_id(tag: Option<&StructureTag>) -> Result<i32, ProtocolError> {
    match integer(tag, 2).map(i32::try_from) {
        Some(Ok(id)) if id >= 0 => Ok(id),
        _ => Err(ProtocolError("bad message ID")),
    }
}

/// Decodes one complete LDAPMessage.
pub fn decode(frame: &[u8]) -> Result<Request, ProtocolError> {
    match quick::search(frame) {
        Some(request) => Ok(request),
        None => decode_general(frame),
    }
}

/// Decodes any LDAPMessage, by way of `ldap3_proto`.
pub fn decode_general(frame: &[u8]) -> Result<Request, ProtocolError> {
    let (rest, mut tag) = Parser::new(MAX_DEPTH)
        .parse(frame)
        .map_err(|_| ProtocolError("malformed BER"))?;
    if !rest.is_empty() {
        return Err(ProtocolError("trailing bytes after the message"));
    }
    let controls = take_controls(&mut tag)?;
    let msgid = match &tag.payload {
        PL::C(parts) => match parts.get(1) {
            Some(op) if op.class == TagClass::Application && REQUEST_TAGS.contains(&op.id) => {
                // ldap3_proto prints a line on standard output for an
                // operation of the wrong form, which a client could send
                // by the thousand: refused before it.
                let primitive = matches!(op.payload, PL::P(_));
                if op.id != 2 && primitive != PRIMITIVE_REQUESTS.contains(&op.id) {
                    return Err(ProtocolError("malformed request"));
                }
                message_id(parts.first())?
            }
            _ => return Err(ProtocolError("not an LDAP request")),
        },
        PL::P(_) => return Err(ProtocolError("message is not a sequence")),
    };
    if let Some(op) = invalid_values(&tag)? {
        return Ok(Request {
            msgid,
            op,
            controls,
        });
    }
    // ldap3_proto knows no Sicily choice: read it off before.
    let sicily = sicily(&tag);
    escape_request(&mut tag);
    let msg = LdapMsg::try_from(tag).map_err(|_| ProtocolError("malformed request"))?;
    let mut op = convert(msg.op)?;
    if let (Some(step), Op::Bind { auth, .. }) = (sicily, &mut op) {
        *auth = step;
    }
    Ok(Request {
        msgid,
        op,
        controls,
    })
}

/// A search or modify whose fields are well encoded but hold a value
/// outside what RFC 4511 allows: a search scope or derefAliases, or a
/// modify operation, of 4 or more. ldap3_proto refuses them like a broken
/// encoding, which would end the session (section 4.1.1); the operation
/// alone is answered with protocolError instead, as for any request the
/// server understands but cannot perform. Whether the rest of the request
/// is sound is left to ldap3_proto, on a copy with the values replaced.
fn invalid_values(message: &StructureTag) -> Result<Option<Op>, ProtocolError> {
    let Some((response, why, paths)) = out_of_range(message) else {
        return Ok(None);
    };
    let mut repaired = message.clone();
    for path in paths {
        if let Some(tag) = at_path(&mut repaired, &path) {
            tag.payload = PL::P(vec![0]);
        }
    }
    escape_request(&mut repaired);
    match LdapMsg::try_from(repaired) {
        Ok(_) => Ok(Some(Op::Invalid { response, why })),
        Err(_) => Err(ProtocolError("malformed request")),
    }
}

/// The answer to a request with enumerated values out of range, and where
/// they are in the message (indexes from the message down).
type OutOfRange = (u8, &'static str, Vec<Vec<usize>>);

fn out_of_range(message: &StructureTag) -> Option<OutOfRange> {
    let bad = |tag: Option<&StructureTag>| integer(tag, 10).is_some_and(|v| !(0..=3).contains(&v));
    let PL::C(parts) = &message.payload else {
        return None;
    };
    let op = parts.get(1)?;
    let PL::C(fields) = &op.payload else {
        return None;
    };
    let (response, why, paths): OutOfRange = match op.id {
        3 => (
            tag::SEARCH_DONE,
            "invalid scope or derefAliases",
            [1, 2]
                .into_iter()
                .filter(|&i| bad(fields.get(i)))
                .map(|i| vec![1, i])
                .collect(),
        ),
        6 => {
            let PL::C(changes) = &fields.get(1)?.payload else {
                return None;
            };
            let paths = changes
                .iter()
                .enumerate()
                .filter(|(_, change)| match &change.payload {
                    PL::C(parts) => bad(parts.first()),
                    PL::P(_) => false,
                })
                .map(|(c, _)| vec![1, 1, c, 0])
                .collect();
            (tag::MODIFY, "invalid modify operation", paths)
        }
        _ => return None,
    };
    (!paths.is_empty()).then_some((response, why, paths))
}

/// The element at a path of indexes into constructed elements.
fn at_path<'a>(tag: &'a mut StructureTag, path: &[usize]) -> Option<&'a mut StructureTag> {
    path.iter().try_fold(tag, |tag, &i| match &mut tag.payload {
        PL::C(parts) => parts.get_mut(i),
        PL::P(_) => None,
    })
}

/// A universal INTEGER (`id` 2) or ENUMERATED (10) of at most 8 bytes.
fn integer(tag: Option<&StructureTag>, id: u64) -> Option<i64> {
    match tag? {
        StructureTag {
            class: TagClass::Universal,
            id: got,
            payload: PL::P(bytes),
        } if *got == id && (1..=8).contains(&bytes.len()) => {
            let negative = bytes[0] & 0x80 != 0;
            Some(
                bytes
                    .iter()
                    .fold(if negative { -1i64 } else { 0 }, |v, &b| {
                        (v << 8) | b as i64
                    }),
            )
        }
        _ => None,
    }
}

/// The Sicily step of a BindRequest, if it is one: the authentication
/// choice is the third element, `[9]`, `[10]` or `[11]`.
fn sicily(message: &StructureTag) -> Option<BindAuth> {
    let PL::C(parts) = &message.payload else {
        return None;
    };
    let bind = parts
        .get(1)
        .filter(|op| op.class == TagClass::Application && op.id == 0)?;
    let PL::C(fields) = &bind.payload else {
        return None;
    };
    let auth = fields.get(2).filter(|a| a.class == TagClass::Context)?;
    let step = match auth.id {
        9 => SicilyStep::Discovery,
        10 => SicilyStep::Negotiate,
        11 => SicilyStep::Response,
        _ => return None,
    };
    match &auth.payload {
        PL::P(token) => Some(BindAuth::Sicily(step, token.clone())),
        PL::C(_) => None,
    }
}

/// Reads the controls off a message and removes them, so that the
/// operation decodes whatever the controls hold.
fn take_controls(tag: &mut StructureTag) -> Result<Vec<Control>, ProtocolError> {
    let PL::C(parts) = &mut tag.payload else {
        return Ok(Vec::new());
    };
    if parts.len() < 3 {
        return Ok(Vec::new());
    }
    let Some(StructureTag {
        class: TagClass::Context,
        id: 0,
        payload: PL::C(list),
    }) = parts.pop()
    else {
        return Err(ProtocolError("malformed controls"));
    };
    let mut controls = Vec::with_capacity(list.len());
    for control in list {
        let PL::C(fields) = control.payload else {
            return Err(ProtocolError("malformed control"));
        };
        let mut fields = fields.into_iter();
        let oid = match fields.next() {
            Some(StructureTag {
                class: TagClass::Universal,
                id: 4,
                payload: PL::P(oid),
            }) => oid,
            _ => return Err(ProtocolError("control without a type")),
        };
        let critical = matches!(
            fields.next(),
            Some(StructureTag { class: TagClass::Universal, id: 1, payload: PL::P(v) })
                if v.first().is_some_and(|&b| b != 0)
        );
        controls.push(Control { oid, critical });
    }
    Ok(controls)
}

fn bytes(s: String) -> Vec<u8> {
    unescape_owned(s.into_bytes())
}

fn convert(op: LdapOp) -> Result<Op, ProtocolError> {
    Ok(match op {
        LdapOp::BindRequest(b) => Op::Bind {
            version: b.version,
            name: bytes(b.dn),
            auth: match b.cred {
                LdapBindCred::Simple(pw) => BindAuth::Simple(bytes(pw)),
                LdapBindCred::SASL(sasl) => BindAuth::Sasl {
                    mechanism: bytes(sasl.mechanism),
                    credentials: unescape_owned(sasl.credentials),
                },
                _ => BindAuth::Other,
            },
        },
        LdapOp::UnbindRequest => Op::Unbind,
        LdapOp::SearchRequest(s) => Op::Search(SearchRequest {
            base: bytes(s.base),
            scope: match s.scope {
                LdapSearchScope::Base => Scope::Base,
                LdapSearchScope::OneLevel => Scope::OneLevel,
                LdapSearchScope::Subtree => Scope::Subtree,
                LdapSearchScope::Children => Scope::Children,
            },
            size_limit: s.sizelimit,
            time_limit: s.timelimit,
            types_only: s.typesonly,
            filter: convert_filter(s.filter),
            attrs: s.attrs.into_iter().map(bytes).collect(),
        }),
        LdapOp::AddRequest(a) => Op::Add {
            dn: bytes(a.dn),
            attrs: a
                .attributes
                .into_iter()
                .map(|a| {
                    (
                        bytes(a.atype),
                        a.vals.into_iter().map(unescape_owned).collect(),
                    )
                })
                .collect(),
        },
        LdapOp::ModifyRequest(m) => Op::Modify {
            dn: bytes(m.dn),
            changes: m
                .changes
                .into_iter()
                .map(|c| {
                    let kind = match c.operation {
                        LdapModifyType::Add => ModKind::Add,
                        LdapModifyType::Delete => ModKind::Delete,
                        LdapModifyType::Replace => ModKind::Replace,
                        LdapModifyType::Increment => ModKind::Increment,
                    };
                    Ok(Change {
                        kind,
                        attr: bytes(c.modification.atype),
                        values: c
                            .modification
                            .vals
                            .into_iter()
                            .map(unescape_owned)
                            .collect(),
                    })
                })
                .collect::<Result<_, _>>()?,
        },
        LdapOp::DelRequest(dn) => Op::Delete { dn: bytes(dn) },
        LdapOp::ModifyDNRequest(m) => Op::ModifyDn { dn: bytes(m.dn) },
        LdapOp::CompareRequest(c) => Op::Compare {
            dn: bytes(c.dn),
            attr: bytes(c.atype),
            value: unescape_owned(c.val),
        },
        LdapOp::AbandonRequest(id) => Op::Abandon(id),
        LdapOp::ExtendedRequest(e) => Op::Extended {
            oid: e.name.into_bytes(),
            value: e.value,
        },
        _ => return Err(ProtocolError("not an LDAP request")),
    })
}

fn convert_filter(f: LdapFilter) -> Filter<Vec<u8>> {
    match f {
        LdapFilter::And(v) => Filter::And(v.into_iter().map(convert_filter).collect()),
        LdapFilter::Or(v) => Filter::Or(v.into_iter().map(convert_filter).collect()),
        LdapFilter::Not(x) => Filter::Not(Box::new(convert_filter(*x))),
        LdapFilter::Equality(a, v) => Filter::Equal(bytes(a), bytes(v)),
        LdapFilter::Substring(a, s) => Filter::Substrings(
            bytes(a),
            Substrings {
                initial: s.initial.map(bytes),
                any: s.any.into_iter().map(bytes).collect(),
                last: s.final_.map(bytes),
            },
        ),
        LdapFilter::GreaterOrEqual(a, v) => Filter::GreaterOrEqual(bytes(a), bytes(v)),
        LdapFilter::LessOrEqual(a, v) => Filter::LessOrEqual(bytes(a), bytes(v)),
        LdapFilter::Present(a) => Filter::Present(bytes(a)),
        LdapFilter::Approx(a, v) => Filter::Approx(bytes(a), bytes(v)),
        // Without a matching rule, an extensible match on a type is an
        // equality match (RFC 4511 section 4.5.1.7.7). A rule this server
        // does not implement, or neither rule nor type, is Undefined.
        LdapFilter::Extensible(m) => {
            let rule = match &m.matching_rule {
                None if m.type_.is_some() => Some(Rule::Equality),
                None => None,
                Some(name) => Rule::named(name.as_bytes()),
            };
            match (rule, m.type_) {
                (Some(Rule::Equality), Some(a)) if !m.dn_attributes => {
                    Filter::Equal(bytes(a), bytes(m.match_value))
                }
                (Some(rule), attr) => Filter::Extensible {
                    attr: attr.map(bytes),
                    rule,
                    value: bytes(m.match_value),
                    dn: m.dn_attributes,
                },
                (None, _) => Filter::Undefined,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldapv2_anonymous_bind_with_windows_lengths() {
        // 30 84 00 00 00 LL as Windows writes it; version 2, empty name and password.
        let frame = [
            0x30, 0x84, 0, 0, 0, 0x10, 0x02, 0x01, 0x01, 0x60, 0x84, 0, 0, 0, 0x07, 0x02, 0x01,
            0x02, 0x04, 0x00, 0x80, 0x00,
        ];
        let req = decode(&frame).unwrap();
        assert_eq!(req.msgid, 1);
        match req.op {
            Op::Bind {
                version,
                name,
                auth,
            } => {
                assert_eq!(version, 2);
                assert!(name.is_empty());
                assert_eq!(auth, BindAuth::Simple(vec![]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn latin1_dn_survives_decoding() {
        // DelRequest "cn=Jos\xe9"
        let frame = [
            0x30, 0x0c, 0x02, 0x01, 0x05, 0x4a, 0x07, b'c', b'n', b'=', b'J', b'o', b's', 0xe9,
        ];
        match decode(&frame).unwrap().op {
            Op::Delete { dn } => assert_eq!(dn, b"cn=Jos\xe9"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn controls_are_read_with_their_criticality() {
        // Delete "x" with control 1.2.840.113556.1.4.473 (server sort), critical.
        let oid = b"1.2.840.113556.1.4.473";
        let mut ctl = vec![0x04, oid.len() as u8];
        ctl.extend_from_slice(oid);
        ctl.extend_from_slice(&[0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00]);
        let mut controls = vec![0x30, ctl.len() as u8];
        controls.extend(ctl);
        let mut body = vec![
            0x02,
            0x01,
            0x07,
            0x4a,
            0x01,
            b'x',
            0xa0,
            controls.len() as u8,
        ];
        body.extend(controls);
        let mut frame = vec![0x30, body.len() as u8];
        frame.extend(body);
        let req = decode(&frame).unwrap();
        assert_eq!(req.controls.len(), 1);
        assert!(req.controls[0].critical);
        assert_eq!(req.controls[0].oid, oid);
    }

    #[test]
    fn responses_and_unknown_tags_are_protocol_errors() {
        // A BindResponse sent to the server.
        let frame = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert!(decode(&frame).is_err());
        // Application tag 30 (unknown).
        let frame = [0x30, 0x05, 0x02, 0x01, 0x01, 0x5e, 0x00];
        assert!(decode(&frame).is_err());
        assert!(decode(&[0x30, 0x03, 0x02, 0x01]).is_err());
    }

    #[test]
    fn message_ids_run_from_0_to_2_pow_31_minus_1() {
        // An UnbindRequest with the given messageID content.
        let unbind = |id: &[u8]| {
            let mut frame = vec![0x30, (id.len() + 4) as u8, 0x02, id.len() as u8];
            frame.extend_from_slice(id);
            frame.extend_from_slice(&[0x42, 0x00]);
            decode(&frame).map(|r| r.msgid)
        };
        assert_eq!(unbind(&[0x00]), Ok(0), "LDAPv2 allows 0");
        assert_eq!(unbind(&[0x01]), Ok(1));
        assert_eq!(unbind(&[0x00, 0xff]), Ok(255));
        assert_eq!(unbind(&[0x7f, 0xff, 0xff, 0xff]), Ok(i32::MAX));
        assert_eq!(unbind(&[0x00, 0x00, 0x00, 0x00, 0x07]), Ok(7), "padded");
        for bad in [
            &[][..],
            &[0xff],
            &[0xff, 0x7f],
            &[0x80, 0x00, 0x00, 0x00],
            &[0x00, 0x80, 0x00, 0x00, 0x00],
            &[0x01, 0x00, 0x00, 0x00, 0x05],
            &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00],
        ] {
            assert!(unbind(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn every_valid_request_in_the_test_suite_decodes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ldap-valid");
        let files = std::fs::read_dir(&dir).unwrap();
        let mut decoded = 0;
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let mut bytes = std::fs::read(file.path()).unwrap();
            if bytes.first() != Some(&0x30) {
                // Some files hold the bare protocolOp: wrap it, message ID 1.
                let mut msg = vec![0x02, 0x01, 0x01];
                msg.extend(bytes);
                let mut framed = vec![0x30, 0x84];
                framed.extend((msg.len() as u32).to_be_bytes());
                framed.extend(msg);
                bytes = framed;
            }
            let is_request = name.contains("request") || name.contains("req");
            let result = decode(&bytes);
            if is_request && !name.contains("moddn") {
                assert!(result.is_ok(), "{name}: {result:?}");
                decoded += 1;
            }
        }
        assert!(decoded >= 8, "only {decoded} requests decoded");
    }
}
