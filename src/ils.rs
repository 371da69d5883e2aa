//! The ILS dialect: one translation layer between what ILS clients send
//! and the standard directory underneath ([MS-TAIL] 2.2.5, 2.2.6, 3.5;
//! `interop.md` of the project's shared notes).
//!
//! * DNs: NetMeeting names its entry `c=-,o=Microsoft,cn=EMAIL,objectClass=rtPerson`
//!   and other clients vary it; every such short form names
//!   `cn=EMAIL,ou=Dynamic,o=Intranet` ([`target`]).
//! * Names: `sappid` is `applicationID`, `sttl` is `entryTTL` in minutes,
//!   and common aliases resolve to one attribute ([`crate::schema`]).
//! * Search: the base `objectClass=rtPerson` means "all persons"; `%` is a
//!   wildcard inside equality values; `(sttl=N)` is a refresh command, not a
//!   condition ([`search`]).
//! * Modify: `smodop` selects what a Modify changes: the person or its
//!   application entry ([`modify`]).
//! * Results: a person is shown merged with its application entries
//!   ([`PersonView`]), under the attribute names the client asked for.
//!
//! Pure translation, run on the worker threads; the operation modules
//! apply the plans to the store.

use ldap3_proto::LdapResultCode;

use std::collections::HashMap;

use crate::dn::{Dn, Rdn};
use crate::entry::{AttrRef, Entry, class};
use crate::filter::{Filter, Substrings, ValueSource, text_eq};
use crate::schema::{self, Attr, attr};
use crate::store::Directory;
use crate::wire::{Change, LdapResult, ModKind, Scope, SearchRequest, WireAttr};

/// The suffix every entry lives under.
pub const SUFFIX: &[u8] = b"o=intranet";
pub const DYNAMIC_KEY: &[u8] = b"ou=dynamic,o=intranet";
pub const APPLICATIONS_KEY: &[u8] = b"ou=applications,o=intranet";

/// The entry a request names, after the dialect has rewritten its DN.
#[derive(Debug, Clone)]
pub struct Target {
    pub dn: Dn,
    /// The normalised key.
    pub key: Vec<u8>,
    /// The DN to store and return: as the client wrote it, or the
    /// canonical form of a short-form name.
    pub written: Vec<u8>,
    /// The object class a short-form DN carries (`objectClass=rtPerson`).
    pub class: Option<&'static str>,
}

impl Target {
    fn new(dn: Dn, written: Vec<u8>, class: Option<&'static str>) -> Target {
        Target {
            key: dn.key(),
            dn,
            written,
            class,
        }
    }

    /// Where the parent's key starts inside the key.
    pub fn parent_at(&self) -> usize {
        self.key.len() - self.dn.parent().key().len()
    }
}

/// Whether a DN uses the leniency of RFC 1779 that RFC 4514 has dropped:
/// quotes, `;` between RDNs, or spaces around a separator or at either
/// end (`cn= egruber]w2kils...`, as the Dialer writes, [MS-TAIL] 4.5.2),
/// or a backslash before neither a special character nor a hex pair.
/// Such a DN is stored in RFC 4514 form, so that the entries clients get
/// back have names every LDAPv3 parser reads.
fn loose(dn: &[u8]) -> bool {
    let separator = |b: Option<&u8>| matches!(b, Some(b',' | b'=' | b';') | None);
    let mut escaped = false;
    for (i, &b) in dn.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => {
                let next = dn.get(i + 1);
                let hex_pair = next.is_some_and(u8::is_ascii_hexdigit)
                    && dn.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !hex_pair && !next.is_some_and(|b| b"\\\",+;<>=# ".contains(b)) {
                    return true;
                }
                escaped = true;
            }
            b'"' | b';' => return true,
            b' ' if separator(i.checked_sub(1).and_then(|p| dn.get(p)))
                || separator(dn.get(i + 1)) =>
            {
                return true;
            }
            _ => {}
        }
    }
    false
}

fn invalid_dn() -> LdapResult {
    LdapResult::new(LdapResultCode::InvalidDNSyntax, "invalid DN syntax")
}

