//! The requests a client sends, as the operations read them: names and
//! values are the client's bytes, whatever their encoding. Produced by
//! [`super::decode`]; the types only, no logic. Used on the worker threads.

use crate::directory::filter::Filter;

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
