//! BER framing and encoding of LDAP messages, byte for byte.
//!
//! Runs on the connection worker threads. Three jobs:
//!
//! * [`frame_len`] finds where one LDAPMessage ends in the read buffer, so
//!   that an oversized request is refused from its header alone, before the
//!   bytes are buffered.
//! * [`escape`] and [`unescape`] make arbitrary octet strings survive
//!   `ldap3_proto`, whose decoder turns DNs, attribute names and filter
//!   values into Rust `String`s and rejects bytes that are not UTF-8.
//!   Windows clients send Windows-1252 names, so every string is mapped into
//!   valid UTF-8 before decoding and back to the original bytes after: a byte
//!   that is not part of valid UTF-8 becomes the private-use character
//!   U+EF00 + byte (the "UTF-8b" idea), and so do the bytes of any genuine
//!   U+EF80..=U+EFFF character, which keeps the mapping lossless both ways.
//! * [`Encoder`] writes responses straight into the output buffer. Values
//!   are raw bytes, which `ldap3_proto`'s response types cannot carry, and
//!   writing in place avoids building a tag tree for every entry returned.

use bytes::{BufMut, BytesMut};
use ldap3_lber::common::TagClass;
use ldap3_lber::structure::{PL, StructureTag};

/// What [`frame_len`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes is at the start of the buffer.
    Complete(usize),
    /// More bytes are needed to know or to reach the end of the message.
    Incomplete,
    /// The message announces more than the allowed size.
    TooLarge(usize),
    /// The bytes cannot start an LDAPMessage (not a SEQUENCE, or an
    /// indefinite or malformed length).
    Invalid,
}

/// Finds the extent of the LDAPMessage at the start of `buf`.
///
/// Accepts the long-form lengths Windows' LDAP library writes
/// (`30 84 00 00 00 LL`); refuses indefinite lengths, which RFC 4511
/// section 5.1 forbids.
pub fn frame_len(buf: &[u8], max: usize) -> Frame {
    let Some(&tag) = buf.first() else {
        return Frame::Incomplete;
    };
    if tag != 0x30 {
        return Frame::Invalid;
    }
    let Some(&first) = buf.get(1) else {
        return Frame::Incomplete;
    };
    let (header, len) = if first < 0x80 {
        (2, first as usize)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 8 {
            return Frame::Invalid;
        }
        let Some(bytes) = buf.get(2..2 + n) else {
            return Frame::Incomplete;
        };
        let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
        (2 + n, usize::try_from(len).unwrap_or(usize::MAX))
    };
    let total = header.saturating_add(len);
    if total > max {
        Frame::TooLarge(total)
    } else if buf.len() < total {
        Frame::Incomplete
    } else {
        Frame::Complete(total)
    }
}

/// The identifier and length octets of the element at the start of `b`,
/// in the forms LDAP uses (RFC 4511 section 5.1): a one-byte tag and a
/// definite length, short or long (Windows writes every constructed
/// length in four bytes), of at most eight bytes. Returns the tag, the
/// header's length and the content's; `None` if the header is cut short
/// or not of those forms.
pub fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let (&tag, &first) = (b.first()?, b.get(1)?);
    if tag & 0x1f == 0x1f {
        return None;
    }
    if first < 0x80 {
        return Some((tag, 2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    if !(1..=8).contains(&n) {
        return None;
    }
    let len = b
        .get(2..2 + n)?
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | x as u64);
    Some((tag, 2 + n, usize::try_from(len).ok()?))
}

/// Checks, by the element headers alone and before anything is decoded,
/// that a frame holds at most `max` BER elements, in the forms [`header`]
/// reads, each inside its parent. Decoding builds a node of some hundred
/// bytes for each element, however small, so a request of many tiny
/// elements (60,000 attribute names of two bytes) would cost thirty or
/// forty times its size.
pub fn check_elements(frame: &[u8], max: usize) -> Result<(), &'static str> {
    const MALFORMED: &str = "malformed BER";
    // The ends of the constructed elements the scan is inside.
    let mut ends: Vec<usize> = vec![frame.len()];
    let (mut at, mut count) = (0usize, 0usize);
    while at < frame.len() {
        while ends.len() > 1 && ends.last() == Some(&at) {
            ends.pop();
        }
        count += 1;
        if count > max {
            return Err("too many elements in one request (max-request-elements)");
        }
        let (tag, head, len) = header(&frame[at..]).ok_or(MALFORMED)?;
        at += head;
        let end = at.checked_add(len).ok_or(MALFORMED)?;
        if end > *ends.last().unwrap_or(&frame.len()) {
            return Err(MALFORMED);
        }
        if tag & 0x20 != 0 {
            ends.push(end);
        } else {
            at = end;
        }
    }
    Ok(())
}

