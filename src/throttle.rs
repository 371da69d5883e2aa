//! Warnings that clients can provoke at will (refused connections, failed
//! binds, a full directory): each kind is logged at most once every ten
//! seconds, with how many times it happened since, so that no client can
//! flood the log. Used from any thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The least time between two warnings of one kind.
const EVERY: Duration = Duration::from_secs(10);

/// One kind of warning.
pub struct Throttle {
    /// Occurrences not yet reported.
    unreported: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    pub const fn new() -> Throttle {
        Throttle {
            unreported: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// Counts one occurrence, and logs it if the last warning of this kind
    /// is old enough: `message` gets how many occurred since that warning,
    /// this one included, which is also returned.
    pub fn warn(&self, message: impl FnOnce(u64) -> String) -> Option<u64> {
        self.unreported.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock();
        if last.is_some_and(|at| at.elapsed() < EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        let count = self.unreported.swap(0, Ordering::Relaxed);
        log::warn!("{}", message(count));
        Some(count)
    }
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_then_silence_with_a_count() {
        let throttle = Throttle::new();
        let logged: Vec<u64> = (0..5)
            .filter_map(|_| throttle.warn(|_| String::new()))
            .collect();
        assert_eq!(logged, vec![1], "the first only");
        // Ten seconds later, the next reports the ones in between too.
        *throttle.last.lock() = Some(Instant::now() - EVERY);
        assert_eq!(throttle.warn(|_| String::new()), Some(5));
        assert_eq!(throttle.warn(|_| String::new()), None);
    }
}
