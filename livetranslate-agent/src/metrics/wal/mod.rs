//! A write-ahead log for remote write: records (opaque byte payloads) appended in order to
//! checksummed segment files, read back by a cursor from the last durable acknowledgement, and
//! deleted once acknowledged or when the log outgrows its size or age bound.
//!
//! A leaf: it knows nothing of samples or of the rest of the agent. Its user (remote write's
//! buffer, `metrics::remote_write::buffer`) appends encoded batches (one scrape's samples, or remote-write-sized chunks), sends what the
//! [`WalReader`] returns, and calls [`Wal::ack`] after the receiver accepted it.
//!
//! # Records
//!
//! A record is a byte payload of up to [`WalConfig::max_record_bytes`] (default 4 MiB; larger
//! ones are refused with [`WalError::RecordTooLarge`], so split batches before that). Expected
//! sizes are 1 KiB – 1 MiB: a scrape of a few thousand series, or a remote-write request's worth
//! of samples. Every record costs 16 bytes of header. A reader holds one record in memory at a
//! time, so memory is bounded by the largest record, never by the size of the log.
//!
//! Each record gets a sequence number: 0 for the first record ever appended to the directory,
//! then one more per record, across segments and restarts. A number is never reused, not even
//! after a crash lost the records that had it.
//!
//! # On disk
//!
//! ```text
//! <dir>/lock                        flock'd while open: one process per directory
//! <dir>/ack                         checkpoint: every record below N was acknowledged
//! <dir>/00000000000000000000.seg    segment whose first record is number 0
//! <dir>/00000000000000004711.seg    … whose first record is number 4711 (the active one)
//! ```
//!
//! A segment is a 16-byte header (`LTWALSEG`, format version 1 as `u32` LE, CRC-32 of those
//! 12 bytes as `u32` LE) followed by frames `len: u32 LE | crc: u32 LE | appended_at_ms: u64 LE | payload`. The CRC
//! is CRC-32/IEEE (the zlib / gzip polynomial, via `crc32fast`) of the length, the time and the
//! payload. A frame never spans segments; a segment is sealed and a new one started when the
//! next frame would take it past [`WalConfig::max_segment_bytes`]. The `ack` file is 24 bytes:
//! `LTWALACK`, version, position (`u64` LE), CRC-32 of the rest.
//!
//! # Damage
//!
//! - **Torn tail** (a crash in the middle of a write): on [`Wal::open`] the newest segment is
//!   scanned, cut right after its last valid frame, and the cut frames and bytes are reported
//!   in [`OpenReport`] / [`WalStats::torn_records_cut`]. Appends continue after it. A damaged
//!   frame in the middle of the newest segment is cut the same way, with everything after it
//!   in that segment.
//! - **Damage inside an older segment** (a bad block): found when the reader gets there; the
//!   rest of that segment is skipped and counted ([`WalStats::records_skipped_corrupt`]) and
//!   reading goes on with the next segment. Opening never scans older segments, so it costs
//!   one segment's read whatever the log's size.
//! - **Damaged checkpoint**: replay starts at the oldest record ([`OpenReport::checkpoint_reset`]);
//!   records are re-sent, none is lost.
//! - **A segment of another format version**: [`WalError::UnsupportedVersion`] (refusing is
//!   better than deleting what a newer agent wrote).
//!
//! # Durability and delivery
//!
//! Every append reaches the operating system with one `write(2)` before it returns, so a record
//! whose `append` returned survives `kill -9`. [`SyncPolicy`] decides what survives power loss
//! (default [`SyncPolicy::Always`]: fsync per append call). [`Wal::ack`] writes the checkpoint
//! atomically (temp file, fsync, rename, fsync of the directory) before it returns.
//!
//! Delivery is **at least once**: after a crash, reading resumes at the last durable
//! acknowledgement, so records that were sent but not yet acknowledged are sent again.
//! Prometheus-compatible receivers (Prometheus, Mimir, Thanos, VictoriaMetrics) accept a sample
//! identical to one they already have (same series, timestamp and value) without error or
//! duplication, so a re-sent batch is harmless.
//!
//! # Bounds
//!
//! [`WalConfig::max_total_bytes`] and [`WalConfig::max_age`] drop whole segments, oldest first,
//! acknowledged or not; the unacknowledged records and the bytes dropped are counted per
//! reason ([`WalStats`]). Bounds are applied at open, after every append, and by
//! [`Wal::enforce_bounds`] (call it from a timer so that an idle log ages out too).
//!
//! # Wiring it into remote write
//!
//! ```no_run
//! use livetranslate_agent::metrics::wal::{Wal, WalConfig};
//! # fn encode(_: &[u8]) -> Vec<u8> { Vec::new() }
//! # fn send(_: &[Vec<u8>]) -> Result<u16, ()> { Ok(204) }
//!
//! let wal = Wal::open("/var/lib/agent/wal", WalConfig::default())?;
//! // Scrape path: one append per scrape (or per chunk of samples).
//! wal.append(&encode(b"samples of one scrape"))?;
//!
//! // Sender loop: read from the durable acknowledgement on, send, acknowledge on 2xx.
//! let mut reader = wal.reader();
//! loop {
//!     let mut batch = Vec::new();
//!     while batch.len() < 10 {
//!         match reader.next()? {
//!             Some(record) => batch.push(record.payload),
//!             None => break, // caught up: wait for the next append
//!         }
//!     }
//!     if batch.is_empty() { break; }
//!     match send(&batch) {
//!         Ok(status) if (200..300).contains(&status) => wal.ack(reader.position())?,
//!         // 4xx other than 429: the receiver will never take it; acknowledge to move on
//!         // (and count the samples as rejected).
//!         Ok(status) if (400..500).contains(&status) && status != 429 => wal.ack(reader.position())?,
//!         // 5xx, 429, network error: keep the batch, back off, retry it; do not acknowledge.
//!         _ => reader.seek(wal.acked()),
//!     }
//! }
//! # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
//! ```
//!
//! All methods are blocking file I/O (an fsync can take milliseconds): from async code call
//! them from `spawn_blocking` or a dedicated thread. [`Wal`] is `Send + Sync`. Appends from
//! several threads are serialised for their `write(2)`, but not for their fsync: under
//! [`SyncPolicy::Always`] one fsync covers every append written before it started (group
//! commit), so concurrent scrape loops share fsyncs instead of queueing for one each.

