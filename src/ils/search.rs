//! A search, translated into a plan ([`SearchPlan`]): where it looks,
//! the filter with ILS names resolved and `%` wildcards expanded, the
//! `sttl` refresh it carries, and the attributes asked for. Runs on the
//! worker threads.

use std::collections::HashMap;

use super::implicit_container;
use super::names::{Target, invalid_dn, target};
use super::ttl::is_sttl;
use super::ttl::number;
use crate::directory::dn::Dn;
use crate::directory::entry::{Entry, class};
use crate::directory::filter::{Filter, Substrings};
use crate::directory::query::{Depth, Region, Source};
use crate::directory::schema::{self, Attr, attr};
use crate::directory::store::Store;
use crate::protocol::{LdapResult, Scope, SearchRequest};

/// Where a search looks.
#[derive(Debug)]
pub enum Base {
    /// The root DSE (base "", scope base).
    RootDse,
    /// Every entry of an ILS class: the base `objectClass=rtPerson`.
    Class(u8),
    /// A DN of the tree.
    Entry(Target),
}

/// One attribute a client asked for, under the name it used.
#[derive(Debug, Clone)]
pub struct Requested {
    pub name: Vec<u8>,
    pub want: Want,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Attr(Attr),
    /// `sttl`: the entry's TTL in minutes.
    Sttl,
    /// `*`: every user attribute.
    AllUser,
    /// `+`: every operational attribute.
    AllOperational,
}

/// A `cn` or `uid` value that names entries.
pub type Name = (Attr, Vec<u8>);

/// A search, translated.
#[derive(Debug)]
pub struct SearchPlan {
    pub base: Base,
    pub scope: Scope,
    pub filter: Filter<Attr>,
    /// `(sttl=N)`: refresh every match to N minutes.
    pub sttl: Option<u64>,
    /// An exact name in the filter, for an index lookup.
    pub exact_name: Option<Name>,
    /// In an `sttl` refresh, a name in the filter with `%` or `*` in it,
    /// and the filter with that name taken as it is rather than as a
    /// pattern: what the refresh is when a person holds that very name (a
    /// NetMeeting user whose e-mail address has a `%`, refreshing itself).
    pub literal: Option<(Name, Filter<Attr>)>,
    /// Whether conferences may match: in a search of the conferences or
    /// of one by its DN, or by a filter that [`asks_for_conferences`].
    pub conferences: bool,
    pub attrs: Vec<Requested>,
    /// Where the attributes of a long list are ([`picks`]).
    pub picks: Option<Picks>,
    pub size_limit: usize,
    pub time_limit: u64,
    pub types_only: bool,
}

impl SearchPlan {
    /// The part of the tree the search takes in; none for the root DSE.
    pub fn region(&self) -> Option<Region<'_>> {
        match &self.base {
            Base::RootDse => None,
            Base::Class(bit) => Some(Region::Class(*bit)),
            Base::Entry(t) => Some(Region::Under {
                base: &t.key,
                depth: match self.scope {
                    Scope::Base => Depth::Base,
                    Scope::OneLevel => Depth::One,
                    Scope::Subtree => Depth::Subtree,
                    Scope::Children => Depth::Children,
                },
            }),
        }
    }

    /// Where the candidates come from: the base entry, the index of an
    /// exact name in the filter, or every entry. An application container
    /// is found through the entries below it, so a search from one below
    /// its first level walks every entry.
    pub fn source(&self) -> Source<'_> {
        if self.scope != Scope::OneLevel
            && matches!(&self.base, Base::Entry(t) if implicit_container(&t.key))
        {
            return Source::Walk;
        }
        match (&self.base, self.scope, &self.exact_name) {
            (Base::Entry(t), Scope::Base, _) => Source::Entry(&t.key),
            (_, _, Some((a, name))) if *a == attr::CN => Source::Cn(name),
            (_, _, Some((_, name))) => Source::Uid(name),
            _ => Source::Walk,
        }
    }

    /// Whether the search names its entries exactly, by a name in the
    /// filter or by its DN: then even an entry whose flags hide it from
    /// listings is found.
    pub fn exact(&self) -> bool {
        self.exact_name.is_some()
            || matches!((&self.base, self.scope), (Base::Entry(_), Scope::Base))
    }

    /// Settles what a refresh's name with `%` or `*` in it means
    /// ([`SearchPlan::literal`]): that very name, if a person or
    /// conference holds it; otherwise a pattern.
    pub fn settle_literal(&mut self, store: &Store, now: u64) {
        let Some((name, literal)) = self.literal.take() else {
            return;
        };
        let dir = store.read();
        let mut holders = match name.0 == attr::CN {
            true => dir.by_cn(&name.1),
            false => dir.by_uid(&name.1),
        };
        let holds =
            |e: &Entry| (e.is(class::PERSON) || e.is(class::CONFERENCE)) && dir.alive(e, now);
        if holders.any(holds) {
            self.exact_name = Some(name);
            self.filter = literal;
        }
    }
}

