//! Slowing down password guessing: after `bind-failures` failed binds
//! from one address within a minute, that address's further binds wait,
//! one second at first and twice as long each time, up to
//! `bind-delay-max`; a successful bind forgets the address.
//!
//! The wait is served on the thread of the connection that binds (its
//! own worker), so waiting binds hold no other thread. Read and written
//! by the bind operation on the worker threads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long failures are remembered.
const WINDOW: Duration = Duration::from_secs(60);

/// Addresses remembered at most: past this, the oldest are forgotten, so
/// that a flood of addresses cannot grow the table without bound.
const MAX_ADDRESSES: usize = 65_536;

/// The failed binds of one address in the current window.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

/// The failed binds of every address.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Backoff {
    /// How long a bind from `ip` waits before it is checked: nothing
    /// below `threshold` failures in the window (0 turns the wait off),
    /// then one second doubled for each failure past it, at most `max`.
    pub fn delay(&self, ip: IpAddr, threshold: u32, max: Duration) -> Duration {
        if threshold == 0 {
            return Duration::ZERO;
        }
        let failures = self.failures.lock();
        let Some(f) = failures.get(&ip.to_canonical()) else {
            return Duration::ZERO;
        };
        if f.since.elapsed() > WINDOW || f.count < threshold {
            return Duration::ZERO;
        }
        let doublings = (f.count - threshold).min(16);
        Duration::from_secs(1 << doublings).min(max)
    }

    /// Counts a failed bind.
    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_ADDRESSES {
            failures.retain(|_, f| now.duration_since(f.since) <= WINDOW);
            if failures.len() >= MAX_ADDRESSES {
                // Still full of fresh failures: the oldest go.
                let oldest = failures.values().map(|f| f.since).min();
                failures.retain(|_, f| Some(f.since) != oldest);
            }
        }
        let f = failures.entry(ip.to_canonical()).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.duration_since(f.since) > WINDOW {
            *f = Failures {
                count: 0,
                since: now,
            };
        }
        f.count = f.count.saturating_add(1);
    }

    /// Forgets an address's failures after a successful bind.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().remove(&ip.to_canonical());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_threshold_double_the_wait_up_to_the_cap() {
        let backoff = Backoff::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let max = Duration::from_secs(8);
        for _ in 0..4 {
            backoff.failed(ip);
        }
        assert_eq!(backoff.delay(ip, 5, max), Duration::ZERO);
        backoff.failed(ip);
        assert_eq!(backoff.delay(ip, 5, max), Duration::from_secs(1));
        backoff.failed(ip);
        assert_eq!(backoff.delay(ip, 5, max), Duration::from_secs(2));
        for _ in 0..10 {
            backoff.failed(ip);
        }
        assert_eq!(backoff.delay(ip, 5, max), max);
        assert_eq!(backoff.delay(other, 5, max), Duration::ZERO, "per address");
        assert_eq!(backoff.delay(ip, 0, max), Duration::ZERO, "0 turns it off");
        backoff.succeeded(ip);
        assert_eq!(backoff.delay(ip, 5, max), Duration::ZERO);
    }

    #[test]
    fn the_table_stays_bounded() {
        let backoff = Backoff::default();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            backoff.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(backoff.failures.lock().len() <= MAX_ADDRESSES);
    }
}
