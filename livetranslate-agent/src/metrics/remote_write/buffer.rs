//! Where chunks wait between the scrape and the remote's acknowledgement: the write-ahead log
//! (the default: survives `kill -9` and outages up to its size and age bounds) or, with the
//! log turned off, the memory queue. Both number chunks consecutively; the sender reads from
//! a position, and acknowledges up to a position once the remote took everything below it.
//!
//! All methods block (file I/O, fsync): call them from `spawn_blocking`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;

use super::chunk::Chunk;
use crate::metrics::queue::MemoryQueue;
use crate::metrics::wal::{Wal, WalConfig, WalReader, WalStats};

/// Why buffered samples were dropped before they were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferDrop {
    /// The memory queue was full.
    QueueFull,
    /// The write-ahead log outgrew its size bound.
    WalSize,
    /// The write-ahead log's records outlived its age bound.
    WalAge,
    /// A chunk larger than a WAL record may be.
    TooLarge,
    /// Writing to the WAL failed.
    WalError,
}

/// One chunk read back, ready to send.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its number.
    pub seq: u64,
    /// When it was stored.
    pub stored_at: SystemTime,
    /// The samples.
    pub chunk: Chunk,
}

/// The sender's reading position.
#[derive(Debug)]
pub enum Cursor {
    /// In the log.
    Wal(WalReader),
    /// In the memory queue: the next number to read.
    Memory(u64),
}

/// Figures for the agent's metrics.
#[derive(Debug, Clone, Default)]
pub struct BufferState {
    /// Samples known to be waiting (those stored since start and not yet sent or dropped;
    /// with the WAL, chunks left by an earlier run count once they are read).
    pub samples: u64,
    /// Bytes waiting (memory) or on disk (WAL).
    pub bytes: u64,
    /// Bound in samples (`None`: bounded in bytes only, the WAL).
    pub max_samples: Option<u64>,
    /// Bound in bytes.
    pub max_bytes: u64,
    /// The WAL's own figures, except that records the sender had already taken when the log
    /// dropped their segment are not counted in `records_dropped_size` / `records_dropped_age`:
    /// they are still sent (and counted as sent, or as rejected).
    pub wal: Option<WalStats>,
}

#[derive(Debug, Default)]
struct Tracker {
    /// Chunks stored (or read back) and not yet acknowledged or dropped: (number, samples).
    known: VecDeque<(u64, u32)>,
    /// Chunks below this number are with the sender.
    in_flight_end: u64,
    samples: u64,
    dropped_size_seen: u64,
    dropped_age_seen: u64,
    /// Records the log dropped (by size, by age) while the sender held them.
    rescued_size: u64,
    rescued_age: u64,
    /// Chunks below this number were counted in `rescued_*` already.
    rescued_upto: u64,
}

impl Tracker {
    fn add(&mut self, seq: u64, samples: u32) {
        if self.known.back().is_none_or(|&(s, _)| s < seq) {
            self.known.push_back((seq, samples));
            self.samples += u64::from(samples);
        }
    }

    fn remove_below(&mut self, upto: u64) {
        while let Some(&(s, n)) = self.known.front() {
            if s >= upto {
                break;
            }
            self.known.pop_front();
            self.samples -= u64::from(n);
        }
    }

    /// Known chunks below `first` that the sender has not taken: dropped by the log. Returns
    /// their samples, and how many chunks below `first` the sender holds that were not
    /// counted before (dropped by the log, yet still sent).
    fn dropped_below(&mut self, first: u64) -> (u64, u64) {
        let mut samples = 0;
        let mut rescued = 0;
        let keep_from = self.in_flight_end;
        let mut kept = VecDeque::new();
        while let Some(&(s, n)) = self.known.front() {
            if s >= first {
                break;
            }
            self.known.pop_front();
            if s < keep_from {
                if s >= self.rescued_upto {
                    rescued += 1;
                    self.rescued_upto = s + 1;
                }
                kept.push_back((s, n));
            } else {
                samples += u64::from(n);
                self.samples -= u64::from(n);
            }
        }
        while let Some(k) = kept.pop_back() {
            self.known.push_front(k);
        }
        (samples, rescued)
    }
}

/// The write-ahead log or the memory queue.
#[derive(Debug)]
pub struct Buffer {
    store: Store,
    /// Chunks and samples waiting, for the WAL (the memory queue counts its own).
    tracker: Mutex<Tracker>,
}

#[derive(Debug)]
enum Store {
    Wal(Wal, WalConfig),
    Memory(MemoryQueue),
}

impl Buffer {
    /// A buffer in an open write-ahead log, opened with `config`.
    pub fn wal(wal: Wal, config: WalConfig) -> Buffer {
        let stats = wal.stats();
        Buffer {
            store: Store::Wal(wal, config),
            tracker: Mutex::new(Tracker {
                dropped_size_seen: stats.records_dropped_size,
                dropped_age_seen: stats.records_dropped_age,
                ..Tracker::default()
            }),
        }
    }

