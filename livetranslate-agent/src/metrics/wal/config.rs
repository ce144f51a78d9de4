//! The settings of a write-ahead log and its fsync policy.

use std::time::Duration;

use super::error::WalError;
use super::record::FRAME_HEADER_LEN;
use super::segment::SEGMENT_HEADER_LEN;

/// When appended records are forced to stable storage (`fdatasync`).
///
/// Every `append` call hands its records to the operating system with one `write(2)` before it
/// returns, whatever the policy: a record whose `append` returned survives a crash of the
/// process (`kill -9`, panic, OOM kill). The policy decides what survives a crash of the
/// *machine* (power loss, kernel panic):
///
/// | policy            | survives machine crash              | cost per `append`             |
/// |-------------------|-------------------------------------|-------------------------------|
/// | `Always`          | every record whose `append` returned| one fsync (≈0.05–10 ms)       |
/// | `Interval(d)`     | all but the last `d` of appends      | one fsync per `d`             |
/// | `Never`           | whatever the kernel flushed (≈30 s)  | none                          |
///
/// Segments are always fsynced when they are sealed (except with `Never`), as are segment
/// creation and the acknowledgement checkpoint.
///
/// ```
/// use livetranslate_agent::metrics::wal::SyncPolicy;
/// use std::time::Duration;
///
/// assert_eq!(SyncPolicy::default(), SyncPolicy::Always);
/// let relaxed = SyncPolicy::Interval(Duration::from_millis(500));
/// # let _ = relaxed;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// fsync at the end of every `append` / `append_batch` call (the default: one fsync per
    /// scrape is cheap at scrape rates, and nothing acknowledged to the caller is lost).
    #[default]
    Always,
    /// fsync when an append finds the last fsync older than this, and whenever
    /// [`Wal::sync_if_due`](super::Wal::sync_if_due) is called (call it from a timer so that the
    /// tail of a burst is synced too).
    Interval(Duration),
    /// Never fsync records; the kernel writes them back on its own schedule.
    Never,
}

/// Settings of a [`Wal`](super::Wal).
///
/// | field               | default   | meaning                                                     |
/// |---------------------|-----------|-------------------------------------------------------------|
/// | `max_segment_bytes` | 16 MiB    | a segment is sealed once the next frame would exceed this   |
/// | `max_record_bytes`  | 4 MiB     | larger payloads are refused (`RecordTooLarge`)              |
/// | `max_total_bytes`   | 512 MiB   | bytes on disk; beyond it the oldest segments are dropped    |
/// | `max_age`           | 4 h       | segments whose newest record is older are dropped (`None`: no age bound) |
/// | `sync`              | `Always`  | see [`SyncPolicy`]                                          |
///
/// `max_total_bytes` must be at least twice `max_segment_bytes` (the active segment is never
/// dropped), and `max_record_bytes` must fit in an empty segment.
///
/// ```
/// use livetranslate_agent::metrics::wal::{SyncPolicy, WalConfig};
/// use std::time::Duration;
///
/// let config = WalConfig {
///     max_total_bytes: 64 << 20,
///     max_segment_bytes: 4 << 20,
///     max_record_bytes: 1 << 20,
///     max_age: Some(Duration::from_secs(2 * 3600)),
///     sync: SyncPolicy::Interval(Duration::from_secs(1)),
///     ..WalConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Size at which the active segment is sealed and a new one started.
    pub max_segment_bytes: u64,
    /// Largest payload `append` accepts.
    pub max_record_bytes: u64,
    /// Bound on the bytes of all segments.
    pub max_total_bytes: u64,
    /// Bound on the age of retained records, by their append time.
    pub max_age: Option<Duration>,
    /// When records are fsynced.
    pub sync: SyncPolicy,
}

/// Smallest accepted `max_segment_bytes`.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            max_segment_bytes: 16 << 20,
            max_record_bytes: 4 << 20,
            max_total_bytes: 512 << 20,
            max_age: Some(Duration::from_secs(4 * 3600)),
            sync: SyncPolicy::Always,
        }
    }
}

impl WalConfig {
    /// Checks the settings against each other.
    ///
    /// ```
    /// use livetranslate_agent::metrics::wal::WalConfig;
    ///
    /// // Less than two segments' worth.
    /// let bad = WalConfig { max_total_bytes: 16 << 20, ..WalConfig::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("max_total_bytes"));
    /// ```
    pub fn validate(&self) -> Result<(), WalError> {
        let err = |field, reason: String| Err(WalError::Config { field, reason });
        if self.max_segment_bytes < MIN_SEGMENT_BYTES {
            return err(
                "max_segment_bytes",
                format!(
                    "{} is below the minimum of {MIN_SEGMENT_BYTES}",
                    self.max_segment_bytes
                ),
            );
        }
        let room = self.max_segment_bytes - SEGMENT_HEADER_LEN - FRAME_HEADER_LEN;
        if self.max_record_bytes == 0 || self.max_record_bytes > room.min(u64::from(u32::MAX)) {
            return err(
                "max_record_bytes",
                format!(
                    "{} must be between 1 and {} (max_segment_bytes less {} bytes of headers)",
                    self.max_record_bytes,
                    room.min(u64::from(u32::MAX)),
                    SEGMENT_HEADER_LEN + FRAME_HEADER_LEN
                ),
            );
        }
        if self.max_total_bytes < self.max_segment_bytes.saturating_mul(2) {
            return err(
                "max_total_bytes",
                format!(
                    "{} must be at least twice max_segment_bytes ({})",
                    self.max_total_bytes, self.max_segment_bytes
                ),
            );
        }
        if self.max_age == Some(Duration::ZERO) {
            return err(
                "max_age",
                "must be positive (use None for no age bound)".into(),
            );
        }
        if self.sync == SyncPolicy::Interval(Duration::ZERO) {
            return err(
                "sync",
                "an interval of 0 is SyncPolicy::Always; say so".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: WalConfig) -> &'static str {
        match c.validate() {
            Err(WalError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        WalConfig::default().validate().expect("defaults");
    }

    #[test]
    fn each_bad_setting_is_named() {
        let d = WalConfig::default;
        assert_eq!(
            field(WalConfig {
                max_segment_bytes: 100,
                ..d()
            }),
            "max_segment_bytes"
        );
        assert_eq!(
            field(WalConfig {
                max_record_bytes: 0,
                ..d()
            }),
            "max_record_bytes"
        );
        assert_eq!(
            field(WalConfig {
                max_record_bytes: 16 << 20,
                ..d()
            }),
            "max_record_bytes"
        );
        assert_eq!(
            field(WalConfig {
                max_total_bytes: 20 << 20,
                ..d()
            }),
            "max_total_bytes"
        );
        assert_eq!(
            field(WalConfig {
                max_age: Some(Duration::ZERO),
                ..d()
            }),
            "max_age"
        );
        assert_eq!(
            field(WalConfig {
                sync: SyncPolicy::Interval(Duration::ZERO),
                ..d()
            }),
            "sync"
        );
    }

    #[test]
    fn largest_record_fits_an_empty_segment() {
        let c = WalConfig {
            max_segment_bytes: 4096,
            max_record_bytes: 4096 - 32,
            max_total_bytes: 8192,
            ..WalConfig::default()
        };
        c.validate().expect("fits exactly");
    }
}
