//! A directory entry and its compact attribute storage.
//!
//! Entries live in the store and are read by every worker thread. A
//! million registered users must fit in well under a gigabyte, so the
//! attributes of an entry are packed into one buffer instead of a vector
//! of vectors (three allocations per value): each attribute is its schema
//! code (or, for names the schema does not know, the name itself), the
//! length of its values in bytes and the length-prefixed values, so that
//! looking an attribute up steps over each one before it at once. Values
//! that nearly every
//! registration carries are a one-byte reference into [`COMMON_VALUES`].
//! Modifications unpack, change and repack; entries are small and
//! modifications rare next to reads.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::directory::filter::{fold, text_eq};
use crate::directory::owner::OwnerId;
use crate::directory::schema::{ATTRIBUTES, Attr, attr};

/// The normalised DN that keys an entry in the store.
pub type Key = Arc<[u8]>;

/// Expiry time meaning "never".
pub const NEVER: u64 = u64::MAX;

const OTHER: u8 = 0xff;

/// Values that nearly every registration carries: object classes and what
/// NetMeeting writes into its application entry ([MS-TAIL] 4.1.3). Each is
/// stored as a reference into this table instead of its bytes, which saves
/// about 130 bytes a NetMeeting user. Only exact byte matches are
/// replaced, so every value reads back exactly as written.
static COMMON_VALUES: &[&[u8]] = &[
    b"rtPerson",
    b"RTPerson",
    b"rtApplicationUser",
    b"RTApplicationUser",
    b"rtConference",
    b"dynamicObject",
    b"top",
    b"ms-netmeeting",
    b"text/iuls",
    b"008aff194794cf118796444553540000",
    b"t120",
    b"h323",
    b"T120",
    b"H323",
    b"text/t120",
    b"text/h323",
    b"1503",
    b"1720",
];

/// An attribute type and its values, unpacked.
pub type AttrValues = (Attr, Vec<Vec<u8>>);

/// The attributes of one entry, packed.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Attributes {
    packed: Box<[u8]>,
}

/// Drops values equal to an earlier one, keeping the first of each in its
/// place: byte for byte for a binary attribute, as directory strings
/// ([`text_eq`]) for the others. A set past a few values, so that no list
/// costs its square.
fn dedup(values: &mut Vec<Vec<u8>>, binary: bool) {
    let same = |a: &[u8], b: &[u8]| if binary { a == b } else { text_eq(a, b) };
    if values.len() <= 8 {
        let mut i = 1;
        while i < values.len() {
            if values[..i].iter().any(|v| same(v, &values[i])) {
                values.remove(i);
            } else {
                i += 1;
            }
        }
        return;
    }
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(values.len());
        values
            .iter()
            .map(|v| match binary {
                true => seen.insert(v.clone()),
                false => seen.insert(fold(v).into_owned()),
            })
            .collect()
    };
    let mut keep = keep.into_iter();
    values.retain(|_| keep.next().unwrap_or(true));
}

impl Attributes {
    /// Packs attributes; attributes without values are dropped, repeated
    /// types are merged and a value given twice is kept once (an
    /// attribute's values are a set, RFC 4511 section 4.1.7).
    pub fn from_list(list: Vec<AttrValues>) -> Attributes {
        let mut merged: Vec<AttrValues> = Vec::with_capacity(list.len());
        for (a, values) in list {
            if values.is_empty() {
                continue;
            }
            let at = match merged.iter().position(|(m, _)| *m == a) {
                Some(at) => at,
                None => {
                    merged.push((a, Vec::with_capacity(values.len())));
                    merged.len() - 1
                }
            };
            let vals = &mut merged[at].1;
            vals.extend(values);
        }
        for (a, vals) in &mut merged {
            dedup(vals, a.is_binary());
        }
        let mut buf = Vec::with_capacity(
            merged
                .iter()
                .map(|(_, v)| 4 + v.iter().map(|x| x.len() + 2).sum::<usize>())
                .sum(),
        );
        for (a, values) in &merged {
            match a {
                Attr::Known(code) => buf.push(*code),
                Attr::Other(name) => {
                    buf.push(OTHER);
                    push_len(&mut buf, name.len());
                    buf.extend_from_slice(name);
                }
            }
            // A value is its length times two and its bytes, or the odd
            // number 2i + 1 for COMMON_VALUES[i].
            let mut block = Vec::new();
            for v in values {
                match COMMON_VALUES.iter().position(|c| c == v) {
                    Some(i) => push_len(&mut block, 2 * i + 1),
                    None => {
                        push_len(&mut block, 2 * v.len());
                        block.extend_from_slice(v);
                    }
                }
            }
            push_len(&mut buf, block.len());
            buf.extend_from_slice(&block);
        }
        Attributes {
            packed: buf.into_boxed_slice(),
        }
    }

