//! Per-thread shards for the hottest metrics (the HTTP middleware's). Each thread owns one
//! shard and updates it with plain loads and stores, no lock-prefixed instructions; a scrape
//! sums the shards. Threads past the fifteenth share the last shard and update it atomically.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::HistogramSnapshot;

/// Number of shards; the last one is shared by every thread beyond the others.
pub(crate) const SHARDS: usize = 16;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed).min(SHARDS - 1);
}

/// This thread's shard, and whether it owns it alone.
#[inline]
fn shard() -> (usize, bool) {
    let i = SHARD.with(|s| *s);
    (i, i < SHARDS - 1)
}

#[inline]
fn add_u64(cell: &AtomicU64, n: u64, exclusive: bool) {
    if exclusive {
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    } else {
        cell.fetch_add(n, Ordering::Relaxed);
    }
}

#[inline]
fn add_f64(cell: &AtomicU64, v: f64, exclusive: bool) {
    if exclusive {
        let next = f64::from_bits(cell.load(Ordering::Relaxed)) + v;
        cell.store(next.to_bits(), Ordering::Relaxed);
        return;
    }
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + v).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

#[derive(Debug)]
struct HistShard {
    /// Per-bucket counts; the last slot is `+Inf`.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram with per-thread shards.
#[derive(Debug)]
pub(crate) struct ShardedHistogram {
    bounds: &'static [f64],
    shards: [OnceLock<HistShard>; SHARDS],
}

impl ShardedHistogram {
    /// A histogram over `bounds` (strictly increasing, finite).
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        ShardedHistogram {
            bounds,
            shards: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Records one observation (NaN is ignored).
    #[inline]
    pub(crate) fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let (i, exclusive) = shard();
        let shard = self.shards[i].get_or_init(|| HistShard {
            counts: (0..=self.bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        });
        let bucket = self.bounds.partition_point(|&b| b < v);
        add_u64(&shard.counts[bucket], 1, exclusive);
        add_f64(&shard.sum, v, exclusive);
    }

    /// The bucket bounds.
    pub(crate) fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// The sum over all shards.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut counts = vec![0u64; self.bounds.len() + 1];
        let mut sum = 0.0;
        for shard in self.shards.iter().filter_map(OnceLock::get) {
            for (total, c) in counts.iter_mut().zip(shard.counts.iter()) {
                *total += c.load(Ordering::Relaxed);
            }
            sum += f64::from_bits(shard.sum.load(Ordering::Relaxed));
        }
        let mut running = 0;
        let mut cumulative: Vec<u64> = counts
            .iter()
            .map(|c| {
                running += c;
                running
            })
            .collect();
        let count = cumulative.pop().unwrap_or(0);
        HistogramSnapshot {
            cumulative,
            count,
            sum,
        }
    }
}

/// `N` signed counts with per-thread shards (in-flight requests per method: a request may
/// start on one thread and end on another; only the sum is meaningful).
#[derive(Debug)]
pub(crate) struct ShardedCounts<const N: usize> {
    shards: [OnceLock<[AtomicI64; N]>; SHARDS],
}

impl<const N: usize> Default for ShardedCounts<N> {
    fn default() -> Self {
        ShardedCounts {
            shards: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl<const N: usize> ShardedCounts<N> {
    /// Adds `delta` to count `i`.
    #[inline]
    pub(crate) fn add(&self, i: usize, delta: i64) {
        let (s, exclusive) = shard();
        let cells = self.shards[s].get_or_init(|| std::array::from_fn(|_| AtomicI64::new(0)));
        let cell = &cells[i];
        if exclusive {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(delta),
                Ordering::Relaxed,
            );
        } else {
            cell.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// The sum of count `i` over all shards.
    pub(crate) fn sum(&self, i: usize) -> i64 {
        self.shards
            .iter()
            .filter_map(OnceLock::get)
            .map(|cells| cells[i].load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [f64; 2] = [1.0, 2.0];

    #[test]
    fn shards_sum_across_threads() {
        let h = std::sync::Arc::new(ShardedHistogram::new(&BOUNDS));
        let c = std::sync::Arc::new(ShardedCounts::<2>::default());
        // More threads than shards: the shared shard is exercised too.
        let handles: Vec<_> = (0..40)
            .map(|t| {
                let (h, c) = (h.clone(), c.clone());
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        h.observe(f64::from((t + i) % 3));
                        c.add(0, 1);
                        c.add(1, if i % 2 == 0 { 1 } else { -1 });
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|j| j.join().expect("thread"));
        let s = h.snapshot();
        assert_eq!(s.count, 40_000);
        let values = || (0..40).flat_map(|t| (0..1000).map(move |i| f64::from((t + i) % 3)));
        let at_most_one = values().filter(|v| *v <= 1.0).count() as u64;
        assert_eq!(s.cumulative, vec![at_most_one, 40_000]);
        assert_eq!(c.sum(0), 40_000);
        assert_eq!(c.sum(1), 0);
        let expected_sum: f64 = values().sum();
        assert!((s.sum - expected_sum).abs() < 1e-6);
    }
}
