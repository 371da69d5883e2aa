//! LDAP requests in, LDAP responses out.
//!
//! A search in its plain form, most of all requests, is read in one pass
//! by [`crate::quick`]. Any other frame is parsed into a BER tree with
//! `ldap3_lber`, its controls are read off, its strings are escaped
//! ([`crate::ber::escape_request`]) and `ldap3_proto` decodes the
//! operation; the result is turned into a [`Request`] whose names and
//! values are the client's bytes again.
//! Responses are written straight into the connection's output buffer.
//! Runs on the worker threads.

use bytes::BytesMut;
use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{PL, StructureTag};
use ldap3_proto::LdapResultCode;
use ldap3_proto::proto::{
    LdapBindCred, LdapFilter, LdapModifyType, LdapMsg, LdapOp, LdapSearchScope,
};

use crate::ber::{Encoder, escape_request, unescape_owned};
use crate::filter::{Filter, Rule, Substrings};

/// The deepest BER nesting accepted (filters nest; nothing else does).
const MAX_DEPTH: usize = 64;

/// The search scopes of RFC 4511 section 4.5.1.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
    /// Below the base, at any depth, without the base (OpenLDAP's
    /// `children`, from the subordinate-scope draft).
    Children,
}

/// How a client authenticates in a Bind.
#[derive(Debug, PartialEq, Eq)]
pub enum BindAuth {
    Simple(Vec<u8>),
    Sasl {
        mechanism: Vec<u8>,
        credentials: Vec<u8>,
    },
    /// Sicily, the NTLM binds of Windows' LDAP library (\[MS-ADTS\]
    /// 5.1.1.1.3): the step and the NTLM message it carries.
    Sicily(SicilyStep, Vec<u8>),
    /// An AuthenticationChoice this server does not know.
    Other,
}

/// The three Bind requests of a Sicily authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SicilyStep {
    /// `[9]`: which packages the server offers.
    Discovery,
    /// `[10]`: the NTLM NEGOTIATE message.
    Negotiate,
    /// `[11]`: the NTLM AUTHENTICATE message.
    Response,
}

/// A search as the client sent it.
#[derive(Debug)]
pub struct SearchRequest {
    pub base: Vec<u8>,
    pub scope: Scope,
    pub size_limit: i32,
    pub time_limit: i32,
    pub types_only: bool,
    pub filter: Filter<Vec<u8>>,
    pub attrs: Vec<Vec<u8>>,
}

/// The kinds of change of a Modify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModKind {
    Add,
    Delete,
    Replace,
    /// RFC 4525, which this server refuses.
    Increment,
}

/// One change of a Modify, as the client sent it.
#[derive(Debug)]
pub struct Change {
    pub kind: ModKind,
    pub attr: Vec<u8>,
    pub values: Vec<Vec<u8>>,
}

/// An attribute with its values, as the client sent it.
pub type WireAttr = (Vec<u8>, Vec<Vec<u8>>);

/// An LDAP operation with the client's bytes.
#[derive(Debug)]
pub enum Op {
    Bind {
        version: i64,
        name: Vec<u8>,
        auth: BindAuth,
    },
    Unbind,
    Search(SearchRequest),
    Add {
        dn: Vec<u8>,
        attrs: Vec<WireAttr>,
    },
    Modify {
        dn: Vec<u8>,
        changes: Vec<Change>,
    },
    Delete {
        dn: Vec<u8>,
    },
    ModifyDn {
        dn: Vec<u8>,
    },
    Compare {
        dn: Vec<u8>,
        attr: Vec<u8>,
        value: Vec<u8>,
    },
    Abandon(i32),
    Extended {
        oid: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    /// A request whose encoding is sound but one of whose values is not
    /// allowed (a search scope of 7): answered with protocolError under
    /// the `response` tag, and the session goes on.
    Invalid {
        response: u8,
        why: &'static str,
    },
}

impl Op {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Bind { .. } => "bind",
            Op::Unbind => "unbind",
            Op::Search(_) => "search",
            Op::Add { .. } => "add",
            Op::Modify { .. } => "modify",
            Op::Delete { .. } => "delete",
            Op::ModifyDn { .. } => "modrdn",
            Op::Compare { .. } => "compare",
            Op::Abandon(_) => "abandon",
            Op::Extended { .. } => "extended",
            Op::Invalid { .. } => "invalid",
        }
    }
}