/// Translates a search request.
pub fn search(req: SearchRequest) -> Result<SearchPlan, LdapResult> {
    let base = search_base(&req.base, req.scope)?;
    let mut sttl = None;
    let filter = strip_sttl(req.filter, &mut sttl).unwrap_or(Filter::And(Vec::new()));
    let filter = filter.map_attrs(&mut |name| Attr::from_name(&name));
    // Only for the keep-alive, which names the client's own entry, and only
    // for a name that is more than wildcards: `(cn=%)` lists everyone
    // whatever anyone registered as.
    let literal = sttl
        .and_then(|_| exact_name(&filter))
        .filter(|(_, value)| value.iter().any(is_wild) && !value.iter().all(is_wild))
        .map(|(a, value)| {
            let name = (a.clone(), value.to_vec());
            let literal = expand_wildcards(filter.clone(), Some(&name)).prepare();
            (name, literal)
        });
    // Prepared last, when the wildcards have become substrings.
    let filter = expand_wildcards(filter, None).prepare();
    let exact_name = exact_name(&filter).map(|(a, value)| (a.clone(), value.to_vec()));
    let conferences = match &base {
        Base::Class(bit) => *bit == class::CONFERENCE,
        Base::Entry(t) => t.key.starts_with(b"uid=") || asks_for_conferences(&filter),
        Base::RootDse => asks_for_conferences(&filter),
    };
    let attrs = requested(&req.attrs);
    Ok(SearchPlan {
        base,
        scope: req.scope,
        filter,
        sttl,
        exact_name,
        literal,
        conferences,
        picks: picks(&attrs),
        attrs,
        size_limit: usize::try_from(req.size_limit).unwrap_or(0),
        time_limit: u64::try_from(req.time_limit).unwrap_or(0),
        types_only: req.types_only,
    })
}

fn search_base(base: &[u8], scope: Scope) -> Result<Base, LdapResult> {
    // The base of NetMeeting's every keep-alive and look-up, known without
    // parsing it (which was a tenth of serving a keep-alive).
    if base.eq_ignore_ascii_case(b"objectClass=rtPerson") {
        return Ok(Base::Class(class::PERSON));
    }
    let dn = Dn::parse(base).map_err(|_| invalid_dn())?;
    if dn.is_root() && scope == Scope::Base {
        return Ok(Base::RootDse);
    }
    // `objectClass=rtPerson` names the people, not an entry; `c=` and `o=`
    // around it are decoration, as in NetMeeting's DNs.
    let mut named = dn
        .rdns
        .iter()
        .filter(|r| r.attr != attr::C && r.attr != attr::O);
    if let (Some(only), None) = (named.next(), named.next())
        && only.attr == attr::OBJECT_CLASS
    {
        for (name, bit) in [
            (schema::RT_PERSON, class::PERSON),
            (schema::RT_CONFERENCE, class::CONFERENCE),
            (schema::RT_APPLICATION_USER, class::APPLICATION),
        ] {
            if only.value.eq_ignore_ascii_case(name.as_bytes()) {
                return Ok(Base::Class(bit));
            }
        }
    }
    Ok(Base::Entry(target(base)?))
}