fn is_attr(rdn: &Rdn, name: &[u8]) -> bool {
    rdn.attr == Attr::from_name(name)
}

/// Resolves a DN, rewriting the ILS short forms.
///
/// A DN under `o=Intranet` is taken as it is. Otherwise, a DN that carries
/// an `objectClass=` RDN, or that is a `cn=`/`uid=` with only `c=`/`o=`
/// RDNs around it, is a short form: its class (rtPerson when none is given)
/// and its name select the entry `cn=NAME,ou=Dynamic,o=Intranet`
/// (`cn=NAME,appName=APP,ou=Applications,o=Intranet` for an application
/// user), whatever the order, case and spacing of its RDNs.
pub fn target(input: &[u8]) -> Result<Target, LdapResult> {
    let dn = Dn::parse(input).map_err(|_| invalid_dn())?;
    let under_suffix = dn
        .rdns
        .last()
        .is_some_and(|r| r.attr == attr::O && r.value.eq_ignore_ascii_case(b"Intranet"));
    let has_class = dn.rdns.iter().any(|r| r.attr == attr::OBJECT_CLASS);
    let name_rdn = dn
        .rdns
        .iter()
        .find(|r| r.attr == attr::CN || r.attr == attr::UID);
    let only_decoration = dn
        .rdns
        .iter()
        .all(|r| [attr::CN, attr::UID, attr::C, attr::O, attr::OBJECT_CLASS].contains(&r.attr));
    if dn.is_root() || under_suffix || !(has_class || (name_rdn.is_some() && only_decoration)) {
        let written = match loose(input) {
            true => dn.to_bytes(),
            false => input.to_vec(),
        };
        return Ok(Target::new(dn, written, None));
    }
    let class = match dn.rdns.iter().find(|r| r.attr == attr::OBJECT_CLASS) {
        Some(r) => Some(
            [
                schema::RT_PERSON,
                schema::RT_APPLICATION_USER,
                schema::RT_CONFERENCE,
            ]
            .into_iter()
            .find(|c| c.as_bytes().eq_ignore_ascii_case(&r.value))
            .ok_or_else(|| LdapResult::new(LdapResultCode::NoSuchObject, "no such object class"))?,
        ),
        None => Some(schema::RT_PERSON),
    };
    let Some(name) = name_rdn else {
        return Err(invalid_dn());
    };
    let name = Rdn {
        attr: name.attr.clone(),
        value: trailing_spaces_off(&name.value).to_vec(),
    };
    let text = |s: &str| s.as_bytes().to_vec();
    let mut rdns = vec![name];
    if class == Some(schema::RT_APPLICATION_USER) {
        let app = dn
            .rdns
            .iter()
            .find(|r| is_attr(r, b"appName"))
            .map_or_else(|| text("MS-NetMeeting"), |r| r.value.clone());
        rdns.push(Rdn {
            attr: attr::APP_NAME,
            value: app,
        });
        rdns.push(Rdn {
            attr: attr::OU,
            value: text("Applications"),
        });
    } else {
        rdns.push(Rdn {
            attr: attr::OU,
            value: text("Dynamic"),
        });
    }
    rdns.push(Rdn {
        attr: attr::O,
        value: text("Intranet"),
    });
    let dn = Dn::from_rdns(rdns);
    let written = dn.to_bytes();
    Ok(Target::new(dn, written, class))
}

/// A name without the spaces around it, written plain or as `%20`:
/// NetMeeting's Delete names `cn=egruber@contoso.com%20` ([MS-TAIL]
/// 4.4.2). Any other `%` is the name's own (`user%host@relay` is an
/// e-mail address), kept as sent.
fn trailing_spaces_off(mut value: &[u8]) -> &[u8] {
    loop {
        value = crate::filter::trim_spaces(value);
        match value.strip_suffix(b"%20") {
            Some(rest) => value = rest,
            None => return value,
        }
    }
}

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

