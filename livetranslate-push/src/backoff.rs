//! Retry timing: exponential backoff with "equal jitter", and the policy of a push loop.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// How a push is retried.
///
/// ```
/// use std::time::Duration;
/// let p = livetranslate_push::RetryPolicy {
///     min_backoff: Duration::from_millis(50),
///     max_backoff: Duration::from_secs(1),
///     max_retries: Some(3),
///     retry_after_cap: Duration::from_secs(1),
/// };
/// assert!(livetranslate_push::backoff(10, p.min_backoff, p.max_backoff) <= p.max_backoff);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First retry delay.
    pub min_backoff: Duration,
    /// Largest retry delay.
    pub max_backoff: Duration,
    /// Give up after this many retries (`None`: until delivered, rejected or cancelled).
    pub max_retries: Option<u32>,
    /// A server's `Retry-After` is honoured up to this long.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    /// 500 ms doubling up to 30 s, no retry limit, `Retry-After` honoured up to 5 minutes.
    fn default() -> Self {
        RetryPolicy {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            retry_after_cap: Duration::from_secs(300),
        }
    }
}

/// A random number in `[0, 1)` (jitter needs no cryptographic quality; a per-call random
/// hasher seed mixed with the clock is plenty).
fn unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The delay before retry number `attempt` (0-based): `min · 2^attempt`, capped at `max`, with
/// "equal jitter" (between half and all of it), so clients that failed together do not retry
/// together.
pub fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let exp = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    exp.mul_f64(0.5 + 0.5 * unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_jittered() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 0..40 {
            let d = backoff(attempt, min, max);
            let exp = min.saturating_mul(1u32 << attempt.min(20)).min(max);
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        let spread: std::collections::HashSet<Duration> =
            (0..50).map(|_| backoff(3, min, max)).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
