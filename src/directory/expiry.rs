//! The expiry thread: forgets dynamic entries whose TTL has run out
//! (RFC 2589, [MS-TAIL] 3.6).
//!
//! It keeps a [`Timetable`] of deadlines and sleeps on its channel until
//! the earliest one, so a new deadline or shutdown wakes it at once. A
//! refresh that moves a deadline later does not tell it anything: when the
//! old deadline comes up, the entry's own expiry time is later, and the
//! entry is scheduled again with that time. A deadline that no longer
//! matches the entry's earliest scheduled one is stale and dropped, so the
//! timetable never needs searching. Removals are done in batches so that a
//! million entries expiring in the same second never hold the write lock
//! long.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::directory::entry::Entry;
use crate::directory::store::{BatchScratch, Deadline, ExpiryMsg, Store, sweep_time};

/// Deadlines examined per hold of the write lock: about a millisecond of
/// removals on a busy machine, which keeps clients' latency across a mass
/// expiry within a few milliseconds.
const BATCH: usize = 2048;

/// How long new deadlines are let gather before they are taken in.
const GATHER: Duration = Duration::from_millis(5);

/// Starts the expiry thread.
pub fn spawn(store: Arc<Store>, inbox: Receiver<ExpiryMsg>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ilsd-expiry".into())
        .spawn(move || run(&store, &inbox))
}

