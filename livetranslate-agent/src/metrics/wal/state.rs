//! The log's mutable state and the write path: framing a batch, writing it with one `write(2)`
//! per segment it touches, sealing full segments, fsync, and deleting acknowledged segments.
//!
//! fsync after an append runs outside the state lock (group commit, see
//! [`Wal`](super::Wal)): appends from other threads go on meanwhile, and one fsync covers every
//! record written before it started.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::config::{SyncPolicy, WalConfig};
use super::dir::DirLock;
use super::error::WalError;
use super::record::{encode, FRAME_HEADER_LEN};
use super::segment::{self, segment_path, SEGMENT_HEADER_LEN};
use super::stats::OpenReport;

/// What is known of one segment without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegMeta {
    /// Sequence number of its first record (its name).
    pub(crate) base: u64,
    /// Bytes: the file length for a sealed segment, the end of the last whole frame for the
    /// active one.
    pub(crate) len: u64,
    /// Append time of its first record, if known.
    pub(crate) first_ms: Option<u64>,
    /// Latest append time among its records (for a segment found at open: its mtime).
    pub(crate) last_ms: Option<u64>,
}

/// Counters since open (see [`WalStats`](super::WalStats)).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) records_appended: u64,
    pub(crate) bytes_appended: u64,
    pub(crate) records_dropped_size: u64,
    pub(crate) bytes_dropped_size: u64,
    pub(crate) records_dropped_age: u64,
    pub(crate) bytes_dropped_age: u64,
    pub(crate) segments_deleted_acked: u64,
    pub(crate) fsyncs: u64,
}

/// Everything behind the log's mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    pub(crate) config: WalConfig,
    /// Sealed segments, oldest first.
    pub(crate) sealed: VecDeque<SegMeta>,
    /// The segment appended to.
    pub(crate) active: SegMeta,
    /// Its file, positioned at `active.len` (shared with an fsync running outside the lock).
    pub(crate) file: Arc<File>,
    /// The next sequence number.
    pub(crate) head: u64,
    /// The durable acknowledgement.
    pub(crate) acked: u64,
    pub(crate) disk_bytes: u64,
    /// Every record below this is fsynced.
    pub(crate) synced: u64,
    pub(crate) last_sync: Instant,
    /// Set when a write failed and could not be undone, or an fsync failed.
    pub(crate) failed: Option<String>,
    /// Frames of the batch being appended (reused).
    pub(crate) buf: Vec<u8>,
    pub(crate) counters: Counters,
}

/// Why segments were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    Size,
    Age,
}

/// The buffer is kept between appends up to this capacity.
const KEEP_BUFFER: usize = 1 << 20;

impl State {
    /// Base of the oldest segment.
    pub(crate) fn oldest_base(&self) -> u64 {
        self.sealed.front().map_or(self.active.base, |m| m.base)
    }

    /// The oldest record a reader may get.
    pub(crate) fn first(&self) -> u64 {
        self.oldest_base().max(self.acked)
    }

    /// Segment `i` in age order (`sealed.len()` is the active one) and the sequence number after
    /// its last record.
    pub(crate) fn segment(&self, i: usize) -> Option<(&SegMeta, u64)> {
        let meta = if i < self.sealed.len() {
            &self.sealed[i]
        } else if i == self.sealed.len() {
            &self.active
        } else {
            return None;
        };
        let end = match self.sealed.get(i + 1) {
            Some(next) => next.base,
            None if i + 1 == self.sealed.len() => self.active.base,
            None => self.head,
        };
        Some((meta, end))
    }

    /// Index (as in [`State::segment`]) of the segment holding `seq`, which must be at least
    /// [`State::oldest_base`].
    pub(crate) fn index_of(&self, seq: u64) -> usize {
        if seq >= self.active.base {
            self.sealed.len()
        } else {
            self.sealed
                .partition_point(|m| m.base <= seq)
                .saturating_sub(1)
        }
    }

