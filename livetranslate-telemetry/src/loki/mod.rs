//! Direct shipping of the service's own logs to Loki, for deployments without the sidecar
//! (cargo feature `loki`; on when `LOKI_URL` is set).
//!
//! Every log line goes to Loki as the same JSON object the log file gets; the stream labels
//! are the standard labels plus `level`. The logging thread only enqueues (a non-blocking
//! `try_send` into a bounded queue); a background task batches and pushes (protobuf +
//! snappy, retried with backoff). When Loki is slow or down the queue fills and further lines
//! are dropped and counted in `livetranslate_log_lines_dropped_total{reason="buffer_full"}`:
//! logging never blocks a request and memory stays bounded.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LOKI_URL` | unset | Loki base URL (`http://loki:3100`) or full push URL |
//! | `LOKI_TENANT_ID` | unset | `X-Scope-OrgID` |
//! | `LOKI_USERNAME`, `LOKI_PASSWORD` | unset | basic authentication |
//! | `LOKI_BEARER_TOKEN` | unset | bearer authentication |
//! | `LOKI_MAX_BUFFERED_LINES` | `10000` | most lines held (queued plus being pushed) |
//! | `LOKI_BATCH_WAIT` | `1` | seconds a batch waits for more lines |

pub mod proto;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing_subscriber::fmt::MakeWriter;

use bytes::Bytes;
use livetranslate_push::{HttpClientConfig, PushClient, PushOutcome, RetryPolicy};

use crate::config::ConfigError;
use crate::labels::StandardLabels;
use crate::registry::{Counter, Family, MetricError, Registry};

/// Where and how to ship.
#[derive(Clone)]
pub struct LokiSettings {
    /// Push URL.
    pub url: String,
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Basic authentication.
    pub basic_auth: Option<(String, String)>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// Queue bound, in lines.
    pub max_buffered_lines: usize,
    /// How long a batch waits for more lines.
    pub batch_wait: Duration,
    /// The push client built (and so checked) from the settings above.
    client: PushClient,
}

impl PartialEq for LokiSettings {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.url,
            &self.tenant_id,
            &self.basic_auth,
            &self.bearer_token,
            self.max_buffered_lines,
            self.batch_wait,
        ) == (
            &other.url,
            &other.tenant_id,
            &other.basic_auth,
            &other.bearer_token,
            other.max_buffered_lines,
            other.batch_wait,
        )
    }
}

impl std::fmt::Debug for LokiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiSettings")
            .field("url", &self.url)
            .field("tenant_id", &self.tenant_id)
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("max_buffered_lines", &self.max_buffered_lines)
            .finish()
    }
}

fn invalid(setting: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The retry policy of direct shipping: 500 ms doubling up to 30 s, until Loki takes the batch
/// (the bounded queue, not the retries, is what limits memory).
const RETRY: RetryPolicy = RetryPolicy {
    min_backoff: Duration::from_millis(500),
    max_backoff: Duration::from_secs(30),
    max_retries: None,
    retry_after_cap: Duration::from_secs(30),
};

impl LokiSettings {
    /// Reads the `LOKI_*` variables; `None` when `LOKI_URL` is unset.
    pub(crate) fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        let Some(raw) = get("LOKI_URL") else {
            return Ok(None);
        };
        let url =
            push_url(&raw).map_err(|reason| invalid("LOKI_URL", &redact_url(&raw), &reason))?;
        let basic_auth = get("LOKI_USERNAME")
            .map(|u| (u, get("LOKI_PASSWORD").unwrap_or_default()))
            .or(url.basic_auth);
        let max_buffered_lines = match get("LOKI_MAX_BUFFERED_LINES") {
            Some(v) => crate::config::parse_u64("LOKI_MAX_BUFFERED_LINES", &v, 1)? as usize,
            None => 10_000,
        };
        let batch_wait = match get("LOKI_BATCH_WAIT") {
            Some(v) => crate::config::parse_seconds("LOKI_BATCH_WAIT", &v)?,
            None => Duration::from_secs(1),
        };
        let tenant_id = get("LOKI_TENANT_ID");
        if tenant_id
            .as_deref()
            .is_some_and(|t| livetranslate_push::loki::tenant_header(t).is_err())
        {
            return Err(invalid("LOKI_TENANT_ID", "", "not a valid header value"));
        }
        let bearer_token = get("LOKI_BEARER_TOKEN");
        let client = PushClient::builder(url.url.as_str())
            .header("content-type", "application/x-protobuf")
            .map(|b| {
                b.tenant_id(tenant_id.as_deref())
                    .timeout(Duration::from_secs(10))
                    .http(HttpClientConfig {
                        basic_auth: basic_auth.clone(),
                        bearer_token: bearer_token.clone(),
                        ..Default::default()
                    })
            })
            .and_then(|b| b.build())
            .map_err(|e| invalid("LOKI_URL", &redact_url(&raw), &e.to_string()))?;
        Ok(Some(LokiSettings {
            url: url.url,
            tenant_id,
            basic_auth,
            bearer_token,
            max_buffered_lines,
            batch_wait,
            client,
        }))
    }
}