fn is_sttl(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"sttl")
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
            Want::Attr(a) if *a != attr::ENTRY_TTL => {
                picks.by_attr.entry(a.clone()).or_insert(i);
            }
            _ => picks.always.push(i),
        }
    }
    Some(picks)
}

/// What an Add stores, translated.
#[derive(Debug)]
pub struct AddPlan {
    pub target: Target,
    pub attrs: Vec<(Attr, Vec<Vec<u8>>)>,
    /// The TTL the client asked for, in seconds (`entryTTL`, or `sttl` in
    /// minutes).
    pub ttl: Option<u64>,
}

/// Translates an Add: maps the names, takes the class from a short-form
/// DN when the request carries none, keeps the naming value among the
/// attributes, and reads `entryTTL`/`sttl` as the requested TTL. `smodop`
/// is a Modify command, not data, and is dropped.
pub fn add(dn: &[u8], wire: Vec<WireAttr>) -> Result<AddPlan, LdapResult> {
    let target = target(dn)?;
    let mut ttl = None;
    let mut attrs: Vec<(Attr, Vec<Vec<u8>>)> = Vec::with_capacity(wire.len() + 2);
    for (name, values) in wire {
        if is_sttl(&name) {
            ttl = first_number(&values).map(|m| m.saturating_mul(60));
            continue;
        }
        let a = Attr::from_name(&name);
        if a == attr::ENTRY_TTL {
            // An empty set (which old clients send for attributes they
            // have no value for) asks for nothing.
            if !values.is_empty() {
                ttl = Some(entry_ttl(&values)?);
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"smodop") {
            continue;
        }
        attrs.push((a, values));
    }
    if let Some(class) = target.class {
        ensure_value(&mut attrs, attr::OBJECT_CLASS, class.as_bytes());
    }
    if let Some(rdn) = target.dn.rdns.first() {
        ensure_value(&mut attrs, rdn.attr.clone(), &rdn.value);
    }
    // The Dialer names a conference by uid alone, and N-Clients find it by
    // cn ([MS-TAIL] 4.7.3, 4.11.2), which rtConference requires (2.3.3):
    // its name is both.
    let conference = attrs.iter().any(|(a, values)| {
        *a == attr::OBJECT_CLASS
            && values
                .iter()
                .any(|v| v.eq_ignore_ascii_case(schema::RT_CONFERENCE.as_bytes()))
    });
    if conference && !attrs.iter().any(|(a, _)| *a == attr::CN) {
        let uid = attrs
            .iter()
            .find(|(a, _)| *a == attr::UID)
            .and_then(|(_, values)| values.first().cloned());
        if let Some(uid) = uid {
            attrs.push((attr::CN, vec![uid]));
        }
    }
    Ok(AddPlan { target, attrs, ttl })
}

/// The TTL an `entryTTL` asks for: one value (SINGLE-VALUE, RFC 2589
/// section 5), a number.
fn entry_ttl(values: &[Vec<u8>]) -> Result<u64, LdapResult> {
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
fn first_number(values: &[Vec<u8>]) -> Option<u64> {
    number(values.first()?)
}

/// A value as a TTL: digits only, and a number too large for 64 bits is
/// as good as the largest (the Dialer sends absurd ones, which the TTL
/// bounds then lower).
fn number(v: &[u8]) -> Option<u64> {
    let v = crate::filter::trim_spaces(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(std::str::from_utf8(v).ok()?.parse().unwrap_or(u64::MAX))
}

/// Adds a value to an attribute unless an equal one is there.
pub fn ensure_value(attrs: &mut Vec<(Attr, Vec<Vec<u8>>)>, a: Attr, value: &[u8]) {
    match attrs.iter_mut().find(|(x, _)| *x == a) {
        Some((_, values)) => {
            if !values.iter().any(|v| text_eq(v, value)) {
                values.push(value.to_vec());
            }
        }
        None => attrs.push((a, vec![value.to_vec()])),
    }
}

/// The `smodop` codes of [MS-TAIL] 2.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smodop {
    AddApp,
    DeleteApp,
    ModifyUser,
    ModifyApp,
}

/// One change of a Modify, translated.
#[derive(Debug, Clone)]
pub struct AttrChange {
    pub kind: ModKind,
    pub attr: Attr,
    pub values: Vec<Vec<u8>>,
}

/// What a Modify does, translated.
#[derive(Debug)]
pub struct ModifyPlan {
    pub target: Target,
    pub smodop: Option<Smodop>,
    pub changes: Vec<AttrChange>,
    /// A new TTL in seconds: a change of `entryTTL` (or `sttl`, in
    /// minutes) is a refresh ([MS-TAIL] 3.5.11, 4.5.3).
    pub ttl: Option<u64>,
}

/// Translates a Modify.
pub fn modify(dn: &[u8], wire: Vec<Change>) -> Result<ModifyPlan, LdapResult> {
    let target = target(dn)?;
    let mut smodop = None;
    let mut ttl = None;
    let mut changes = Vec::with_capacity(wire.len());
    for change in wire {
        if change.attr.eq_ignore_ascii_case(b"smodop") {
            smodop = match first_number(&change.values) {
                Some(0) => Some(Smodop::AddApp),
                Some(1) => Some(Smodop::DeleteApp),
                Some(2) => Some(Smodop::ModifyUser),
                Some(3) => Some(Smodop::ModifyApp),
                _ => {
                    return Err(LdapResult::new(
                        LdapResultCode::UnwillingToPerform,
                        "smodop must be 0, 1, 2 or 3",
                    ));
                }
            };
            continue;
        }
        if is_sttl(&change.attr) {
            ttl = first_number(&change.values).map(|m| m.saturating_mul(60));
            continue;
        }
        let a = Attr::from_name(&change.attr);
        if a == attr::ENTRY_TTL {
            if change.kind == ModKind::Delete {
                return Err(LdapResult::new(
                    LdapResultCode::UnwillingToPerform,
                    "entryTTL cannot be deleted; refresh it instead",
                ));
            }
            ttl = Some(entry_ttl(&change.values)?);
            continue;
        }
        changes.push(AttrChange {
            kind: change.kind,
            attr: a,
            values: change.values,
        });
    }
    Ok(ModifyPlan {
        target,
        smodop,
        changes,
        ttl,
    })
}

/// The application name of an `smodop` Modify: `sappname`, else
/// `sappid`, else NetMeeting's.
pub fn application_name(changes: &[AttrChange]) -> Vec<u8> {
    [attr::APP_NAME, attr::APPLICATION_ID]
        .iter()
        .find_map(|a| {
            changes
                .iter()
                .find(|c| c.attr == *a && c.kind != ModKind::Delete)
                .and_then(|c| c.values.first().cloned())
        })
        .unwrap_or_else(|| b"ms-netmeeting".to_vec())
}

/// The DN of a person's application entry.
pub fn application_dn(cn: &[u8], app: &[u8]) -> Target {
    let text = |s: &str| s.as_bytes().to_vec();
    let dn = Dn::from_rdns(vec![
        Rdn {
            attr: attr::CN,
            value: cn.to_vec(),
        },
        Rdn {
            attr: attr::APP_NAME,
            value: app.to_vec(),
        },
        Rdn {
            attr: attr::OU,
            value: text("Applications"),
        },
        Rdn {
            attr: attr::O,
            value: text("Intranet"),
        },
    ]);
    let written = dn.to_bytes();
    Target::new(dn, written, Some(schema::RT_APPLICATION_USER))
}

/// An entry as clients see it: a person carries the attributes of its
/// application entries (those with the same cn under ou=Applications);
/// any other entry is shown as it is.
pub struct PersonView<'a> {
    pub entry: &'a Entry,
    dir: &'a Directory,
    now: u64,
    /// The applications, looked up when first needed: a listing that asks
    /// only for what a person holds itself (its name, its address) never
    /// looks them up, which was most of the cost of listing.
    apps: std::cell::OnceCell<Vec<&'a Entry>>,
    /// Seconds left to live, for `entryTTL`.
    pub ttl: Option<u64>,
}

impl<'a> PersonView<'a> {
    pub fn new(dir: &'a Directory, entry: &'a Entry, now: u64) -> PersonView<'a> {
        PersonView {
            entry,
            dir,
            now,
            apps: std::cell::OnceCell::new(),
            ttl: crate::store::Store::ttl_left(dir, entry, now),
        }
    }

    /// The person's live application entries.
    pub fn apps(&self) -> &[&'a Entry] {
        self.apps.get_or_init(|| {
            let (dir, entry) = (self.dir, self.entry);
            let mut apps = Vec::new();
            if entry.is(class::PERSON)
                && let Some(cn) = entry.attrs.first(&attr::CN)
            {
                for app in dir.by_cn(cn).other_than(&entry.key) {
                    if app.is(class::APPLICATION)
                        && app.parent_key().ends_with(APPLICATIONS_KEY)
                        && dir.alive_beside(app, entry, self.now)
                    {
                        apps.push(app);
                    }
                }
            }
            apps
        })
    }

    /// Calls `f` with each value of `a` in the view: the person's when it
    /// has the attribute, else its applications'.
    pub fn for_each_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8])) {
        if *a == attr::ENTRY_TTL {
            if let Some(ttl) = self.ttl {
                f(ttl.to_string().as_bytes());
            }
            return;
        }
        let own = self.entry.attrs.get(a);
        if !own.is_empty() {
            own.for_each(f);
            return;
        }
        match self.apps() {
            [app] => app.attrs.get(a).for_each(f),
            apps => {
                // Applications often share a value (a port, a MIME type):
                // it is shown once. A set, since a client may give one
                // person hundreds of applications of hundreds of values.
                let mut shown = std::collections::HashSet::new();
                for v in apps.iter().flat_map(|app| app.attrs.get(a)) {
                    if shown.insert(v) {
                        f(v);
                    }
                }
            }
        }
    }

    /// Every stored attribute of the view, the person's first.
    pub fn attributes(&self) -> Vec<AttrRef<'a>> {
        let mut out: Vec<AttrRef<'a>> = self.entry.attrs.iter().map(|(a, _)| a).collect();
        for app in self.apps() {
            for (a, _) in app.attrs.iter() {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// Whether the entry is hidden: `sFlags` 0 ([MS-TAIL] 2.2.2).
    pub fn hidden(&self) -> bool {
        let mut hidden = false;
        let mut seen = false;
        self.for_each_value(&attr::SFLAGS, &mut |v| {
            if !seen {
                hidden = crate::filter::trim_spaces(v) == b"0";
                seen = true;
            }
        });
        hidden
    }
}

impl ValueSource for PersonView<'_> {
    fn any_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        if *a == attr::ENTRY_TTL {
            return self.ttl.is_some_and(|ttl| f(ttl.to_string().as_bytes()));
        }
        // The values the view shows (see `for_each_value`), so that what
        // a filter matches is what the answer says.
        if self.entry.attrs.has(a) {
            return self.entry.attrs.get(a).any(f);
        }
        self.apps().iter().any(|e| e.attrs.get(a).any(&mut *f))
    }

    fn any_attr_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
        self.attributes().into_iter().any(|a| {
            let a = a.to_owned();
            self.any_value(&a, &mut |v| f(&a, v))
        })
    }

    fn any_dn_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
        Dn::parse(&self.entry.dn())
            .is_ok_and(|dn| dn.rdns.iter().any(|rdn| f(&rdn.attr, &rdn.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(dn: &[u8]) -> Vec<u8> {
        target(dn).unwrap().key
    }

    #[test]
    fn every_netmeeting_dn_form_names_one_person() {
        let want = b"cn=egruber@contoso.com,ou=dynamic,o=intranet".to_vec();
        for dn in [
            &b"c=-,o=Microsoft,cn=egruber@contoso.com,objectClass=rtPerson"[..],
            b"c=-,o=Microsoft, cn=egruber@contoso.com, objectClass=rtPerson",
            b"c=-, o=Microsoft, mailto:cn=egruber@contoso.com%20, objectClass=rtPerson",
            b"cn=EGRUBER@contoso.com,objectclass=RTPerson",
            b"objectClass=rtPerson,cn=egruber@contoso.com,o=Other,c=US",
            b"o=Microsoft,cn=egruber@contoso.com",
            b"cn=egruber@contoso.com,ou=Dynamic,o=Intranet",
            b"CN=egruber@contoso.com, OU=dynamic, O=intranet",
        ] {
            assert_eq!(key_of(dn), want, "{}", String::from_utf8_lossy(dn));
        }
        let t = target(b"c=-,o=Microsoft,cn=Eric@X.com,objectClass=rtPerson").unwrap();
        assert_eq!(t.written, b"cn=Eric@X.com,ou=Dynamic,o=Intranet");
        assert_eq!(t.class, Some(schema::RT_PERSON));
        // A full DN with a backslash that escapes nothing is written the
        // RFC 4514 way; one with RFC 4514 escapes only is kept.
        let t = target(br"cn=back\slash,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(t.written, br"cn=back\\slash,ou=Dynamic,o=Intranet");
        let t = target(br"cn=a\,b\2C,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(t.written, br"cn=a\,b\2C,ou=Dynamic,o=Intranet");
        // A % of the address itself is kept; only spaces around go.
        for (dn, want) in [
            (
                &b"cn=ops%bcast@x.com,objectClass=rtPerson"[..],
                &b"ops%bcast@x.com"[..],
            ),
            (
                b"cn=a%20b@x.com %20%20,objectClass=rtPerson",
                b"a%20b@x.com",
            ),
        ] {
            assert_eq!(target(dn).unwrap().dn.rdns[0].value, want);
        }
    }

    #[test]
    fn standard_and_foreign_dns_are_left_alone() {
        let t = target(b"uid=19168,ou=dynamic,o=Intranet").unwrap();
        assert_eq!(t.written, b"uid=19168,ou=dynamic,o=Intranet");
        assert_eq!(t.class, None);
        assert_eq!(key_of(b"dc=example,dc=com"), b"dc=example,dc=com");
        assert!(target(b"cn=x,objectClass=rtNothing").is_err());
        assert!(target(b"not a dn").is_err());
    }

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
    fn add_takes_the_class_from_the_dn_and_the_ttl_from_sttl() {
        let plan = add(
            b"c=-,o=Microsoft,cn=a@b,objectClass=rtPerson",
            vec![
                (b"sipaddress".to_vec(), vec![b"1613317642".to_vec()]),
                (b"sttl".to_vec(), vec![b"10".to_vec()]),
                (b"smodop".to_vec(), vec![b"0".to_vec()]),
            ],
        )
        .unwrap();
        assert_eq!(plan.ttl, Some(600));
        let names: Vec<_> = plan.attrs.iter().map(|(a, _)| a.clone()).collect();
        assert_eq!(names, vec![attr::IP_ADDRESS, attr::OBJECT_CLASS, attr::CN]);
    }

    #[test]
    fn modify_reads_smodop_and_entry_ttl() {
        let change = |a: &str, v: &str| Change {
            kind: ModKind::Replace,
            attr: a.as_bytes().to_vec(),
            values: vec![v.as_bytes().to_vec()],
        };
        let plan = modify(
            b"cn=x,ou=dynamic,o=Intranet",
            vec![
                change("smodop", "0"),
                change("sappid", "ms-netmeeting"),
                change("EntryTTL", "1800"),
            ],
        )
        .unwrap();
        assert_eq!(plan.smodop, Some(Smodop::AddApp));
        assert_eq!(plan.ttl, Some(1800));
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(application_name(&plan.changes), b"ms-netmeeting");
        assert!(modify(b"cn=x,ou=dynamic,o=Intranet", vec![change("smodop", "9")]).is_err());
        let mut two = change("entryTTL", "700");
        two.values.push(b"800".to_vec());
        let refused = modify(b"cn=x,ou=dynamic,o=Intranet", vec![two]).unwrap_err();
        assert_eq!(refused.code, LdapResultCode::ConstraintViolation);
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
