//! The in-memory directory: entries keyed by normalised DN behind one
//! `parking_lot` reader-writer lock, with indexes on `cn` and `uid` so that
//! a search for one name is a lookup, not a scan.
//!
//! Worker threads read and write it; the expiry thread ([`crate::directory::expiry`])
//! removes what has expired. Refreshing a TTL only stores an atomic in the
//! entry, under the read lock: the thousands of keep-alives a second that an
//! ILS server answers never wait for one another. Only a refresh that
//! brings a deadline forward sends the expiry thread a new deadline.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;
use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::directory::dn::Dn;
use crate::directory::entry::{AttrRef, Attributes, Entry, Key, NEVER, class};
use crate::directory::filter::{fold_case, text_eq, trim_spaces};
use crate::directory::owner::{Owner, OwnerId, Owners};
use crate::directory::schema::{Attr, attr};

/// A deadline for the expiry thread: the entry whose key hashes to `hash`
/// and is the one at `id` may expire at `at`.
///
/// A deadline names its entry rather than holding a share of its key.
/// Most deadlines outlive their entries (a NetMeeting user unregisters
/// long before its TTL runs out, and a refresh leaves the old deadline
/// behind), and a held key would keep each of those small blocks
/// allocated until its deadline came: megabytes of them, scattered among
/// the workers' short-lived buffers where malloc cannot give the pages
/// back. The address of a freed key can be given to a later key, of any
/// name (the entry table compares only a few bits of the hash before it
/// asks whether the address matches), so a deadline may find an entry it
/// was not made for. That is harmless because the expiry thread judges an
/// entry by its own scheduled time and expiry, never by the deadline's:
/// a deadline never removes an entry before its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub at: u64,
    pub hash: u64,
    pub id: usize,
}

impl Deadline {
    fn new(hasher: &RandomState, at: u64, key: &Key) -> Deadline {
        Deadline {
            at,
            hash: hasher.hash_one(&**key),
            id: key_id(key),
        }
    }
}

/// What a [`Deadline`] knows a key by, besides its hash.
pub fn key_id(key: &Key) -> usize {
    Arc::as_ptr(key) as *const u8 as usize
}

/// The granularity of the expiry thread's deadlines, in milliseconds.
const TICK: u64 = 16;

/// When the expiry thread removes an entry that expires at `at`: at the
/// next tick. An entry stops being served at its own expiry time; only
/// its removal waits for the tick, so that the users registered within a
/// tick share one deadline in the expiry thread's timetable.
pub fn sweep_time(at: u64) -> u64 {
    at.checked_next_multiple_of(TICK).unwrap_or(at)
}

/// What the expiry thread is told.
#[derive(Debug)]
pub enum ExpiryMsg {
    Schedule(Deadline),
    Shutdown,
}

/// The administrator's bounds on entry TTLs, in seconds. Changeable while
/// running (a configuration reload), hence atomics.
#[derive(Debug)]
pub struct TtlPolicy {
    default: AtomicU32,
    min: AtomicU32,
    max: AtomicU32,
}

/// The TTL bounds of a server configured with none: half an hour by
/// default, from ten seconds to a day.
pub const DEFAULT_TTL: u32 = 1800;
pub const MIN_TTL: u32 = 10;
pub const MAX_TTL: u32 = 86400;

impl Default for TtlPolicy {
    fn default() -> TtlPolicy {
        TtlPolicy::new(DEFAULT_TTL, MIN_TTL, MAX_TTL)
    }
}

impl TtlPolicy {
    pub fn new(default: u32, min: u32, max: u32) -> TtlPolicy {
        let policy = TtlPolicy {
            default: AtomicU32::new(0),
            min: AtomicU32::new(0),
            max: AtomicU32::new(0),
        };
        policy.set(default, min, max);
        policy
    }

    pub fn set(&self, default: u32, min: u32, max: u32) {
        self.min.store(min, Ordering::Relaxed);
        self.max.store(max.max(min), Ordering::Relaxed);
        self.default.store(default, Ordering::Relaxed);
    }

    /// A requested TTL brought within the bounds: real clients ask for far
    /// more than any sensible maximum (the Dialer sends 180000), so a TTL
    /// out of bounds is adjusted, never refused.
    pub fn clamp(&self, requested: u64) -> u32 {
        let min = self.min.load(Ordering::Relaxed) as u64;
        let max = self.max.load(Ordering::Relaxed) as u64;
        requested.clamp(min, max.max(min)) as u32
    }

    /// The TTL of an entry created without asking for one.
    pub fn default_ttl(&self) -> u32 {
        self.clamp(self.default.load(Ordering::Relaxed) as u64)
    }

    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }
}

/// The classes counted by [`Directory::class_counts`].
const CLASSES: [u8; 3] = [class::PERSON, class::APPLICATION, class::CONFERENCE];

/// The entries and their indexes. Reached through [`Store::read`] and
/// [`Store::write`].
///
/// The table holds boxed entries found by their own key, not a map from a
/// second copy of the key: at a million users (two million entries, a
/// table of four million slots) a slot is 8 bytes instead of the 130 an
/// inline entry with its key would take. Hashing is std's keyed SipHash,
/// since clients choose the names.
#[derive(Default)]
pub struct Directory {
    entries: HashTable<Box<Entry>>,
    hasher: RandomState,
    by_cn: NameIndex,
    by_uid: NameIndex,
    dynamic_count: usize,
    /// Stored people, applications and conferences, in the order of
    /// [`CLASSES`].
    by_class: [usize; 3],
    /// The owners of the entries, each once.
    owners: Owners,
    /// The sum of the dynamic entries' [`Entry::footprint`].
    footprint: usize,
    /// What adds and modifies may bring `footprint` to (`max-memory`), 0
    /// for no limit.
    max_footprint: usize,
    /// Counts the inserts that may have moved entries to other slots: see
    /// [`Directory::slots_from`].
    layout: u64,
}