/// A control attached to a request: only what is needed to refuse it.
#[derive(Debug)]
pub struct Control {
    pub oid: Vec<u8>,
    pub critical: bool,
}

/// One decoded request.
#[derive(Debug)]
pub struct Request {
    pub msgid: i32,
    pub op: Op,
    pub controls: Vec<Control>,
}

/// A frame that is not an LDAP request: the session ends with a Notice of
/// Disconnection (RFC 4511 section 4.1.1).
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

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
    match crate::quick::search(frame) {
        Some(request) => Ok(request),
        None => decode_general(frame),
    }
}

/// Decodes any LDAPMessage, by way of `ldap3_proto`.
pub(crate) fn decode_general(frame: &[u8]) -> Result<Request, ProtocolError> {
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

/// Why the request stream cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The frame is not an LDAP request.
    Protocol(&'static str),
    /// The frame announces more than the maximum request size.
    TooLarge(usize),
}

impl From<std::io::Error> for StreamError {
    fn from(_: std::io::Error) -> StreamError {
        StreamError::Protocol("read error")
    }
}

/// Cuts requests off the front of a read buffer: the `tokio_util` codec
/// interface, used here without any runtime.
pub struct RequestCodec {
    pub max_request_size: usize,
    /// See [`crate::config::Config::max_request_elements`].
    pub max_elements: usize,
}

impl tokio_util::codec::Decoder for RequestCodec {
    type Item = Request;
    type Error = StreamError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, StreamError> {
        match crate::ber::frame_len(buf, self.max_request_size) {
            crate::ber::Frame::Complete(n) => {
                let frame = buf.split_to(n);
                crate::ber::check_elements(&frame, self.max_elements)
                    .map_err(StreamError::Protocol)?;
                decode(&frame)
                    .map(Some)
                    .map_err(|ProtocolError(why)| StreamError::Protocol(why))
            }
            crate::ber::Frame::Incomplete => Ok(None),
            crate::ber::Frame::TooLarge(n) => Err(StreamError::TooLarge(n)),
            crate::ber::Frame::Invalid => Err(StreamError::Protocol("not an LDAP message")),
        }
    }
}

/// The protocolOp tags of responses.
pub mod tag {
    pub const BIND: u8 = 0x61;
    pub const SEARCH_ENTRY: u8 = 0x64;
    pub const SEARCH_DONE: u8 = 0x65;
    pub const MODIFY: u8 = 0x67;
    pub const ADD: u8 = 0x69;
    pub const DELETE: u8 = 0x6b;
    pub const MODIFY_DN: u8 = 0x6d;
    pub const COMPARE: u8 = 0x6f;
    pub const EXTENDED: u8 = 0x78;
}

/// An LDAP result: the outcome of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct LdapResult {
    pub code: LdapResultCode,
    pub matched_dn: Vec<u8>,
    pub message: String,
}

impl LdapResult {
    pub fn success() -> LdapResult {
        LdapResult::new(LdapResultCode::Success, "")
    }

    pub fn new(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
        LdapResult {
            code,
            matched_dn: Vec::new(),
            message: message.into(),
        }
    }

    pub fn with_matched(mut self, dn: Vec<u8>) -> LdapResult {
        self.matched_dn = dn;
        self
    }
}

/// Writes responses for one message ID into an output buffer.
pub struct Responder<'a> {
    pub msgid: i32,
    pub out: &'a mut BytesMut,
}

