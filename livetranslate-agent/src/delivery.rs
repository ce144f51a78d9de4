//! Leaf: a destination's delivery record — when it last accepted a push, when a push last
//! failed and why, and how many attempts in a row have failed. Loki and remote write each keep
//! one (fed per push attempt, never per line or sample); the status page reads it together
//! with the destination's counters.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use livetranslate_push::Attempt;

/// The longest error text kept (a server's reason can list every rejected stream).
const MAX_ERROR_CHARS: usize = 512;

/// What a destination's pushes came to so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// When the destination last acknowledged a push (Unix ms).
    pub last_success_ms: Option<i64>,
    /// When a push attempt last failed (Unix ms).
    pub last_failure_ms: Option<i64>,
    /// Why it failed: the status and the server's reason, or the connection error (URLs are
    /// never part of it).
    pub last_error: Option<String>,
    /// Attempts that failed since the latest success.
    pub failures_in_a_row: u64,
    /// Attempts that failed in all.
    pub failed_attempts: u64,
}

/// The shared record one destination's pusher writes and the status page reads.
///
/// ```
/// use livetranslate_agent::delivery::DeliveryRecord;
/// use livetranslate_push::Attempt;
/// use reqwest::StatusCode;
/// let record = DeliveryRecord::default();
/// record.attempted(&Attempt::Rejected {
///     status: StatusCode::BAD_REQUEST,
///     reason: "entry too far behind".into(),
/// });
/// let d = record.snapshot();
/// assert_eq!(d.failures_in_a_row, 1);
/// assert_eq!(d.last_error.as_deref(), Some("400 Bad Request: entry too far behind"));
/// record.attempted(&Attempt::Sent { status: StatusCode::NO_CONTENT });
/// let d = record.snapshot();
/// assert_eq!((d.failures_in_a_row, d.failed_attempts), (0, 1));
/// assert!(d.last_success_ms.is_some() && d.last_error.is_some());
/// ```
#[derive(Debug, Default)]
pub struct DeliveryRecord {
    inner: Mutex<Delivery>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl DeliveryRecord {
    /// Records the outcome of one push attempt.
    pub fn attempted(&self, attempt: &Attempt) {
        let now = now_ms();
        let mut d = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match attempt {
            Attempt::Sent { .. } => {
                d.last_success_ms = Some(now);
                d.failures_in_a_row = 0;
            }
            Attempt::Retry { .. } | Attempt::Rejected { .. } => {
                let mut text = attempt.describe();
                if let Some((i, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
                    text.truncate(i);
                    text.push('…');
                }
                d.last_failure_ms = Some(now);
                d.last_error = Some(text);
                d.failures_in_a_row += 1;
                d.failed_attempts += 1;
            }
        }
    }

    /// The record now.
    pub fn snapshot(&self) -> Delivery {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A destination's record with its counters, as the status page shows it. The units depend
/// on the destination (Loki: lines, batches and bytes; remote write: samples).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryStatus {
    /// The record of its pushes.
    pub delivery: Delivery,
    /// Acknowledged (Loki: lines; remote write: samples).
    pub sent: u64,
    /// Retried (Loki: push attempts; remote write: samples in retried requests).
    pub retried: u64,
    /// Given up (Loki: batches; remote write: samples, rejected or pushed out of a full queue).
    pub given_up: u64,
    /// Waiting to be sent (Loki: bytes read but not acknowledged; remote write: queued
    /// samples).
    pub backlog: u64,
    /// The bound of the backlog, when the pusher knows it (remote write: queue capacity).
    pub backlog_capacity: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn failures_count_until_a_success_and_long_reasons_are_cut() {
        let r = DeliveryRecord::default();
        assert_eq!(r.snapshot(), Delivery::default());
        for _ in 0..3 {
            r.attempted(&Attempt::Retry {
                status: Some(StatusCode::TOO_MANY_REQUESTS),
                reason: "x".repeat(2000),
                retry_after: None,
            });
        }
        let d = r.snapshot();
        assert_eq!((d.failures_in_a_row, d.failed_attempts), (3, 3));
        assert!(d.last_success_ms.is_none());
        let e = d.last_error.unwrap_or_default();
        assert!(e.starts_with("429 Too Many Requests: xxx"), "{e}");
        assert_eq!(e.chars().count(), MAX_ERROR_CHARS + 1);
        r.attempted(&Attempt::Sent {
            status: StatusCode::OK,
        });
        let d = r.snapshot();
        assert_eq!((d.failures_in_a_row, d.failed_attempts), (0, 3));
        assert!(d.last_success_ms >= d.last_failure_ms);
    }
}
