//! The push client: `POST /loki/api/v1/push` with retries, authentication and TLS.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use tokio::sync::watch;

use crate::config::HttpClientConfig;
use crate::internal_events::{LineDropReason, LogMetrics};

pub use livetranslate_telemetry::loki::{push_url, redact_userinfo, PUSH_PATH};

/// How to reach Loki.
#[derive(Clone, Debug)]
pub struct LokiConfig {
    /// Base URL (`http://loki:3100`) or full push URL; credentials in it become basic auth.
    pub url: String,
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Authentication and TLS (secrets already read).
    pub http: HttpClientConfig,
    /// Per-request timeout.
    pub timeout: Duration,
    /// First retry delay.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Give up a batch after this many retries (`None`: retry until Loki accepts or the agent
    /// stops, which is what "no loss" needs: the files are the buffer).
    pub max_retries: Option<u32>,
    /// Flush a batch at this many bytes.
    pub batch_size: usize,
    /// Flush a batch this long after its first entry.
    pub batch_wait: Duration,
}

impl LokiConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        LokiConfig {
            url: url.into(),
            tenant_id: None,
            http: HttpClientConfig::default(),
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            batch_size: 1024 * 1024,
            batch_wait: Duration::from_secs(1),
        }
    }
}

/// A Loki client that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    /// The URL is unusable.
    #[error("invalid Loki URL {url:?}: {reason}")]
    Url {
        /// The URL, with any credentials removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// The tenant is not a valid header value.
    #[error("invalid logs.loki.tenant_id: not a valid HTTP header value")]
    Tenant,
    /// The HTTP client could not be built (TLS material).
    #[error("Loki client: {0}")]
    Client(String),
}

/// Splits credentials out of a URL and appends the push path when only a base is given.
/// Returns (push URL without userinfo, user, password).
pub fn normalize_url(raw: &str) -> Result<(String, Option<String>, Option<String>), LokiError> {
    let parsed = push_url(raw).map_err(|reason| LokiError::Url {
        url: redact_userinfo(raw),
        reason,
    })?;
    let (user, password) = match parsed.basic_auth {
        Some((u, p)) => (Some(u), (!p.is_empty()).then_some(p)),
        None => (None, None),
    };
    Ok((parsed.url, user, password))
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Loki acknowledged it.
    Sent,
    /// Loki refused it for good (4xx other than 429), or retries ran out.
    Dropped,
    /// The agent is stopping; the batch was not acknowledged.
    Interrupted,
}

/// Pushes encoded batches to Loki.
#[derive(Debug, Clone)]
pub struct LokiClient {
    http: reqwest::Client,
    url: String,
    config: LokiConfig,
    metrics: LogMetrics,
}

impl LokiClient {
    /// Builds the client.
    pub fn new(mut config: LokiConfig, metrics: LogMetrics) -> Result<Self, LokiError> {
        let (url, user, password) = normalize_url(&config.url)?;
        if config.http.basic_auth.is_none() && config.http.bearer_token.is_none() {
            if let Some(user) = user {
                config.http.basic_auth = Some((user, password.unwrap_or_default()));
            }
        }
        if let Some(tenant) = &config.tenant_id {
            HeaderValue::from_str(tenant).map_err(|_| LokiError::Tenant)?;
        }
        let http = config
            .http
            .client(crate::USER_AGENT)
            .map_err(|e| LokiError::Client(e.to_string()))?;
        config.url = url.clone();
        Ok(LokiClient {
            http,
            url,
            config,
            metrics,
        })
    }

    fn request(&self, body: bytes::Bytes) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .timeout(self.config.timeout)
            .body(body);
        let req = match &self.config.tenant_id {
            Some(t) => req.header("X-Scope-OrgID", t),
            None => req,
        };
        self.config.http.authorize(req)
    }

    /// Batch size in bytes.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// The push URL (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one encoded batch, retrying connection errors, 429 and 5xx with exponential
    /// backoff and jitter until Loki accepts it, refuses it for good, retries run out, or
    /// `shutdown` turns true.
    pub async fn push(
        &self,
        body: Vec<u8>,
        lines: usize,
        shutdown: &mut watch::Receiver<bool>,
    ) -> PushOutcome {
        let body = bytes::Bytes::from(body);
        let mut backoff = self.config.min_backoff;
        let mut retries = 0u32;
        loop {
            let start = Instant::now();
            let sent = self.request(body.clone()).send().await;
            self.metrics.push_finished(start.elapsed());
            let (reason, retry_after) = match sent {
                Ok(res) if res.status().is_success() => {
                    self.metrics.batch_sent(lines, body.len());
                    return PushOutcome::Sent;
                }
                Ok(res)
                    if res.status() == StatusCode::TOO_MANY_REQUESTS
                        || res.status().is_server_error() =>
                {
                    let status = res.status();
                    let after = res
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = short(res.text().await.unwrap_or_default());
                    (format!("Loki answered {status}: {text}"), after)
                }
                Ok(res) => {
                    let status = res.status();
                    let text = short(res.text().await.unwrap_or_default());
                    tracing::error!(%status, reason = %text, lines, "Loki refused a batch; dropping it");
                    self.metrics.batch_failed(LineDropReason::Rejected, lines);
                    return PushOutcome::Dropped;
                }
                Err(e) => (error_chain(&e.without_url()), None),
            };
            if self.config.max_retries.is_some_and(|max| retries >= max) {
                tracing::error!(reason = %reason, lines, retries, "giving up a batch after its retries");
                self.metrics
                    .batch_failed(LineDropReason::RetriesExhausted, lines);
                return PushOutcome::Dropped;
            }
            retries += 1;
            self.metrics.batch_retried();
            let delay = retry_after
                .unwrap_or_else(|| jitter(backoff))
                .min(self.config.max_backoff.max(Duration::from_millis(1)));
            tracing::warn!(reason = %reason, retry_in_ms = delay.as_millis() as u64, retries, "Loki push failed; retrying");
            backoff = (backoff * 2).min(self.config.max_backoff);
            if *shutdown.borrow() {
                return PushOutcome::Interrupted;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return PushOutcome::Interrupted,
            }
        }
    }
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
    if s.len() > 512 {
        let mut cut = 512;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s.trim().to_owned()
}

/// "Equal jitter": half the delay fixed, half random.
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    let frac = (h.finish() % 1000) as f64 / 1000.0;
    d.mul_f64(0.5 + 0.5 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_the_push_path_and_credentials_move_out() {
        let (url, user, pw) = normalize_url("http://u:s3cret@loki:3100").expect("url");
        assert_eq!(url, "http://loki:3100/loki/api/v1/push");
        assert_eq!(user.as_deref(), Some("u"));
        assert_eq!(pw.as_deref(), Some("s3cret"));
        let (url, _, _) = normalize_url("https://loki.example/loki/api/v1/push").expect("url");
        assert_eq!(url, "https://loki.example/loki/api/v1/push");
        let (url, _, _) = normalize_url("http://gw:8080/tenant-a/").expect("url");
        assert_eq!(url, "http://gw:8080/tenant-a/loki/api/v1/push");
    }

    #[test]
    fn bad_urls_are_refused_without_leaking_credentials() {
        for bad in ["loki:3100", "ftp://loki", "http://", "not a url"] {
            assert!(normalize_url(bad).is_err(), "{bad}");
        }
        let err = normalize_url("ftp://user:hunter2@host").expect_err("scheme");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
    }
}
