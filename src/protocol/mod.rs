//! The LDAP protocol as bytes: BER framing, the request types, the two
//! decoders behind one [`decode`] entry point, and the response encoder.
//!
//! Runs on the worker threads, between a connection's socket and the
//! operations. It parses client bytes, so it is one of the sharp parts:
//! every path through it is fuzzed. The request types carry the
//! directory's [`Filter`](crate::directory::filter::Filter), so it imports
//! the directory's vocabulary and nothing else of the crate: never the
//! operations, the dialect or the server.
//!
//! The benchmark client (`crates/ils-bench`) uses only what is re-exported
//! here.

pub mod ber;
pub mod codec;
pub mod decode;
pub mod quick;
pub mod request;
pub mod response;

pub use ber::{Encoder, Frame, frame_len, header};
pub use codec::{RequestCodec, StreamError};
pub use decode::{decode, decode_general};
pub use request::{BindAuth, Change, Control, ModKind, Scope, SearchRequest, SicilyStep, WireAttr};
pub use request::{Op, ProtocolError, Request};
pub use response::notice_of_disconnection;
pub use response::{LdapResult, Responder, tag};
