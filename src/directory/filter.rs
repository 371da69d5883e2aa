//! Search filters (RFC 4511 section 4.5.1, RFC 4515) and their evaluation
//! against an entry.
//!
//! A filter arrives with attribute names as the client wrote them
//! (`Filter<Vec<u8>>`); the ILS dialect ([`crate::ils`]) resolves them to
//! schema attributes (`Filter<Attr>`), which is what is evaluated. Runs on
//! the worker threads.
//!
//! Matching follows the directory-string rules old clients expect: letters
//! compare case-insensitively and surrounding spaces do not count. Windows
//! clients send names in Windows-1252 and Linux clients in UTF-8, so a
//! value that is not ASCII is read as UTF-8 when it is valid UTF-8 and as
//! Windows-1252 otherwise ([`fold`]): `Jos\xe9` (Windows-1252), `JOS\xc9`
//! and `Jos\xc3\xa9` (UTF-8) are one name. Values are stored and returned
//! as sent; only comparisons fold. Ordering compares numbers as numbers
//! when both sides are decimal.

use std::borrow::Cow;
use std::cmp::Ordering;

use encoding_rs::WINDOWS_1252;

use crate::directory::schema::Attr;

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
    /// An extensible match (RFC 4511 section 4.5.1.7.7) by a rule this
    /// server implements: on one attribute or (`None`) on every attribute
    /// the rule applies to, and with `dn`, on the values of the entry's
    /// DN as well.
    Extensible {
        attr: Option<A>,
        rule: Rule,
        value: Vec<u8>,
        dn: bool,
    },
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
            Filter::Extensible {
                attr,
                rule,
                value,
                dn,
            } => Filter::Extensible {
                attr: attr.map(f),
                rule,
                value,
                dn,
            },
            Filter::Undefined => Filter::Undefined,
        }
    }
}

/// The matching rules an extensible match may name (RFC 4517 section 4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The attribute's own equality, for a match that names no rule.
    Equality,
    /// caseIgnoreMatch and caseIgnoreIA5Match: as [`text_eq`].
    CaseIgnore,
    /// caseExactMatch and caseExactIA5Match: exact but for the spaces at
    /// either end.
    CaseExact,
    /// octetStringMatch: byte for byte.
    Octets,
}

impl Rule {
    /// The rule of a name or OID, if this server implements it.
    pub fn named(name: &[u8]) -> Option<Rule> {
        const RULES: [(&str, &str, Rule); 5] = [
            ("caseIgnoreMatch", "2.5.13.2", Rule::CaseIgnore),
            (
                "caseIgnoreIA5Match",
                "1.3.6.1.4.1.1466.109.114.2",
                Rule::CaseIgnore,
            ),
            ("caseExactMatch", "2.5.13.5", Rule::CaseExact),
            (
                "caseExactIA5Match",
                "1.3.6.1.4.1.1466.109.114.1",
                Rule::CaseExact,
            ),
            ("octetStringMatch", "2.5.13.17", Rule::Octets),
        ];
        RULES
            .iter()
            .find(|(n, oid, _)| n.as_bytes().eq_ignore_ascii_case(name) || oid.as_bytes() == name)
            .map(|&(_, _, rule)| rule)
    }

    fn matches(self, attr: &Attr, stored: &[u8], asserted: &[u8]) -> bool {
        match self {
            Rule::Equality => equal(attr, stored, asserted),
            Rule::CaseIgnore => text_eq(stored, asserted),
            Rule::CaseExact => trim_spaces(stored) == trim_spaces(asserted),
            Rule::Octets => stored == asserted,
        }
    }
}

/// Whether an equality asks for class top, which every entry is of
/// (RFC 4512 section 2.4.1, the superclass of all others), whether its
/// objectClass lists it or not: `(objectClass=top)` is how many tools say
/// "any entry".
fn implied_top(attr: &Attr, value: &[u8]) -> bool {
    *attr == crate::directory::schema::attr::OBJECT_CLASS && text_eq(value, b"top")
}

/// Equality by an attribute's own rule: binary values byte for byte,
/// others as directory strings.
fn equal(attr: &Attr, stored: &[u8], asserted: &[u8]) -> bool {
    match attr.is_binary() {
        true => stored == asserted,
        false => text_eq(stored, asserted),
    }
}

