//! LDIF (RFC 2849) as the state file uses it: one `name: value` line per
//! value, base64 (`name:: ...`) for any value that is not a safe string,
//! records separated by an empty line. Reading also takes folded lines
//! (a line that starts with a space continues the one before) and
//! comments, so that a file edited by hand or written by another tool
//! reads too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Whether a value may be written as it is (RFC 2849 SAFE-STRING):
/// ASCII without NUL, CR or LF, not starting with a space, `:` or `<`,
/// and not ending with a space.
fn safe(value: &[u8]) -> bool {
    let first_ok = !matches!(value.first(), Some(b' ' | b':' | b'<'));
    first_ok
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&b| b != 0 && b != b'\n' && b != b'\r' && b.is_ascii())
}

/// Writes one `name: value` line.
pub fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    if safe(value) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    } else {
        out.extend_from_slice(b":: ");
        out.extend_from_slice(STANDARD.encode(value).as_bytes());
    }
    out.push(b'\n');
}

/// One record: its attribute lines in order, each with the number of the
/// line it starts on.
pub type Record = Vec<(usize, Vec<u8>, Vec<u8>)>;

/// What went wrong with a record.
#[derive(Debug, PartialEq, Eq)]
pub struct Damage {
    pub line: usize,
    pub why: &'static str,
}

/// The records of a file, read one at a time from a buffered reader, so
/// that a file of a million entries never sits in memory whole. Each is
/// read as far as it is sound: a record with a line that is not LDIF is
/// given back as its [`Damage`], and the records after it are read on.
pub struct Records<R> {
    input: R,
    /// The number of the last line read.
    number: usize,
    done: bool,
}

impl<R: std::io::BufRead> Records<R> {
    pub fn new(input: R) -> Records<R> {
        Records {
            input,
            number: 0,
            done: false,
        }
    }

    /// The next physical line without its line break; `None` at the end
    /// (or at a read error, which ends the file where it is sound).
    fn physical(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        match self.input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                self.number += 1;
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(line)
            }
        }
    }
}

impl<R: std::io::BufRead> Iterator for Records<R> {
    type Item = Result<Record, Damage>;

    fn next(&mut self) -> Option<Result<Record, Damage>> {
        let mut record: Record = Vec::new();
        let mut damage: Option<Damage> = None;
        let mut logical: Option<(usize, Vec<u8>)> = None;
        loop {
            let line = if self.done { None } else { self.physical() };
            let Some(line) = line else {
                self.done = true;
                close(&mut logical, &mut record, &mut damage);
                return match (damage, record.is_empty()) {
                    (Some(d), _) => Some(Err(d)),
                    (None, false) => Some(Ok(record)),
                    (None, true) => None,
                };
            };
            if let Some(rest) = line.strip_prefix(b" ") {
                match &mut logical {
                    Some((_, text)) => text.extend_from_slice(rest),
                    None if damage.is_none() => {
                        damage = Some(Damage {
                            line: self.number,
                            why: "a continued line with nothing before it",
                        })
                    }
                    None => {}
                }
                continue;
            }
            close(&mut logical, &mut record, &mut damage);
            if line.is_empty() {
                if let Some(d) = damage.take() {
                    return Some(Err(d));
                }
                if !record.is_empty() {
                    return Some(Ok(record));
                }
                continue;
            }
            if !line.starts_with(b"#") {
                logical = Some((self.number, line));
            }
        }
    }
}

/// Ends a logical line: parsed into the record, or the record's damage.
fn close(logical: &mut Option<(usize, Vec<u8>)>, record: &mut Record, damage: &mut Option<Damage>) {
    let Some((at, text)) = logical.take() else {
        return;
    };
    if damage.is_some() {
        return;
    }
    match parse(&text) {
        Some((name, value)) => record.push((at, name, value)),
        None => {
            *damage = Some(Damage {
                line: at,
                why: "not a 'name: value' line",
            })
        }
    }
}

/// The records of a text in memory (see [`Records`]).
pub fn records(text: &[u8]) -> Vec<Result<Record, Damage>> {
    Records::new(text).collect()
}

/// Reads one unfolded line.
fn parse(line: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let name_ok = !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b';' || b == b'.');
    if !name_ok {
        return None;
    }
    let rest = &line[colon + 1..];
    let value = match rest.strip_prefix(b":") {
        Some(encoded) => STANDARD.decode(encoded.trim_ascii()).ok()?,
        None if rest.starts_with(b"<") => return None,
        None => rest.trim_ascii_start().to_vec(),
    };
    Some((name.to_vec(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_plain_or_base64() {
        let mut out = Vec::new();
        line(&mut out, b"cn", b"alice@example.org");
        line(&mut out, b"givenName", b"M\xfcller");
        line(&mut out, b"comment", b" leading space");
        line(&mut out, b"location", b"two\nlines");
        assert!(out.starts_with(b"cn: alice@example.org\ngivenName:: "));
        out.extend_from_slice(b"\n# a comment\ndn: cn=b\nsn: fol\n ded\n");
        let records = records(&out);
        assert_eq!(records.len(), 2);
        let first = records[0].as_ref().unwrap();
        assert_eq!(first[1].2, b"M\xfcller");
        assert_eq!(first[2].2, b" leading space");
        assert_eq!(first[3].2, b"two\nlines");
        let second = records[1].as_ref().unwrap();
        assert_eq!(second[1], (8, b"sn".to_vec(), b"folded".to_vec()));
    }

    #[test]
    fn a_damaged_record_is_reported_and_the_next_read() {
        let text =
            b"dn: cn=a\ncn: a\n\ndn: cn=b\n\x00garbage\ncn: b\n\ndn: cn=c\ncn:: !!!\n\ndn: cn=d\n";
        let records = records(text);
        assert_eq!(records.len(), 4);
        assert!(records[0].is_ok());
        assert_eq!(records[1].as_ref().unwrap_err().line, 5);
        assert_eq!(records[2].as_ref().unwrap_err().line, 9);
        assert_eq!(records[3].as_ref().unwrap()[0].2, b"cn=d");
    }
}