mod checkpoint;
mod config;
mod cursor;
mod dir;
mod error;
mod record;
mod recovery;
mod retention;
mod segment;
mod state;
mod stats;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use config::{SyncPolicy, WalConfig, MIN_SEGMENT_BYTES};
pub use cursor::WalReader;
pub use error::WalError;
pub use record::{Record, FRAME_HEADER_LEN};
pub use segment::SEGMENT_HEADER_LEN;
pub use stats::{OpenReport, WalStats};

use record::{from_unix_ms, unix_ms};
use state::Shared;

/// An open write-ahead log. See the [module documentation](self) for the format and the
/// guarantees.
///
/// ```
/// use livetranslate_agent::metrics::wal::{Wal, WalConfig};
///
/// # let dir = std::env::temp_dir().join(format!("wal-doc-wal-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let wal = Wal::open(&dir, WalConfig::default())?;
/// let seqs = wal.append_batch(&[b"one".as_slice(), b"two"])?;
/// assert_eq!(seqs, 0..2);
/// let mut reader = wal.reader();
/// assert_eq!(reader.next()?.map(|r| r.payload), Some(b"one".to_vec()));
/// wal.ack(1)?; // record 0 is acknowledged
/// drop(reader);
/// drop(wal);
///
/// // After a restart, reading resumes at the durable acknowledgement.
/// let wal = Wal::open(&dir, WalConfig::default())?;
/// assert_eq!(wal.reader().next()?.map(|r| r.seq), Some(1));
/// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
/// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
/// ```
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Wal {
    /// Opens the log in `dir` (created if missing): takes the directory lock, repairs a torn
    /// tail, deletes acknowledged segments and applies the bounds. What was repaired is in
    /// [`Wal::recovery`].
    ///
    /// Fails on I/O errors, invalid settings, a directory locked by another process, or a
    /// segment of an unknown format version; never because of damaged records.
    ///
    /// ```
    /// use livetranslate_agent::metrics::wal::{Wal, WalConfig, WalError};
    ///
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-open-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// // A second opener of the same directory is refused while the first holds it.
    /// assert!(matches!(Wal::open(&dir, WalConfig::default()), Err(WalError::Locked { .. })));
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), WalError>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<Wal, WalError> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir).map_err(WalError::io("create directory", &dir))?;
        let lock = dir::lock(&dir)?;
        let (mut state, mut report) = recovery::recover(&dir, &config)?;
        state.enforce_bounds(unix_ms(SystemTime::now()))?;
        report.segments = state.sealed.len() + 1;
        report.disk_bytes = state.disk_bytes;
        report.replay_from = state.first();
        let first = state.first();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            ack: Mutex::new(()),
            sync: Mutex::new(()),
            first: AtomicU64::new(first),
            read_position: AtomicU64::new(first),
            skipped_records: AtomicU64::new(0),
            skipped_bytes: AtomicU64::new(0),
            report,
            _lock: lock,
        });
        Ok(Wal { shared, dir })
    }

    /// Appends one record; returns its sequence number. See [`Wal::append_batch`].
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-append-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// assert_eq!(wal.append(b"batch")?, 0);
    /// assert_eq!(wal.append(b"next batch")?, 1);
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn append(&self, payload: &[u8]) -> Result<u64, WalError> {
        self.append_batch(&[payload]).map(|r| r.start)
    }

    /// Appends records in order, stamped with the current time; returns their sequence numbers.
    ///
    /// The frames are written with one `write(2)` per segment they land in, then fsynced as
    /// [`WalConfig::sync`] says, then the bounds are applied. If any payload is larger than
    /// `max_record_bytes` nothing is written. On an I/O error the records before the failing
    /// segment write may have been appended ([`Wal::head`] tells); a partial frame never stays.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-batch-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// let chunks: Vec<Vec<u8>> = vec![vec![1; 100], vec![2; 200]];
    /// assert_eq!(wal.append_batch(&chunks)?, 0..2);
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Range<u64>, WalError> {
        self.append_batch_at(payloads, SystemTime::now())
    }

    /// [`Wal::append_batch`] with an explicit append time (the time the age bound judges the
    /// records by; e.g. the scrape's time).
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # use std::time::{Duration, SystemTime};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-at-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// let scraped_at = SystemTime::now() - Duration::from_secs(2);
    /// wal.append_batch_at(&[b"samples"], scraped_at)?;
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn append_batch_at<P: AsRef<[u8]>>(
        &self,
        payloads: &[P],
        at: SystemTime,
    ) -> Result<Range<u64>, WalError> {
        let (range, bounds, sync) = {
            let mut st = self.shared.lock();
            let range = st.append(payloads, unix_ms(at))?;
            let bounds = st.enforce_bounds(unix_ms(SystemTime::now()));
            self.shared.publish(&st);
            (range, bounds, st.sync_wanted())
        };
        if sync {
            self.sync_upto(range.end)?;
        }
        bounds.map(|()| range)
    }

    /// Makes every record below `target` durable. The fsync runs without the state lock, so
    /// appends go on meanwhile; callers queue on `shared.sync`, and whoever finds its records
    /// already covered by the fsync before it returns at once (group commit).
    fn sync_upto(&self, target: u64) -> Result<(), WalError> {
        let _one_at_a_time = self.shared.sync.lock().unwrap_or_else(|e| e.into_inner());
        let (file, upto) = {
            let st = self.shared.lock();
            st.ensure_usable()?;
            if st.synced >= target {
                return Ok(());
            }
            // Records in segments sealed since were fsynced when they were sealed.
            (st.file.clone(), st.head)
        };
        let r = file.sync_data();
        self.shared.lock().synced_to(upto, r)
    }

    /// Acknowledges every record below `upto` (exclusive: pass the position after the last
    /// record the receiver accepted, e.g. [`WalReader::position`]). The position is made
    /// durable before this returns, and segments all of whose records are acknowledged are
    /// deleted. Positions at or below the current acknowledgement are a no-op.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig, WalError};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-ack-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.append_batch(&[b"a", b"b", b"c"])?;
    /// wal.ack(2)?;
    /// assert_eq!(wal.acked(), 2);
    /// assert!(matches!(wal.ack(4), Err(WalError::AckBeyondHead { upto: 4, head: 3 })));
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), WalError>(())
    /// ```
    pub fn ack(&self, upto: u64) -> Result<(), WalError> {
        let _one_at_a_time = self.shared.ack.lock().unwrap_or_else(|e| e.into_inner());
        {
            let st = self.shared.lock();
            if upto > st.head {
                return Err(WalError::AckBeyondHead {
                    upto,
                    head: st.head,
                });
            }
            if upto <= st.acked {
                return Ok(());
            }
        }
        // The fsyncs of the checkpoint happen without holding up appends.
        checkpoint::store(&self.dir, upto)?;
        let mut st = self.shared.lock();
        st.acked = upto;
        let deleted = st.delete_acked();
        self.shared.publish(&st);
        deleted
    }

    /// A reader starting at the durable acknowledgement (or at the oldest retained record, if
    /// later). Several readers may exist; each has its own position.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-rd-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.append(b"x")?;
    /// assert_eq!(wal.reader().position(), 0);
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn reader(&self) -> WalReader {
        let first = self.shared.lock().first();
        WalReader::new(self.shared.clone(), first)
    }

    /// fsyncs the records appended to the active segment since the last fsync (a no-op if there
    /// are none). Sealed segments were fsynced when sealed, except under [`SyncPolicy::Never`].
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig, SyncPolicy};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-sync-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig { sync: SyncPolicy::Never, ..WalConfig::default() })?;
    /// wal.append(b"x")?;
    /// wal.sync()?; // durable now
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn sync(&self) -> Result<(), WalError> {
        let head = self.shared.lock().head;
        self.sync_upto(head)
    }

    /// Under [`SyncPolicy::Interval`], fsyncs if records are waiting and the interval has
    /// passed since the last fsync. Call it from a timer ticking at the interval so that the
    /// last appends of a burst are synced too. A no-op under the other policies.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig, SyncPolicy};
    /// # use std::time::Duration;
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-due-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let config = WalConfig { sync: SyncPolicy::Interval(Duration::from_secs(1)), ..WalConfig::default() };
    /// let wal = Wal::open(&dir, config)?;
    /// wal.append(b"x")?;
    /// wal.sync_if_due()?; // from a 1 s ticker
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn sync_if_due(&self) -> Result<(), WalError> {
        let (due, head) = {
            let st = self.shared.lock();
            let due = matches!(st.config.sync, SyncPolicy::Interval(_)) && st.sync_wanted();
            (due, st.head)
        };
        if due {
            self.sync_upto(head)?;
        }
        Ok(())
    }

    /// Applies the size and age bounds now. Appends do this themselves; call it from a timer
    /// so that a log nobody appends to still ages out.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-bounds-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.enforce_bounds()?;
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn enforce_bounds(&self) -> Result<(), WalError> {
        self.enforce_bounds_at(SystemTime::now())
    }

    /// [`Wal::enforce_bounds`] as if the time were `now`.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # use std::time::{Duration, SystemTime};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-bat-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?; // max_age 4 h
    /// wal.append(b"x")?;
    /// wal.enforce_bounds_at(SystemTime::now() + Duration::from_secs(5 * 3600))?;
    /// assert_eq!(wal.stats().records_dropped_age, 1);
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn enforce_bounds_at(&self, now: SystemTime) -> Result<(), WalError> {
        let mut st = self.shared.lock();
        let r = st.enforce_bounds(unix_ms(now));
        self.shared.publish(&st);
        r
    }

    /// The sequence number the next appended record will get.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-head-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.append(b"x")?;
    /// assert_eq!(wal.head(), 1);
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn head(&self) -> u64 {
        self.shared.lock().head
    }

    /// The durable acknowledgement: every record below it was acknowledged.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-acked-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// assert_eq!(wal.acked(), 0);
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn acked(&self) -> u64 {
        self.shared.lock().acked
    }

    /// What opening the log found and repaired.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-rec-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// let r = wal.recovery();
    /// assert_eq!((r.torn_records_cut, r.head, r.replay_from), (0, 0, 0));
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn recovery(&self) -> &OpenReport {
        &self.shared.report
    }

    /// A snapshot of the gauges and counters.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-stats-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.append(b"0123456789")?;
    /// let s = wal.stats();
    /// assert_eq!((s.segments, s.records_appended, s.bytes_appended, s.ack_lag_records), (1, 1, 26, 1));
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn stats(&self) -> WalStats {
        let st = self.shared.lock();
        let first = st.first();
        let oldest_ms = st
            .sealed
            .front()
            .and_then(|m| m.first_ms)
            .or(if st.sealed.is_empty() {
                st.active.first_ms
            } else {
                None
            });
        let report = &self.shared.report;
        let c = &st.counters;
        WalStats {
            segments: st.sealed.len() + 1,
            disk_bytes: st.disk_bytes,
            head: st.head,
            first,
            acked: st.acked,
            ack_lag_records: st.head.saturating_sub(first),
            read_position: self.shared.read_position.load(Ordering::Acquire).max(first),
            oldest_record_time: oldest_ms
                .filter(|_| st.head > st.oldest_base())
                .map(from_unix_ms),
            records_appended: c.records_appended,
            bytes_appended: c.bytes_appended,
            torn_records_cut: report.torn_records_cut,
            torn_bytes_cut: report.torn_bytes_cut,
            records_dropped_size: c.records_dropped_size,
            bytes_dropped_size: c.bytes_dropped_size,
            records_dropped_age: c.records_dropped_age,
            bytes_dropped_age: c.bytes_dropped_age,
            records_skipped_corrupt: self.shared.skipped_records.load(Ordering::Relaxed),
            bytes_skipped_corrupt: self.shared.skipped_bytes.load(Ordering::Relaxed),
            segments_deleted_acked: c.segments_deleted_acked,
            fsyncs: c.fsyncs,
        }
    }

    /// The directory.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-dir-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// assert_eq!(wal.dir(), dir.as_path());
    /// # drop(wal); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// fsyncs what is pending (unless the policy is `Never`) and closes the log (the lock is released once every reader is
    /// dropped too). Dropping a `Wal` does the same, ignoring errors.
    ///
    /// ```
    /// # use livetranslate_agent::metrics::wal::{Wal, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("wal-doc-close-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let wal = Wal::open(&dir, WalConfig::default())?;
    /// wal.close()?;
    /// let again = Wal::open(&dir, WalConfig::default())?;
    /// # drop(again); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), livetranslate_agent::metrics::wal::WalError>(())
    /// ```
    pub fn close(self) -> Result<(), WalError> {
        self.final_sync()
    }

    fn final_sync(&self) -> Result<(), WalError> {
        let head = {
            let st = self.shared.lock();
            if st.config.sync == SyncPolicy::Never || st.failed.is_some() {
                return Ok(());
            }
            st.head
        };
        self.sync_upto(head)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.final_sync();
    }
}
