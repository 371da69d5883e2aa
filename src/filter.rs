//! Search filters (RFC 4511 section 4.5.1, RFC 4515) and their evaluation
//! against an entry.
//!
//! A filter arrives with attribute names as the client wrote them
//! (`Filter<Vec<u8>>`); the ILS dialect ([`crate::ils`]) resolves them to
//! schema attributes (`Filter<Attr>`), which is what is evaluated. Runs on
//! the worker threads.
//!
//! Matching follows the directory-string rules old clients expect: ASCII
//! letters compare case-insensitively, surrounding spaces do not count, and
//! every other byte (Windows-1252 or UTF-8 alike) compares exactly.
//! Ordering compares numbers as numbers when both sides are decimal.

use std::cmp::Ordering;

use crate::schema::Attr;

/// The parts of a substring assertion.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Substrings {
    pub initial: Option<Vec<u8>>,
    pub any: Vec<Vec<u8>>,
    pub last: Option<Vec<u8>>,
}

/// A search filter over attributes of type `A`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter<A> {
    And(Vec<Filter<A>>),
    Or(Vec<Filter<A>>),
    Not(Box<Filter<A>>),
    Equal(A, Vec<u8>),
    Substrings(A, Substrings),
    GreaterOrEqual(A, Vec<u8>),
    LessOrEqual(A, Vec<u8>),
    Present(A),
    Approx(A, Vec<u8>),
    /// An extensible match with a rule the server does not implement: it
    /// evaluates to Undefined, which never selects an entry, and neither
    /// does its NOT (RFC 4511 section 4.5.1.7).
    Undefined,
}

impl<A> Filter<A> {
    /// Rewrites every attribute of the filter.
    pub fn map_attrs<B>(self, f: &mut impl FnMut(A) -> B) -> Filter<B> {
        match self {
            Filter::And(v) => Filter::And(v.into_iter().map(|x| x.map_attrs(f)).collect()),
            Filter::Or(v) => Filter::Or(v.into_iter().map(|x| x.map_attrs(f)).collect()),
            Filter::Not(x) => Filter::Not(Box::new(x.map_attrs(f))),
            Filter::Equal(a, v) => Filter::Equal(f(a), v),
            Filter::Substrings(a, s) => Filter::Substrings(f(a), s),
            Filter::GreaterOrEqual(a, v) => Filter::GreaterOrEqual(f(a), v),
            Filter::LessOrEqual(a, v) => Filter::LessOrEqual(f(a), v),
            Filter::Present(a) => Filter::Present(f(a)),
            Filter::Approx(a, v) => Filter::Approx(f(a), v),
            Filter::Undefined => Filter::Undefined,
        }
    }
}