/// Where a walk over every entry stands: the next slot of the entry
/// table, valid while [`Directory::layout`] stays what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotCursor {
    pub layout: u64,
    pub slot: usize,
}

/// What an entry adds to a directory's counts, taken before it changes.
#[derive(Clone, Copy)]
struct Tally {
    classes: u8,
    dynamic: bool,
    footprint: usize,
    owner: OwnerId,
}

impl Tally {
    fn of(entry: &Entry) -> Tally {
        Tally {
            classes: entry.classes,
            dynamic: entry.is(class::DYNAMIC),
            footprint: entry.footprint(),
            owner: entry.owner,
        }
    }
}

/// The entry exists already.
#[derive(Debug)]
pub struct AlreadyExists;

/// An index from names to the entries that carry them.
///
/// There is one slot for each name of each entry, holding the hash of the
/// folded name and the entry's key; the name itself is read from the entry
/// when looking it up. With a slot per name holding a copy of the name
/// and a list of keys, a removal (which a mass expiry does a million
/// times) would follow all three through memory and free two allocations;
/// this way it finds its slot by the hash and the identity of the key,
/// touches nothing else and frees nothing.
#[derive(Default)]
struct NameIndex {
    table: HashTable<(u64, Key)>,
    hasher: RandomState,
}

impl NameIndex {
    /// The hash of a name, folded as [`text_eq`] compares (the equality
    /// matching of names); ASCII names up to 128 bytes are folded on the
    /// stack.
    fn hash(&self, value: &[u8]) -> u64 {
        let value = trim_spaces(value);
        if !value.is_ascii() {
            return self.hasher.hash_one(&*fold_case(value));
        }
        let mut stack = [0u8; 128];
        match stack.get_mut(..value.len()) {
            Some(buf) => {
                buf.copy_from_slice(value);
                buf.make_ascii_lowercase();
                self.hasher.hash_one(&*buf)
            }
            None => self.hasher.hash_one(value.to_ascii_lowercase()),
        }
    }

    fn add(&mut self, value: &[u8], key: &Key) {
        let hash = self.hash(value);
        // Two values of one entry may fold to the same name.
        if self
            .table
            .find(hash, |(h, k)| *h == hash && Arc::ptr_eq(k, key))
            .is_none()
        {
            self.table
                .insert_unique(hash, (hash, key.clone()), |(h, _)| *h);
        }
    }

    fn remove(&mut self, value: &[u8], key: &Key) {
        self.remove_hashed_id(self.hash(value), key_id(key));
    }

    fn remove_hashed_id(&mut self, hash: u64, id: usize) {
        if let Ok(slot) = self
            .table
            .find_entry(hash, |(h, k)| *h == hash && key_id(k) == id)
        {
            slot.remove();
        }
    }
}

/// The entries an index finds under a name: see [`Directory::by_cn`].
pub struct Named<'a> {
    dir: &'a Directory,
    attr: Attr,
    value: &'a [u8],
    hash: u64,
    slots: hashbrown::hash_table::IterHash<'a, (u64, Key)>,
    skip: Option<&'a Key>,
}

impl<'a> Named<'a> {
    /// Leaves out the entry that holds this very key (the person whose
    /// applications are looked for) without looking it up.
    pub fn other_than(mut self, key: &'a Key) -> Named<'a> {
        self.skip = Some(key);
        self
    }
}

impl<'a> Iterator for Named<'a> {
    type Item = &'a Entry;

    fn next(&mut self) -> Option<&'a Entry> {
        for (hash, key) in self.slots.by_ref() {
            if *hash != self.hash || self.skip.is_some_and(|skip| Arc::ptr_eq(skip, key)) {
                continue;
            }
            let dir = self.dir;
            if let Some(entry) = dir.get_same(dir.hasher.hash_one(&**key), key)
                && entry.attrs.get(&self.attr).any(|v| text_eq(v, self.value))
            {
                return Some(entry);
            }
        }
        None
    }
}

