//! Giving freed memory back to the system.
//!
//! glibc's malloc keeps what a program frees for its next allocations,
//! in as many arenas as threads have used. Under a steady churn of
//! registrations, connections and answers, free pages scattered through
//! those arenas stay resident even while the memory in use is flat.
//! [`give_back`] returns them with `malloc_trim`, every ten seconds or,
//! when a trim takes long (it walks every arena, holding its lock), a
//! thousand times as long as the last one took: at most a thousandth of
//! the time. What scattered them most was long-lived small blocks among
//! the workers' short-lived ones; the expiry thread's deadlines no longer
//! hold any ([`Deadline`](crate::directory::store::Deadline)).
//! Called by the expiry thread, the one thread that always runs and
//! wakes regularly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The least time between two trims.
pub const EVERY: Duration = Duration::from_secs(10);

/// Milliseconds since [`epoch`] when the next trim may be.
static NEXT: AtomicU64 = AtomicU64::new(EVERY.as_millis() as u64);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Returns free memory to the system if the last time was long enough
/// ago; whether it did.
pub fn give_back() -> bool {
    let now = epoch().elapsed().as_millis() as u64;
    let next = NEXT.load(Ordering::Relaxed);
    // Far in the future while a trim runs, so that no other starts.
    if now < next
        || NEXT
            .compare_exchange(next, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return false;
    }
    let started = Instant::now();
    trim();
    let took = started.elapsed();
    let pause = EVERY.max(took * 1000);
    NEXT.store(
        epoch().elapsed().as_millis() as u64 + pause.as_millis() as u64,
        Ordering::Relaxed,
    );
    log::debug!("gave free memory back in {took:?}; the next time in {pause:?}");
    true
}

/// What malloc holds from the system, and how much of it is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heap {
    pub in_use: u64,
    pub held: u64,
}

/// The heap as glibc counts it; `None` with another allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap() -> Option<Heap> {
    // SAFETY: mallinfo2 only reads malloc's counters, under its locks.
    let m = unsafe { libc::mallinfo2() };
    // The arenas' bytes and the large blocks mapped on their own.
    let mapped = m.hblkhd as u64;
    Some(Heap {
        in_use: m.uordblks as u64 + mapped,
        held: m.arena as u64 + mapped,
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap() -> Option<Heap> {
    None
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases malloc's own free
    // lists, under its own locks; it may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_heap_counts_what_is_allocated() {
        // Other tests allocate and free at the same time: only the block
        // itself is sure to be counted.
        let block = vec![1u8; 4 << 20];
        let during = heap().unwrap();
        assert!(during.in_use >= 4 << 20, "{during:?}");
        assert!(during.held >= during.in_use, "{during:?}");
        drop(block);
    }

    #[test]
    fn it_trims_at_most_every_ten_seconds() {
        // The first call of the process may or may not trim, depending on
        // whether another test called it first; the second at once never.
        give_back();
        assert!(!give_back());
    }
}