/// Removes `(sttl=N)` from a filter, wherever it is, recording N. Returns
/// `None` when nothing is left of the filter.
fn strip_sttl(filter: Filter<Vec<u8>>, sttl: &mut Option<u64>) -> Option<Filter<Vec<u8>>> {
    match filter {
        Filter::Equal(name, value) if is_sttl(&name) => {
            if let Some(minutes) = number(&value) {
                *sttl = Some(minutes);
            }
            None
        }
        Filter::Present(name) if is_sttl(&name) => None,
        Filter::And(v) => Some(Filter::And(
            v.into_iter().filter_map(|f| strip_sttl(f, sttl)).collect(),
        )),
        // An OR of nothing but `sttl` is gone with it; an empty OR is
        // false (RFC 4526) and stays.
        Filter::Or(v) if v.is_empty() => Some(Filter::Or(v)),
        Filter::Or(v) => {
            let v: Vec<_> = v.into_iter().filter_map(|f| strip_sttl(f, sttl)).collect();
            if v.is_empty() {
                None
            } else {
                Some(Filter::Or(v))
            }
        }
        Filter::Not(x) => strip_sttl(*x, sttl).map(|x| Filter::Not(Box::new(x))),
        other => Some(other),
    }
}

/// The filter of a find by name as a person types it: the text matched
/// against the names and the e-mail address as an ILS client's equality
/// is, `%` (or `*`) standing for any text, case ignored.
pub fn find_filter(text: &[u8]) -> Filter<Attr> {
    let terms = [attr::CN, attr::GIVEN_NAME, attr::SURNAME, attr::MAIL]
        .into_iter()
        .map(|a| expand_wildcards(Filter::Equal(a, text.to_vec()), None))
        .collect();
    Filter::Or(terms).prepare()
}

fn is_wild(b: &u8) -> bool {
    *b == b'%' || *b == b'*'
}

/// Turns `%` (and `*`) inside equality values into substring and presence
/// filters: `(cn=%)` lists everyone, `(givenname=%ann%)` matches Joanne.
/// An equality with the name `keep` stays as it is.
fn expand_wildcards(filter: Filter<Attr>, keep: Option<&Name>) -> Filter<Attr> {
    let expand = |f| expand_wildcards(f, keep);
    match filter {
        Filter::And(v) => Filter::And(v.into_iter().map(expand).collect()),
        Filter::Or(v) => Filter::Or(v.into_iter().map(expand).collect()),
        Filter::Not(x) => Filter::Not(Box::new(expand(*x))),
        Filter::Equal(a, value)
            if !a.is_binary()
                && value.iter().any(is_wild)
                && keep.is_none_or(|(k, v)| *k != a || *v != value) =>
        {
            pattern_filter(a, &value)
        }
        Filter::Substrings(a, s)
            if s.initial
                .iter()
                .chain(&s.any)
                .chain(&s.last)
                .any(|p| p.iter().any(is_wild)) =>
        {
            let mut pattern = s.initial.unwrap_or_default();
            for part in s.any {
                pattern.push(b'*');
                pattern.extend(part);
            }
            pattern.push(b'*');
            pattern.extend(s.last.unwrap_or_default());
            pattern_filter(a, &pattern)
        }
        other => other,
    }
}

fn pattern_filter(a: Attr, pattern: &[u8]) -> Filter<Attr> {
    let parts: Vec<&[u8]> = pattern.split(|&b| b == b'%' || b == b'*').collect();
    if parts.iter().all(|p| p.is_empty()) {
        return Filter::Present(a);
    }
    let nonempty = |p: &&[u8]| (!p.is_empty()).then(|| p.to_vec());
    let (first, rest) = parts
        .split_first()
        .map_or((None, &[][..]), |(f, r)| (Some(f), r));
    let (last, middle) = rest
        .split_last()
        .map_or((None, &[][..]), |(l, m)| (Some(l), m));
    Filter::Substrings(
        a,
        Substrings {
            initial: first.and_then(nonempty),
            any: middle.iter().filter_map(nonempty).collect(),
            last: last.and_then(nonempty),
        },
    )
}