/// Where a filter finds the values of an entry: one entry, or a person
/// merged with its applications.
pub trait ValueSource {
    /// Calls `f` on each value of `attr` until it returns true; returns
    /// whether it did.
    fn any_value(&self, attr: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;

    /// Calls `f` on each attribute and value until it returns true.
    fn any_attr_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool;

    /// Calls `f` on each attribute and value of the entry's DN until it
    /// returns true.
    fn any_dn_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool;
}

impl Filter<Attr> {
    /// Folds the values of substring, ordering and approximate assertions
    /// once, as [`eval`](Filter::eval) expects them: matching a filter
    /// against each entry then costs what the entry's values cost, not
    /// what the assertion's do (a value of 100 KB against a million
    /// entries). Equality need not be: it is decided by length first.
    pub fn prepare(self) -> Filter<Attr> {
        match self {
            Filter::And(v) => Filter::And(v.into_iter().map(Filter::prepare).collect()),
            Filter::Or(v) => Filter::Or(v.into_iter().map(Filter::prepare).collect()),
            Filter::Not(x) => Filter::Not(Box::new(x.prepare())),
            Filter::Substrings(a, s) => Filter::Substrings(a, s.folded()),
            Filter::GreaterOrEqual(a, v) => Filter::GreaterOrEqual(a, fold(&v).into_owned()),
            Filter::LessOrEqual(a, v) => Filter::LessOrEqual(a, fold(&v).into_owned()),
            Filter::Approx(a, v) => Filter::Approx(a, squeezed(&v)),
            other => other,
        }
    }

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
            Filter::Equal(a, want) if implied_top(a, want) => entry.any_value(a, &mut |_| true),
            Filter::Equal(a, want) => entry.any_value(a, &mut |v| equal(a, v, want)),
            Filter::Substrings(a, s) => entry.any_value(a, &mut |v| substrings_match(v, s)),
            Filter::GreaterOrEqual(a, want) => {
                entry.any_value(a, &mut |v| compare_folded(v, want) != Ordering::Less)
            }
            Filter::LessOrEqual(a, want) => {
                entry.any_value(a, &mut |v| compare_folded(v, want) != Ordering::Greater)
            }
            Filter::Present(a) => entry.any_value(a, &mut |_| true),
            Filter::Approx(a, want) => entry.any_value(a, &mut |v| squeezed(v) == *want),
            Filter::Extensible {
                attr,
                rule,
                value,
                dn,
            } => {
                let mut test = |a: &Attr, v: &[u8]| {
                    attr.as_ref().is_none_or(|want| want == a) && rule.matches(a, v, value)
                };
                let found = match attr {
                    Some(a) => entry.any_value(a, &mut |v| test(a, v)),
                    None => entry.any_attr_value(&mut test),
                };
                found || (*dn && entry.any_dn_value(&mut test))
            }
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

/// A value in lower case, for comparing as a directory string: ASCII as
/// it is, other values read as UTF-8 or, when they are not valid UTF-8, as
/// Windows-1252, and written out as UTF-8. Spaces are kept.
pub fn fold_case(v: &[u8]) -> Cow<'_, [u8]> {
    if v.is_ascii() {
        return match v.iter().any(u8::is_ascii_uppercase) {
            true => Cow::Owned(v.to_ascii_lowercase()),
            false => Cow::Borrowed(v),
        };
    }
    let text = match std::str::from_utf8(v) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(v).0,
    };
    // Character by character: str::to_lowercase gives a word-final sigma
    // its final form, so that a part of a value would fold unlike the
    // same letters inside the value.
    let folded: String = text.chars().flat_map(char::to_lowercase).collect();
    Cow::Owned(folded.into_bytes())
}

/// How far apart the lengths of two values may be and their folds still
/// be equal: folding makes a value at most three times longer (a
/// Windows-1252 byte such as the euro sign becomes three bytes of UTF-8)
/// and at most three times shorter (the Kelvin sign becomes `k`).
const MAX_FOLD_RATIO: usize = 9;

/// A value as directory-string equality sees it: [`fold_case`] without
/// the surrounding spaces. Two values are equal when their folds are.
pub fn fold(v: &[u8]) -> Cow<'_, [u8]> {
    fold_case(trim_spaces(v))
}

/// Directory-string equality: case-insensitive, surrounding spaces
/// ignored (see [`fold`]).
pub fn text_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (trim_spaces(a), trim_spaces(b));
    // Decided by the lengths where it can be: a search asserting a value
    // of many kilobytes meets a million short names.
    if a.len() > b.len().saturating_mul(MAX_FOLD_RATIO)
        || b.len() > a.len().saturating_mul(MAX_FOLD_RATIO)
    {
        return false;
    }
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    fold_case(a) == fold_case(b)
}

