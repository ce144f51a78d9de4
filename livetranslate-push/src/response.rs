//! What one push attempt came to: sent, worth retrying (and when the server asked for the
//! retry), or rejected for good with the server's reason. Loki and Prometheus' remote-write
//! receiver answer alike: 2xx accepted; 429 and 5xx retryable; any other 4xx (out of order,
//! too far behind, bad labels, too large) will fail again and is dropped.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// The longest server reason kept (Loki's messages can list every rejected stream).
const MAX_REASON: usize = 512;

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The server accepted the body (2xx).
    Sent {
        /// The status.
        status: StatusCode,
    },
    /// A connection error, a timeout, 429 or 5xx: send the same body again.
    Retry {
        /// The status, when the server answered.
        status: Option<StatusCode>,
        /// The server's reason (its body), or the connection error with its causes.
        reason: String,
        /// The server's `Retry-After`, capped (see [`crate::RetryPolicy::retry_after_cap`]).
        retry_after: Option<Duration>,
    },
    /// Any other status: sending the same body again would fail the same way.
    Rejected {
        /// The status.
        status: StatusCode,
        /// The server's reason (its body).
        reason: String,
    },
}

impl Attempt {
    /// Classifies a response (reads its body for the reason when it is not a success).
    pub async fn classify(
        result: Result<reqwest::Response, reqwest::Error>,
        retry_after_cap: Duration,
    ) -> Attempt {
        let res = match result {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    status: None,
                    reason: error_chain(&e.without_url()),
                    retry_after: None,
                }
            }
        };
        let status = res.status();
        if status.is_success() {
            return Attempt::Sent { status };
        }
        let retry_after = parse_retry_after(res.headers(), SystemTime::now(), retry_after_cap);
        let reason = short(res.text().await.unwrap_or_default());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Retry {
                status: Some(status),
                reason,
                retry_after,
            }
        } else {
            Attempt::Rejected { status, reason }
        }
    }

    /// A one-line description: `429 Too Many Requests: Ingestion rate limit exceeded`.
    pub fn describe(&self) -> String {
        match self {
            Attempt::Sent { status } => status.to_string(),
            Attempt::Retry {
                status: Some(s),
                reason,
                ..
            }
            | Attempt::Rejected { status: s, reason } => {
                if reason.is_empty() {
                    s.to_string()
                } else {
                    format!("{s}: {reason}")
                }
            }
            Attempt::Retry {
                status: None,
                reason,
                ..
            } => reason.clone(),
        }
    }
}

/// Parses `Retry-After` (RFC 9110: delay seconds, or an HTTP date in any of its three
/// forms), relative to `now`, capped at `cap`. A date in the past means "now".
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use livetranslate_push::parse_retry_after;
/// use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
/// let mut h = HeaderMap::new();
/// h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
/// assert_eq!(parse_retry_after(&h, now, Duration::from_secs(60)), Some(Duration::from_secs(7)));
/// ```
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime, cap: Duration) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(v).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(d.min(cap))
}

/// An error with its causes (`error sending request: client error (Connect): … refused`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

fn short(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn after(v: &'static str, now_secs: u64) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static(v));
        parse_retry_after(
            &h,
            UNIX_EPOCH + Duration::from_secs(now_secs),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(after("7", 0), Some(Duration::from_secs(7)));
        assert_eq!(after(" 7 ", 0), Some(Duration::from_secs(7)));
        assert_eq!(after("99999", 0), Some(Duration::from_secs(300)));
        // IMF-fixdate, RFC 850 and asctime, as RFC 9110 asks a recipient to accept.
        let t = 784_111_777;
        assert_eq!(
            after("Sun, 06 Nov 1994 08:49:37 GMT", t - 10),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            after("Sunday, 06-Nov-94 08:49:37 GMT", t - 10),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            after("Sun Nov  6 08:49:37 1994", t - 10),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            after("Sun, 06 Nov 1994 08:49:37 GMT", t + 5),
            Some(Duration::ZERO)
        );
        assert_eq!(
            after("Tue, 29 Feb 2000 12:00:00 GMT", 951_825_590),
            Some(Duration::from_secs(10))
        );
        for bad in [
            "soon",
            "",
            "-1",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(bad).expect("header"));
            assert_eq!(
                parse_retry_after(&h, UNIX_EPOCH, Duration::from_secs(300)),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_retry_after(&HeaderMap::new(), UNIX_EPOCH, Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let s = short("é".repeat(400));
        assert!(s.len() <= MAX_REASON + '…'.len_utf8());
        assert!(s.ends_with('…'));
    }
}
