//! Writing responses: LDAP results, entries and notices, encoded straight
//! into the connection's output buffer. Runs on the worker threads.

use bytes::BytesMut;
use ldap3_proto::LdapResultCode;

use super::ber::Encoder;

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

thread_local! {
    /// The result code this thread wrote last, for the counters.
    static LAST_CODE: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// The result code of the last result this thread wrote since the last
/// call, if any: what a request was answered, for the counters of
/// [`crate::metrics`]. A thread serves one request at a time, so this is
/// the request's, read without threading it through every operation.
pub fn take_result_code() -> Option<u32> {
    LAST_CODE.take()
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
        let code = result.code.clone() as i64;
        LAST_CODE.set(Some(code as u32));
        enc.integer(0x0a, code);
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
    use ldap3_lber::parse::Parser;
    use ldap3_proto::proto::{LdapMsg, LdapOp};

    fn decode_response(buf: &[u8]) -> LdapMsg {
        let (_, tag) = Parser::new(64).parse(buf).expect("valid BER");
        LdapMsg::try_from(tag).expect("valid LDAP")
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
