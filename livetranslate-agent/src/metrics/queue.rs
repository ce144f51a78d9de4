//! The buffer between scraping and remote write.
//!
//! [`SampleQueue`] is deliberately small so that a durable write-ahead log can replace the
//! in-memory [`MemoryQueue`] without touching the scrape or send code.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use super::Sample;

/// A bounded FIFO of samples waiting to be sent.
pub trait SampleQueue: Send + Sync + 'static {
    /// Appends `samples`. When the queue would exceed its capacity the OLDEST samples are
    /// discarded to make room; returns how many were discarded.
    fn push(&self, samples: Vec<Sample>) -> usize;

    /// Removes and returns up to `max` of the oldest samples.
    fn pop(&self, max: usize) -> Vec<Sample>;

    /// Samples currently queued.
    fn len(&self) -> usize;

    /// Whether nothing is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queue bound, in samples.
    fn capacity(&self) -> usize;

    /// When the oldest queued sample was enqueued.
    fn oldest_enqueued_at(&self) -> Option<Instant>;
}

/// An in-memory [`SampleQueue`]; its contents are lost when the process exits.
#[derive(Debug)]
pub struct MemoryQueue {
    capacity: usize,
    inner: Mutex<VecDeque<(Instant, Sample)>>,
}

impl MemoryQueue {
    /// A queue holding at most `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        MemoryQueue {
            capacity: capacity.max(1),
            inner: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, Sample)>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SampleQueue for MemoryQueue {
    fn push(&self, samples: Vec<Sample>) -> usize {
        let now = Instant::now();
        let mut q = self.lock();
        let mut dropped = 0;
        let incoming = samples.len();
        // More than fits on its own: only the newest `capacity` of the batch survive.
        let skip = incoming.saturating_sub(self.capacity);
        dropped += skip;
        let keep = incoming - skip;
        let overflow = (q.len() + keep).saturating_sub(self.capacity);
        q.drain(..overflow);
        dropped += overflow;
        q.extend(samples.into_iter().skip(skip).map(|s| (now, s)));
        dropped
    }

    fn pop(&self, max: usize) -> Vec<Sample> {
        let mut q = self.lock();
        let n = max.min(q.len());
        q.drain(..n).map(|(_, s)| s).collect()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn oldest_enqueued_at(&self) -> Option<Instant> {
        self.lock().front().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SeriesLabels;
    use std::collections::BTreeMap;

    fn samples(range: std::ops::Range<i64>) -> Vec<Sample> {
        let labels =
            SeriesLabels::from_map(BTreeMap::from([("__name__".to_owned(), "x".to_owned())]));
        range
            .map(|t| Sample {
                labels: labels.clone(),
                value: t as f64,
                timestamp_ms: t,
            })
            .collect()
    }

    fn times(v: &[Sample]) -> Vec<i64> {
        v.iter().map(|s| s.timestamp_ms).collect()
    }

    #[test]
    fn fifo_order() {
        let q = MemoryQueue::new(10);
        assert_eq!(q.push(samples(0..3)), 0);
        assert_eq!(q.push(samples(3..5)), 0);
        assert_eq!(q.len(), 5);
        assert!(q.oldest_enqueued_at().is_some());
        assert_eq!(times(&q.pop(2)), [0, 1]);
        assert_eq!(times(&q.pop(10)), [2, 3, 4]);
        assert!(q.is_empty());
        assert!(q.oldest_enqueued_at().is_none());
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let q = MemoryQueue::new(5);
        assert_eq!(q.push(samples(0..4)), 0);
        assert_eq!(q.push(samples(4..7)), 2);
        assert_eq!(times(&q.pop(10)), [2, 3, 4, 5, 6]);
    }

    #[test]
    fn batch_larger_than_capacity_keeps_its_newest() {
        let q = MemoryQueue::new(3);
        assert_eq!(q.push(samples(0..2)), 0);
        assert_eq!(q.push(samples(2..8)), 5);
        assert_eq!(times(&q.pop(10)), [5, 6, 7]);
        assert_eq!(q.capacity(), 3);
    }
}