    /// The bytes the packed attributes take.
    pub fn byte_len(&self) -> usize {
        self.packed.len()
    }

    /// Unpacks into a list of attributes with their values.
    pub fn to_list(&self) -> Vec<AttrValues> {
        self.iter()
            .map(|(a, vals)| (a.to_owned(), vals.map(<[u8]>::to_vec).collect()))
            .collect()
    }

    /// Every attribute, in the order stored.
    pub fn iter(&self) -> AttrIter<'_> {
        AttrIter { rest: &self.packed }
    }

    /// The values of one attribute type.
    pub fn get<'a>(&'a self, want: &Attr) -> Values<'a> {
        for (a, values) in self.iter() {
            if a == *want {
                return values;
            }
        }
        Values { rest: &[] }
    }

    /// The first value of an attribute.
    pub fn first(&self, want: &Attr) -> Option<&[u8]> {
        self.get(want).next()
    }

    pub fn has(&self, want: &Attr) -> bool {
        !self.get(want).is_empty()
    }
}

/// An attribute type borrowed from packed storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrRef<'a> {
    Known(u8),
    Other(&'a [u8]),
}

impl AttrRef<'_> {
    pub fn to_owned(self) -> Attr {
        match self {
            AttrRef::Known(c) => Attr::Known(c),
            AttrRef::Other(n) => Attr::Other(n.into()),
        }
    }

    pub fn name(&self) -> &[u8] {
        match self {
            AttrRef::Known(c) => ATTRIBUTES[*c as usize].name.as_bytes(),
            AttrRef::Other(n) => n,
        }
    }
}

impl PartialEq<Attr> for AttrRef<'_> {
    fn eq(&self, other: &Attr) -> bool {
        match (self, other) {
            (AttrRef::Known(a), Attr::Known(b)) => a == b,
            (AttrRef::Other(a), Attr::Other(b)) => *a == &**b,
            _ => false,
        }
    }
}

pub struct AttrIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (AttrRef<'a>, Values<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (&code, mut rest) = self.rest.split_first()?;
        let a = if code == OTHER {
            let (len, r) = take_len(rest);
            let (name, r) = r.split_at(len);
            rest = r;
            AttrRef::Other(name)
        } else {
            AttrRef::Known(code)
        };
        let (len, r) = take_len(rest);
        let (values, end) = r.split_at(len.min(r.len()));
        self.rest = end;
        Some((a, Values { rest: values }))
    }
}

/// The values of one attribute.
#[derive(Clone)]
pub struct Values<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (n, r) = take_len(self.rest);
        if n & 1 == 1 {
            self.rest = r;
            return Some(COMMON_VALUES[n / 2]);
        }
        let (v, r) = r.split_at(n / 2);
        self.rest = r;
        Some(v)
    }
}

impl Values<'_> {
    /// How many values are left.
    pub fn len(&self) -> usize {
        self.clone().count()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

fn push_len(buf: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        buf.push((len as u8) | 0x80);
        len >>= 7;
    }
    buf.push(len as u8);
}

