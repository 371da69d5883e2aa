//! What the server counts about its work: connections, operations by
//! type and result, their latency, registrations, bytes. One set of
//! counters, read by two views: the cn=Monitor entry and `/metrics`.
//!
//! Every thread that serves writes here (the acceptor, the workers, the
//! expiry thread through the store); the views read it when asked. Each
//! count is a relaxed atomic, so that counting costs a request a few
//! nanoseconds and takes no lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The operations counted, in the order of [`OpKind::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Bind,
    Unbind,
    Search,
    Modify,
    Add,
    Delete,
    ModifyDn,
    Compare,
    Abandon,
    Extended,
}

impl OpKind {
    pub const ALL: [OpKind; 10] = [
        OpKind::Bind,
        OpKind::Unbind,
        OpKind::Search,
        OpKind::Modify,
        OpKind::Add,
        OpKind::Delete,
        OpKind::ModifyDn,
        OpKind::Compare,
        OpKind::Abandon,
        OpKind::Extended,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Bind => "bind",
            OpKind::Unbind => "unbind",
            OpKind::Search => "search",
            OpKind::Modify => "modify",
            OpKind::Add => "add",
            OpKind::Delete => "delete",
            OpKind::ModifyDn => "modifydn",
            OpKind::Compare => "compare",
            OpKind::Abandon => "abandon",
            OpKind::Extended => "extended",
        }
    }
}

/// The upper bounds of the latency buckets, in microseconds: from 50 us,
/// a cached search on loopback, to 10 s, a time limit.
pub const LATENCY_BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000,
    10_000_000,
];

/// Result codes are counted in slots 0 to 127; a larger one (none that
/// RFC 4511 defines) is counted in the last, [`OTHER_CODE`].
const CODES: usize = 128;

/// The slot of every code above 126.
pub const OTHER_CODE: u32 = CODES as u32 - 1;

/// One operation's counts in one shard.
struct OpCells {
    results: [AtomicU64; CODES],
    /// Requests answered within each bucket's bound (not cumulative).
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Default for OpCells {
    fn default() -> OpCells {
        OpCells {
            results: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

/// What the workers count on every request, in one shard: each thread
/// writes to its own shard (the shards are as many as there are likely
/// workers), so that two cores never pass a counter's cache line back and
/// forth. The views add the shards up.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    ops: [OpCells; OpKind::ALL.len()],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

const SHARDS: usize = 16;

/// The shard of the calling thread.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// One operation's counts, added up over the shards.
pub struct OpStats {
    results: [u64; CODES],
    buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: u64,
}

impl OpStats {
    /// The results given, as (code, count), for the codes given at least
    /// once.
    pub fn results(&self) -> Vec<(u32, u64)> {
        self.results
            .iter()
            .enumerate()
            .map(|(code, &n)| (code as u32, n))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// How many requests were served.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The latency histogram: the sum in seconds, the count, and each
    /// bucket's bound (in seconds, the last +Inf) with the requests that
    /// fell in it and in no lower one, as prometheus-client takes them
    /// (it adds them up into Prometheus' cumulative buckets).
    pub fn histogram(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let out = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let bound = LATENCY_BUCKETS_US
                    .get(i)
                    .map_or(f64::INFINITY, |&us| us as f64 / 1e6);
                (bound, n)
            })
            .collect();
        (self.sum_us as f64 / 1e6, self.count(), out)
    }
}

/// Every counter of the server.
pub struct Metrics {
    pub started: Instant,
    /// Connections taken by the acceptor and handed to a worker.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections refused because the server was at max-connections.
    pub refused_busy: AtomicU64,
    /// Connections refused because their address was at
    /// max-connections-per-address.
    pub refused_per_address: AtomicU64,
    /// Requests refused because their address is denied (deny-address).
    pub refused_denied: AtomicU64,
    /// Binds made to wait after failures from their address.
    pub binds_delayed: AtomicU64,
    /// Dynamic entries created (a registration is a person or an
    /// application added).
    pub registrations: AtomicU64,
    /// Time-to-live refreshes: the Refresh operation, an sttl search, a
    /// Modify of entryTTL.
    pub refreshes: AtomicU64,
    /// Entries removed by a Delete (with the applications that go with a
    /// person).
    pub deletes: AtomicU64,
    shards: Box<[Shard]>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            started: Instant::now(),
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            refused_busy: AtomicU64::new(0),
            refused_per_address: AtomicU64::new(0),
            refused_denied: AtomicU64::new(0),
            binds_delayed: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Metrics {
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// Counts one request of `kind`, answered with `code` (none for an
    /// Unbind or an Abandon) after `took`.
    pub fn served(&self, kind: OpKind, code: Option<u32>, took: Duration) {
        let cells = &self.shard().ops[kind as usize];
        if let Some(code) = code {
            cells.results[code.min(OTHER_CODE) as usize].fetch_add(1, Ordering::Relaxed);
        }
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let bucket = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        cells.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        cells.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts bytes read from a client.
    pub fn received(&self, n: usize) {
        self.shard().bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes written to a client.
    pub fn sent(&self, n: usize) {
        self.shard()
            .bytes_out
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn bytes_in(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.bytes_in.load(Ordering::Relaxed))
            .sum()
    }

    pub fn bytes_out(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.bytes_out.load(Ordering::Relaxed))
            .sum()
    }

    /// One operation's counts so far.
    pub fn op(&self, kind: OpKind) -> OpStats {
        let mut total = OpStats {
            results: [0; CODES],
            buckets: [0; LATENCY_BUCKETS_US.len() + 1],
            sum_us: 0,
        };
        for shard in self.shards.iter() {
            let cells = &shard.ops[kind as usize];
            for (t, c) in total.results.iter_mut().zip(&cells.results) {
                *t += c.load(Ordering::Relaxed);
            }
            for (t, c) in total.buckets.iter_mut().zip(&cells.buckets) {
                *t += c.load(Ordering::Relaxed);
            }
            total.sum_us += cells.sum_us.load(Ordering::Relaxed);
        }
        total
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_the_first_bucket_that_holds_it() {
        let m = Metrics::default();
        m.served(OpKind::Search, Some(0), Duration::from_micros(50));
        m.served(OpKind::Search, Some(0), Duration::from_micros(51));
        m.served(OpKind::Search, Some(32), Duration::from_secs(60));
        m.served(OpKind::Unbind, None, Duration::ZERO);
        let (sum, count, buckets) = m.op(OpKind::Search).histogram();
        assert_eq!(count, 3);
        assert!((sum - 60.000101).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (50e-6, 1));
        assert_eq!(buckets[1], (100e-6, 1));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 3);
        assert_eq!(m.op(OpKind::Search).results(), [(0, 2), (32, 1)]);
        assert_eq!(m.op(OpKind::Unbind).results(), []);
        assert_eq!(m.op(OpKind::Unbind).count(), 1);
    }

    #[test]
    fn every_thread_counts_into_the_same_totals() {
        let m = Metrics::default();
        std::thread::scope(|s| {
            for _ in 0..40 {
                s.spawn(|| {
                    m.served(OpKind::Add, Some(0), Duration::from_micros(10));
                    m.received(3);
                });
            }
        });
        assert_eq!(m.op(OpKind::Add).results(), [(0, 40)]);
        assert_eq!(m.bytes_in(), 120);
    }

    #[test]
    fn a_code_beyond_the_table_is_counted_in_the_last_slot() {
        let m = Metrics::default();
        m.served(OpKind::Extended, Some(4096), Duration::ZERO);
        assert_eq!(m.op(OpKind::Extended).results(), [(127, 1)]);
    }
}
