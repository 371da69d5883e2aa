//! The state file: the dynamic entries kept across a restart.
//!
//! [`write`] takes a snapshot of every dynamic entry as standard LDIF
//! (RFC 2849): its DN, its attributes, and as operational attributes its
//! remaining `entryTTL`, its owner (`ilsOwner`), the person an
//! application entry lives with (`ilsLivesWith`) and, last, its deadline
//! in milliseconds since the Unix epoch (`ilsDeadline`). Entries are
//! copied under the read lock a batch at a time and written outside it,
//! so that a snapshot of a million entries never holds writers back for
//! more than a batch. The file is replaced atomically: a temporary file
//! in the same directory, fsync, rename, fsync of the directory. A crash
//! at any moment leaves either the old file or the new one.
//!
//! [`load`] reads it back before the server accepts connections: each
//! entry with what is left of its time (the time the server was down is
//! gone from it), and none whose time ran out. A damaged or truncated file
//! is read as far as it is sound; what was skipped is reported by line.
//!
//! Runs on the state thread (periodic snapshots, the last one at a stop)
//! and on the thread that starts the server. It imports only the
//! directory.

pub mod ldif;

use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::directory::dn::Dn;
use crate::directory::entry::{AttrValues, Attributes, Entry, Key, NEVER, class};
use crate::directory::owner::Owner;
use crate::directory::schema::{Attr, attr};
use crate::directory::store::{SlotCursor, Store};

/// Entries copied in one hold of the read lock.
const BATCH: usize = 256;

/// What a record of the file carries besides the entry's attributes.
const DEADLINE: &[u8] = b"ilsDeadline";
const LIVES_WITH: &[u8] = b"ilsLivesWith";

/// Milliseconds since the Unix epoch, now.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One entry, copied out of the store.
struct Copy {
    dn: Vec<u8>,
    attrs: Attributes,
    owner: Option<Owner>,
    /// The person's DN, for an application entry that lives with one.
    lives_with: Option<Vec<u8>>,
    /// The deadline on the store's clock.
    expires: u64,
}

/// What a snapshot wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub entries: usize,
    pub bytes: usize,
    pub took: Duration,
}

/// Writes a snapshot of the dynamic entries to `path`, atomically.
pub fn write(store: &Store, path: &Path) -> io::Result<Written> {
    let started = Instant::now();
    let temporary = temporary_path(path);
    let result = write_to(store, &temporary);
    let (entries, bytes) = match result {
        Ok(counts) => counts,
        Err(e) => {
            let _ = fs::remove_file(&temporary);
            return Err(e);
        }
    };
    fs::rename(&temporary, path)?;
    sync_directory(path)?;
    Ok(Written {
        entries,
        bytes,
        took: started.elapsed(),
    })
}

fn write_to(store: &Store, temporary: &Path) -> io::Result<(usize, usize)> {
    let file = File::create(temporary)?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(b"version: 1\n")?;
    let mut text = Vec::with_capacity(64 << 10);
    let (mut entries, mut bytes) = (0, 0);
    let mut cursor = Some(0);
    let mut layout = None;
    // Hashes of the keys written, so that a walk started again after the
    // table was rehashed writes no entry twice.
    let mut written = std::collections::HashSet::new();
    while let Some(from) = cursor {
        let (batch, next) = copy_batch(store, from, &mut layout, &written);
        cursor = next;
        // The clocks once a batch: the batch was copied at one moment.
        let (now, wall) = (store.now(), wall_ms());
        for (hash, copy) in batch {
            written.insert(hash);
            text.clear();
            record(&mut text, &copy, now, wall);
            out.write_all(&text)?;
            entries += 1;
            bytes += text.len();
        }
    }
    writeln!(out, "\n# ilsd state: {entries} entries")?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((entries, bytes))
}

/// Copies up to [`BATCH`] dynamic entries from a slot of the table on,
/// under the read lock; returns them with the hashes of their keys, and
/// where to go on (from the first slot again if the table was rehashed
/// since the last batch).
fn copy_batch(
    store: &Store,
    from: usize,
    layout: &mut Option<u64>,
    written: &std::collections::HashSet<u64>,
) -> (Vec<(u64, Copy)>, Option<usize>) {
    let dir = store.read();
    let now = store.now();
    let from = match *layout {
        Some(l) if l != dir.layout() => 0,
        _ => from,
    };
    *layout = Some(dir.layout());
    let hasher = dir.key_hasher();
    let mut batch = Vec::with_capacity(BATCH);
    for (SlotCursor { slot, .. }, entry) in dir.slots_from(from) {
        let hash = hasher.hash_one(&*entry.key);
        if entry.is(class::DYNAMIC) && dir.alive(entry, now) && !written.contains(&hash) {
            let lives_with = entry
                .person()
                .and_then(|k| dir.get(k))
                .map(|p| p.dn().into_owned());
            batch.push((
                hash,
                Copy {
                    dn: entry.dn().into_owned(),
                    attrs: entry.attrs.clone(),
                    owner: dir.owner_of(entry).cloned(),
                    lives_with,
                    expires: dir.expires_of(entry),
                },
            ));
        }
        if batch.len() >= BATCH {
            return (batch, Some(slot));
        }
    }
    (batch, None)
}