/// Whether a filter looks for conferences: it names objectClass or uid.
/// Clients find conferences by class or by uid ([MS-TAIL] 3.5.6,
/// 4.8.2, 4.11), while the Dialer lists and finds people by `cn` alone
/// (`(cn=*)`, `(cn=NAME*)`, 4.9.2 and 4.11.1), in the container that
/// holds the conferences too: a conference, whose cn is its uid, would be
/// listed among the people.
fn asks_for_conferences(filter: &Filter<Attr>) -> bool {
    match filter {
        Filter::And(v) | Filter::Or(v) => v.iter().any(asks_for_conferences),
        Filter::Not(x) => asks_for_conferences(x),
        Filter::Equal(a, _)
        | Filter::Substrings(a, _)
        | Filter::GreaterOrEqual(a, _)
        | Filter::LessOrEqual(a, _)
        | Filter::Present(a)
        | Filter::Approx(a, _) => *a == attr::OBJECT_CLASS || *a == attr::UID,
        Filter::Extensible { attr: a, .. } => a
            .as_ref()
            .is_none_or(|a| *a == attr::OBJECT_CLASS || *a == attr::UID),
        Filter::Undefined => false,
    }
}

/// An exact `cn` or `uid` equality that every match must satisfy.
fn exact_name(filter: &Filter<Attr>) -> Option<(&Attr, &[u8])> {
    match filter {
        Filter::Equal(a, v) if *a == attr::CN || *a == attr::UID => Some((a, v)),
        Filter::And(v) => v.iter().find_map(exact_name),
        _ => None,
    }
}

/// Translates the attribute list of a search.
pub fn requested(names: &[Vec<u8>]) -> Vec<Requested> {
    if names.is_empty() {
        return vec![Requested {
            name: b"*".to_vec(),
            want: Want::AllUser,
        }];
    }
    // A name asked for twice is answered once: send_entry looks through
    // the names asked for at every one, so a list of thousands of copies
    // would cost its square for every entry. A set only for long lists,
    // which also answer each attribute once, under the first of its names
    // (`cn;x1` ... `cn;x9999` would otherwise each send the cn).
    let mut asked = std::collections::HashSet::new();
    let mut first = |i: usize, n: &Vec<u8>, want: &Want| match (names.len(), want) {
        (0..=SHORT_LIST, _) => !names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)),
        (_, Want::Attr(a)) => asked.insert(a.name().to_ascii_lowercase()),
        _ => asked.insert(n.to_ascii_lowercase()),
    };
    names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.as_slice() != b"1.1")
        .map(|(i, name)| {
            let want = match name.as_slice() {
                b"*" => Want::AllUser,
                b"+" => Want::AllOperational,
                n if is_sttl(n) => Want::Sttl,
                n => Want::Attr(Attr::from_name(n)),
            };
            (i, name, want)
        })
        .filter(|(i, name, want)| first(*i, name, want))
        .map(|(_, name, want)| Requested {
            name: name.clone(),
            want,
        })
        .collect()
}

/// Lists of attributes up to this long are looked through for every entry
/// sent; longer ones are indexed ([`picks`]).
const SHORT_LIST: usize = 16;

/// Where the attributes of a long list are: an entry is then sent by what
/// it holds, a few dozen attributes at most, not by every name the client
/// listed (up to max-request-elements of them).
#[derive(Debug)]
pub struct Picks {
    /// The position in the list of each stored attribute asked for.
    pub by_attr: HashMap<Attr, usize>,
    /// The positions of the names no stored attribute answers: `*`, `+`,
    /// `sttl` and `entryTTL`.
    pub always: Vec<usize>,
}