/// A value as approximate matching compares it: folded, without spaces.
fn squeezed(v: &[u8]) -> Vec<u8> {
    fold_case(v)
        .iter()
        .copied()
        .filter(|&b| b != b' ')
        .collect()
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

impl Substrings {
    /// The parts folded as [`fold_case`] folds values.
    fn folded(self) -> Substrings {
        let fold = |v: Vec<u8>| fold_case(&v).into_owned();
        Substrings {
            initial: self.initial.map(fold),
            any: self.any.into_iter().map(fold).collect(),
            last: self.last.map(fold),
        }
    }
}

/// Whether a stored value matches a substring assertion whose parts are
/// already folded ([`Filter::prepare`]).
fn substrings_match(value: &[u8], s: &Substrings) -> bool {
    let parts = s.initial.iter().chain(&s.any).chain(&s.last);
    if parts.map(Vec::len).sum::<usize>() > value.len().saturating_mul(MAX_FOLD_RATIO) {
        return false;
    }
    match value.is_ascii() {
        true => ascii_substrings_match(value, s),
        false => ascii_substrings_match(&fold_case(value), s),
    }
}

/// Substring matching that folds ASCII letters only: for ASCII values, and
/// for values already folded.
fn ascii_substrings_match(value: &[u8], s: &Substrings) -> bool {
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
    let v = trim_spaces(v);
    // A sign and 39 digits are the most an i128 holds: a longer value is
    // not read through, as a filter's may be long.
    if v.len() > 40
        || !v
            .first()
            .is_some_and(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+')
    {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Orders a stored value against an asserted one already folded
/// ([`Filter::prepare`]).
fn compare_folded(stored: &[u8], asserted: &[u8]) -> Ordering {
    match (as_number(stored), as_number(asserted)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => fold(stored).as_ref().cmp(asserted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::schema::attr;

    /// Approximate matching of two values as sent.
    fn approx_eq(a: &[u8], b: &[u8]) -> bool {
        squeezed(a) == squeezed(b)
    }

    /// Ordering of two values as sent.
    fn compare(stored: &[u8], asserted: &[u8]) -> Ordering {
        compare_folded(stored, &fold(asserted))
    }

    struct Values(Vec<(Attr, Vec<&'static [u8]>)>);

    impl ValueSource for Values {
        fn any_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
            self.0
                .iter()
                .filter(|(x, _)| x == a)
                .any(|(_, vals)| vals.iter().any(|v| f(v)))
        }

        fn any_attr_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
            self.0.iter().any(|(a, vals)| vals.iter().any(|v| f(a, v)))
        }

        fn any_dn_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
            f(&attr::CN, b"Jos\xe9@Example.com") || f(&attr::OU, b"Dynamic")
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
    fn equality_ignores_case_and_spaces_in_either_encoding() {
        let p = person();
        assert!(eq(attr::CN, b" jos\xe9@example.COM").matches(&p));
        assert!(
            eq(attr::CN, b"JOS\xc9@example.com").matches(&p),
            "Windows-1252 0xC9 is the capital of 0xE9"
        );
        assert!(
            eq(attr::CN, "jos\u{e9}@example.com".as_bytes()).matches(&p),
            "the same name in UTF-8"
        );
        assert!(eq(attr::CN, "JOS\u{c9}@EXAMPLE.COM".as_bytes()).matches(&p));
        assert!(
            !eq(attr::CN, b"jos\xe8@example.com").matches(&p),
            "0xE8 is another letter"
        );
        assert!(!eq(attr::CN, b"jose@example.com").matches(&p));
        // Windows-1252 letters outside Latin-1.
        assert!(text_eq(b"\x8a\x8c\x8e\x9f", b"\x9a\x9c\x9e\xff"));
        assert!(text_eq(b"\x8a", "\u{161}".as_bytes()));
        assert!(
            !eq(attr::NT_SECURITY_DESCRIPTOR, b"\x01abc").matches(&p),
            "binary is exact"
        );
        assert!(eq(attr::NT_SECURITY_DESCRIPTOR, b"\x01ABC").matches(&p));
    }

    #[test]
    fn substrings_ordering_and_approx_fold_non_ascii_letters() {
        let p = person();
        let sub = |initial: &[u8], any: &[&[u8]], last: &[u8]| {
            Filter::Substrings(
                attr::CN,
                Substrings {
                    initial: (!initial.is_empty()).then(|| initial.to_vec()),
                    any: any.iter().map(|v| v.to_vec()).collect(),
                    last: (!last.is_empty()).then(|| last.to_vec()),
                },
            )
            .prepare()
        };
        assert!(sub(b"JOS\xc9", &[], b"").matches(&p));
        assert!(sub(b"", &["\u{c9}@".as_bytes()], b"").matches(&p));
        assert!(sub(b"", &[b"\xc9@ex"], b".COM").matches(&p));
        assert!(!sub(b"", &[b"\xc8@"], b"").matches(&p));
        assert_eq!(compare(b"\xc9a", "\u{e9}a".as_bytes()), Ordering::Equal);
        assert_eq!(compare(b"\xe9a", b"\xc9b"), Ordering::Less);
        assert!(approx_eq(b"J\xd6rg Meier", "j\u{f6}rgmeier".as_bytes()));
        // A part folds as the same letters inside a value: no final sigma.
        let initial = |v: &str| Substrings {
            initial: Some(v.as_bytes().to_vec()),
            ..Substrings::default()
        };
        assert!(substrings_match(
            "ΚΩΣΤΑΣ".as_bytes(),
            &initial("ΚΩΣ").folded()
        ));
        assert!(approx_eq("ΟΣ Α".as_bytes(), "οσα".as_bytes()));
        assert!(
            text_eq("\u{212a}elvin".as_bytes(), b"KELVIN"),
            "Kelvin sign"
        );
        // The lengths folding spans, which text_eq decides by first.
        assert!(
            text_eq(b"\x80\x80", "\u{20ac}\u{20ac}".as_bytes()),
            "euro sign"
        );
        assert!(text_eq("\u{212a}\u{212a}".as_bytes(), b"kk"));
        for v in [&b"\x80\x9f"[..], "\u{212a}\u{1e9e}".as_bytes(), b"Abc"] {
            let folded = fold_case(v).len();
            assert!(folded <= 3 * v.len() && v.len() <= 3 * folded, "{v:?}");
        }
        assert!(!text_eq(&[b'a'; 100], b"a"), "by length");
        assert!(!sub(b"", &[&[b'j'; 500]], b"").matches(&p), "by length");
    }

    #[test]
    fn extensible_matches_by_rule_on_one_attribute_all_or_the_dn() {
        let p = person();
        let ext = |attr: Option<Attr>, rule: Rule, value: &[u8], dn: bool| Filter::Extensible {
            attr,
            rule,
            value: value.to_vec(),
            dn,
        };
        let cn = Some(attr::CN);
        assert!(ext(cn.clone(), Rule::CaseIgnore, b"JOS\xc9@example.com", false).matches(&p));
        assert!(!ext(cn.clone(), Rule::CaseExact, b"jos\xe9@example.com", false).matches(&p));
        assert!(ext(cn.clone(), Rule::CaseExact, b" Jos\xe9@Example.com", false).matches(&p));
        assert!(!ext(cn.clone(), Rule::Octets, b" Jos\xe9@Example.com", false).matches(&p));
        // No attribute: every one the entry has.
        assert!(ext(None, Rule::CaseIgnore, b"ann marie", false).matches(&p));
        assert!(!ext(None, Rule::CaseIgnore, b"ann", false).matches(&p));
        // The DN's values count only with dnAttributes.
        let ou = Some(attr::OU);
        assert!(!ext(ou.clone(), Rule::Equality, b"dynamic", false).matches(&p));
        assert!(ext(ou.clone(), Rule::Equality, b"dynamic", true).matches(&p));
        assert!(ext(None, Rule::CaseIgnore, b"DYNAMIC", true).matches(&p));
        assert!(!ext(cn, Rule::CaseIgnore, b"dynamic", true).matches(&p));
        assert_eq!(Rule::named(b"2.5.13.5"), Some(Rule::CaseExact));
        assert_eq!(Rule::named(b"CASEIGNOREIA5MATCH"), Some(Rule::CaseIgnore));
        assert_eq!(Rule::named(b"1.2.3.4"), None);
    }

    #[test]
    fn prepared_ordering_and_approx_assertions_are_folded_once() {
        let p = person();
        let ge = |v: &[u8]| Filter::GreaterOrEqual(attr::GIVEN_NAME, v.to_vec()).prepare();
        assert_eq!(
            ge(b" ANN "),
            Filter::GreaterOrEqual(attr::GIVEN_NAME, b"ann".to_vec())
        );
        assert!(ge(b"ANN").matches(&p));
        assert!(!ge(b"B").matches(&p));
        assert!(
            !ge("\u{c9}".as_bytes()).matches(&p),
            "\u{e9} sorts after ASCII"
        );
        let approx = Filter::Approx(attr::GIVEN_NAME, b"ANN MARIE".to_vec()).prepare();
        assert_eq!(
            approx,
            Filter::Approx(attr::GIVEN_NAME, b"annmarie".to_vec())
        );
        assert!(approx.matches(&p));
        assert_eq!(as_number(&[b'1'; 41]), None, "longer than any i128");
        assert_eq!(as_number(b" -17 "), Some(-17));
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
            .prepare()
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
