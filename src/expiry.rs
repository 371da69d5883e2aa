//! The expiry thread: forgets dynamic entries whose TTL has run out
//! (RFC 2589, [MS-TAIL] 3.6).
//!
//! It owns a min-heap of deadlines and sleeps on its channel until the
//! earliest one, so a new deadline or shutdown wakes it at once. A refresh
//! that moves a deadline later does not tell it anything: when the old
//! deadline comes up, the entry's own expiry time is later, and the entry
//! is pushed again with that time. Heap items that no longer match the
//! entry's earliest scheduled deadline are stale and dropped, so the heap
//! never needs searching. Removals are done in batches so that a million
//! entries expiring in the same second never hold the write lock long.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::schema::attr;
use crate::store::{Deadline, ExpiryMsg, Store};

/// Entries examined per hold of the write lock.
const BATCH: usize = 1024;

/// The longest sleep when nothing is scheduled.
const IDLE: Duration = Duration::from_secs(3600);

/// Starts the expiry thread.
pub fn spawn(store: Arc<Store>, inbox: Receiver<ExpiryMsg>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ilsd-expiry".into())
        .spawn(move || run(&store, &inbox))
}

fn run(store: &Store, inbox: &Receiver<ExpiryMsg>) {
    let mut expiry_heap: BinaryHeap<Reverse<Deadline>> = BinaryHeap::new();
    loop {
        let wait = match expiry_heap.peek() {
            Some(Reverse(next)) => Duration::from_millis(next.at.saturating_sub(store.now())),
            None => IDLE,
        };
        match inbox.recv_timeout(wait) {
            Ok(ExpiryMsg::Schedule(d)) => expiry_heap.push(Reverse(d)),
            Ok(ExpiryMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        for msg in inbox.try_iter() {
            match msg {
                ExpiryMsg::Schedule(d) => expiry_heap.push(Reverse(d)),
                ExpiryMsg::Shutdown => return,
            }
        }
        sweep(store, &mut expiry_heap);
    }
}

/// Pops every due deadline and removes the entries that have expired.
/// Returns how many entries were removed.
///
/// Sweeping a million entries costs little computation but a dozen cache
/// misses each (entry, key, attributes, table and index slots), which
/// made removing them take over a second under the write lock. So each
/// batch is first looked at under the read lock, while clients go on,
/// which brings that memory into the cache; the write lock is then held
/// only for the removals, and handed to waiting readers after each batch.
pub fn sweep(store: &Store, expiry_heap: &mut BinaryHeap<Reverse<Deadline>>) -> usize {
    let mut removed = 0;
    // For the log line of a large sweep; taken at the first due batch, not
    // at every wake-up.
    let mut costs: Option<(Instant, Duration)> = None;
    let mut locked = Duration::ZERO;
    let mut due = Vec::new();
    loop {
        let now = store.now();
        while due.len() < BATCH
            && let Some(Reverse(next)) = expiry_heap.peek()
            && next.at <= now
        {
            if let Some(Reverse(d)) = expiry_heap.pop() {
                due.push(d);
            }
        }
        if due.is_empty() {
            if let Some((started, cpu)) = costs {
                let level = if removed >= 10_000 {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "expired {removed} entries in {:?} ({:?} of CPU, {:?} holding the write lock)",
                    started.elapsed(),
                    thread_cpu().saturating_sub(cpu),
                    locked
                );
            }
            return removed;
        }
        costs.get_or_insert_with(|| (Instant::now(), thread_cpu()));
        {
            let dir = store.read();
            let mut touched = 0usize;
            for d in &due {
                if let Some(entry) = dir.get(&d.key)
                    && let Some(cn) = entry.attrs.first(&attr::CN)
                {
                    touched += dir.by_cn(cn).len();
                }
            }
            std::hint::black_box(touched);
        }
        let mut dir = store.write();
        let lock_start = Instant::now();
        for Deadline { at, key } in due.drain(..) {
            let Some(entry) = dir.get(&key) else {
                continue;
            };
            if entry.scheduled.load(Ordering::Relaxed) != at {
                // A refresh brought the deadline forward and scheduled it
                // separately; this item is stale.
                continue;
            }
            let expires = entry.expires();
            if expires <= now {
                removed += dir.remove(&key);
            } else {
                entry.scheduled.store(expires, Ordering::Relaxed);
                expiry_heap.push(Reverse(Deadline { at: expires, key }));
            }
        }
        locked += lock_start.elapsed();
        parking_lot::RwLockWriteGuard::unlock_fair(dir);
    }
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
    use crate::dn::Dn;
    use crate::entry::{Attributes, Entry};
    use crate::schema::attr;
    use crate::store::TtlPolicy;

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

    fn heap_from(inbox: &Receiver<ExpiryMsg>) -> BinaryHeap<Reverse<Deadline>> {
        inbox
            .try_iter()
            .filter_map(|m| match m {
                ExpiryMsg::Schedule(d) => Some(Reverse(d)),
                ExpiryMsg::Shutdown => None,
            })
            .collect()
    }

    #[test]
    fn due_entries_go_and_refreshed_ones_are_rescheduled() {
        let (store, inbox) = store();
        add(&store, "gone", 0);
        add(&store, "kept", 0);
        let mut heap: BinaryHeap<_> = store
            .read()
            .iter()
            .map(|e| {
                Reverse(Deadline {
                    at: e.expires(),
                    key: e.key.clone(),
                })
            })
            .collect();
        let kept = store.read().by_cn(b"kept")[0].clone();
        store.set_ttl(store.read().get(&kept).unwrap(), 60);
        assert!(
            heap_from(&inbox).is_empty(),
            "a later deadline sends nothing"
        );
        assert_eq!(sweep(&store, &mut heap), 1);
        assert!(store.read().by_cn(b"gone").is_empty());
        assert_eq!(store.read().by_cn(b"kept").len(), 1);
        assert_eq!(heap.len(), 1, "the refreshed entry is pushed again");
        assert!(heap.peek().unwrap().0.at >= store.now() + 59_000);
    }

    #[test]
    fn an_earlier_deadline_is_scheduled_and_the_old_item_is_stale() {
        let (store, inbox) = store();
        add(&store, "a", 60_000);
        let key = store.read().by_cn(b"a")[0].clone();
        let mut heap: BinaryHeap<_> = [Reverse(Deadline {
            at: store.now() + 60_000,
            key: key.clone(),
        })]
        .into();
        store.set_ttl(store.read().get(&key).unwrap(), 0);
        heap.extend(heap_from(&inbox));
        assert_eq!(heap.len(), 2);
        assert_eq!(sweep(&store, &mut heap), 1);
        assert!(store.read().is_empty());
    }

    #[test]
    fn mass_expiry_is_swept_across_holds_of_the_lock() {
        let (store, _inbox) = store();
        const N: usize = 20_000;
        for i in 0..N {
            add(&store, &format!("u{i}"), 0);
        }
        let mut heap: BinaryHeap<_> = store
            .read()
            .iter()
            .map(|e| {
                Reverse(Deadline {
                    at: e.expires(),
                    key: e.key.clone(),
                })
            })
            .collect();
        assert_eq!(sweep(&store, &mut heap), N);
        assert!(heap.is_empty());
    }
}