impl Directory {
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.hasher.hash_one(key);
        self.entries.find(hash, |e| *e.key == *key).map(|e| &**e)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let hash = self.hasher.hash_one(key);
        self.entries
            .find_mut(hash, |e| *e.key == *key)
            .map(|e| &mut **e)
    }

    /// The entries from a slot of the table on, each with the cursor
    /// after it: a walk over every entry can stop, let the lock go, and
    /// go on from the cursor in a later hold, without taking the names of
    /// the entries it has not reached. Entries stay in their slots until
    /// the table is rehashed; [`Directory::layout`] then changes, and a
    /// cursor of the old layout means nothing.
    pub fn slots_from(&self, from: usize) -> impl Iterator<Item = (SlotCursor, &Entry)> {
        let layout = self.layout;
        (from..self.entries.num_buckets()).filter_map(move |slot| {
            let entry = self.entries.get_bucket(slot)?;
            let next = SlotCursor {
                layout,
                slot: slot + 1,
            };
            Some((next, &**entry))
        })
    }

    /// Who registered an entry, if anyone.
    pub fn owner_of(&self, entry: &Entry) -> Option<&Owner> {
        self.owners.get(entry.owner)
    }

    /// How many distinct owners the entries have.
    pub fn owner_count(&self) -> usize {
        self.owners.len()
    }

    /// Changes whenever entries may have moved to other slots.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// The entries whose cn equals `value` (case-insensitively, surrounding
    /// spaces ignored).
    pub fn by_cn<'a>(&'a self, value: &'a [u8]) -> Named<'a> {
        self.named(&self.by_cn, attr::CN, value)
    }

    /// The entries whose uid equals `value` (case-insensitively).
    pub fn by_uid<'a>(&'a self, value: &'a [u8]) -> Named<'a> {
        self.named(&self.by_uid, attr::UID, value)
    }

    fn named<'a>(&'a self, index: &'a NameIndex, attr: Attr, value: &'a [u8]) -> Named<'a> {
        let hash = index.hash(value);
        Named {
            dir: self,
            attr,
            value,
            hash,
            slots: index.table.iter_hash(hash),
            skip: None,
        }
    }

    /// When an entry expires: its own deadline, or its person's for an
    /// application entry that lives with a person.
    pub fn expires_of(&self, entry: &Entry) -> u64 {
        match entry.person() {
            Some(owner) if entry.expires() == NEVER => self.get(owner).map_or(0, Entry::expires),
            _ => entry.expires(),
        }
    }

    /// The entry whose deadline `entry` lives by: the person of an
    /// application entry that lives with one (as [`expires_of`] reads
    /// it), else the entry itself.
    ///
    /// [`expires_of`]: Directory::expires_of
    fn ttl_holder<'a>(&'a self, entry: &'a Entry) -> &'a Entry {
        match entry.person() {
            Some(owner) if entry.expires() == NEVER => self.get(owner).unwrap_or(entry),
            _ => entry,
        }
    }

    /// Whether an application entry is still there for clients at `now`,
    /// when the person it may live with is at hand: saves looking the
    /// person up again for every application shown with it.
    pub fn alive_beside(&self, app: &Entry, person: &Entry, now: u64) -> bool {
        match app.person() {
            Some(owner) if app.expires() == NEVER && Arc::ptr_eq(owner, &person.key) => {
                person.expires() > now
            }
            _ => self.alive(app, now),
        }
    }

    /// Whether an entry is still there for clients at `now`.
    pub fn alive(&self, entry: &Entry, now: u64) -> bool {
        self.expires_of(entry) > now
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many dynamic entries are stored (expired ones not yet swept
    /// included).
    pub fn dynamic_count(&self) -> usize {
        self.dynamic_count
    }

    /// How many people, applications and conferences are stored, expired
    /// ones not yet swept included.
    pub fn class_counts(&self) -> [(&'static str, usize); 3] {
        [
            ("person", self.by_class[0]),
            ("application", self.by_class[1]),
            ("conference", self.by_class[2]),
        ]
    }

    /// What the dynamic entries, the ones clients add, cost, estimated:
    /// the sum of their [`Entry::footprint`]. The static tree is left out.
    pub fn footprint(&self) -> usize {
        self.footprint
    }

    /// The most [`Directory::footprint`] may grow to, 0 for no limit.
    pub fn max_footprint(&self) -> usize {
        self.max_footprint
    }

    pub fn set_max_footprint(&mut self, max: usize) {
        self.max_footprint = max;
    }

    /// Whether the entries may grow by `more` bytes of footprint. Not
    /// growing is always allowed, even past a limit lowered below what is
    /// stored.
    pub fn has_room(&self, more: usize) -> bool {
        more == 0
            || self.max_footprint == 0
            || self.footprint.saturating_add(more) <= self.max_footprint
    }

    /// Adds an entry. An expired entry of the same name is replaced: its
    /// name is free to register again even before the sweep.
    pub fn insert(&mut self, entry: Entry, now: u64) -> Result<&Entry, AlreadyExists> {
        self.insert_owned(entry, None, now)
    }

    /// Adds an entry that belongs to `owner` (see [`Directory::insert`]).
    pub fn insert_owned(
        &mut self,
        mut entry: Entry,
        owner: Option<&Owner>,
        now: u64,
    ) -> Result<&Entry, AlreadyExists> {
        if let Some(old) = self.get(&entry.key) {
            if !old.expired(now) {
                return Err(AlreadyExists);
            }
            let key = old.key.clone();
            self.remove(&key);
        }
        if let Some(owner) = owner {
            entry.owner = self.owners.id(owner);
        }
        entry.created = u32::try_from(now / 1000).unwrap_or(u32::MAX);
        self.index(&entry.key, &entry.attrs, true);
        self.tally(Tally::of(&entry), true);
        // An insert into a table without room left rehashes it (grown,
        // or in place to clear the slots of removed entries), moving
        // every entry; nothing else moves one. Removals leave the other
        // entries where they are.
        if self.entries.len() >= self.entries.capacity() {
            self.layout += 1;
        }
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&*entry.key);
        let slot = self
            .entries
            .insert_unique(hash, Box::new(entry), |e| hasher.hash_one(&*e.key));
        Ok(slot.into_mut())
    }

    /// Removes an entry and the application entries that live with it.
    /// Returns how many entries were removed.
    pub fn remove(&mut self, key: &[u8]) -> usize {
        let hash = self.hasher.hash_one(key);
        let Ok(slot) = self.entries.find_entry(hash, |e| *e.key == *key) else {
            return 0;
        };
        let entry = slot.remove().0;
        self.unlink(entry, &mut |_| {})
    }

    /// The hasher of the entry table, for telling entries apart by the
    /// hashes of their keys (a listing that restarts, a state file).
    pub fn key_hasher(&self) -> &RandomState {
        &self.hasher
    }

    /// The deadline `at` for the entry holding `key`.
    #[cfg(test)]
    fn deadline(&self, at: u64, key: &Key) -> Deadline {
        Deadline::new(&self.hasher, at, key)
    }

    /// The entry that holds this very key, found by the key's hash.
    fn get_same(&self, hash: u64, key: &Key) -> Option<&Entry> {
        self.entries.find(hash, same(key)).map(|e| &**e)
    }

    /// The entry that holds this very key, not merely an equal one: not a
    /// later entry of the same name.
    pub fn holding(&self, key: &Key) -> Option<&Entry> {
        self.get_same(self.hasher.hash_one(&**key), key)
    }

    /// The entry a deadline names, if it is still there, or whichever
    /// entry's key now has the address its key had ([`Deadline`]).
    pub fn named_by(&self, deadline: &Deadline) -> Option<&Entry> {
        self.entries
            .find(deadline.hash, same_id(deadline.id))
            .map(|e| &**e)
    }

    /// Removes the entries of a batch of deadlines that `doomed` says are
    /// due, with the application entries that live with them. Each entry
    /// is found by the hash and the identity of its key, as its deadline
    /// names it: no names are compared. `doomed` must judge the entry
    /// found by its own scheduled time and expiry: a deadline may find an
    /// entry that took the address of its key ([`Deadline`]). The removed entries are handed to `graveyard`
    /// rather than freed, so that the caller can free them after releasing
    /// the write lock. Returns how many entries were removed.
    ///
    /// The expiry thread calls this under the write lock with a million
    /// entries to remove, each a few cache misses away: the table slot, the
    /// entry, its attributes, its index slots. Done one entry at a time,
    /// every miss waits for the one before. Here each step is taken for a
    /// chunk of entries before the next step, so that the CPU overlaps the
    /// misses of different entries; a chunk is small enough for what the
    /// steps touch to stay in the cache from one step to the next. Entries
    /// linked to others (a person and its applications) are removed one by
    /// one, as their links need.
    pub fn remove_batch(
        &mut self,
        due: &[Deadline],
        mut doomed: impl FnMut(&Entry, &Deadline) -> bool,
        graveyard: &mut impl FnMut(Box<Entry>),
        scratch: &mut BatchScratch,
    ) -> usize {
        const CHUNK: usize = 256;
        let mut removed = 0;
        for start in (0..due.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(due.len());
            let BatchScratch {
                doomed: chosen,
                names,
                linked,
            } = scratch;
            // Find the entries and decide.
            for (i, deadline) in due.iter().enumerate().take(end).skip(start) {
                if let Some(entry) = self.named_by(deadline)
                    && doomed(entry, deadline)
                {
                    chosen.push(i);
                }
            }
            // Hash their names.
            chosen.retain(|&i| {
                let Some(entry) = self.named_by(&due[i]) else {
                    return false;
                };
                if entry.person().is_some() || !entry.dependents().is_empty() {
                    linked.push(i);
                    return false;
                }
                for (a, values) in entry.attrs.iter() {
                    if let Some(which) = Names::of(a) {
                        let index = self.names(which);
                        names.extend(values.map(|v| (which, index.hash(v), i)));
                    }
                }
                true
            });
            // Take the names out of the indexes.
            for &(which, hash, i) in names.iter() {
                self.names_mut(which).remove_hashed_id(hash, due[i].id);
            }
            // Take the entries out of the table.
            for &i in chosen.iter() {
                let Deadline { hash, id, .. } = due[i];
                if let Ok(slot) = self.entries.find_entry(hash, same_id(id)) {
                    let entry = slot.remove().0;
                    self.tally(Tally::of(&entry), false);
                    graveyard(entry);
                    removed += 1;
                }
            }
            for &i in linked.iter() {
                let Deadline { hash, id, .. } = due[i];
                if let Ok(slot) = self.entries.find_entry(hash, same_id(id)) {
                    let entry = slot.remove().0;
                    removed += self.unlink(entry, graveyard);
                }
            }
            chosen.clear();
            names.clear();
            linked.clear();
        }
        removed
    }

    /// Takes a removed entry out of the indexes and its person's links,
    /// and removes its dependents.
    fn unlink(&mut self, entry: Box<Entry>, graveyard: &mut impl FnMut(Box<Entry>)) -> usize {
        self.index(&entry.key, &entry.attrs, false);
        self.tally(Tally::of(&entry), false);
        if let Some(owner) = entry.person()
            && let Some(person) = self.get_mut(owner)
        {
            person.link_dependent(&entry.key, false);
        }
        let mut removed = 1;
        for dependent in entry.dependents() {
            let hash = self.hasher.hash_one(&**dependent);
            if let Ok(slot) = self.entries.find_entry(hash, |e| e.key == *dependent) {
                let dependent = slot.remove().0;
                removed += self.unlink(dependent, graveyard);
            }
        }
        graveyard(entry);
        removed
    }

    /// Replaces an entry's attributes, keeping the indexes in step.
    pub fn set_attrs(&mut self, key: &[u8], attrs: Attributes) {
        let Some(entry) = self.get_mut(key) else {
            return;
        };
        let before = Tally::of(entry);
        let old = std::mem::replace(&mut entry.attrs, attrs);
        entry.classes = entry.compute_classes();
        let after = Tally::of(entry);
        let (key, new) = (entry.key.clone(), entry.attrs.clone());
        self.index(&key, &old, false);
        self.index(&key, &new, true);
        // The new count first: the owner of an entry that is its only
        // one must not be forgotten between the two.
        self.tally(after, true);
        self.tally(before, false);
    }

    /// Counts an entry in (`stored`) or out of `dynamic_count` and
    /// `footprint`, if it is dynamic.
    fn tally(
        &mut self,
        Tally {
            classes,
            dynamic,
            footprint,
            owner,
        }: Tally,
        stored: bool,
    ) {
        self.owners.count(owner, stored);
        for (i, bit) in CLASSES.iter().enumerate() {
            if classes & bit != 0 {
                if stored {
                    self.by_class[i] += 1;
                } else {
                    self.by_class[i] -= 1;
                }
            }
        }
        if !dynamic {
            return;
        }
        if stored {
            self.dynamic_count += 1;
            self.footprint += footprint;
        } else {
            self.dynamic_count -= 1;
            self.footprint -= footprint;
        }
    }

    /// Links an application entry to the person it lives and dies with.
    pub fn attach(&mut self, person: &Key, application: &Key) {
        if let Some(app) = self.get_mut(application) {
            app.set_person(person.clone());
        }
        if let Some(p) = self.get_mut(person)
            && !p.dependents().contains(application)
        {
            p.link_dependent(application, true);
        }
    }

    /// Adds or removes an entry's names in the indexes.
    fn index(&mut self, key: &Key, attrs: &Attributes, add: bool) {
        for (a, values) in attrs.iter() {
            let Some(which) = Names::of(a) else {
                continue;
            };
            let index = self.names_mut(which);
            for value in values {
                if add {
                    index.add(value, key);
                } else {
                    index.remove(value, key);
                }
            }
        }
    }
}

impl Directory {
    /// Checks that everything kept beside the entries agrees with them:
    /// the counts and the footprint, every name in its index and every
    /// index row on a stored entry with that name, the links between
    /// people and their applications, and the owners' counts. For the
    /// fuzzers and tests: it walks everything.
    pub fn check(&self) -> Result<(), String> {
        let (mut dynamic, mut footprint) = (0, 0);
        let mut owners: HashMap<OwnerId, u32> = HashMap::new();
        for (_, e) in self.slots_from(0) {
            let name = || String::from_utf8_lossy(&e.key).into_owned();
            if e.is(class::DYNAMIC) {
                dynamic += 1;
                footprint += e.footprint();
            }
            if e.owner != OwnerId::NONE {
                *owners.entry(e.owner).or_default() += 1;
            }
            for (a, values) in e.attrs.iter() {
                let Some(which) = Names::of(a) else { continue };
                for v in values {
                    let found = match which {
                        Names::Cn => self.by_cn(v).any(|x| Arc::ptr_eq(&x.key, &e.key)),
                        Names::Uid => self.by_uid(v).any(|x| Arc::ptr_eq(&x.key, &e.key)),
                    };
                    if !found {
                        return Err(format!("{} is not in its name index", name()));
                    }
                }
            }
            if let Some(person) = e.person()
                && !self
                    .get(person)
                    .is_some_and(|p| p.dependents().contains(&e.key))
            {
                return Err(format!(
                    "{} lives with a person that does not know it",
                    name()
                ));
            }
            for dependent in e.dependents() {
                if self
                    .get(dependent)
                    .is_none_or(|d| d.person() != Some(&e.key))
                {
                    return Err(format!("{} has a dependent that is not its", name()));
                }
            }
        }
        if (dynamic, footprint) != (self.dynamic_count, self.footprint) {
            return Err(format!(
                "counted {dynamic} dynamic entries of {footprint} bytes, kept {} of {}",
                self.dynamic_count, self.footprint
            ));
        }
        for index in [&self.by_cn, &self.by_uid] {
            for (hash, key) in index.table.iter() {
                let Some(e) = self.holding(key) else {
                    return Err("a name index row outlived its entry".into());
                };
                let named = e.attrs.iter().any(|(a, mut values)| {
                    Names::of(a).is_some() && values.any(|v| index.hash(v) == *hash)
                });
                if !named {
                    return Err("a name index row names an entry without that name".into());
                }
            }
        }
        self.owners.check(&owners)
    }

    fn names(&self, which: Names) -> &NameIndex {
        match which {
            Names::Cn => &self.by_cn,
            Names::Uid => &self.by_uid,
        }
    }

    fn names_mut(&mut self, which: Names) -> &mut NameIndex {
        match which {
            Names::Cn => &mut self.by_cn,
            Names::Uid => &mut self.by_uid,
        }
    }
}

/// The name indexes.
#[derive(Clone, Copy)]
enum Names {
    Cn,
    Uid,
}

impl Names {
    /// The index that holds the values of an attribute, if one does.
    fn of(a: AttrRef<'_>) -> Option<Names> {
        if a == attr::CN {
            Some(Names::Cn)
        } else if a == attr::UID {
            Some(Names::Uid)
        } else {
            None
        }
    }
}

/// Matches the entry that holds this very key.
fn same(key: &Key) -> impl Fn(&Box<Entry>) -> bool + '_ {
    move |e| Arc::ptr_eq(&e.key, key)
}

