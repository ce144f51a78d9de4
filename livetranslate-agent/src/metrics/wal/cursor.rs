//! The reader: the sender's cursor over the log, from the durable acknowledgement on, in order.
//!
//! The cursor is separate from the acknowledgement: reading does not acknowledge. It holds one
//! segment open and one record in memory at a time, so replaying a large log is a stream.
//!
//! A frame that fails its checksum in a sealed segment (damage in the middle of an older
//! segment: a bad disk block, a stray write) cannot be trusted to say where the next frame
//! starts, so the rest of that segment is skipped and counted, and reading goes on at the next
//! segment, whose name says exactly which record it starts with. Unlike Prometheus' repair, the
//! segments after the damage are kept: records here are independent batches, so there is no
//! reason to throw good ones away.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::error::WalError;
use super::record::{from_unix_ms, Record};
use super::segment::{segment_path, Frame, HeaderCheck, SegmentReader, SEGMENT_HEADER_LEN};
use super::state::Shared;

/// Reads records in order from a position on. Obtained from [`Wal::reader`](super::Wal::reader),
/// which starts it at the durable acknowledgement.
///
/// [`next`](WalReader::next) returns `Ok(None)` when it has caught up with the appender; call it
/// again after more appends. Records dropped by the size or age bound while the reader was
/// behind are jumped over (and counted as dropped by the log).
///
/// ```
/// use livetranslate_agent::metrics::wal::{Wal, WalConfig};
///
/// # let dir = std::env::temp_dir().join(format!("wal-doc-reader-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let wal = Wal::open(&dir, WalConfig::default())?;
/// wal.append(b"first")?;
/// let mut reader = wal.reader();
/// let rec = reader.next()?.expect("one record");
/// assert_eq!((rec.seq, rec.payload.as_slice()), (0, &b"first"[..]));
/// assert!(reader.next()?.is_none()); // caught up
/// wal.append(b"second")?;
/// assert_eq!(reader.next()?.map(|r| r.seq), Some(1));
/// # drop(reader); drop(wal); let _ = std::fs::remove_dir_all(&dir);
/// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
/// ```
#[derive(Debug)]
pub struct WalReader {
    shared: Arc<Shared>,
    /// The next record to return.
    seq: u64,
    open: Option<OpenSegment>,
    scratch: Vec<u8>,
}

#[derive(Debug)]
struct OpenSegment {
    base: u64,
    reader: SegmentReader,
    /// Offset of the frame of `seq`.
    off: u64,
    /// Sequence number after the last record readable now.
    end_seq: u64,
    /// Offset after the last byte readable now.
    end_off: u64,
    /// No more records will be appended to it.
    sealed: bool,
}

impl WalReader {
    pub(crate) fn new(shared: Arc<Shared>, seq: u64) -> WalReader {
        WalReader {
            shared,
            seq,
            open: None,
            scratch: Vec::new(),
        }
    }