/// The index of a long list of attributes (see [`Picks`]).
pub fn picks(list: &[Requested]) -> Option<Picks> {
    if list.len() <= SHORT_LIST {
        return None;
    }
    let mut picks = Picks {
        by_attr: HashMap::new(),
        always: Vec::new(),
    };
    for (i, r) in list.iter().enumerate() {
        match &r.want {
            Want::Attr(a) if !a.is_operational() => {
                picks.by_attr.entry(a.clone()).or_insert(i);
            }
            _ => picks.always.push(i),
        }
    }
    Some(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(f: Filter<&str>) -> Filter<Vec<u8>> {
        f.map_attrs(&mut |a: &str| a.as_bytes().to_vec())
    }

    fn plan(filter: Filter<Vec<u8>>) -> SearchPlan {
        search(SearchRequest {
            base: b"objectClass=rtPerson".to_vec(),
            scope: Scope::Base,
            size_limit: 0,
            time_limit: 0,
            types_only: false,
            filter,
            attrs: vec![],
        })
        .unwrap()
    }

    #[test]
    fn sttl_is_a_command_and_percent_a_wildcard() {
        let p = plan(wire(Filter::And(vec![
            Filter::Equal("objectClass", b"rtPerson".to_vec()),
            Filter::Equal("cn", b"%ann%".to_vec()),
            Filter::Equal("sTTL", b"10".to_vec()),
        ])));
        assert_eq!(p.sttl, Some(10));
        assert!(matches!(p.base, Base::Class(class::PERSON)));
        let Filter::And(parts) = &p.filter else {
            panic!("{:?}", p.filter)
        };
        assert_eq!(parts.len(), 2, "sttl removed");
        assert_eq!(
            parts[1],
            Filter::Substrings(
                attr::CN,
                Substrings {
                    initial: None,
                    any: vec![b"ann".to_vec()],
                    last: None
                }
            )
        );
        assert_eq!(p.exact_name, None);
        let (name, literal) = p.literal.expect("the name taken as it is, too");
        assert_eq!(name, (attr::CN, b"%ann%".to_vec()));
        let Filter::And(parts) = literal else {
            panic!("{literal:?}")
        };
        assert_eq!(parts[1], Filter::Equal(attr::CN, b"%ann%".to_vec()));
        let p = plan(wire(Filter::Equal("cn", b"%".to_vec())));
        assert_eq!(p.filter, Filter::Present(attr::CN));
        let p = plan(wire(Filter::Equal("sappid", b"ms-net*".to_vec())));
        assert!(matches!(p.filter, Filter::Substrings(ref a, _) if *a == attr::APPLICATION_ID));
    }

    #[test]
    fn exact_names_are_found_for_the_index() {
        let p = plan(wire(Filter::And(vec![
            Filter::Equal("objectClass", b"rtPerson".to_vec()),
            Filter::Equal("cn", b"eric".to_vec()),
            Filter::Equal("sttl", b"10".to_vec()),
        ])));
        assert_eq!(p.exact_name, Some((attr::CN, b"eric".to_vec())));
        let p = plan(wire(Filter::Equal("sttl", b"5".to_vec())));
        assert_eq!(
            p.filter,
            Filter::And(vec![]),
            "only sttl: matches everything"
        );
    }

    #[test]
    fn requested_names_keep_the_clients_spelling() {
        let r = requested(&[b"SIPADDRESS".to_vec(), b"sttl".to_vec(), b"+".to_vec()]);
        assert_eq!(r[0].name, b"SIPADDRESS");
        assert_eq!(r[0].want, Want::Attr(attr::IP_ADDRESS));
        assert_eq!(r[1].want, Want::Sttl);
        assert_eq!(r[2].want, Want::AllOperational);
        assert!(requested(&[b"1.1".to_vec()]).is_empty());
        let twice = requested(&[b"cn".to_vec(), b"sn".to_vec(), b"CN".to_vec()]);
        let names: Vec<&[u8]> = twice.iter().map(|r| r.name.as_slice()).collect();
        assert_eq!(names, [&b"cn"[..], b"sn"], "the first spelling, once");
        let many: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("A{}", i % 4).into_bytes())
            .collect();
        let lower: Vec<Vec<u8>> = many.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(requested(&[many, lower].concat()).len(), 4, "by a set");
    }
}