/// Matches the entry whose key is at `id`.
fn same_id(id: usize) -> impl Fn(&Box<Entry>) -> bool {
    move |e| key_id(&e.key) == id
}

/// Working space of [`Directory::remove_batch`], kept by its caller from
/// one batch to the next: allocating it under the write lock, after the
/// last batch's entries were freed, would make glibc's malloc consolidate
/// their chunks there.
#[derive(Default)]
pub struct BatchScratch {
    doomed: Vec<usize>,
    names: Vec<(Names, u64, usize)>,
    linked: Vec<usize>,
}

/// The directory with its clock, TTL policy and line to the expiry thread.
pub struct Store {
    dir: RwLock<Directory>,
    epoch: Instant,
    expiry: Sender<ExpiryMsg>,
    /// The entry table's hasher, for deadlines made under the read lock.
    key_hasher: RandomState,
    pub ttl: TtlPolicy,
    /// Refreshes of a time to live, by any of the operations that do it.
    pub refreshed: AtomicU64,
    /// Entries the expiry thread removed.
    pub expired: AtomicU64,
}

impl Store {
    pub fn new(ttl: TtlPolicy, expiry: Sender<ExpiryMsg>) -> Store {
        let dir = Directory::default();
        Store {
            key_hasher: dir.hasher.clone(),
            dir: RwLock::new(dir),
            epoch: Instant::now(),
            expiry,
            ttl,
            refreshed: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Directory> {
        self.dir.read()
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Directory> {
        self.dir.write()
    }

    /// Milliseconds since the store was created: the clock of every
    /// deadline.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sets an entry's TTL, in seconds from now, and makes sure the expiry
    /// thread will look at it in time. Needs only the read lock.
    pub fn set_ttl(&self, entry: &Entry, ttl_secs: u32) {
        let at = self.now().saturating_add(ttl_secs as u64 * 1000);
        entry.expires.store(at, Ordering::Relaxed);
        self.schedule_at(entry, at);
    }

    /// Sets an entry's deadline `ms` milliseconds from now (an entry
    /// brought back from the state file with the time it had left).
    pub fn set_expiry_in(&self, entry: &Entry, ms: u64) {
        let at = self.now().saturating_add(ms);
        entry.expires.store(at, Ordering::Relaxed);
        self.schedule_at(entry, at);
    }

    /// Makes sure the expiry thread looks at `entry` by its deadline `at`.
    fn schedule_at(&self, entry: &Entry, at: u64) {
        let due = sweep_time(at);
        let scheduled = entry.scheduled.fetch_min(due, Ordering::Relaxed);
        if due < scheduled {
            self.schedule(due, &entry.key);
        }
    }

    /// Refreshes a dynamic entry to `ttl_secs` and returns the seconds it
    /// has now. An application entry that lives with its person refreshes
    /// the person, so that the two never part, but only ever lengthens
    /// the person's time: each entry keeps the TTL its own refreshes gave
    /// it ([MS-TAIL] 2.2.1.2), and a short refresh of the application
    /// must not end a person refreshed for longer.
    pub fn refresh(&self, dir: &Directory, entry: &Entry, ttl_secs: u32) -> u64 {
        self.refreshed.fetch_add(1, Ordering::Relaxed);
        let holder = dir.ttl_holder(entry);
        if std::ptr::eq(holder, entry) {
            self.set_ttl(entry, ttl_secs);
            return ttl_secs.into();
        }
        let now = self.now();
        let at = now.saturating_add(u64::from(ttl_secs) * 1000);
        // At once, so that of two refreshes at the same time the longer
        // wins, whichever stores last.
        let before = holder.expires.fetch_max(at, Ordering::Relaxed);
        if at > before {
            self.schedule_at(holder, at);
            return ttl_secs.into();
        }
        (before - now).div_ceil(1000)
    }

    /// Seconds left before an entry expires (rounded up), if it is dynamic.
    pub fn ttl_left(dir: &Directory, entry: &Entry, now: u64) -> Option<u64> {
        match dir.expires_of(entry) {
            NEVER => None,
            at => Some(at.saturating_sub(now).div_ceil(1000)),
        }
    }

    /// The deadline `at` for the entry holding `key`.
    pub fn deadline(&self, at: u64, key: &Key) -> Deadline {
        Deadline::new(&self.key_hasher, at, key)
    }

    fn schedule(&self, at: u64, key: &Key) {
        let deadline = self.deadline(at, key);
        // The expiry thread only stops at shutdown; a failed send then
        // means nothing is left to expire.
        let _ = self.expiry.send(ExpiryMsg::Schedule(deadline));
    }

    /// Asks the expiry thread to stop.
    pub fn stop_expiry(&self) {
        let _ = self.expiry.send(ExpiryMsg::Shutdown);
    }
}

/// Builds the static tree: `o=Intranet` with `ou=Dynamic`,
/// `ou=Applications` and `ou=Admin`, and the schema entries under
/// `cn=Schema,ou=Admin,o=Intranet`.
pub fn load_static_tree(dir: &mut Directory) {
    let text = |s: &str| s.as_bytes().to_vec();
    let mut add = |dn: &str, attrs: Vec<(Attr, Vec<Vec<u8>>)>| {
        let parsed = Dn::parse(dn.as_bytes()).expect("static DNs are valid");
        let key = parsed.key();
        let parent_at = key.len() - parsed.parent().key().len();
        let entry = Entry::new(text(dn), key, parent_at, Attributes::from_list(attrs));
        let _ = dir.insert(entry, 0);
    };
    add(
        "o=Intranet",
        vec![
            (attr::OBJECT_CLASS, vec![text("top"), text("organization")]),
            (attr::O, vec![text("Intranet")]),
        ],
    );
    for ou in ["Dynamic", "Applications", "Admin"] {
        add(
            &format!("ou={ou},o=Intranet"),
            vec![
                (
                    attr::OBJECT_CLASS,
                    vec![text("top"), text("organizationalUnit")],
                ),
                (attr::OU, vec![text(ou)]),
            ],
        );
    }
    add(
        "cn=Schema,ou=Admin,o=Intranet",
        vec![
            (attr::OBJECT_CLASS, vec![text("top"), text("container")]),
            (attr::CN, vec![text("Schema")]),
        ],
    );
    for (cn, attrs) in crate::directory::schema::schema_entries() {
        add(&format!("cn={cn},cn=Schema,ou=Admin,o=Intranet"), attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::entry::ENTRY_OVERHEAD;

    fn person(cn: &str) -> Entry {
        let dn = format!("cn={cn},ou=Dynamic,o=Intranet");
        let parsed = Dn::parse(dn.as_bytes()).unwrap();
        let key = parsed.key();
        let parent_at = key.len() - parsed.parent().key().len();
        let attrs = Attributes::from_list(vec![
            (
                attr::OBJECT_CLASS,
                vec![b"rtPerson".to_vec(), b"dynamicObject".to_vec()],
            ),
            (attr::CN, vec![cn.as_bytes().to_vec()]),
        ]);
        Entry::new(dn.into_bytes(), key, parent_at, attrs)
    }

    /// Slots of every entry, by name.
    fn slots(dir: &Directory) -> std::collections::HashMap<Vec<u8>, usize> {
        dir.slots_from(0)
            .map(|(next, e)| (e.key.to_vec(), next.slot - 1))
            .collect()
    }

    #[test]
    fn entries_keep_their_slots_while_the_layout_stays() {
        // Whether removed slots are left for a rehash in place depends on
        // where the keyed hashes put the entries: fresh directories are
        // tried until one has rehashed in place.
        let (mut grown, mut in_place, mut kept) = (0, 0, 0);
        for _ in 0..30 {
            let mut dir = Directory::default();
            let mut live = std::collections::VecDeque::new();
            // A table of 256 slots filled to the 224 entries it holds,
            // emptied to 74, which leaves removed slots behind, then filled
            // again: an insert with no room left may then rehash in place.
            for round in 0..600usize {
                let before = (dir.layout(), dir.entries.num_buckets(), slots(&dir));
                if (224..374).contains(&round) {
                    let key: Key = live.pop_front().unwrap();
                    assert_eq!(dir.remove(&key), 1);
                } else {
                    let entry = person(&format!("u{round}"));
                    live.push_back(entry.key.clone());
                    dir.insert(entry, 0).unwrap();
                }
                let after = slots(&dir);
                if dir.layout() != before.0 {
                    match dir.entries.num_buckets() == before.1 {
                        true => in_place += 1,
                        false => grown += 1,
                    }
                    continue;
                }
                kept += 1;
                for (key, slot) in &before.2 {
                    if let Some(now) = after.get(key) {
                        assert_eq!(now, slot, "moved without a change of layout");
                    }
                }
            }
            let walked = dir.slots_from(0).count();
            assert_eq!(walked, dir.len());
            if in_place > 0 {
                break;
            }
        }
        assert!(grown > 0 && in_place > 0, "{grown} {in_place} {kept}");
    }

    /// The footprint counted afresh, to hold the running sum against.
    fn summed(dir: &Directory) -> usize {
        dir.slots_from(0)
            .map(|(_, e)| e)
            .filter(|e| e.is(class::DYNAMIC))
            .map(Entry::footprint)
            .sum()
    }

    #[test]
    fn footprint_follows_every_change_and_limits_growth() {
        let mut dir = Directory::default();
        dir.insert(person("a"), 0).unwrap();
        let key = dir.insert(person("b"), 0).unwrap().key.clone();
        assert_eq!(dir.footprint(), summed(&dir));
        let one = dir.footprint() / 2;
        assert!(one > ENTRY_OVERHEAD);
        let comment = vec![b'x'; 1000];
        let mut attrs = dir.get(&key).unwrap().attrs.to_list();
        attrs.push((attr::COMMENT, vec![comment]));
        dir.set_attrs(&key, Attributes::from_list(attrs));
        assert!(dir.footprint() > 2 * one + 1000);
        assert_eq!(dir.footprint(), summed(&dir));
        dir.remove(&key);
        assert_eq!(dir.footprint(), one);
        // An expired entry replaced by its name gives back its own.
        let e = person("a");
        dir.insert(e, 0).unwrap_err();
        dir.get(b"cn=a,ou=dynamic,o=intranet")
            .unwrap()
            .expires
            .store(1, Ordering::Relaxed);
        dir.insert(person("a"), 5).unwrap();
        assert_eq!(dir.footprint(), one);

        // Each name costs its index slot.
        let mut named = person("c");
        let names = (0..250).map(|i| format!("n{i}").into_bytes()).collect();
        named.attrs = Attributes::from_list(vec![(attr::CN, names)]);
        let plain = person("c").footprint();
        assert!(named.footprint() >= plain + 249 * crate::directory::entry::NAME_OVERHEAD);

        assert!(dir.has_room(usize::MAX), "no limit by default");
        dir.set_max_footprint(one + 100);
        assert!(dir.has_room(100));
        assert!(!dir.has_room(101));
        assert!(!dir.has_room(usize::MAX));
        dir.set_max_footprint(one / 2);
        assert!(dir.has_room(0), "what does not grow may go on");
        assert!(!dir.has_room(1));
    }

    #[test]
    fn cn_index_finds_entries_case_insensitively_and_forgets_removed_ones() {
        let mut dir = Directory::default();
        dir.insert(person("Eric"), 0).unwrap();
        assert_eq!(dir.by_cn(b"ERIC ").count(), 1);
        assert!(dir.insert(person("eric"), 0).is_err(), "same key");
        let key = dir.by_cn(b"eric").next().unwrap().key.clone();
        assert_eq!(
            dir.get(&key).unwrap().parent_key(),
            b"ou=dynamic,o=intranet"
        );
        assert_eq!(dir.remove(&key), 1);
        assert!(dir.by_cn(b"eric").next().is_none());
        assert_eq!(dir.dynamic_count(), 0);
    }

    #[test]
    fn an_entry_is_found_once_under_each_of_its_names() {
        let mut dir = Directory::default();
        let mut entry = person("Eric");
        entry.attrs = Attributes::from_list(vec![(
            attr::CN,
            vec![b"Eric".to_vec(), b" ERIC".to_vec(), b"eric2".to_vec()],
        )]);
        let key = dir.insert(entry, 0).unwrap().key.clone();
        dir.insert(person("eric2"), 0).unwrap();
        assert_eq!(dir.by_cn(b"eric").count(), 1, "names that fold alike");
        assert_eq!(dir.by_cn(b"ERIC2").count(), 2);
        assert_eq!(dir.by_cn(b"eric3").count(), 0);
        dir.set_attrs(
            &key,
            Attributes::from_list(vec![(attr::CN, vec![b"x".to_vec()])]),
        );
        assert_eq!(dir.by_cn(b"eric").count(), 0);
        assert_eq!(dir.by_cn(b"eric2").count(), 1);
        assert_eq!(dir.by_cn(b"X ").next().unwrap().key, key);
        assert_eq!(dir.remove(&key), 1);
        assert_eq!(dir.by_cn(b"x").count(), 0);
    }

    #[test]
    fn an_expired_entry_frees_its_name() {
        let mut dir = Directory::default();
        let e = person("a");
        e.expires.store(10, Ordering::Relaxed);
        dir.insert(e, 0).unwrap();
        assert!(dir.insert(person("a"), 5).is_err());
        assert!(dir.insert(person("a"), 10).is_ok());
        assert_eq!(dir.len(), 1);
    }

    #[test]
    fn removing_a_person_removes_its_applications() {
        let mut dir = Directory::default();
        let p = dir.insert(person("a"), 0).unwrap().key.clone();
        let mut app = person("a");
        app.key = Key::from(&b"cn=a,appname=x,ou=applications,o=intranet"[..]);
        let a = dir.insert(app, 0).unwrap().key.clone();
        dir.attach(&p, &a);
        assert_eq!(dir.remove(&p), 2);
        assert!(dir.is_empty());
        assert_eq!(dir.footprint(), 0);
    }

    #[test]
    fn a_batch_removes_what_is_doomed_with_its_links_and_names() {
        let mut dir = Directory::default();
        let mut due = Vec::new();
        // More entries than one chunk of the batch holds.
        for i in 0..600 {
            let key = dir.insert(person(&format!("p{i}")), 0).unwrap().key.clone();
            due.push(dir.deadline(i, &key));
        }
        // A person with an application, both due.
        let p = dir.insert(person("linked"), 0).unwrap().key.clone();
        let mut app = person("linked");
        app.key = Key::from(&b"cn=linked,appname=x,ou=applications,o=intranet"[..]);
        let a = dir.insert(app, 0).unwrap().key.clone();
        dir.attach(&p, &a);
        due.push(dir.deadline(1, &p));
        due.push(dir.deadline(1, &a));
        // A deadline for an entry since replaced by another of its name.
        let old = dir.insert(person("again"), 0).unwrap().key.clone();
        dir.remove(&old);
        dir.insert(person("again"), 0).unwrap();
        // The old key is still held here: its address is not reused.
        due.push(dir.deadline(1, &old));
        let before = dir.len();

        let mut buried = 0;
        let removed = dir.remove_batch(
            &due,
            |_, d| d.at % 2 == 1,
            &mut |_| buried += 1,
            &mut BatchScratch::default(),
        );
        // 300 odd ones, the person and its application; not the new "again".
        assert_eq!(removed, 302);
        assert_eq!(buried, 302);
        assert_eq!(dir.len(), before - 302);
        assert_eq!(dir.dynamic_count(), 300 + 1);
        for i in 0..600 {
            let found = dir.by_cn(format!("P{i}").as_bytes()).count();
            assert_eq!(found, (i % 2 == 0) as usize, "p{i}");
        }
        assert_eq!(dir.by_cn(b"linked").count(), 0);
        assert_eq!(dir.by_cn(b"again").count(), 1);
        // No index slot is left behind: 300 even ones and the new "again".
        assert_eq!(dir.by_cn.table.len(), 301);
        assert_eq!(dir.footprint(), summed(&dir));
    }

    #[test]
    fn an_application_is_found_beside_its_person_and_lives_with_it() {
        let mut dir = Directory::default();
        let person_entry = person("a");
        person_entry.expires.store(100, Ordering::Relaxed);
        let p = dir.insert(person_entry, 0).unwrap().key.clone();
        let mut app = person("a");
        app.key = Key::from(&b"cn=a,appname=x,ou=applications,o=intranet"[..]);
        let a = dir.insert(app, 0).unwrap().key.clone();
        dir.attach(&p, &a);
        let person = dir.get(&p).unwrap();
        let apps: Vec<_> = dir.by_cn(b"a").other_than(&person.key).collect();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].key, a);
        assert!(dir.alive_beside(apps[0], person, 99));
        assert!(
            !dir.alive_beside(apps[0], person, 100),
            "dies with the person"
        );
        assert_eq!(
            dir.alive(apps[0], 99),
            dir.alive_beside(apps[0], person, 99)
        );
        // With another entry at hand, the person is looked up.
        let stranger = dir.get(&a).unwrap();
        assert!(dir.alive_beside(apps[0], stranger, 99));
        assert!(!dir.alive_beside(apps[0], stranger, 100));
    }

    #[test]
    fn set_attrs_reindexes_a_renamed_entry() {
        let mut dir = Directory::default();
        let key = dir.insert(person("old"), 0).unwrap().key.clone();
        let attrs = Attributes::from_list(vec![(attr::CN, vec![b"new".to_vec()])]);
        dir.set_attrs(&key, attrs);
        assert!(dir.by_cn(b"old").next().is_none());
        assert_eq!(dir.by_cn(b"new").count(), 1);
        assert_eq!(dir.dynamic_count(), 0, "no longer a dynamicObject");
    }

    #[test]
    fn removals_wait_for_the_next_tick_and_never_entries_stay() {
        assert_eq!(sweep_time(1), TICK);
        assert_eq!(sweep_time(TICK), TICK);
        assert_eq!(sweep_time(TICK + 1), 2 * TICK);
        assert_eq!(sweep_time(NEVER), NEVER);
    }

    #[test]
    fn ttl_policy_lowers_and_raises_instead_of_refusing() {
        let p = TtlPolicy::new(600, 10, 3600);
        assert_eq!(p.clamp(180_000), 3600);
        assert_eq!(p.clamp(1), 10);
        assert_eq!(p.clamp(300), 300);
        assert_eq!(p.default_ttl(), 600);
    }

    #[test]
    fn static_tree_holds_containers_and_schema() {
        let mut dir = Directory::default();
        load_static_tree(&mut dir);
        for dn in [
            &b"o=intranet"[..],
            b"ou=dynamic,o=intranet",
            b"ou=applications,o=intranet",
            b"cn=rtperson,cn=schema,ou=admin,o=intranet",
            b"cn=ntsecuritydescriptor,cn=schema,ou=admin,o=intranet",
        ] {
            assert!(dir.get(dn).is_some(), "{}", String::from_utf8_lossy(dn));
        }
    }
}