/// Where a filter finds the values of an entry: one entry, or a person
/// merged with its applications.
pub trait ValueSource {
    /// Calls `f` on each value of `attr` until it returns true; returns
    /// whether it did.
    fn any_value(&self, attr: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl Filter<Attr> {
    /// Whether the entry matches: the filter is TRUE for it.
    pub fn matches(&self, entry: &dyn ValueSource) -> bool {
        self.eval(entry) == Some(true)
    }

    /// TRUE, FALSE or (`None`) Undefined, combined as RFC 4511 section
    /// 4.5.1.7 says: an AND is FALSE if any part is, an OR TRUE if any
    /// part is, and otherwise either is Undefined if any part is.
    fn eval(&self, entry: &dyn ValueSource) -> Option<bool> {
        Some(match self {
            Filter::And(v) => return combine(v, entry, false),
            Filter::Or(v) => return combine(v, entry, true),
            Filter::Not(x) => return x.eval(entry).map(|b| !b),
            Filter::Equal(a, want) => {
                let binary = a.is_binary();
                entry.any_value(a, &mut |v| {
                    if binary {
                        v == want.as_slice()
                    } else {
                        text_eq(v, want)
                    }
                })
            }
            Filter::Substrings(a, s) => entry.any_value(a, &mut |v| substrings_match(v, s)),
            Filter::GreaterOrEqual(a, want) => {
                entry.any_value(a, &mut |v| compare(v, want) != Ordering::Less)
            }
            Filter::LessOrEqual(a, want) => {
                entry.any_value(a, &mut |v| compare(v, want) != Ordering::Greater)
            }
            Filter::Present(a) => entry.any_value(a, &mut |_| true),
            Filter::Approx(a, want) => entry.any_value(a, &mut |v| approx_eq(v, want)),
            Filter::Undefined => return None,
        })
    }
}

/// An AND (`decisive` FALSE) or an OR (`decisive` TRUE): the decisive
/// value if any part has it, else Undefined if any part is, else the
/// other value.
fn combine(parts: &[Filter<Attr>], entry: &dyn ValueSource, decisive: bool) -> Option<bool> {
    let mut undefined = false;
    for part in parts {
        match part.eval(entry) {
            Some(b) if b == decisive => return Some(decisive),
            None => undefined = true,
            Some(_) => {}
        }
    }
    (!undefined).then_some(!decisive)
}

/// Strips the spaces that do not count at either end of a value.
pub fn trim_spaces(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &v[start..end]
}

/// Directory-string equality: ASCII case-insensitive, surrounding spaces
/// ignored, all other bytes exact.
pub fn text_eq(a: &[u8], b: &[u8]) -> bool {
    trim_spaces(a).eq_ignore_ascii_case(trim_spaces(b))
}

fn approx_eq(a: &[u8], b: &[u8]) -> bool {
    let squeeze = |v: &[u8]| -> Vec<u8> {
        v.iter()
            .filter(|&&b| b != b' ')
            .map(u8::to_ascii_lowercase)
            .collect()
    };
    squeeze(a) == squeeze(b)
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn substrings_match(value: &[u8], s: &Substrings) -> bool {
    let mut rest = trim_spaces(value);
    if let Some(initial) = &s.initial {
        if rest.len() < initial.len() || !rest[..initial.len()].eq_ignore_ascii_case(initial) {
            return false;
        }
        rest = &rest[initial.len()..];
    }
    for any in &s.any {
        match find_ci(rest, any) {
            Some(at) => rest = &rest[at + any.len()..],
            None => return false,
        }
    }
    match &s.last {
        Some(last) => {
            rest.len() >= last.len() && rest[rest.len() - last.len()..].eq_ignore_ascii_case(last)
        }
        None => true,
    }
}

fn as_number(v: &[u8]) -> Option<i128> {
    std::str::from_utf8(trim_spaces(v)).ok()?.parse().ok()
}

fn compare(stored: &[u8], asserted: &[u8]) -> Ordering {
    match (as_number(stored), as_number(asserted)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => {
            let fold = |v: &[u8]| trim_spaces(v).to_ascii_lowercase();
            fold(stored).cmp(&fold(asserted))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::attr;

    struct Values(Vec<(Attr, Vec<&'static [u8]>)>);

    impl ValueSource for Values {
        fn any_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
            self.0
                .iter()
                .filter(|(x, _)| x == a)
                .any(|(_, vals)| vals.iter().any(|v| f(v)))
        }
    }

    fn person() -> Values {
        Values(vec![
            (attr::CN, vec![b"Jos\xe9@Example.com"]),
            (attr::PORT, vec![b"1503", b"1720"]),
            (attr::GIVEN_NAME, vec![b"Ann Marie"]),
            (attr::NT_SECURITY_DESCRIPTOR, vec![b"\x01ABC"]),
        ])
    }

    fn eq(a: Attr, v: &[u8]) -> Filter<Attr> {
        Filter::Equal(a, v.to_vec())
    }

    #[test]
    fn equality_ignores_ascii_case_and_spaces_but_not_other_bytes() {
        let p = person();
        assert!(eq(attr::CN, b" jos\xe9@example.COM").matches(&p));
        assert!(
            !eq(attr::CN, b"jos\xc9@example.com").matches(&p),
            "0xE9 is not 0xC9"
        );
        assert!(
            !eq(attr::NT_SECURITY_DESCRIPTOR, b"\x01abc").matches(&p),
            "binary is exact"
        );
        assert!(eq(attr::NT_SECURITY_DESCRIPTOR, b"\x01ABC").matches(&p));
    }

    #[test]
    fn boolean_operators_combine() {
        let p = person();
        let yes = eq(attr::PORT, b"1720");
        let no = eq(attr::PORT, b"1");
        assert!(Filter::And(vec![yes.clone(), Filter::Not(Box::new(no.clone()))]).matches(&p));
        assert!(Filter::Or(vec![no.clone(), yes]).matches(&p));
        assert!(!Filter::Or(vec![no]).matches(&p));
        assert!(Filter::<Attr>::And(vec![]).matches(&p), "empty and is true");
        assert!(!Filter::<Attr>::Or(vec![]).matches(&p), "empty or is false");
    }

    #[test]
    fn substrings_in_order() {
        let p = person();
        let sub = |i: Option<&[u8]>, any: &[&[u8]], l: Option<&[u8]>| {
            Filter::Substrings(
                attr::GIVEN_NAME,
                Substrings {
                    initial: i.map(<[u8]>::to_vec),
                    any: any.iter().map(|x| x.to_vec()).collect(),
                    last: l.map(<[u8]>::to_vec),
                },
            )
        };
        assert!(sub(Some(b"ann"), &[], None).matches(&p));
        assert!(sub(None, &[b"N M"], Some(b"ie")).matches(&p));
        assert!(sub(Some(b"a"), &[b"m", b"r"], Some(b"e")).matches(&p));
        assert!(
            !sub(None, &[b"marie", b"ann"], None).matches(&p),
            "order matters"
        );
        assert!(!sub(Some(b"marie"), &[], None).matches(&p));
    }

    #[test]
    fn ordering_is_numeric_for_numbers() {
        let p = person();
        assert!(Filter::GreaterOrEqual(attr::PORT, b"1700".to_vec()).matches(&p));
        assert!(!Filter::GreaterOrEqual(attr::PORT, b"9999".to_vec()).matches(&p));
        assert!(
            Filter::LessOrEqual(attr::PORT, b"200".to_vec())
                .matches(&Values(vec![(attr::PORT, vec![b"30"])]))
        );
        assert!(Filter::LessOrEqual(attr::GIVEN_NAME, b"b".to_vec()).matches(&p));
    }

    #[test]
    fn present_and_approx() {
        let p = person();
        assert!(Filter::Present(attr::PORT).matches(&p));
        assert!(!Filter::Present(attr::SURNAME).matches(&p));
        assert!(Filter::Approx(attr::GIVEN_NAME, b"annmarie".to_vec()).matches(&p));
        assert!(!Filter::<Attr>::Undefined.matches(&p));
    }

    #[test]
    fn undefined_stays_undefined_under_not_and_decides_nothing_alone() {
        let p = person();
        let undefined = || Filter::<Attr>::Undefined;
        let yes = || Filter::Present(attr::PORT);
        let no = || Filter::Present(attr::SURNAME);
        let not = |f: Filter<Attr>| Filter::Not(Box::new(f));
        assert!(!not(undefined()).matches(&p));
        assert!(!Filter::And(vec![yes(), undefined()]).matches(&p));
        assert!(
            not(Filter::And(vec![no(), undefined()])).matches(&p),
            "FALSE"
        );
        assert!(Filter::Or(vec![undefined(), yes()]).matches(&p));
        assert!(!not(Filter::Or(vec![undefined(), no()])).matches(&p));
        assert!(not(not(yes())).matches(&p));
    }
}