impl Responder<'_> {
    fn begin(&mut self, op: u8) -> Encoder<'_> {
        let mut enc = Encoder::new(self.out);
        enc.start(0x30);
        enc.integer(0x02, self.msgid as i64);
        enc.start(op);
        enc
    }

    fn write_result(enc: &mut Encoder<'_>, result: &LdapResult) {
        enc.integer(0x0a, result.code.clone() as i64);
        enc.octets(&result.matched_dn);
        enc.octets(result.message.as_bytes());
    }

    /// A response that is only an LDAPResult.
    pub fn result(&mut self, op: u8, result: &LdapResult) {
        let mut enc = self.begin(op);
        Self::write_result(&mut enc, result);
        enc.end();
        enc.end();
    }

    /// A BindResponse, with the server's SASL credentials if there are
    /// any.
    pub fn bind(&mut self, result: &LdapResult, server_credentials: Option<&[u8]>) {
        let mut enc = self.begin(tag::BIND);
        Self::write_result(&mut enc, result);
        if let Some(credentials) = server_credentials {
            enc.primitive(0x87, credentials);
        }
        enc.end();
        enc.end();
    }

    /// An ExtendedResponse with an optional name and value.
    pub fn extended(&mut self, result: &LdapResult, name: Option<&[u8]>, value: Option<&[u8]>) {
        let mut enc = self.begin(tag::EXTENDED);
        Self::write_result(&mut enc, result);
        if let Some(name) = name {
            enc.primitive(0x8a, name);
        }
        if let Some(value) = value {
            enc.primitive(0x8b, value);
        }
        enc.end();
        enc.end();
    }

    /// A SearchResultEntry. `attrs` yields each attribute's name and values.
    pub fn entry<'v, I, V>(&mut self, dn: &[u8], attrs: I)
    where
        I: IntoIterator<Item = (&'v [u8], V)>,
        V: IntoIterator<Item = &'v [u8]>,
    {
        self.entry_with(dn, |enc| {
            for (name, values) in attrs {
                enc.attribute(name, values);
            }
        });
    }

    /// A SearchResultEntry whose attributes `attributes` writes, each a
    /// PartialAttribute, straight into the output.
    pub fn entry_with(&mut self, dn: &[u8], attributes: impl FnOnce(&mut Encoder<'_>)) {
        let mut enc = self.begin(tag::SEARCH_ENTRY);
        enc.octets(dn);
        enc.start(0x30);
        attributes(&mut enc);
        enc.end();
        enc.end();
        enc.end();
    }
}

/// OID of the Notice of Disconnection (RFC 4511 section 4.4.1).
pub const NOTICE_OF_DISCONNECTION: &[u8] = b"1.3.6.1.4.1.1466.20036";

/// Writes a Notice of Disconnection: an unsolicited ExtendedResponse with
/// message ID 0.
pub fn notice_of_disconnection(out: &mut BytesMut, code: LdapResultCode, message: &str) {
    Responder { msgid: 0, out }.extended(
        &LdapResult::new(code, message),
        Some(NOTICE_OF_DISCONNECTION),
        None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_response(buf: &[u8]) -> LdapMsg {
        let (_, tag) = Parser::new(64).parse(buf).expect("valid BER");
        LdapMsg::try_from(tag).expect("valid LDAP")
    }

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

    #[test]
    fn written_responses_decode_with_ldap3_proto() {
        let mut out = BytesMut::new();
        let mut r = Responder {
            msgid: 300,
            out: &mut out,
        };
        r.entry(
            b"cn=x,o=Intranet",
            [
                (&b"cn"[..], vec![&b"x"[..]]),
                (&b"port"[..], vec![&b"1503"[..], &b"1720"[..]]),
            ],
        );
        let msg = decode_response(&out);
        assert_eq!(msg.msgid, 300);
        match msg.op {
            LdapOp::SearchResultEntry(e) => {
                assert_eq!(e.dn, "cn=x,o=Intranet");
                assert_eq!(
                    e.attributes[1].vals,
                    vec![b"1503".to_vec(), b"1720".to_vec()]
                );
            }
            other => panic!("{other:?}"),
        }
        let mut out = BytesMut::new();
        notice_of_disconnection(&mut out, LdapResultCode::ProtocolError, "bad");
        match decode_response(&out).op {
            LdapOp::ExtendedResponse(e) => {
                assert_eq!(e.res.code, LdapResultCode::ProtocolError);
                assert_eq!(e.name.as_deref(), Some("1.3.6.1.4.1.1466.20036"));
            }
            other => panic!("{other:?}"),
        }
    }
}