    pub(crate) fn ensure_usable(&self) -> Result<(), WalError> {
        match &self.failed {
            Some(reason) => Err(WalError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Appends `payloads` as records appended at `ms`; returns their sequence numbers. The
    /// caller fsyncs afterwards if [`State::sync_wanted`].
    pub(crate) fn append<P: AsRef<[u8]>>(
        &mut self,
        payloads: &[P],
        ms: u64,
    ) -> Result<Range<u64>, WalError> {
        self.ensure_usable()?;
        let max = self.config.max_record_bytes;
        if let Some(p) = payloads.iter().find(|p| p.as_ref().len() as u64 > max) {
            return Err(WalError::RecordTooLarge {
                len: p.as_ref().len(),
                max,
            });
        }
        let start = self.head;
        self.buf.clear();
        let mut pending = 0;
        for p in payloads {
            let p = p.as_ref();
            let used = self.active.len + self.buf.len() as u64;
            let frame = FRAME_HEADER_LEN + p.len() as u64;
            if used + frame > self.config.max_segment_bytes && used > SEGMENT_HEADER_LEN {
                self.write_pending(pending, ms)?;
                pending = 0;
                self.roll()?;
            }
            encode(&mut self.buf, p, ms);
            pending += 1;
        }
        self.write_pending(pending, ms)?;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        Ok(start..self.head)
    }

    /// Whether the policy asks for an fsync now.
    pub(crate) fn sync_wanted(&self) -> bool {
        self.synced < self.head
            && match self.config.sync {
                SyncPolicy::Always => true,
                SyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
                SyncPolicy::Never => false,
            }
    }

    /// Writes the `n` frames in `buf` to the active segment with one `write(2)`; on failure
    /// removes whatever part of them reached the file.
    fn write_pending(&mut self, n: u64, ms: u64) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut file: &File = &self.file;
        if let Err(e) = file.write_all(&self.buf) {
            let len = self.active.len;
            let undo = file
                .set_len(len)
                .and_then(|()| file.seek(SeekFrom::Start(len)).map(drop));
            if let Err(u) = undo {
                self.failed = Some(format!(
                    "a write failed ({e}) and its partial frame could not be removed ({u})"
                ));
            }
            self.buf.clear();
            return Err(WalError::io("write", self.active_path())(e));
        }
        let bytes = self.buf.len() as u64;
        self.buf.clear();
        self.active.len += bytes;
        self.active.first_ms.get_or_insert(ms);
        self.active.last_ms = Some(self.active.last_ms.map_or(ms, |l| l.max(ms)));
        self.disk_bytes += bytes;
        self.head += n;
        self.counters.records_appended += n;
        self.counters.bytes_appended += bytes;
        Ok(())
    }

    pub(crate) fn active_path(&self) -> PathBuf {
        segment_path(&self.dir, self.active.base)
    }

    /// fsyncs the active segment, holding the lock, if it has unsynced records.
    pub(crate) fn sync(&mut self) -> Result<(), WalError> {
        self.ensure_usable()?;
        if self.synced >= self.head {
            return Ok(());
        }
        let upto = self.head;
        let r = self.file.sync_data();
        self.synced_to(upto, r)
    }

    /// Records the outcome of an fsync that started when `head` was `upto`. A failed fsync
    /// leaves the log failed: after one, the kernel may have dropped the pages, and a later
    /// fsync can report success for data that never reached the disk.
    pub(crate) fn synced_to(&mut self, upto: u64, r: std::io::Result<()>) -> Result<(), WalError> {
        if let Err(e) = r {
            self.failed = Some(format!("fsync failed: {e}"));
            return Err(WalError::io("fsync", self.active_path())(e));
        }
        self.synced = self.synced.max(upto);
        self.last_sync = Instant::now();
        self.counters.fsyncs += 1;
        Ok(())
    }

    /// Seals the active segment (fsynced unless the policy is `Never`) and starts a new one at
    /// `head`.
    pub(crate) fn roll(&mut self) -> Result<(), WalError> {
        let sync = self.config.sync != SyncPolicy::Never;
        if sync {
            self.sync()?;
        }
        let file = segment::create(&self.dir, self.head, sync)?;
        let fresh = SegMeta {
            base: self.head,
            len: SEGMENT_HEADER_LEN,
            first_ms: None,
            last_ms: None,
        };
        let old = std::mem::replace(&mut self.active, fresh);
        self.sealed.push_back(old);
        self.file = Arc::new(file);
        self.disk_bytes += SEGMENT_HEADER_LEN;
        Ok(())
    }

    /// Deletes the oldest sealed segment, counting its unacknowledged records as dropped.
    pub(crate) fn drop_oldest(&mut self, reason: DropReason) -> Result<(), WalError> {
        let Some(oldest) = self.sealed.front() else {
            return Ok(());
        };
        let path = segment_path(&self.dir, oldest.base);
        remove(&path)?;
        let Some(meta) = self.sealed.pop_front() else {
            return Ok(());
        };
        let next = self.oldest_base();
        let unacked = next.saturating_sub(meta.base.max(self.acked));
        let c = &mut self.counters;
        match reason {
            DropReason::Size => {
                c.records_dropped_size += unacked;
                c.bytes_dropped_size += meta.len;
            }
            DropReason::Age => {
                c.records_dropped_age += unacked;
                c.bytes_dropped_age += meta.len;
            }
        }
        self.disk_bytes -= meta.len.min(self.disk_bytes);
        Ok(())
    }

    /// Deletes the sealed segments all of whose records are acknowledged.
    pub(crate) fn delete_acked(&mut self) -> Result<(), WalError> {
        while let Some((meta, end)) = self.segment(0).filter(|_| !self.sealed.is_empty()) {
            if end > self.acked {
                break;
            }
            let (base, len) = (meta.base, meta.len);
            remove(&segment_path(&self.dir, base))?;
            self.sealed.pop_front();
            self.disk_bytes -= len.min(self.disk_bytes);
            self.counters.segments_deleted_acked += 1;
        }
        Ok(())
    }
}

/// Removes a file; one already gone is fine.
fn remove(path: &std::path::Path) -> Result<(), WalError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io("delete", path)(e)),
    }
}

/// What the [`Wal`](super::Wal) handle and its readers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Serialises `ack` calls, whose checkpoint fsync runs outside `state`.
    pub(crate) ack: Mutex<()>,
    /// Serialises fsyncs of the active segment, which run outside `state`.
    pub(crate) sync: Mutex<()>,
    /// Copy of [`State::first`], for readers to check without the lock.
    pub(crate) first: AtomicU64,
    pub(crate) read_position: AtomicU64,
    pub(crate) skipped_records: AtomicU64,
    pub(crate) skipped_bytes: AtomicU64,
    pub(crate) report: OpenReport,
    pub(crate) _lock: DirLock,
}

impl Shared {
    /// The state; a panic elsewhere while it was held does not make it unusable (every update
    /// leaves it consistent before anything can fail).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes what readers check without the lock.
    pub(crate) fn publish(&self, st: &State) {
        self.first.store(st.first(), Ordering::Release);
    }
}
