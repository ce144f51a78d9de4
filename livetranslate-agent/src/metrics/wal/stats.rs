//! Figures for the agent's metrics: what is on disk, how far the sender is behind, and what
//! was lost and why.

use std::time::SystemTime;

/// What opening the log found and repaired. Returned by [`Wal::recovery`](super::Wal::recovery).
///
/// ```
/// use livetranslate_agent::metrics::wal::OpenReport;
///
/// let r = OpenReport::default();
/// assert_eq!(r.torn_records_cut, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segments found.
    pub segments: usize,
    /// Bytes of all segments after repair.
    pub disk_bytes: u64,
    /// Frames cut from the end of the newest segment (a torn write counts as one; frames after
    /// a damaged one in that segment are cut with it and counted).
    pub torn_records_cut: u64,
    /// Bytes cut from the end of the newest segment.
    pub torn_bytes_cut: u64,
    /// The durable acknowledgement position read from the checkpoint.
    pub acked: u64,
    /// The checkpoint existed but was damaged: replay starts at the oldest record (records are
    /// re-sent, none lost).
    pub checkpoint_reset: bool,
    /// The next sequence number to be appended.
    pub head: u64,
    /// Where a new reader starts: the durable acknowledgement, or the oldest retained record if
    /// that is later.
    pub replay_from: u64,
}

/// A snapshot of the log's gauges and counters (counters since [`Wal::open`](super::Wal::open)).
///
/// The agent reports some of them as `livetranslate_agent_wal_segments`,
/// `livetranslate_agent_wal_pending_records`,
/// `livetranslate_agent_wal_oldest_record_timestamp_seconds` and
/// `livetranslate_agent_wal_records_lost_total{reason}`.
///
/// ```
/// use livetranslate_agent::metrics::wal::WalStats;
///
/// let s = WalStats::default();
/// assert_eq!(s.ack_lag_records, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Segment files.
    pub segments: usize,
    /// Bytes of all segment files.
    pub disk_bytes: u64,
    /// Next sequence number to be appended.
    pub head: u64,
    /// Oldest record a reader can still get: the durable acknowledgement, or the first record
    /// of the oldest segment if that is later.
    pub first: u64,
    /// Durable acknowledgement: every record below it was acknowledged.
    pub acked: u64,
    /// Records appended but not acknowledged and not dropped: `head - first`.
    pub ack_lag_records: u64,
    /// The next record a reader will return (the furthest any reader got).
    pub read_position: u64,
    /// Append time of the oldest retained record, if any is retained.
    pub oldest_record_time: Option<SystemTime>,
    /// Records appended since open.
    pub records_appended: u64,
    /// Bytes appended since open (frames: 16 bytes of header each plus the payload).
    pub bytes_appended: u64,
    /// Frames cut from a torn or damaged tail when the log was opened.
    pub torn_records_cut: u64,
    /// Bytes cut from a torn or damaged tail when the log was opened.
    pub torn_bytes_cut: u64,
    /// Unacknowledged records dropped because the log exceeded `max_total_bytes`.
    pub records_dropped_size: u64,
    /// Bytes of the segments dropped because the log exceeded `max_total_bytes`.
    pub bytes_dropped_size: u64,
    /// Unacknowledged records dropped because they were older than `max_age`.
    pub records_dropped_age: u64,
    /// Bytes of the segments dropped because they were older than `max_age`.
    pub bytes_dropped_age: u64,
    /// Records a reader skipped because they were damaged (the rest of a segment after a
    /// damaged frame).
    pub records_skipped_corrupt: u64,
    /// Bytes a reader skipped because they were damaged.
    pub bytes_skipped_corrupt: u64,
    /// Segments deleted because every record in them was acknowledged.
    pub segments_deleted_acked: u64,
    /// fsync calls on segments.
    pub fsyncs: u64,
}