/// Writes one entry's record.
fn record(out: &mut Vec<u8>, copy: &Copy, now: u64, wall: u64) {
    out.push(b'\n');
    ldif::line(out, b"dn", &copy.dn);
    for (a, values) in copy.attrs.iter() {
        for v in values {
            ldif::line(out, a.name(), v);
        }
    }
    let left = copy.expires.saturating_sub(now);
    ldif::line(out, b"entryTTL", left.div_ceil(1000).to_string().as_bytes());
    if let Some(owner) = &copy.owner {
        ldif::line(out, attr::ILS_OWNER.name(), owner.to_string().as_bytes());
    }
    if let Some(person) = &copy.lives_with {
        ldif::line(out, LIVES_WITH, person);
    }
    let deadline = wall.saturating_add(left);
    ldif::line(out, DEADLINE, deadline.to_string().as_bytes());
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Makes a rename in the file's directory durable.
fn sync_directory(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Checks at start that the state file can be written where it is to be,
/// so that a directory that is missing or not writable is an error then
/// and not a silent loss at the first snapshot.
pub fn check_writable(path: &Path) -> io::Result<()> {
    let probe = temporary_path(path);
    File::create(&probe)
        .and_then(|f| f.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", probe.display())))?;
    fs::remove_file(&probe)
}

/// What [`load`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub entries: usize,
    /// Entries whose time ran out while the server was down.
    pub expired: usize,
    /// Records that could not be read or stored: the line each starts
    /// on, and why.
    pub skipped: Vec<(usize, String)>,
}

/// One record read back.
struct Restored {
    line: usize,
    dn: Dn,
    written: Vec<u8>,
    attrs: Vec<AttrValues>,
    owner: Option<Owner>,
    lives_with: Option<Vec<u8>>,
    deadline: u64,
}

/// Loads the entries of a state file into the store, a record at a time.
/// A missing file is an empty directory (the first start).
pub fn load(store: &Store, path: &Path) -> io::Result<Loaded> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    Ok(load_from(
        store,
        io::BufReader::with_capacity(1 << 20, file),
    ))
}

/// Loads the entries of a state file read from `input` (see [`load`]).
pub fn load_from(store: &Store, input: impl io::BufRead) -> Loaded {
    let mut loaded = Loaded::default();
    let wall = wall_ms();
    let mut links: Vec<(Key, Vec<u8>, u64)> = Vec::new();
    let mut dir = store.write();
    for record in ldif::Records::new(input) {
        let restored = match record
            .map_err(|d| (d.line, d.why.to_string()))
            .and_then(restore)
        {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(skip) => {
                loaded.skipped.push(skip);
                continue;
            }
        };
        if restored.deadline <= wall {
            loaded.expired += 1;
            continue;
        }
        let key = restored.dn.key();
        let parent_at = key.len() - restored.dn.parent().key().len();
        let entry = Entry::new(
            restored.written,
            key,
            parent_at,
            Attributes::from_list(restored.attrs),
        );
        if !entry.is(class::DYNAMIC) {
            let why = "not a dynamicObject: only dynamic entries are kept";
            loaded.skipped.push((restored.line, why.into()));
            continue;
        }
        let now = store.now();
        match dir.insert_owned(entry, restored.owner.as_ref(), now) {
            Ok(entry) => {
                let left = restored.deadline - wall;
                match restored.lives_with {
                    Some(person) => links.push((entry.key.clone(), person, left)),
                    None => store.set_expiry_in(entry, left),
                }
                loaded.entries += 1;
            }
            Err(_) => loaded
                .skipped
                .push((restored.line, "the entry is there twice".into())),
        }
    }
    // Application entries live with their people again; one whose person
    // did not come back keeps its own time.
    for (app, person, left) in links {
        let person_key = Dn::parse(&person).map(|d| d.key()).unwrap_or_default();
        match dir.get(&person_key).map(|p| p.key.clone()) {
            Some(person) => dir.attach(&person, &app),
            None => {
                if let Some(entry) = dir.get(&app) {
                    store.set_expiry_in(entry, left);
                }
            }
        }
    }
    loaded
}

/// Reads one record; `None` for the version line's record.
fn restore(record: ldif::Record) -> Result<Option<Restored>, (usize, String)> {
    let line = record.first().map_or(0, |(n, _, _)| *n);
    let fail = |why: &str| Err((line, why.to_string()));
    let mut lines = record.into_iter();
    let Some((_, name, dn_text)) = lines.next() else {
        return Ok(None);
    };
    if name.eq_ignore_ascii_case(b"version") {
        return Ok(None);
    }
    if !name.eq_ignore_ascii_case(b"dn") {
        return fail("a record starts with its dn");
    }
    let Ok(dn) = Dn::parse(&dn_text) else {
        return fail("the dn is not a DN");
    };
    let (mut attrs, mut owner, mut lives_with, mut deadline) = (Vec::new(), None, None, None);
    for (_, name, value) in lines {
        let a = Attr::from_name(&name);
        if name.eq_ignore_ascii_case(DEADLINE) {
            deadline = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(LIVES_WITH) {
            lives_with = Some(value);
        } else if a == attr::ILS_OWNER {
            owner = std::str::from_utf8(&value).ok().and_then(Owner::parse);
        } else if !a.is_operational() {
            match attrs.iter_mut().find(|(x, _): &&mut AttrValues| *x == a) {
                Some((_, values)) => values.push(value),
                None => attrs.push((a, vec![value])),
            }
        }
    }
    // The deadline comes last: a record cut short by a crash has none.
    let Some(deadline) = deadline.filter(|&d| d != NEVER) else {
        return fail("the record has no ilsDeadline (cut short?)");
    };
    Ok(Some(Restored {
        line,
        written: dn_text,
        dn,
        attrs,
        owner,
        lives_with,
        deadline,
    }))
}