fn take_len(buf: &[u8]) -> (usize, &[u8]) {
    let (mut len, mut shift, mut i) = (0usize, 0, 0);
    while let Some(&b) = buf.get(i) {
        len |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (len, &buf[i..])
}

/// What kind of ILS object an entry is, from its objectClass values.
pub mod class {
    pub const PERSON: u8 = 1;
    pub const APPLICATION: u8 = 2;
    pub const CONFERENCE: u8 = 4;
    pub const DYNAMIC: u8 = 8;
}

/// One entry of the directory.
///
/// A million users are two million entries, so every field counts: the DN
/// as written is usually the key with some letters in upper case and is
/// then kept as a bitmap over the key rather than a second copy
/// ([`Written`]), and an entry without links holds no allocation for them.
#[derive(Debug)]
pub struct Entry {
    /// The normalised DN, the entry's key in the store.
    pub key: Key,
    written: Written,
    pub attrs: Attributes,
    /// Milliseconds on the store clock when the entry expires, or [`NEVER`].
    pub expires: AtomicU64,
    /// The earliest deadline the expiry thread's timetable holds for this
    /// entry.
    pub scheduled: AtomicU64,
    /// The person, first when [`Entry::person`] has one, then the
    /// dependents.
    links: Box<[Key]>,
    /// Who registered the entry and may change it: a reference into the
    /// directory's [`Owners`](crate::directory::owner::Owners).
    pub owner: OwnerId,
    /// Where the parent's key starts inside `key`.
    pub parent_at: u16,
    /// [`class`] bits, kept in step with objectClass.
    pub classes: u8,
    owned: bool,
    /// Seconds on the store clock when the entry was added (or loaded
    /// from the state file): how long a user has been online.
    pub created: u32,
}

// Two million of these at a million users: keep within the 104 bytes that
// glibc's malloc serves from a 112-byte chunk.
const _: () = assert!(std::mem::size_of::<Entry>() <= 104);

/// What an entry costs besides its name, its attribute bytes and its
/// names' index slots: the entry itself, its slot in the table and the
/// allocator's headers. With [`NAME_OVERHEAD`], set so that
/// [`Entry::footprint`] summed over NetMeeting users comes close to the
/// resident memory they take.
pub const ENTRY_OVERHEAD: usize = 256;

/// What one `cn` or `uid` value costs in its name index: an entry given
/// 250 names takes 16 KB more than its bytes.
pub const NAME_OVERHEAD: usize = 64;

/// The DN as it was first written.
#[derive(Debug)]
enum Written {
    /// The key, with byte `i` in upper case where bit `i` is set.
    Case([u64; 2]),
    /// Any other spelling.
    Text(Box<[u8]>),
}

impl Written {
    fn new(dn: Vec<u8>, key: &[u8]) -> Written {
        if dn.len() != key.len() || dn.len() > 128 || dn.to_ascii_lowercase() != key {
            return Written::Text(dn.into_boxed_slice());
        }
        let mut bits = [0u64; 2];
        for (i, (w, k)) in dn.iter().zip(key).enumerate() {
            if w != k {
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        Written::Case(bits)
    }
}

impl Entry {
    pub fn new(dn: Vec<u8>, key: Vec<u8>, parent_at: usize, attrs: Attributes) -> Entry {
        let mut entry = Entry {
            written: Written::new(dn, &key),
            key: key.into(),
            parent_at: parent_at.min(u16::MAX as usize) as u16,
            attrs,
            classes: 0,
            expires: AtomicU64::new(NEVER),
            scheduled: AtomicU64::new(NEVER),
            links: Box::default(),
            owner: OwnerId::NONE,
            owned: false,
            created: 0,
        };
        entry.classes = entry.compute_classes();
        entry
    }

    /// What the entry costs the directory, estimated: its name, its
    /// attributes, [`ENTRY_OVERHEAD`] and [`NAME_OVERHEAD`] for each of its
    /// names. What `max-memory` limits.
    pub fn footprint(&self) -> usize {
        self.footprint_with(&self.attrs)
    }

    /// The footprint the entry would have with these attributes.
    pub fn footprint_with(&self, attrs: &Attributes) -> usize {
        let written = match &self.written {
            Written::Text(dn) => dn.len(),
            Written::Case(_) => 0,
        };
        let names: usize = attrs
            .iter()
            .filter(|(a, _)| *a == attr::CN || *a == attr::UID)
            .map(|(_, values)| values.count())
            .sum();
        ENTRY_OVERHEAD + names * NAME_OVERHEAD + self.key.len() + written + attrs.byte_len()
    }

    /// The DN as it was first written.
    pub fn dn(&self) -> Cow<'_, [u8]> {
        match &self.written {
            Written::Text(dn) => Cow::Borrowed(dn),
            Written::Case(bits) => Cow::Owned(
                self.key
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| {
                        if bits[i / 64] & (1 << (i % 64)) != 0 {
                            b.to_ascii_uppercase()
                        } else {
                            b
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// The person an application entry lives and dies with.
    pub fn person(&self) -> Option<&Key> {
        self.links.first().filter(|_| self.owned)
    }

    /// Application entries that live and die with this person.
    pub fn dependents(&self) -> &[Key] {
        &self.links[self.owned as usize..]
    }

    pub fn set_person(&mut self, owner: Key) {
        let dependents = self.dependents().iter();
        self.links = std::iter::once(&owner).chain(dependents).cloned().collect();
        self.owned = true;
    }

    /// Adds a dependent, or removes one, keeping the links exactly sized:
    /// most entries have none and a person one or two.
    pub fn link_dependent(&mut self, key: &Key, add: bool) {
        let kept = self
            .links
            .iter()
            .enumerate()
            .filter(|(i, k)| (*i == 0 && self.owned) || *k != key);
        let new = add.then_some(key);
        self.links = kept.map(|(_, k)| k).chain(new).cloned().collect();
    }

    /// The parent's normalised DN.
    pub fn parent_key(&self) -> &[u8] {
        self.key.get(self.parent_at as usize..).unwrap_or_default()
    }

    pub fn compute_classes(&self) -> u8 {
        let mut bits = 0;
        for value in self.attrs.get(&attr::OBJECT_CLASS) {
            for (name, bit) in [
                (crate::directory::schema::RT_PERSON, class::PERSON),
                (
                    crate::directory::schema::RT_APPLICATION_USER,
                    class::APPLICATION,
                ),
                (crate::directory::schema::RT_CONFERENCE, class::CONFERENCE),
                (crate::directory::schema::DYNAMIC_OBJECT, class::DYNAMIC),
            ] {
                if value.eq_ignore_ascii_case(name.as_bytes()) {
                    bits |= bit;
                }
            }
        }
        bits
    }

    pub fn is(&self, bit: u8) -> bool {
        self.classes & bit != 0
    }

    pub fn expires(&self) -> u64 {
        self.expires.load(Ordering::Relaxed)
    }

    /// Whether the entry has expired at `now` (it may not be swept yet).
    pub fn expired(&self, now: u64) -> bool {
        self.expires() <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<AttrValues> {
        vec![
            (
                attr::OBJECT_CLASS,
                vec![b"rtPerson".to_vec(), b"dynamicObject".to_vec()],
            ),
            (attr::CN, vec![b"Jos\xe9".to_vec()]),
            (
                Attr::Other(b"timestamp".to_vec().into()),
                vec![b"1".to_vec()],
            ),
            (attr::CONFERENCE_BLOB, vec![vec![b'x'; 300]]),
            (attr::PORT, vec![]),
            (attr::CN, vec![b"second".to_vec()]),
        ]
    }

    #[test]
    fn a_value_given_twice_is_kept_once() {
        let attrs = Attributes::from_list(vec![
            (attr::PORT, vec![b"1720".to_vec(), b"1720".to_vec()]),
            (attr::PORT, vec![b"1503".to_vec(), b"1720".to_vec()]),
            (
                attr::CN,
                vec![b"a".to_vec(), b"A".to_vec(), b" a ".to_vec()],
            ),
            (
                attr::NT_SECURITY_DESCRIPTOR,
                vec![b"a".to_vec(), b"A".to_vec()],
            ),
        ]);
        let values = |a| attrs.get(&a).map(<[u8]>::to_vec).collect::<Vec<_>>();
        assert_eq!(values(attr::PORT), [&b"1720"[..], b"1503"]);
        assert_eq!(values(attr::CN), [&b"a"[..]], "equal as directory strings");
        assert_eq!(values(attr::NT_SECURITY_DESCRIPTOR), [&b"a"[..], b"A"]);
        // Past a few values, by a set.
        let many: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("V{}", i % 10).into_bytes())
            .collect();
        let lower: Vec<Vec<u8>> = many.iter().map(|v| v.to_ascii_lowercase()).collect();
        let attrs = Attributes::from_list(vec![(attr::PORT, many), (attr::PORT, lower)]);
        assert_eq!(attrs.get(&attr::PORT).count(), 10);
        // Beyond ASCII: UTF-8 capitals and Windows-1252 small letters.
        let many: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("\u{c9}{}", i % 10).into_bytes())
            .collect();
        let latin: Vec<Vec<u8>> = (0..10)
            .map(|i| [&b"\xe9"[..], format!("{i}").as_bytes()].concat())
            .collect();
        let attrs = Attributes::from_list(vec![(attr::PORT, many), (attr::PORT, latin)]);
        assert_eq!(attrs.get(&attr::PORT).count(), 10);
    }

    #[test]
    fn packing_round_trips_and_merges_repeated_types() {
        let attrs = Attributes::from_list(list());
        let back = attrs.to_list();
        assert_eq!(back.len(), 4, "empty attribute dropped, cn merged");
        assert_eq!(
            back[1],
            (attr::CN, vec![b"Jos\xe9".to_vec(), b"second".to_vec()])
        );
        assert_eq!(back[2].0, Attr::Other(b"timestamp".to_vec().into()));
        assert_eq!(back[3].1[0].len(), 300);
        assert_eq!(attrs.first(&attr::CN), Some(&b"Jos\xe9"[..]));
        assert_eq!(attrs.get(&attr::OBJECT_CLASS).len(), 2);
        assert!(!attrs.has(&attr::PORT));
    }

    #[test]
    fn common_values_are_stored_by_reference_and_read_back_exactly() {
        let classes = vec![b"rtPerson".to_vec(), b"rtPersons".to_vec(), vec![b'x'; 200]];
        let attrs = Attributes::from_list(vec![
            (attr::OBJECT_CLASS, classes.clone()),
            (attr::PROTOCOL_ID, vec![b"h323".to_vec(), b"t120".to_vec()]),
            (attr::CN, vec![b"a".to_vec()]),
        ]);
        assert_eq!(attrs.to_list()[0].1, classes, "only exact matches shared");
        assert_eq!(
            attrs.get(&attr::PROTOCOL_ID).collect::<Vec<_>>(),
            [b"h323", b"t120"]
        );
        assert_eq!(attrs.first(&attr::CN), Some(&b"a"[..]), "found past them");
        // objectClass: code, the two-byte length of its 213 bytes of
        // values: a reference, "rtPersons" (length and 9 bytes), 200 bytes
        // with a two-byte length; protocolID: code, length, two
        // references; cn: code, length, the value's length, "a".
        assert_eq!(
            attrs.packed.len(),
            (1 + 2 + 1 + 10 + 202) + (1 + 1 + 2) + (1 + 1 + 1 + 1)
        );
    }

    #[test]
    fn classes_follow_object_class_in_any_case() {
        let attrs = Attributes::from_list(vec![(
            attr::OBJECT_CLASS,
            vec![b"RTPERSON".to_vec(), b"DynamicObject".to_vec()],
        )]);
        let entry = Entry::new(b"cn=a".to_vec(), b"cn=a".to_vec(), 4, attrs);
        assert!(entry.is(class::PERSON));
        assert!(entry.is(class::DYNAMIC));
        assert!(!entry.is(class::CONFERENCE));
    }

    #[test]
    fn links_keep_the_owner_apart_from_dependents() {
        let mut entry = Entry::new(b"cn=a".to_vec(), b"cn=a".to_vec(), 4, Attributes::default());
        let (p, x, y) = (
            Key::from(&b"p"[..]),
            Key::from(&b"x"[..]),
            Key::from(&b"y"[..]),
        );
        assert_eq!(entry.person(), None);
        entry.link_dependent(&x, true);
        entry.set_person(p.clone());
        entry.link_dependent(&y, true);
        entry.link_dependent(&x, true);
        assert_eq!(entry.person(), Some(&p));
        assert_eq!(entry.dependents(), [y.clone(), x.clone()]);
        entry.link_dependent(&p, false);
        entry.link_dependent(&x, false);
        assert_eq!(entry.person(), Some(&p), "the person is no dependent");
        assert_eq!(entry.dependents(), [y]);
    }

    #[test]
    fn written_dn_is_kept_in_any_spelling() {
        let key = b"cn=jos\\2ce,ou=dynamic,o=intranet".to_vec();
        for dn in [
            &b"cn=Jos\\2cE,ou=Dynamic,o=INTRANET"[..],
            b"CN = Jos\\,E, ou=Dynamic, o=Intranet",
            b"cn=jos\\2ce,ou=dynamic,o=intranet",
        ] {
            let entry = Entry::new(dn.to_vec(), key.clone(), 13, Attributes::default());
            assert_eq!(&*entry.dn(), dn);
        }
        let long = format!("cn={},o=Intranet", "N".repeat(200));
        let entry = Entry::new(
            long.clone().into_bytes(),
            long.to_lowercase().into_bytes(),
            0,
            Attributes::default(),
        );
        assert_eq!(&*entry.dn(), long.as_bytes());
    }
}
