//! Bounded polling.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`eventually`] and [`eventually_async`] poll.
pub const POLL: Duration = Duration::from_millis(200);

/// Polls `f` until it returns `Some`, at most `limit` (always at least once).
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// let got = livetranslate_test_support::eventually(Duration::from_secs(5), || {
///     n += 1;
///     (n == 3).then_some(n)
/// });
/// assert_eq!(got, Some(3));
/// ```
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls the condition `cond` until it holds or `within` passes; whether it held.
pub async fn eventually_async<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
