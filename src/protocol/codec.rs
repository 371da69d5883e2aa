//! Framing: cutting whole requests off the front of a connection's read
//! buffer, within the size and element limits. Runs on the worker threads.

use bytes::BytesMut;

use super::ber::{Frame, check_elements, frame_len};
use super::decode::decode;
use super::request::{ProtocolError, Request};

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
    /// See the `max-request-elements` setting.
    pub max_elements: usize,
}

impl tokio_util::codec::Decoder for RequestCodec {
    type Item = Request;
    type Error = StreamError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, StreamError> {
        match frame_len(buf, self.max_request_size) {
            Frame::Complete(n) => {
                let frame = buf.split_to(n);
                check_elements(&frame, self.max_elements).map_err(StreamError::Protocol)?;
                decode(&frame)
                    .map(Some)
                    .map_err(|ProtocolError(why)| StreamError::Protocol(why))
            }
            Frame::Incomplete => Ok(None),
            Frame::TooLarge(n) => Err(StreamError::TooLarge(n)),
            Frame::Invalid => Err(StreamError::Protocol("not an LDAP message")),
        }
    }
}