pub use livetranslate_push::loki::{push_url, PushUrl, PUSH_PATH};
pub use livetranslate_push::redact_url;

const LEVELS: [tracing::Level; 5] = [
    tracing::Level::ERROR,
    tracing::Level::WARN,
    tracing::Level::INFO,
    tracing::Level::DEBUG,
    tracing::Level::TRACE,
];

fn level_index(l: &tracing::Level) -> usize {
    LEVELS.iter().position(|x| x == l).unwrap_or(2)
}

struct Line {
    level: usize,
    timestamp_ns: i64,
    text: String,
}

struct Shared {
    tx: mpsc::Sender<Line>,
    dropped_full: Counter,
    /// Lines enqueued and not yet acknowledged or given up.
    pending: Arc<AtomicUsize>,
}

/// The writer side: hands formatted lines to the background task without blocking.
#[derive(Clone)]
pub(crate) struct LokiWriter {
    shared: Arc<Shared>,
    level: usize,
}

impl io::Write for LokiWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = text.trim_end_matches('\n');
        if !text.is_empty() {
            let line = Line {
                level: self.level,
                timestamp_ns: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or_default(),
                text: text.to_owned(),
            };
            // Counted before sending, so the shipper never decrements below zero.
            self.shared.pending.fetch_add(1, Ordering::AcqRel);
            if self.shared.tx.try_send(line).is_err() {
                self.shared.pending.fetch_sub(1, Ordering::AcqRel);
                self.shared.dropped_full.inc();
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LokiWriter {
    /// Lines waiting to be shipped.
    pub(crate) fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Waits until every enqueued line is shipped (or given up), at most `timeout`; returns
    /// whether the queue drained.
    pub(crate) async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl<'a> MakeWriter<'a> for LokiWriter {
    type Writer = LokiWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LokiWriter {
            shared: self.shared.clone(),
            level: level_index(meta.level()),
        }
    }
}

struct Shipper {
    pending: Arc<AtomicUsize>,
    settings: LokiSettings,
    streams: [String; 5],
    shipped: Counter,
    dropped: Family<Counter>,
}

impl Shipper {
    /// Pushes one batch: retried (connection errors, 429, 5xx) with backoff until Loki takes
    /// it; a refusal (other 4xx) drops it, counted.
    async fn push(&self, batch: Vec<Line>) {
        let n = batch.len();
        self.push_batch(batch).await;
        self.pending.fetch_sub(n, Ordering::AcqRel);
    }

    async fn push_batch(&self, batch: Vec<Line>) {
        let lines = batch.len() as u64;
        let mut streams: Vec<proto::StreamAdapter> = self
            .streams
            .iter()
            .map(|labels| proto::StreamAdapter {
                labels: labels.clone(),
                entries: Vec::new(),
                hash: 0,
            })
            .collect();
        for l in batch {
            streams[l.level].entries.push(proto::EntryAdapter {
                timestamp: Some(proto::Timestamp::from_nanos(l.timestamp_ns)),
                line: l.text,
                structured_metadata: Vec::new(),
            });
        }
        streams.retain(|s| !s.entries.is_empty());
        let Ok(body) = proto::encode(&proto::PushRequest { streams }) else {
            self.drop_lines("encoding", lines);
            return;
        };
        let outcome = self
            .settings
            .client
            .push(
                Bytes::from(body),
                &RETRY,
                std::future::pending::<()>(),
                |_| {},
            )
            .await;
        match outcome {
            PushOutcome::Sent => self.shipped.inc_by(lines),
            PushOutcome::Rejected { .. } | PushOutcome::GaveUp { .. } | PushOutcome::Cancelled => {
                self.drop_lines("rejected", lines)
            }
        }
    }

    fn drop_lines(&self, reason: &str, n: u64) {
        if let Ok(c) = self.dropped.with(&[reason]) {
            c.inc_by(n);
        }
    }
}

/// Half the bound is the queue, half the batch being pushed: together never more than
/// `max_buffered_lines` lines are held.
fn split_bound(max_buffered_lines: usize) -> (usize, usize) {
    let batch = (max_buffered_lines / 2).max(1);
    (max_buffered_lines.saturating_sub(batch).max(1), batch)
}

async fn run(shipper: Shipper, mut rx: mpsc::Receiver<Line>, max_batch_lines: usize) {
    const MAX_BATCH_BYTES: usize = 1024 * 1024;
    while let Some(first) = rx.recv().await {
        let mut bytes = first.text.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + shipper.settings.batch_wait;
        while bytes < MAX_BATCH_BYTES && batch.len() < max_batch_lines {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(l) => {
                        bytes += l.text.len();
                        batch.push(l);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        shipper.push(batch).await;
    }
}

/// Starts the background shipper on `rt`; returns the writer for the log layer.
pub(crate) fn start(
    settings: LokiSettings,
    labels: &StandardLabels,
    registry: &Registry,
    rt: &tokio::runtime::Handle,
) -> Result<LokiWriter, MetricError> {
    let dropped = registry.counter(
        "livetranslate_log_lines_dropped_total",
        "Log lines not shipped to Loki, by reason (buffer_full: Loki slow or down).",
        &["reason"],
    )?;
    let shipped = registry
        .counter(
            "livetranslate_log_lines_shipped_total",
            "Log lines acknowledged by Loki.",
            &[],
        )?
        .with(&[])?;
    let streams = LEVELS.map(|level| {
        let mut pairs: Vec<(&str, String)> = labels
            .pairs()
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        pairs.push(("level", level.as_str().to_lowercase()));
        pairs.sort();
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
            .collect();
        format!("{{{}}}", body.join(", "))
    });
    let (queue, max_batch_lines) = split_bound(settings.max_buffered_lines);
    let (tx, rx) = mpsc::channel(queue);
    let pending = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared {
        tx,
        dropped_full: dropped.with(&["buffer_full"])?,
        pending: pending.clone(),
    });
    rt.spawn(run(
        Shipper {
            pending,
            settings,
            streams,
            shipped,
            dropped,
        },
        rx,
        max_batch_lines,
    ));
    Ok(LokiWriter { shared, level: 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<LokiSettings>, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        LokiSettings::from_env(&|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn url_forms_and_credentials() {
        assert!(settings(&[]).expect("ok").is_none());
        let s = settings(&[("LOKI_URL", "http://u:pw@loki:3100")])
            .expect("ok")
            .expect("set");
        assert_eq!(s.url, "http://loki:3100/loki/api/v1/push");
        assert_eq!(s.basic_auth, Some(("u".into(), "pw".into())));
        assert!(!format!("{s:?}").contains("pw"));
        let err = settings(&[("LOKI_URL", "ftp://u:secret@x")])
            .expect_err("scheme")
            .to_string();
        assert!(err.contains("LOKI_URL") && !err.contains("secret"), "{err}");
        assert_eq!(split_bound(500), (250, 250));
        assert_eq!(split_bound(1), (1, 1));
        let err = settings(&[
            ("LOKI_URL", "http://l:3100"),
            ("LOKI_MAX_BUFFERED_LINES", "0"),
        ])
        .expect_err("bound");
        assert!(err.to_string().contains("LOKI_MAX_BUFFERED_LINES"));
    }
}
