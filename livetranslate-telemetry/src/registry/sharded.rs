//! Per-thread shards for the hottest metrics (the HTTP middleware's and the facade's
//! histograms). Each thread owns one shard and updates it with plain loads and stores, no
//! lock-prefixed instructions; a scrape sums the shards. Threads past the fifteenth share the
//! last shard and update it atomically.
//!
//! A histogram can also keep the latest exemplar of each bucket (a trace id, the value and
//! when it was observed) per shard, behind a sequence lock: the owning thread writes it with
//! plain stores, a scrape retries a slot that changed while it read it.

use std::sync::atomic::{fence, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::encode::Exemplar;
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

/// The process's clock origin for exemplar timestamps: a monotonic instant and the wall-clock
/// time it corresponds to, so that the request path stores an `Instant` difference and only
/// a scrape turns it into Unix time.
fn clock_origin() -> &'static (Instant, f64) {
    static ORIGIN: OnceLock<(Instant, f64)> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        (Instant::now(), unix)
    })
}

/// Nanoseconds from the clock origin to `at` (at least 1: 0 marks an empty slot).
#[inline]
pub(crate) fn exemplar_time(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(clock_origin().0).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
}

/// The latest exemplar of one bucket in one shard.
#[derive(Debug, Default)]
struct ExemplarSlot {
    /// Odd while a write is in progress.
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    value: AtomicU64,
    /// [`exemplar_time`] of the observation; 0: no exemplar yet.
    at: AtomicU64,
}

impl ExemplarSlot {
    #[inline]
    fn write_fields(&self, trace_id: u128, value: f64, at: u64) {
        self.trace_hi
            .store((trace_id >> 64) as u64, Ordering::Relaxed);
        self.trace_lo.store(trace_id as u64, Ordering::Relaxed);
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.at.store(at, Ordering::Relaxed);
    }

    /// Stores an exemplar; `exclusive`: only this thread ever writes the slot.
    #[inline]
    fn store(&self, trace_id: u128, value: f64, at: u64, exclusive: bool) {
        let seq = self.seq.load(Ordering::Relaxed);
        if exclusive {
            self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        } else if seq & 1 == 1
            || self
                .seq
                .compare_exchange(
                    seq,
                    seq.wrapping_add(1),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            // Another thread of the shared shard is writing it: keep theirs.
            return;
        }
        // The odd sequence is visible before any field changes.
        fence(Ordering::Release);
        self.write_fields(trace_id, value, at);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy: (trace id, value, time), or `None` when empty (or, in the unlikely
    /// case, when writers kept changing it).
    fn load(&self) -> Option<(u128, f64, u64)> {
        for _ in 0..64 {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let value = f64::from_bits(self.value.load(Ordering::Relaxed));
            let at = self.at.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return (at != 0).then_some(((u128::from(hi) << 64) | u128::from(lo), value, at));
            }
        }
        None
    }
}

#[derive(Debug)]
struct HistShard {
    /// Per-bucket counts; the last slot is `+Inf`.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// One per bucket, when the histogram keeps exemplars.
    exemplars: Box<[ExemplarSlot]>,
}

/// A histogram with per-thread shards.
#[derive(Debug)]
pub(crate) struct ShardedHistogram {
    bounds: &'static [f64],
    exemplars: bool,
    shards: [OnceLock<HistShard>; SHARDS],
}

impl ShardedHistogram {
    /// A histogram over `bounds` (strictly increasing, finite).
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        ShardedHistogram {
            bounds,
            exemplars: false,
            shards: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// A histogram over `bounds` that keeps the latest exemplar of each bucket.
    pub(crate) fn with_exemplars(bounds: &'static [f64]) -> Self {
        ShardedHistogram {
            exemplars: true,
            ..Self::new(bounds)
        }
    }

    #[inline]
    fn shard(&self, i: usize) -> &HistShard {
        self.shards[i].get_or_init(|| HistShard {
            counts: (0..=self.bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            exemplars: if self.exemplars {
                (0..=self.bounds.len())
                    .map(|_| ExemplarSlot::default())
                    .collect()
            } else {
                Box::default()
            },
        })
    }

    /// Records one observation (NaN is ignored).
    #[inline]
    pub(crate) fn observe(&self, v: f64) {
        self.observe_n(v, 1);
    }

    /// Records `n` observations of the same value (NaN is ignored).
    #[inline]
    pub(crate) fn observe_n(&self, v: f64, n: u64) {
        if v.is_nan() {
            return;
        }
        let (i, exclusive) = shard();
        let shard = self.shard(i);
        let bucket = self.bounds.partition_point(|&b| b < v);
        add_u64(&shard.counts[bucket], n, exclusive);
        add_f64(&shard.sum, v * n as f64, exclusive);
    }

    /// Records one observation and makes it its bucket's exemplar (`trace_id` 0: none; at:
    /// see [`exemplar_time`]). Histograms made without exemplars just record it.
    #[inline]
    pub(crate) fn observe_with_exemplar(&self, v: f64, trace_id: u128, at: u64) {
        if v.is_nan() {
            return;
        }
        let (i, exclusive) = shard();
        let shard = self.shard(i);
        let bucket = self.bounds.partition_point(|&b| b < v);
        add_u64(&shard.counts[bucket], 1, exclusive);
        add_f64(&shard.sum, v, exclusive);
        if trace_id != 0 {
            if let Some(slot) = shard.exemplars.get(bucket) {
                slot.store(trace_id, v, at, exclusive);
            }
        }
    }

    /// The latest exemplar of each bucket over all shards (the last entry is `+Inf`'s);
    /// empty when the histogram keeps none.
    pub(crate) fn exemplars(&self) -> Vec<Option<Exemplar>> {
        if !self.exemplars {
            return Vec::new();
        }
        let mut latest: Vec<Option<(u128, f64, u64)>> = vec![None; self.bounds.len() + 1];
        for shard in self.shards.iter().filter_map(OnceLock::get) {
            for (best, slot) in latest.iter_mut().zip(shard.exemplars.iter()) {
                if let Some(e) = slot.load() {
                    if best.is_none_or(|b| e.2 > b.2) {
                        *best = Some(e);
                    }
                }
            }
        }
        let unix = clock_origin().1;
        latest
            .into_iter()
            .map(|e| {
                e.map(|(trace_id, value, at)| Exemplar {
                    trace_id,
                    value,
                    timestamp: unix + at as f64 / 1e9,
                })
            })
            .collect()
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
