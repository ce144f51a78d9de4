//! The in-memory buffer between scraping and remote write, for when the write-ahead log is
//! turned off (`remote_write.wal.enabled: false`): encoded chunks in order, numbered like WAL
//! records, bounded in samples **and** bytes. Beyond either bound the oldest chunks that are
//! not being sent are dropped and counted. Its contents are lost when the process exits.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use super::remote_write::chunk::Chunk;

/// One queued chunk.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its number (consecutive).
    pub seq: u64,
    /// When it was queued.
    pub queued_at: SystemTime,
    /// The samples.
    pub chunk: Chunk,
}

#[derive(Debug, Default)]
struct Inner {
    chunks: VecDeque<Queued>,
    /// Number of the next chunk.
    head: u64,
    /// Chunks below this number are being sent: not dropped for room.
    in_flight_end: u64,
    samples: u64,
    bytes: u64,
}

/// What one [`MemoryQueue::push`] dropped to make room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overflow {
    /// Chunks dropped.
    pub chunks: u64,
    /// Their samples.
    pub samples: u64,
}

/// A bounded FIFO of chunks.
#[derive(Debug)]
pub struct MemoryQueue {
    max_samples: u64,
    max_bytes: u64,
    inner: Mutex<Inner>,
}

impl MemoryQueue {
    /// A queue holding at most `max_samples` samples and `max_bytes` bytes (both at least 1).
    ///
    /// ```
    /// use livetranslate_agent::metrics::queue::MemoryQueue;
    /// let q = MemoryQueue::new(1000, 1 << 20);
    /// assert_eq!(q.len_samples(), 0);
    /// ```
    pub fn new(max_samples: u64, max_bytes: u64) -> Self {
        MemoryQueue {
            max_samples: max_samples.max(1),
            max_bytes: max_bytes.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `chunks`; drops the oldest chunks not being sent while a bound is exceeded
    /// (the new ones included, oldest first, when they alone exceed it).
    pub fn push(&self, chunks: Vec<Chunk>) -> Overflow {
        let now = SystemTime::now();
        let mut q = self.lock();
        for chunk in chunks {
            let seq = q.head;
            q.head += 1;
            q.samples += u64::from(chunk.samples);
            q.bytes += chunk.bytes.len() as u64;
            q.chunks.push_back(Queued {
                seq,
                queued_at: now,
                chunk,
            });
        }
        let mut dropped = Overflow::default();
        while q.samples > self.max_samples || q.bytes > self.max_bytes {
            let in_flight_end = q.in_flight_end;
            let Some(i) = q.chunks.iter().position(|c| c.seq >= in_flight_end) else {
                break;
            };
            let Some(c) = q.chunks.remove(i) else {
                break;
            };
            q.samples -= u64::from(c.chunk.samples);
            q.bytes -= c.chunk.bytes.len() as u64;
            dropped.chunks += 1;
            dropped.samples += u64::from(c.chunk.samples);
        }
        dropped
    }

    /// Chunks from number `from` on, up to `max_samples` samples (at least one chunk when
    /// any is there), marked as being sent.
    pub fn read(&self, from: u64, max_samples: u64) -> Vec<Queued> {
        let mut q = self.lock();
        let mut out = Vec::new();
        let mut samples = 0;
        for c in q.chunks.iter().filter(|c| c.seq >= from) {
            if !out.is_empty() && samples + u64::from(c.chunk.samples) > max_samples {
                break;
            }
            samples += u64::from(c.chunk.samples);
            out.push(c.clone());
        }
        if let Some(last) = out.last() {
            q.in_flight_end = q.in_flight_end.max(last.seq + 1);
        }
        out
    }

    /// Removes every chunk numbered below `upto` (sent, or given up).
    pub fn ack(&self, upto: u64) {
        let mut q = self.lock();
        while q.chunks.front().is_some_and(|c| c.seq < upto) {
            if let Some(c) = q.chunks.pop_front() {
                q.samples -= u64::from(c.chunk.samples);
                q.bytes -= c.chunk.bytes.len() as u64;
            }
        }
    }

    /// The number of the oldest queued chunk (the head when empty).
    pub fn first(&self) -> u64 {
        let q = self.lock();
        q.chunks.front().map_or(q.head, |c| c.seq)
    }

    /// Samples queued.
    pub fn len_samples(&self) -> u64 {
        self.lock().samples
    }

    /// Bytes queued.
    pub fn len_bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// The bound in samples.
    pub fn max_samples(&self) -> u64 {
        self.max_samples
    }

    /// The bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::remote_write::chunk::ChunkEncoder;

    fn chunks(n: usize, samples_each: usize, label: &str) -> Vec<Chunk> {
        let mut e = ChunkEncoder::new(samples_each, 1 << 20);
        for i in 0..n * samples_each {
            e.push_sample(&[("__name__", "m"), ("l", label)], 1.0, i as i64, None);
        }
        e.finish()
    }

    #[test]
    fn fifo_read_and_ack() {
        let q = MemoryQueue::new(100, 1 << 20);
        assert_eq!(q.push(chunks(3, 2, "a")), Overflow::default());
        let batch = q.read(0, 4);
        let seqs: Vec<u64> = batch.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [0, 1]);
        q.ack(2);
        assert_eq!((q.first(), q.len_samples()), (2, 2));
        assert_eq!(
            q.read(2, 1).len(),
            1,
            "at least one chunk even over the budget"
        );
    }

    #[test]
    fn bounded_in_samples_and_in_bytes_keeping_what_is_in_flight() {
        let q = MemoryQueue::new(6, 1 << 20);
        q.push(chunks(3, 2, "a"));
        let in_flight = q.read(0, 2);
        assert_eq!(in_flight.len(), 1);
        let o = q.push(chunks(2, 2, "b"));
        assert_eq!(
            o,
            Overflow {
                chunks: 2,
                samples: 4
            }
        );
        let seqs: Vec<u64> = q.read(0, 100).iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [0, 3, 4], "the chunk being sent stays");

        // Incompressible label values: snappy cannot shrink them.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let big: String = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let q = MemoryQueue::new(1_000_000, 15_000);
        let o = q.push(chunks(3, 1, &big));
        assert_eq!(o.chunks, 2, "bytes bound the queue too");
        assert!(q.len_bytes() <= 15_000);
    }
}
