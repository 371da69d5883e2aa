//! TTLs as ILS clients write them: `entryTTL` in seconds (RFC 2589) and
//! `sttl` in minutes ([MS-TAIL] 2.2.3). Runs on the worker threads.

use ldap3_proto::LdapResultCode;

use crate::protocol::LdapResult;

pub(super) fn is_sttl(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"sttl")
}

/// The TTL an `entryTTL` asks for: one value (SINGLE-VALUE, RFC 2589
/// section 5), a number.
pub(super) fn entry_ttl(values: &[Vec<u8>]) -> Result<u64, LdapResult> {
    if values.len() > 1 {
        return Err(LdapResult::new(
            LdapResultCode::ConstraintViolation,
            "entryTTL holds one value",
        ));
    }
    first_number(values).ok_or_else(|| {
        LdapResult::new(
            LdapResultCode::InvalidAttributeSyntax,
            "entryTTL must be a number",
        )
    })
}

/// The first value as a TTL (see [`number`]).
pub(super) fn first_number(values: &[Vec<u8>]) -> Option<u64> {
    number(values.first()?)
}

/// A value as a TTL: digits only, and a number too large for 64 bits is
/// as good as the largest (the Dialer sends absurd ones, which the TTL
/// bounds then lower).
pub(super) fn number(v: &[u8]) -> Option<u64> {
    let v = crate::directory::filter::trim_spaces(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(std::str::from_utf8(v).ok()?.parse().unwrap_or(u64::MAX))
}