    /// The sequence number of the next record [`next`](WalReader::next) will return (or wait
    /// for). Pass it to [`Wal::ack`](super::Wal::ack) once everything read so far is
    /// acknowledged.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-pos-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.append_batch(&[b"a", b"b"])?;
    /// let mut reader = wal.reader();
    /// while reader.next()?.is_some() {}
    /// wal.ack(reader.position())?; // both acknowledged
    /// assert_eq!(wal.stats().ack_lag_records, 0);
    /// # drop(reader); drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.seq.max(self.shared.first.load(Ordering::Acquire))
    }

    /// Moves the cursor so that the next record returned is `seq` (or the oldest retained
    /// record if `seq` is older). Use it to re-read after a failed send without keeping the
    /// records in memory.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-seek-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.append_batch(&[b"a", b"b", b"c"])?;
    /// let mut reader = wal.reader();
    /// reader.next()?;
    /// reader.next()?;
    /// reader.seek(wal.acked()); // the send failed: start over from the acknowledgement
    /// assert_eq!(reader.next()?.map(|r| r.seq), Some(0));
    /// # drop(reader); drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn seek(&mut self, seq: u64) {
        self.seq = seq;
        self.open = None;
    }

    /// The next record, or `None` when every appended record has been read.
    ///
    /// Errors are I/O errors only; damaged records are skipped and counted
    /// ([`WalStats::records_skipped_corrupt`](super::WalStats::records_skipped_corrupt)).
    #[allow(clippy::should_implement_trait)] // fallible, and `None` means "not yet", not "done"
    pub fn next(&mut self) -> Result<Option<Record>, WalError> {
        loop {
            let first = self.shared.first.load(Ordering::Acquire);
            if self.seq < first {
                // Acknowledged or dropped behind our back.
                self.seq = first;
                self.open = None;
            }
            let Some(seg) = self.open.as_mut() else {
                if !self.open_segment()? {
                    return Ok(None);
                }
                continue;
            };
            if self.seq >= seg.end_seq {
                if seg.sealed {
                    self.open = None;
                } else if !self.refresh()? {
                    return Ok(None);
                }
                continue;
            }
            let mut payload = Vec::new();
            let frame = seg
                .reader
                .read_frame(seg.off, seg.end_off, &mut payload)
                .map_err(|e| {
                    WalError::io("read", segment_path(&self.shared.lock().dir, seg.base))(e)
                })?;
            match frame {
                Frame::Valid(h) => {
                    let record = Record {
                        seq: self.seq,
                        appended_at: from_unix_ms(h.appended_ms),
                        payload,
                    };
                    seg.off += h.frame_len();
                    self.seq += 1;
                    self.shared.read_position.store(self.seq, Ordering::Release);
                    return Ok(Some(record));
                }
                Frame::Invalid => self.skip_rest(),
            }
        }
    }

    /// Skips the rest of the open segment (as far as it is readable now), counting it.
    fn skip_rest(&mut self) {
        if let Some(seg) = self.open.as_mut() {
            let records = seg.end_seq.saturating_sub(self.seq);
            let bytes = seg.end_off.saturating_sub(seg.off);
            self.shared
                .skipped_records
                .fetch_add(records, Ordering::Relaxed);
            self.shared
                .skipped_bytes
                .fetch_add(bytes, Ordering::Relaxed);
            self.seq = self.seq.max(seg.end_seq);
            seg.off = seg.end_off;
        }
    }

    /// Opens the segment holding `seq` and moves to its frame. `false` when caught up.
    fn open_segment(&mut self) -> Result<bool, WalError> {
        let (seg, path) = {
            let st = self.shared.lock();
            self.seq = self.seq.max(st.first());
            if self.seq >= st.head {
                return Ok(false);
            }
            let i = st.index_of(self.seq);
            let Some((meta, end_seq)) = st.segment(i) else {
                return Ok(false);
            };
            let path = segment_path(&st.dir, meta.base);
            // Opened under the lock: nothing deletes it meanwhile.
            let file = File::open(&path).map_err(WalError::io("open", &path))?;
            let seg = OpenSegment {
                base: meta.base,
                reader: SegmentReader::new(file),
                off: SEGMENT_HEADER_LEN,
                end_seq,
                end_off: meta.len,
                sealed: i < st.sealed.len(),
            };
            (seg, path)
        };
        let base = seg.base;
        self.open = Some(seg);
        let Some(seg) = self.open.as_mut() else {
            return Ok(false);
        };
        let header = seg
            .reader
            .read_header(seg.end_off)
            .map_err(WalError::io("read", &path))?;
        let mut damaged = header != HeaderCheck::Valid;
        if damaged {
            seg.off = 0;
        } else {
            for _ in base..self.seq {
                match seg
                    .reader
                    .read_frame(seg.off, seg.end_off, &mut self.scratch)
                    .map_err(WalError::io("read", &path))?
                {
                    Frame::Valid(h) => seg.off += h.frame_len(),
                    Frame::Invalid => {
                        damaged = true;
                        break;
                    }
                }
            }
            self.scratch = Vec::new();
        }
        if damaged {
            self.skip_rest();
        }
        Ok(true)
    }

    /// Picks up what was appended to the open (active) segment since it was opened, or that it
    /// was sealed. `false` when there is nothing new.
    fn refresh(&mut self) -> Result<bool, WalError> {
        let Some(seg) = self.open.as_mut() else {
            return Ok(true);
        };
        let st = self.shared.lock();
        if seg.base < st.oldest_base() {
            self.open = None;
            return Ok(true);
        }
        let i = st.index_of(seg.base);
        match st.segment(i) {
            Some((meta, end_seq)) if meta.base == seg.base => {
                let grew = end_seq > seg.end_seq;
                seg.end_seq = end_seq;
                seg.end_off = meta.len;
                seg.sealed = i < st.sealed.len();
                Ok(grew || seg.sealed)
            }
            _ => {
                self.open = None;
                Ok(true)
            }
        }
    }
}
