//! Lock-free metric primitives: [`Counter`], [`Gauge`] and [`Histogram`].
//!
//! Each is a cheap clone of an `Arc` around atomics, so a handle can be stored in a struct or
//! a static and updated from any thread without locking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Adds `delta` to an `f64` stored as bits in an [`AtomicU64`].
fn add_f64(cell: &AtomicU64, delta: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// A monotonically increasing integer count.
///
/// ```
/// use livetranslate_telemetry::registry::Counter;
/// let c = Counter::default();
/// c.inc();
/// c.inc_by(2);
/// assert_eq!(c.get(), 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that can go up and down.
///
/// ```
/// use livetranslate_telemetry::registry::Gauge;
/// let g = Gauge::default();
/// g.set(4.0);
/// g.dec();
/// assert_eq!(g.get(), 3.0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (which may be negative).
    pub fn add(&self, delta: f64) {
        add_f64(&self.0, delta);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Bucket boundaries for request latencies in seconds: the OpenTelemetry HTTP defaults, which
/// put a boundary exactly at the 1 s latency alert threshold.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket boundaries for HTTP body sizes in bytes (powers of four from 64 B to 16 MiB).
pub const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// Bucket boundaries for scores between 0 and 1.
pub const SCORE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

#[derive(Debug)]
struct HistogramCore {
    bounds: Arc<[f64]>,
    /// Per-bucket (non-cumulative) counts; the last slot is the `+Inf` bucket.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A distribution of observed values over fixed bucket boundaries.
///
/// ```
/// use livetranslate_telemetry::registry::{Histogram, LATENCY_BUCKETS};
/// let h = Histogram::new(LATENCY_BUCKETS);
/// h.observe(0.2);
/// h.observe(3.0);
/// let snap = h.snapshot();
/// assert_eq!(snap.count, 2);
/// assert_eq!(snap.cumulative[6], 1); // le="0.25"
/// ```
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCore>);

/// A point-in-time copy of a [`Histogram`].
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per boundary, in boundary order (the `+Inf` bucket is `count`).
    pub cumulative: Vec<u64>,
    /// Total number of observations.
    pub count: u64,
    /// Sum of observed values.
    pub sum: f64,
}

impl Histogram {
    /// A histogram with the given bucket upper bounds. Bounds that are not finite, or not
    /// strictly increasing, are skipped.
    pub fn new(bounds: &[f64]) -> Self {
        let mut clean: Vec<f64> = Vec::with_capacity(bounds.len());
        for &b in bounds {
            if b.is_finite() && clean.last().is_none_or(|&last| b > last) {
                clean.push(b);
            }
        }
        Self::with_bounds(clean.into())
    }

    pub(crate) fn with_bounds(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(HistogramCore {
            bounds,
            counts,
            sum: AtomicU64::new(0),
        }))
    }

    /// Records one observation. `NaN` is ignored.
    #[inline]
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let core = &*self.0;
        let idx = core.bounds.partition_point(|&b| b < v);
        core.counts[idx].fetch_add(1, Ordering::Relaxed);
        add_f64(&core.sum, v);
    }

    /// The bucket upper bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.0.bounds
    }

    /// A consistent-enough copy of the counts: cumulative counts never decrease between
    /// snapshots and `count` always equals the `+Inf` bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let core = &*self.0;
        let mut running = 0u64;
        let mut cumulative = Vec::with_capacity(core.bounds.len());
        for (i, c) in core.counts.iter().enumerate() {
            running += c.load(Ordering::Relaxed);
            if i < core.bounds.len() {
                cumulative.push(running);
            }
        }
        HistogramSnapshot {
            cumulative,
            count: running,
            sum: f64::from_bits(core.sum.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_inclusive() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(1.0);
        h.observe(1.5);
        h.observe(2.5);
        h.observe(f64::NAN);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![1, 2]);
        assert_eq!(s.count, 3);
        assert!((s.sum - 5.0).abs() < 1e-9);
    }

    #[test]
    fn histogram_drops_bad_bounds() {
        let h = Histogram::new(&[2.0, 1.0, f64::INFINITY, 3.0, f64::NAN]);
        assert_eq!(h.bounds(), &[2.0, 3.0]);
    }

    #[test]
    fn gauge_add_from_threads() {
        let g = Gauge::default();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| g.inc()))
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().expect("thread"));
        assert_eq!(g.get(), 4000.0);
    }
}