    /// A buffer in memory.
    pub fn memory(queue: MemoryQueue) -> Buffer {
        Buffer {
            store: Store::Memory(queue),
            tracker: Mutex::new(Tracker::default()),
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log, when the buffer is one.
    pub fn wal_log(&self) -> Option<&Wal> {
        match &self.store {
            Store::Wal(w, _) => Some(w),
            Store::Memory(_) => None,
        }
    }

    /// Stores the chunks of one scrape; returns what had to be dropped (samples by reason).
    pub fn append(&self, chunks: Vec<Chunk>) -> Vec<(BufferDrop, u64)> {
        let mut drops = Vec::new();
        match &self.store {
            Store::Memory(q) => {
                let overflow = q.push(chunks);
                if overflow.samples > 0 {
                    drops.push((BufferDrop::QueueFull, overflow.samples));
                }
            }
            Store::Wal(wal, config) => {
                let max = config.max_record_bytes;
                let (fit, big): (Vec<Chunk>, Vec<Chunk>) = chunks
                    .into_iter()
                    .partition(|c| c.bytes.len() as u64 <= max);
                let too_large: u64 = big.iter().map(|c| u64::from(c.samples)).sum();
                if too_large > 0 {
                    tracing::error!(
                        samples = too_large,
                        max_record_bytes = max,
                        "a scrape's encoded series is larger than a WAL record may be; dropped"
                    );
                    drops.push((BufferDrop::TooLarge, too_large));
                }
                if !fit.is_empty() {
                    let payloads: Vec<&[u8]> = fit.iter().map(|c| c.bytes.as_ref()).collect();
                    match wal.append_batch(&payloads) {
                        Ok(range) => {
                            let mut t = self.tracker();
                            for (seq, c) in range.zip(fit.iter()) {
                                t.add(seq, c.samples);
                            }
                        }
                        Err(e) => {
                            let n: u64 = fit.iter().map(|c| u64::from(c.samples)).sum();
                            tracing::error!(error = %e, samples = n, "cannot write to the write-ahead log; samples dropped");
                            drops.push((BufferDrop::WalError, n));
                        }
                    }
                }
                drops.extend(self.wal_drops(wal));
            }
        }
        drops
    }

    /// Samples of chunks the log dropped (size or age bound) since the last look.
    fn wal_drops(&self, wal: &Wal) -> Vec<(BufferDrop, u64)> {
        let stats = wal.stats();
        let mut t = self.tracker();
        let size = stats.records_dropped_size - t.dropped_size_seen.min(stats.records_dropped_size);
        let age = stats.records_dropped_age - t.dropped_age_seen.min(stats.records_dropped_age);
        t.dropped_size_seen = stats.records_dropped_size;
        t.dropped_age_seen = stats.records_dropped_age;
        if size == 0 && age == 0 {
            return Vec::new();
        }
        let (samples, rescued) = t.dropped_below(stats.first);
        let reason = if size >= age {
            t.rescued_size += rescued;
            BufferDrop::WalSize
        } else {
            t.rescued_age += rescued;
            BufferDrop::WalAge
        };
        tracing::warn!(
            records = size + age,
            samples,
            reason = if reason == BufferDrop::WalSize {
                "size"
            } else {
                "age"
            },
            "write-ahead log full: the oldest unsent records were dropped"
        );
        if samples > 0 {
            vec![(reason, samples)]
        } else {
            Vec::new()
        }
    }

    /// Applies the WAL's age bound and pending fsync (call it from a timer).
    pub fn maintain(&self) -> Vec<(BufferDrop, u64)> {
        match &self.store {
            Store::Wal(wal, _) => {
                if let Err(e) = wal.enforce_bounds().and_then(|()| wal.sync_if_due()) {
                    tracing::error!(error = %e, "write-ahead log maintenance failed");
                }
                self.wal_drops(wal)
            }
            Store::Memory(_) => Vec::new(),
        }
    }

    /// A cursor at the oldest chunk not acknowledged.
    pub fn cursor(&self) -> Cursor {
        match &self.store {
            Store::Wal(w, _) => Cursor::Wal(w.reader()),
            Store::Memory(q) => Cursor::Memory(q.first()),
        }
    }

    /// Moves `cursor` back to `seq` (after a send that must be repeated).
    pub fn seek(&self, cursor: &mut Cursor, seq: u64) {
        match cursor {
            Cursor::Wal(r) => r.seek(seq),
            Cursor::Memory(s) => *s = seq,
        }
    }

    /// Chunks from the cursor on, up to `max_samples` samples (at least one when any is
    /// waiting); the cursor moves past them.
    pub fn read(&self, cursor: &mut Cursor, max_samples: u64) -> Result<Vec<Pending>, String> {
        let out = match (&self.store, cursor) {
            (Store::Memory(q), Cursor::Memory(pos)) => {
                let got = q.read(*pos, max_samples);
                if let Some(last) = got.last() {
                    *pos = last.seq + 1;
                }
                got.into_iter()
                    .map(|q| Pending {
                        seq: q.seq,
                        stored_at: q.queued_at,
                        chunk: q.chunk,
                    })
                    .collect()
            }
            (Store::Wal(..), Cursor::Wal(reader)) => {
                let mut out: Vec<Pending> = Vec::new();
                let mut samples = 0u64;
                loop {
                    let before = reader.position();
                    let Some(rec) = reader.next().map_err(|e| e.to_string())? else {
                        break;
                    };
                    let chunk = match Chunk::from_stored(Bytes::from(rec.payload)) {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(seq = rec.seq, error = %e, "skipping an unreadable WAL record");
                            continue;
                        }
                    };
                    if !out.is_empty() && samples + u64::from(chunk.samples) > max_samples {
                        reader.seek(before);
                        break;
                    }
                    samples += u64::from(chunk.samples);
                    out.push(Pending {
                        seq: rec.seq,
                        stored_at: rec.appended_at,
                        chunk,
                    });
                    if samples >= max_samples {
                        break;
                    }
                }
                out
            }
            _ => return Err("cursor of another buffer".to_owned()),
        };
        if self.wal_log().is_some() {
            let mut t = self.tracker();
            for p in &out {
                t.add(p.seq, p.chunk.samples);
            }
            if let Some(last) = out.last() {
                t.in_flight_end = t.in_flight_end.max(last.seq + 1);
            }
        }
        Ok(out)
    }

    /// Everything below `upto` is delivered (or given up): acknowledged durably.
    pub fn ack(&self, upto: u64) -> Result<(), String> {
        match &self.store {
            Store::Memory(q) => q.ack(upto),
            Store::Wal(w, _) => {
                let head = w.head();
                w.ack(upto.min(head)).map_err(|e| e.to_string())?;
            }
        }
        self.tracker().remove_below(upto);
        Ok(())
    }

    /// Figures for the metrics.
    pub fn state(&self) -> BufferState {
        let (samples, rescued_size, rescued_age) = {
            let t = self.tracker();
            (t.samples, t.rescued_size, t.rescued_age)
        };
        match &self.store {
            Store::Memory(q) => BufferState {
                samples: q.len_samples(),
                bytes: q.len_bytes(),
                max_samples: Some(q.max_samples()),
                max_bytes: q.max_bytes(),
                wal: None,
            },
            Store::Wal(w, config) => {
                let mut stats = w.stats();
                stats.records_dropped_size =
                    stats.records_dropped_size.saturating_sub(rescued_size);
                stats.records_dropped_age = stats.records_dropped_age.saturating_sub(rescued_age);
                BufferState {
                    samples,
                    bytes: stats.disk_bytes,
                    max_samples: None,
                    max_bytes: config.max_total_bytes,
                    wal: Some(stats),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::remote_write::chunk::ChunkEncoder;
    use crate::metrics::wal::SyncPolicy;
    use livetranslate_test_support::TempDir;

    /// One scrape: a chunk of 10 samples whose label values do not compress (about 1 KB).
    fn scrape(n: u64) -> Vec<Chunk> {
        let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut e = ChunkEncoder::new(1000, 1 << 20);
        for i in 0..10 {
            let v: String = (0..100)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b'a' + (x % 26) as u8)
                })
                .collect();
            e.push_sample(
                &[("__name__", "m"), ("i", &i.to_string()), ("v", &v)],
                n as f64,
                n as i64,
                None,
            );
        }
        e.finish()
    }

    #[test]
    fn a_chunk_the_sender_holds_is_not_counted_lost_when_the_log_drops_its_segment() {
        let dir = TempDir::new("buffer-held");
        let config = WalConfig {
            max_segment_bytes: 4096,
            max_record_bytes: 4096 - 32,
            max_total_bytes: 8192,
            max_age: None,
            sync: SyncPolicy::Never,
        };
        let wal = match Wal::open(dir.path(), config.clone()) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        let buffer = Buffer::wal(wal, config);
        assert!(buffer.append(scrape(0)).is_empty());
        // The sender takes the first chunk (and keeps retrying it: the remote is down).
        let mut cursor = buffer.cursor();
        let held = match buffer.read(&mut cursor, 10) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(held.iter().map(|p| p.seq).collect::<Vec<_>>(), [0]);
        let mut dropped = 0;
        for n in 1..30 {
            for (reason, samples) in buffer.append(scrape(n)) {
                assert_eq!(reason, BufferDrop::WalSize);
                dropped += samples;
            }
        }
        let state = buffer.state();
        let Some(wal) = state.wal else {
            panic!("no WAL figures");
        };
        assert!(
            wal.first > 1,
            "the held chunk's segment was dropped: {wal:?}"
        );
        // Records and samples counted lost agree: every chunk below `first` but the held one.
        assert_eq!(wal.records_dropped_size, wal.first - 1);
        assert_eq!(dropped, wal.records_dropped_size * 10);
        // What is waiting: the held chunk and those the log still has.
        assert_eq!(state.samples, (1 + 30 - wal.first) * 10);
        // The held chunk is delivered after all.
        assert!(buffer.ack(1).is_ok());
        assert_eq!(buffer.state().samples, (30 - wal.first) * 10);
    }
}
