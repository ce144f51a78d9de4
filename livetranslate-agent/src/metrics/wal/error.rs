//! What can go wrong with the write-ahead log.

use std::io;
use std::path::PathBuf;

/// An error from the write-ahead log.
///
/// Damaged data is never an error: torn or corrupt records are cut or skipped and counted
/// (see [`WalStats`](super::WalStats)). Errors are I/O failures, bad settings, a directory
/// already in use, and misuse of the API.
///
/// ```
/// use livetranslate_agent::metrics::wal::WalError;
///
/// let e = WalError::RecordTooLarge { len: 10, max: 4 };
/// assert_eq!(e.to_string(), "write-ahead log record of 10 bytes exceeds max_record_bytes (4); split the batch");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file operation failed.
    #[error("write-ahead log: cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("create", "write", "fsync", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process (or another [`Wal`](super::Wal) in this one) has the directory open.
    #[error(
        "write-ahead log directory {dir} is in use by another process (its lock file is held)"
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A setting is out of range.
    #[error("write-ahead log setting {field}: {reason}")]
    Config {
        /// The field of [`WalConfig`](super::WalConfig).
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A segment was written by a newer (or unknown) version of the format.
    #[error("write-ahead log segment {path} has format version {found}, this agent reads version {supported}; move the directory away or run a matching agent")]
    UnsupportedVersion {
        /// The segment.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The version this code reads and writes.
        supported: u32,
    },
    /// `append` was given a payload larger than `max_record_bytes`.
    #[error(
        "write-ahead log record of {len} bytes exceeds max_record_bytes ({max}); split the batch"
    )]
    RecordTooLarge {
        /// The payload size.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// `ack` named records that were never appended.
    #[error("cannot acknowledge records up to {upto}: only records below {head} were appended")]
    AckBeyondHead {
        /// The requested position.
        upto: u64,
        /// The next sequence number to be appended.
        head: u64,
    },
    /// An earlier write failed and its partial frame could not be removed; appends are refused
    /// until the log is reopened (which cuts the partial frame).
    #[error("write-ahead log is unusable after an earlier failure ({reason}); reopen it")]
    Failed {
        /// The earlier failure.
        reason: String,
    },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| WalError::Io { op, path, source }
    }
}