fn run(store: &Store, inbox: &Receiver<ExpiryMsg>) {
    let mut timetable = Timetable::default();
    loop {
        // At least every ten seconds, to give freed memory back.
        let wait = timetable
            .next()
            .map_or(crate::memory::EVERY, |at| {
                Duration::from_millis(at.saturating_sub(store.now()))
            })
            .min(crate::memory::EVERY);
        match inbox.recv_timeout(wait) {
            Ok(ExpiryMsg::Schedule(d)) => {
                timetable.push(d);
                // Deadlines arrive by the thousand a second while users
                // register; taking each as it comes kept this thread
                // spinning on the channel, in CPU time the workers need.
                // An entry stops being served when it expires: removing
                // it a few milliseconds later changes nothing for clients.
                std::thread::sleep(GATHER.min(wait));
            }
            Ok(ExpiryMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        for msg in inbox.try_iter() {
            match msg {
                ExpiryMsg::Schedule(d) => timetable.push(d),
                ExpiryMsg::Shutdown => return,
            }
        }
        timetable.compact(store);
        sweep(store, &mut timetable);
        crate::memory::give_back();
    }
}

/// The deadlines the expiry thread holds: a min-heap of the distinct
/// times, and for each time the entries due then.
///
/// Deadlines are kept to the tick of [`sweep_time`], so a million users
/// given the same TTL within a second share some sixty times, and a sweep
/// walks long lists in order instead of popping a million items one by
/// one off a heap far larger than the cache.
///
/// A deadline is left behind when its entry is deleted, or given an
/// earlier deadline, before it comes. Those are dropped when they come up,
/// and also whenever the deadlines held have doubled since they were last
/// counted: a client that adds and deletes entries in a loop would
/// otherwise fill the timetable for a whole TTL.
pub struct Timetable {
    times: BinaryHeap<Reverse<u64>>,
    /// The hash and identity of each entry's key ([`Deadline`]).
    due: HashMap<u64, Vec<(u64, usize)>>,
    /// How many deadlines are held.
    count: usize,
    /// The count at which stale deadlines are dropped.
    compact_at: usize,
}

/// The fewest deadlines the timetable holds before it looks for stale
/// ones: a few megabytes.
const COMPACT_MIN: usize = 1 << 16;

impl Default for Timetable {
    fn default() -> Timetable {
        Timetable {
            times: BinaryHeap::new(),
            due: HashMap::new(),
            count: 0,
            compact_at: COMPACT_MIN,
        }
    }
}

impl Timetable {
    pub fn push(&mut self, Deadline { at, hash, id }: Deadline) {
        self.due
            .entry(at)
            .or_insert_with(|| {
                self.times.push(Reverse(at));
                Vec::new()
            })
            .push((hash, id));
        self.count += 1;
    }

    /// Drops the deadlines of entries that are gone or are due at another
    /// time, if the deadlines held have doubled since this was last done.
    /// Yields the read lock every few thousand deadlines.
    /// Sweeping comes first: nothing is done while deadlines are due.
    pub fn compact(&mut self, store: &Store) {
        if self.count < self.compact_at || self.next().is_some_and(|at| at <= store.now()) {
            return;
        }
        let mut dir = store.read();
        let mut checked = 0usize;
        for (&at, keys) in self.due.iter_mut() {
            keys.retain(|&(hash, id)| {
                checked += 1;
                if checked.is_multiple_of(4096) {
                    parking_lot::RwLockReadGuard::bump(&mut dir);
                }
                dir.named_by(&Deadline { at, hash, id })
                    .is_some_and(|e| e.scheduled.load(Ordering::Relaxed) == at)
            });
        }
        drop(dir);
        // A time left without entries is popped when it comes up.
        self.due.retain(|_, keys| !keys.is_empty());
        let before = self.count;
        self.count = self.due.values().map(Vec::len).sum();
        self.compact_at = (2 * self.count).max(COMPACT_MIN);
        log::debug!(
            "expiry: dropped {} stale deadlines, {} held",
            before - self.count,
            self.count
        );
    }

    /// The earliest time anything is due.
    pub fn next(&self) -> Option<u64> {
        self.times.peek().map(|Reverse(at)| *at)
    }

    /// Moves deadlines that are due by `now` into `out`, earliest first,
    /// until it holds `limit`.
    fn take_due(&mut self, now: u64, limit: usize, out: &mut Vec<Deadline>) {
        while out.len() < limit
            && let Some(at) = self.next().filter(|&at| at <= now)
        {
            let Some(keys) = self.due.get_mut(&at) else {
                self.times.pop();
                continue;
            };
            let take = keys.len().min(limit - out.len());
            out.extend(
                keys.drain(keys.len() - take..)
                    .map(|(hash, id)| Deadline { at, hash, id }),
            );
            self.count -= take;
            if keys.is_empty() {
                self.due.remove(&at);
                self.times.pop();
            }
        }
    }

    /// How many deadlines are held.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Removes the entries whose deadlines have come and that have expired.
/// Returns how many entries were removed.
///
/// Removing a million entries that expire within a second is a race
/// against clients for two CPUs. What decides how soon they are gone is
/// not the work under the write lock but the hand-overs: each time the
/// lock goes back to waiting clients, they run first and the sweep waits a
/// couple of milliseconds for a CPU, and work done outside the lock (such
/// as looking entries up under the read lock first) runs at a fraction of
/// a core. So a batch gathers deadlines across due times up to [`BATCH`],
/// each of which carries its key's hash, and only the freeing is left
/// until after the lock; under the lock each entry is found by its hash
/// and the identity of its key, without comparing names, and the
/// batch is removed a step at a time for many entries at once
/// ([`Directory::remove_batch`](crate::directory::store::Directory::remove_batch)),
/// which halved the time the lock is held.
pub fn sweep(store: &Store, timetable: &mut Timetable) -> usize {
    // Most wake-ups only take in new deadlines.
    if timetable.next().is_none_or(|at| at > store.now()) {
        return 0;
    }
    let mut removed = 0;
    // For the log line of a large sweep; taken at the first due batch, not
    // at every wake-up.
    let mut costs: Option<(Instant, Duration)> = None;
    let (mut locked, mut waited) = (Duration::ZERO, Duration::ZERO);
    // The buffers live across batches: allocating one of this size makes
    // glibc's malloc consolidate the small chunks the last batch freed.
    let mut due: Vec<Deadline> = Vec::with_capacity(BATCH);
    let mut graveyard: Vec<Box<Entry>> = Vec::with_capacity(BATCH);
    let mut later = Vec::new();
    let mut scratch = BatchScratch::default();
    loop {
        timetable.take_due(store.now(), BATCH, &mut due);
        if due.is_empty() {
            break;
        }
        costs.get_or_insert_with(|| (Instant::now(), thread_cpu()));
        let asked = Instant::now();
        let mut dir = store.write();
        let lock_start = Instant::now();
        waited += lock_start - asked;
        let now = store.now();
        let doomed = |entry: &Entry, &Deadline { at, .. }: &Deadline| {
            if entry.scheduled.load(Ordering::Relaxed) != at {
                // A refresh brought the deadline forward and scheduled it
                // separately, or the entry this deadline was made for is
                // gone and another key took its address: stale.
                return false;
            }
            let expires = entry.expires();
            if expires > now {
                let at = sweep_time(expires);
                entry.scheduled.store(at, Ordering::Relaxed);
                // Of the key itself: an entry found by a deadline for an
                // earlier key at the same address need not share its hash.
                later.push(store.deadline(at, &entry.key));
            }
            expires <= now
        };
        removed += dir.remove_batch(&due, doomed, &mut |e| graveyard.push(e), &mut scratch);
        locked += lock_start.elapsed();
        parking_lot::RwLockWriteGuard::unlock_fair(dir);
        due.clear();
        graveyard.clear();
        for deadline in later.drain(..) {
            timetable.push(deadline);
        }
    }
    store.expired.fetch_add(removed as u64, Ordering::Relaxed);
    if let Some((started, cpu)) = costs {
        let level = if removed >= 10_000 {
            log::Level::Info
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "expired {removed} entries in {:?} ({:?} of CPU, {:?} holding the write lock, {:?} waiting for it)",
            started.elapsed(),
            thread_cpu().saturating_sub(cpu),
            locked,
            waited
        );
    }
    removed
}

fn thread_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::dn::Dn;
    use crate::directory::entry::{Attributes, Entry};
    use crate::directory::schema::attr;
    use crate::directory::store::TtlPolicy;

    fn store() -> (Store, Receiver<ExpiryMsg>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Store::new(TtlPolicy::new(60, 1, 3600), tx), rx)
    }

    fn add(store: &Store, cn: &str, ttl_ms: u64) {
        let dn = format!("cn={cn},ou=Dynamic,o=Intranet");
        let key = Dn::parse(dn.as_bytes()).unwrap().key();
        let attrs = Attributes::from_list(vec![
            (
                attr::OBJECT_CLASS,
                vec![b"rtPerson".to_vec(), b"dynamicObject".to_vec()],
            ),
            (attr::CN, vec![cn.as_bytes().to_vec()]),
        ]);
        let entry = Entry::new(dn.into_bytes(), key, 0, attrs);
        let at = store.now() + ttl_ms;
        entry.expires.store(at, Ordering::Relaxed);
        entry.scheduled.store(at, Ordering::Relaxed);
        store.write().insert(entry, 0).unwrap();
    }

    fn scheduled(inbox: &Receiver<ExpiryMsg>) -> Vec<Deadline> {
        inbox
            .try_iter()
            .filter_map(|m| match m {
                ExpiryMsg::Schedule(d) => Some(d),
                ExpiryMsg::Shutdown => None,
            })
            .collect()
    }

    /// A timetable with every stored entry's own deadline.
    fn timetable_of(store: &Store) -> Timetable {
        let mut timetable = Timetable::default();
        for (_, e) in store.read().slots_from(0) {
            timetable.push(store.deadline(e.expires(), &e.key));
        }
        timetable
    }

    #[test]
    fn deadlines_of_deleted_and_rescheduled_entries_are_dropped_once_they_pile_up() {
        let (store, _inbox) = store();
        for i in 0..10 {
            add(&store, &format!("u{i}"), 60_000);
        }
        let mut timetable = timetable_of(&store);
        // Deleted, then added again under the same name: its deadline is
        // not the old one's.
        let key = |cn: &str| {
            store
                .read()
                .by_cn(cn.as_bytes())
                .next()
                .unwrap()
                .key
                .clone()
        };
        // Held, so that no new key takes a removed one's address.
        let mut gone = Vec::new();
        for i in 0..4 {
            gone.push(key(&format!("u{i}")));
            store.write().remove(&gone[i]);
        }
        add(&store, "u0", 60_000);
        let u0 = key("u0");
        let at = store.read().get(&u0).unwrap().expires();
        timetable.push(store.deadline(at, &u0));
        // Brought forward: the later deadline is stale.
        let u5 = key("u5");
        let sooner = store.now() + 30_000;
        store
            .read()
            .get(&u5)
            .unwrap()
            .scheduled
            .store(sooner, Ordering::Relaxed);
        timetable.push(store.deadline(sooner, &u5));
        assert_eq!(timetable.len(), 12);

        timetable.compact(&store);
        assert_eq!(timetable.len(), 12, "too few to look at");
        timetable.compact_at = 12;
        timetable.compact(&store);
        // u4..u9 once each, and the new u0.
        assert_eq!(timetable.len(), 7);
        assert_eq!(timetable.compact_at, COMPACT_MIN);
        let mut due = Vec::new();
        timetable.take_due(u64::MAX, 100, &mut due);
        assert_eq!(due.len(), 7);
        assert!(due.iter().any(|d| d.at == sooner));
    }

    #[test]
    fn due_entries_go_and_refreshed_ones_are_rescheduled() {
        let (store, inbox) = store();
        add(&store, "gone", 0);
        add(&store, "kept", 0);
        let mut timetable = timetable_of(&store);
        let kept = store.read().by_cn(b"kept").next().unwrap().key.clone();
        store.set_ttl(store.read().get(&kept).unwrap(), 60);
        assert!(
            scheduled(&inbox).is_empty(),
            "a later deadline sends nothing"
        );
        // Expired but not yet swept: counted (the monitor entry's
        // dynamicEntries), though no longer served.
        {
            let dir = store.read();
            let gone = dir.by_cn(b"gone").next().unwrap();
            assert_eq!(dir.dynamic_count(), 2);
            assert!(!dir.alive(gone, store.now()));
        }
        assert_eq!(sweep(&store, &mut timetable), 1);
        assert_eq!(store.read().dynamic_count(), 1);
        assert!(store.read().by_cn(b"gone").next().is_none());
        assert_eq!(store.read().by_cn(b"kept").count(), 1);
        assert_eq!(timetable.len(), 1, "the refreshed entry is pushed again");
        assert!(timetable.next().unwrap() >= store.now() + 59_000);
    }

    #[test]
    fn an_earlier_deadline_is_scheduled_and_the_old_item_is_stale() {
        let (store, inbox) = store();
        add(&store, "a", 60_000);
        let mut timetable = timetable_of(&store);
        let key = store.read().by_cn(b"a").next().unwrap().key.clone();
        store.set_ttl(store.read().get(&key).unwrap(), 0);
        for d in scheduled(&inbox) {
            timetable.push(d);
        }
        assert_eq!(timetable.len(), 2);
        assert_eq!(sweep(&store, &mut timetable), 1);
        assert!(store.read().is_empty());
        assert_eq!(timetable.len(), 1, "the later deadline is left");
        assert_eq!(sweep(&store, &mut timetable), 0, "not due yet");
    }

    #[test]
    fn a_deadline_is_dropped_when_its_entry_was_replaced() {
        let (store, _inbox) = store();
        add(&store, "a", 0);
        let mut timetable = timetable_of(&store);
        let old = store.read().by_cn(b"a").next().unwrap().key.clone();
        let at = store.read().get(&old).unwrap().expires();
        assert_eq!(store.write().remove(&old), 1);
        // The new entry of the same name looks due at the old deadline too,
        // but has deadlines of its own: the old one is not for it. (The
        // old key is still held here; had the new key taken its address,
        // the old deadline would find the new entry, and rightly remove it
        // since it is due.)
        add(&store, "a", 0);
        let new = store.read().by_cn(b"a").next().unwrap().key.clone();
        store
            .read()
            .get(&new)
            .unwrap()
            .scheduled
            .store(at, Ordering::Relaxed);
        assert_eq!(sweep(&store, &mut timetable), 0);
        assert_eq!(store.read().by_cn(b"a").count(), 1);
        let mut timetable = timetable_of(&store);
        assert_eq!(sweep(&store, &mut timetable), 1);
    }

    #[test]
    fn an_expired_person_takes_its_applications_along() {
        let (store, _inbox) = store();
        add(&store, "p", 0);
        let mut timetable = timetable_of(&store);
        let app_dn = "cn=p,appname=ms-netmeeting,ou=Applications,o=Intranet";
        let app_key = Dn::parse(app_dn.as_bytes()).unwrap().key();
        let app = Entry::new(app_dn.into(), app_key, 0, Attributes::default());
        let app_key = store.write().insert(app, 0).unwrap().key.clone();
        let person = store.read().by_cn(b"p").next().unwrap().key.clone();
        store.write().attach(&person, &app_key);
        assert_eq!(sweep(&store, &mut timetable), 2);
        assert!(store.read().is_empty());
    }

    #[test]
    fn a_deadline_keeps_no_part_of_a_removed_entry() {
        let (store, _inbox) = store();
        add(&store, "gone", 60_000);
        let mut timetable = timetable_of(&store);
        assert_eq!(timetable.len(), 1);
        let key = store.read().by_cn(b"gone").next().unwrap().key.clone();
        store.write().remove(&key);
        // Only this test holds the key now: the deadline waiting in the
        // timetable for a minute does not keep it allocated.
        assert_eq!(Arc::strong_count(&key), 1);
        assert_eq!(Arc::weak_count(&key), 0);
        timetable.compact_at = 1;
        timetable.compact(&store);
        assert_eq!(timetable.len(), 0, "dropped as stale");
    }

    #[test]
    fn deadlines_come_due_in_order_of_time() {
        let mut timetable = Timetable::default();
        for (id, at) in [30, 10, 20, 10].into_iter().enumerate() {
            timetable.push(Deadline { at, hash: 0, id });
        }
        assert_eq!(timetable.len(), 4);
        let mut due = Vec::new();
        timetable.take_due(5, 10, &mut due);
        assert!(due.is_empty());
        timetable.take_due(25, 1, &mut due);
        assert_eq!(due.len(), 1, "up to the limit");
        timetable.take_due(25, 10, &mut due);
        let times: Vec<u64> = due.iter().map(|d| d.at).collect();
        assert_eq!(times, [10, 10, 20]);
        assert_eq!(timetable.len(), 1);
        assert_eq!(timetable.next(), Some(30));
    }

    #[test]
    fn mass_expiry_is_swept_across_holds_of_the_lock() {
        let (store, _inbox) = store();
        const N: usize = 20_000;
        for i in 0..N {
            add(&store, &format!("u{i}"), 0);
        }
        let mut timetable = timetable_of(&store);
        assert_eq!(sweep(&store, &mut timetable), N);
        assert!(timetable.is_empty());
        assert!(store.read().is_empty());
    }
}