const ESCAPE_BASE: u32 = 0xEF00;

fn is_escape_char(c: char) -> bool {
    (0xEF80..=0xEFFF).contains(&(c as u32))
}

/// Maps arbitrary bytes to a valid UTF-8 string, reversibly.
///
/// Valid UTF-8 without the escape range is left as it is, so ASCII and
/// UTF-8 names pay only the validation. Every character of the escape
/// range is encoded with a leading 0xEE, so a string without that byte
/// holds none of them.
pub fn escape(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.is_ascii() {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) if !bytes.contains(&0xEE) || !s.chars().any(is_escape_char) => return None,
        _ => {}
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let valid = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default();
                (valid, e.error_len().unwrap_or(rest.len() - e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            if is_escape_char(c) {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    out.push(escape_byte(b));
                }
            } else {
                out.push(c);
            }
        }
        let bad_start = valid.len();
        for &b in &rest[bad_start..bad_start + bad] {
            out.push(escape_byte(b));
        }
        rest = &rest[bad_start + bad..];
    }
    Some(out.into_bytes())
}

fn escape_byte(b: u8) -> char {
    // Only bytes >= 0x80 are ever invalid UTF-8 or part of an escape-range
    // character, so the result is always in U+EF80..=U+EFFF.
    char::from_u32(ESCAPE_BASE + b as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Reverses [`escape`]. Borrows when there is nothing to undo.
pub fn unescape(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // Every escape character is encoded as EE BE xx or EE BF xx.
    if !bytes.contains(&0xEE) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let Ok(s) = std::str::from_utf8(bytes) else {
        return std::borrow::Cow::Borrowed(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len());
    for c in s.chars() {
        if is_escape_char(c) {
            out.push((c as u32 - ESCAPE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Reverses [`escape`] on a string or value that came out of
/// `ldap3_proto`, reusing its buffer when there is nothing to undo.
pub fn unescape_owned(bytes: Vec<u8>) -> Vec<u8> {
    let undone = match unescape(&bytes) {
        std::borrow::Cow::Owned(undone) => Some(undone),
        std::borrow::Cow::Borrowed(_) => None,
    };
    undone.unwrap_or(bytes)
}

/// Escapes, in place, every octet string of a request that `ldap3_proto`
/// decodes into a `String`: universal OCTET STRINGs anywhere, the
/// DelRequest, the simple bind password, and the context-tagged strings of
/// filters. Integers, enumerations and booleans are never touched.
pub fn escape_request(msg: &mut StructureTag) {
    let PL::C(parts) = &mut msg.payload else {
        return;
    };
    let Some(op) = parts.get_mut(1) else {
        return;
    };
    if op.class != TagClass::Application {
        return;
    }
    match (op.id, &mut op.payload) {
        // DelRequest ::= [APPLICATION 10] LDAPDN
        (10, PL::P(bytes)) => escape_in_place(bytes),
        // BindRequest: the simple password is [0] OCTET STRING.
        (0, PL::C(inner)) => {
            for t in inner.iter_mut() {
                if t.class == TagClass::Context && t.id == 0 {
                    if let PL::P(bytes) = &mut t.payload {
                        escape_in_place(bytes);
                    }
                } else {
                    escape_universal(t);
                }
            }
        }
        // SearchRequest: the filter is the seventh element.
        (3, PL::C(inner)) => {
            for (i, t) in inner.iter_mut().enumerate() {
                if i == 6 {
                    escape_filter(t);
                } else {
                    escape_universal(t);
                }
            }
        }
        // ExtendedRequest: leave the OID and the value as they are.
        (23, _) => {}
        (_, PL::C(inner)) => inner.iter_mut().for_each(escape_universal),
        _ => {}
    }
}

fn escape_in_place(bytes: &mut Vec<u8>) {
    if let Some(escaped) = escape(bytes) {
        *bytes = escaped;
    }
}

fn escape_universal(tag: &mut StructureTag) {
    match &mut tag.payload {
        PL::P(bytes) if tag.class == TagClass::Universal && tag.id == 4 => escape_in_place(bytes),
        PL::P(_) => {}
        PL::C(inner) => inner.iter_mut().for_each(escape_universal),
    }
}

fn escape_filter(tag: &mut StructureTag) {
    if tag.class != TagClass::Context {
        return;
    }
    match (tag.id, &mut tag.payload) {
        // and, or, not
        (0..=2, PL::C(inner)) => inner.iter_mut().for_each(escape_filter),
        // present
        (7, PL::P(bytes)) => escape_in_place(bytes),
        // substrings: type, then SEQUENCE of [0]/[1]/[2] strings
        (4, PL::C(inner)) => {
            for t in inner.iter_mut() {
                match &mut t.payload {
                    PL::P(bytes) => escape_in_place(bytes),
                    PL::C(parts) => {
                        for p in parts.iter_mut() {
                            if let PL::P(bytes) = &mut p.payload {
                                escape_in_place(bytes);
                            }
                        }
                    }
                }
            }
        }
        // extensible: [1] rule, [2] type, [3] value are strings, [4] is a boolean
        (9, PL::C(inner)) => {
            for t in inner.iter_mut() {
                if t.id != 4
                    && let PL::P(bytes) = &mut t.payload
                {
                    escape_in_place(bytes);
                }
            }
        }
        // equality, >=, <=, approx: AttributeValueAssertion of two OCTET STRINGs
        (_, PL::C(inner)) => inner.iter_mut().for_each(escape_universal),
        _ => {}
    }
}

/// Writes BER into a buffer, patching lengths in once a constructed
/// element is complete.
///
/// Lengths are always written in the four-byte long form (`84 xx xx xx xx`)
/// for constructed elements, as Windows' own LDAP server does; every BER
/// decoder accepts it and it spares moving the content.
pub struct Encoder<'a> {
    buf: &'a mut BytesMut,
    /// Where the length of each open element is, innermost last: on the
    /// stack, as every response is encoded with one of these.
    open: [usize; MAX_OPEN],
    depth: usize,
}

/// The deepest nesting of elements an encoder writes: a search entry's
/// value set is five deep.
const MAX_OPEN: usize = 8;

impl<'a> Encoder<'a> {
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Encoder {
            buf,
            open: [0; MAX_OPEN],
            depth: 0,
        }
    }

    /// Opens a constructed element with the given identifier octet.
    pub fn start(&mut self, tag: u8) {
        assert!(self.depth < MAX_OPEN, "BER elements nested too deep");
        self.buf.put_u8(tag);
        self.buf.put_u8(0x84);
        self.open[self.depth] = self.buf.len();
        self.depth += 1;
        self.buf.put_u32(0);
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) {
        if self.depth > 0 {
            self.depth -= 1;
            let at = self.open[self.depth];
            let len = (self.buf.len() - at - 4) as u32;
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Where the encoding is now, to go back to with [`Encoder::undo`].
    pub fn mark(&self) -> (usize, usize) {
        (self.buf.len(), self.depth)
    }

    /// Drops everything written since `mark`.
    pub fn undo(&mut self, (len, depth): (usize, usize)) {
        self.buf.truncate(len);
        self.depth = depth;
    }

    /// A primitive element.
    pub fn primitive(&mut self, tag: u8, content: &[u8]) {
        self.buf.put_u8(tag);
        self.length(content.len());
        self.buf.put_slice(content);
    }

    /// An attribute with its values (RFC 4511 4.1.7's PartialAttribute):
    /// the type, then a SET OF values.
    pub fn attribute<'v>(&mut self, name: &[u8], values: impl IntoIterator<Item = &'v [u8]>) {
        self.start(0x30);
        self.octets(name);
        self.start(0x31);
        for v in values {
            self.octets(v);
        }
        self.end();
        self.end();
    }

    pub fn octets(&mut self, content: &[u8]) {
        self.primitive(0x04, content);
    }

    pub fn integer(&mut self, tag: u8, value: i64) {
        let bytes = value.to_be_bytes();
        // Minimal two's complement: drop leading bytes that only repeat the sign.
        let mut start = 0;
        while start < 7 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        self.primitive(tag, &bytes[start..]);
    }

    fn length(&mut self, len: usize) {
        if len < 0x80 {
            self.buf.put_u8(len as u8);
        } else {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            self.buf.put_u8(0x80 | (8 - skip) as u8);
            self.buf.put_slice(&bytes[skip..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_counted_by_their_headers() {
        // SEQUENCE { INTEGER 1, [APPLICATION 2] {} }: three elements.
        let unbind = [0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00];
        assert_eq!(check_elements(&unbind, 3), Ok(()));
        assert!(check_elements(&unbind, 2).is_err());
        // Inside constructed elements, past primitive ones, and with the
        // long lengths Windows writes.
        let long = [
            0x30, 0x84, 0x00, 0x00, 0x00, 0x08, 0x02, 0x01, 0x01, 0x63, 0x03, 0x04, 0x01, 0x61,
        ];
        assert_eq!(check_elements(&long, 4), Ok(()));
        assert!(check_elements(&long, 3).is_err());
        // Forms a lenient decoder reads as many elements: an indefinite
        // length, nine length bytes, a high tag number, a child longer
        // than its parent; and a header cut short.
        let malformed: [&[u8]; 5] = [
            &[0x30, 0x06, 0x04, 0x80, 0x04, 0x00, 0x04, 0x00],
            &[0x30, 0x0b, 0x04, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x30, 0x04, 0x1f, 0x00, 0x1f, 0x00],
            &[0x30, 0x08, 0x30, 0x02, 0x04, 0x84, 0x7f, 0xff, 0xff, 0xff],
            &[0x30, 0x84, 0x00],
        ];
        for frame in malformed {
            assert_eq!(
                check_elements(frame, 1000),
                Err("malformed BER"),
                "{frame:02x?}"
            );
        }
    }

    #[test]
    fn frame_len_reads_short_and_windows_long_form() {
        assert_eq!(frame_len(&[0x30, 0x03, 2, 1, 1], 100), Frame::Complete(5));
        let windows = [0x30, 0x84, 0, 0, 0, 3, 2, 1, 1, 0xff];
        assert_eq!(frame_len(&windows, 100), Frame::Complete(9));
        assert_eq!(frame_len(&windows[..7], 100), Frame::Incomplete);
        assert_eq!(frame_len(&[0x30], 100), Frame::Incomplete);
        assert_eq!(frame_len(&[0x30, 0x84, 0], 100), Frame::Incomplete);
    }

    #[test]
    fn frame_len_refuses_garbage_and_oversize_from_the_header() {
        assert_eq!(frame_len(b"GET / HTTP/1.0", 100), Frame::Invalid);
        assert_eq!(frame_len(&[0x30, 0x80], 100), Frame::Invalid);
        assert_eq!(frame_len(&[0x30, 0x89], 100), Frame::Invalid);
        assert_eq!(
            frame_len(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff], 1000),
            Frame::TooLarge(0x7fff_ffff + 6)
        );
    }

    #[test]
    fn escape_round_trips_latin1_and_escape_range() {
        for input in [
            &b"Jos\xe9"[..],
            b"plain ascii",
            "Jos\u{e9} in UTF-8".as_bytes(),
            "\u{ef80}\u{efff}".as_bytes(),
            b"\xee\xbe\x80\xff\x00\x80",
            b"",
        ] {
            let escaped = escape(input).unwrap_or_else(|| input.to_vec());
            assert!(std::str::from_utf8(&escaped).is_ok(), "{input:?}");
            assert_eq!(unescape(&escaped).as_ref(), input, "{input:?}");
        }
        assert_eq!(escape(b"plain"), None);
        assert_ne!(escape(b"Jos\xe9"), None);
    }

    #[test]
    fn encoder_writes_minimal_integers_and_patched_lengths() {
        let mut buf = BytesMut::new();
        let mut enc = Encoder::new(&mut buf);
        enc.start(0x30);
        enc.integer(0x02, 128);
        enc.integer(0x02, -1);
        enc.integer(0x02, 0);
        enc.octets(&[b'x'; 200]);
        enc.end();
        assert_eq!(&buf[..12], &[0x30, 0x84, 0, 0, 0, 213, 2, 2, 0, 128, 2, 1]);
        assert_eq!(&buf[12..18], &[0xff, 2, 1, 0, 4, 0x81]);
        assert_eq!(buf[18], 200);
        assert_eq!(buf.len(), 6 + 213);
    }
}
