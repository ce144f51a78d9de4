//! Scraping one target: the request, the body streamed through the parser chunk by chunk as it
//! arrives (never held whole), every sample handed to [`Ingest`], all of it within the scrape
//! timeout, and the result shipped to the sink.
//!
//! Memory is bounded by what the scrape keeps (its series and their encoded samples), not by
//! the body: a 60 MB body of one repeated series costs what one series costs. Time is bounded
//! by the timeout, which covers the request, the body and its parsing; a stop request does
//! not wait for it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use tokio::sync::watch;

use super::exposition::{Format, Parser};
use super::ingest::{all_stale, Ingest, SeriesKeys, SeriesMemory, TargetShape};
use super::remote_write::chunk::Chunk;
use super::SampleSink;
use crate::internal_events::AgentMetrics;
use livetranslate_push::HttpClientConfig;

/// The `Accept` header of every scrape.
pub const ACCEPT_HEADER: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

/// Everything needed to scrape one target.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The `job` label.
    pub job: String,
    /// The `instance` label.
    pub instance: String,
    /// The URL scraped (may carry secret parameters: show [`TargetSpec::shown_url`]).
    pub url: String,
    /// The URL with secrets redacted.
    pub shown_url: String,
    /// Target labels and how samples are shaped.
    pub shape: TargetShape,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout: request, body and parsing.
    pub timeout: Duration,
    /// Client with the job's TLS, redirect and proxy settings.
    pub client: reqwest::Client,
    /// Authentication.
    pub http: HttpClientConfig,
}

impl TargetSpec {
    /// A stable identity: job, URL and labels.
    pub fn key(&self) -> String {
        let labels: Vec<String> = self
            .shape
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}|{}|{}", self.job, self.url, labels.join(","))
    }

    /// The target labels as a map.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.shape.labels.iter().cloned().collect()
    }
}

/// What the status page shows about a target (URLs and errors already redacted).
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    /// The `job` label.
    pub job: String,
    /// The `instance` label.
    pub instance: String,
    /// The URL, redacted.
    pub url: String,
    /// Whether the latest scrape succeeded (`None` before the first one).
    pub up: Option<bool>,
    /// When the latest scrape started (Unix ms).
    pub last_scrape_ms: Option<i64>,
    /// How long it took.
    pub last_duration: Option<Duration>,
    /// Sample lines in the latest scrape.
    pub samples: usize,
    /// The latest error, if the latest scrape failed.
    pub last_error: Option<String>,
    /// The labels added to every series of the target (see [`TargetSpec::labels`]).
    pub labels: BTreeMap<String, String>,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
}

/// Status of every running target, keyed by [`TargetSpec::key`].
pub type StatusBoard = Arc<Mutex<BTreeMap<String, TargetStatus>>>;

/// A failed scrape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// Connection error or unreadable body (the URL is not in the message).
    #[error("request failed: {0}")]
    Http(String),
    /// The target answered with a non-2xx status.
    #[error("server returned HTTP {0}")]
    Status(u16),
    /// The body exceeds `body_size_limit`.
    #[error("body size limit exceeded ({0} bytes)")]
    BodySizeLimit(u64),
    /// The scrape (request, body and parsing) did not finish within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The body is not a valid exposition.
    #[error("malformed exposition: {0}")]
    Parse(String),
    /// The samples broke a limit (`sample_limit`, the label limits) or lost their name.
    #[error("{0}")]
    Samples(String),
}

impl ScrapeError {
    /// The `reason` label of a failed scrape.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Http(_) => "http",
            ScrapeError::Status(_) => "status",
            ScrapeError::BodySizeLimit(_) => "body_size_limit",
            ScrapeError::Timeout(_) => "timeout",
            ScrapeError::Parse(_) => "parse",
            ScrapeError::Samples(m) if m.starts_with("sample limit") => "sample_limit",
            ScrapeError::Samples(m) if m.starts_with("label_") => "label_limit",
            ScrapeError::Samples(_) => "invalid_series",
        }
    }
}

/// The chain of a reqwest error without its URL (which may hold secrets).
fn http_error(e: reqwest::Error) -> ScrapeError {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ScrapeError::Http(msg)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The outcome of one scrape.
#[derive(Debug)]
pub struct ScrapeResult {
    /// The encoded samples to ship.
    pub chunks: Vec<Chunk>,
    /// Why it failed, if it did.
    pub error: Option<ScrapeError>,
    /// Sample lines in the body.
    pub scraped: u64,
    /// Samples and exemplars skipped, by reason.
    pub skips: Vec<(&'static str, u64)>,
    /// Body bytes read.
    pub body_bytes: u64,
}

/// Fetches the body and streams it through the parser into `ingest`, all within `deadline`.
async fn fetch_into(
    spec: &TargetSpec,
    ingest: &mut Ingest<'_>,
    deadline: tokio::time::Instant,
    body_bytes: &mut u64,
) -> Result<(), ScrapeError> {
    let req = spec
        .client
        .get(&spec.url)
        .header(ACCEPT, ACCEPT_HEADER)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", spec.timeout.as_secs_f64()),
        );
    let mut resp = spec.http.authorize(req).send().await.map_err(http_error)?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Status(resp.status().as_u16()));
    }
    let format = Format::from_content_type(
        resp.headers()
            .get(CONTENT_TYPE)
            .and_then(|v: &HeaderValue| v.to_str().ok()),
    );
    let limit = spec.shape.limits.body_size_limit;
    let mut parser = Parser::new(format);
    let mut since_yield = 0usize;
    while let Some(chunk) = resp.chunk().await.map_err(http_error)? {
        *body_bytes += chunk.len() as u64;
        if limit > 0 && *body_bytes > limit {
            return Err(ScrapeError::BodySizeLimit(limit));
        }
        parser
            .feed(&chunk, |s| ingest.add(&s))
            .map_err(|e| ScrapeError::Parse(e.to_string()))?;
        if ingest.failed() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ScrapeError::Timeout(spec.timeout));
        }
        // Parsing is CPU work between reads: let other tasks (and the timer) run.
        since_yield += chunk.len();
        if since_yield >= 1 << 20 {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
    parser
        .finish(|s| ingest.add(&s))
        .map_err(|e| ScrapeError::Parse(e.to_string()))
}

/// Scrapes `spec` once at `scrape_ts`, after the scrape that left `previous`; returns the
/// result and what this scrape leaves for the next.
pub async fn scrape_once(
    spec: &TargetSpec,
    keys: &SeriesKeys,
    previous: &SeriesMemory,
    scrape_ts: i64,
) -> (ScrapeResult, SeriesMemory) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut ingest = Ingest::new(&spec.shape, keys, previous, scrape_ts);
    let mut body_bytes = 0u64;
    let fetched = match tokio::time::timeout_at(
        deadline,
        fetch_into(spec, &mut ingest, deadline, &mut body_bytes),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ScrapeError::Timeout(spec.timeout)),
    };
    let failure = fetched.as_ref().err().map(ToString::to_string);
    let (ingested, next, error) = ingest.finish(failure, started.elapsed());
    let error = match (fetched, error) {
        (Err(e), _) => Some(e),
        (Ok(()), Some(m)) => Some(ScrapeError::Samples(m)),
        (Ok(()), None) => None,
    };
    let result = ScrapeResult {
        chunks: ingested.chunks,
        error,
        scraped: ingested.counts.scraped,
        skips: ingested
            .skips
            .into_iter()
            .map(|(r, n)| (r.as_str(), n))
            .collect(),
        body_bytes,
    };
    (result, next)
}

/// Why a scrape loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep running.
    Run,
    /// The target was removed: mark its series stale.
    Removed,
    /// The agent shuts down: just stop.
    Shutdown,
}

/// Everything a scrape loop reports to.
#[derive(Clone)]
pub struct ScrapeContext {
    /// Where samples go.
    pub sink: Arc<dyn SampleSink>,
    /// Agent metrics.
    pub metrics: AgentMetrics,
    /// Status page data.
    pub status: StatusBoard,
}

/// Hands chunks to the sink from a blocking task (the sink may write to disk).
async fn ship(sink: &Arc<dyn SampleSink>, chunks: Vec<Chunk>) {
    if chunks.is_empty() {
        return;
    }
    let sink = sink.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || sink.push(chunks)).await {
        tracing::error!(error = %e, "storing scraped samples failed");
    }
}

/// Scrapes `spec` every interval until `stop` changes from [`Stop::Run`].
pub async fn run_loop(spec: TargetSpec, ctx: ScrapeContext, mut stop: watch::Receiver<Stop>) {
    let key = spec.key();
    if let Ok(mut board) = ctx.status.lock() {
        board.insert(
            key.clone(),
            TargetStatus {
                job: spec.job.clone(),
                instance: spec.instance.clone(),
                url: spec.shown_url.clone(),
                labels: spec.labels(),
                interval: spec.interval,
                timeout: spec.timeout,
                ..TargetStatus::default()
            },
        );
    }
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let keys = SeriesKeys::default();
    let mut memory = SeriesMemory::default();
    let reason = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            s = stop.wait_for(|s| *s != Stop::Run) => break s.map_or(Stop::Shutdown, |s| *s),
        }
        let ts = now_ms();
        // A stop request does not wait for a slow scrape to time out.
        let (result, next) = tokio::select! {
            r = scrape_once(&spec, &keys, &memory, ts) => r,
            s = stop.wait_for(|s| *s != Stop::Run) => break s.map_or(Stop::Shutdown, |s| *s),
        };
        memory = next;
        let ok = result.error.is_none();
        ctx.metrics
            .scrape_finished(&spec.job, &spec.instance, ok, result.scraped as usize);
        for (reason, n) in &result.skips {
            ctx.metrics.samples_skipped(&spec.job, reason, *n);
        }
        match &result.error {
            Some(e) => {
                ctx.metrics.scrape_failed(&spec.job, e.reason());
                tracing::warn!(job = %spec.job, instance = %spec.instance, url = %spec.shown_url, error = %e, "scrape failed");
            }
            None => {
                if !result.skips.is_empty() {
                    let reasons: Vec<String> = result
                        .skips
                        .iter()
                        .map(|(r, n)| format!("{r}={n}"))
                        .collect();
                    tracing::warn!(job = %spec.job, instance = %spec.instance, skipped = %reasons.join(","), "samples skipped as Prometheus skips them");
                }
                tracing::debug!(job = %spec.job, instance = %spec.instance, samples = result.scraped, "scraped");
            }
        }
        if let Ok(mut board) = ctx.status.lock() {
            if let Some(st) = board.get_mut(&key) {
                st.up = Some(ok);
                st.last_scrape_ms = Some(ts);
                st.last_duration =
                    Some(Duration::from_millis((now_ms() - ts).max(0).unsigned_abs()));
                st.samples = result.scraped as usize;
                st.last_error = result
                    .error
                    .as_ref()
                    .map(|e| livetranslate_push::redact_url(&e.to_string()));
            }
        }
        ship(&ctx.sink, result.chunks).await;
    };
    if reason == Stop::Removed {
        let (stale, n) = all_stale(&memory, now_ms(), spec.shape.chunk_samples);
        tracing::info!(job = %spec.job, instance = %spec.instance, series = n, "target removed; marking its series stale");
        ship(&ctx.sink, stale).await;
        ctx.metrics.target_removed(&spec.job, &spec.instance);
    }
    if let Ok(mut board) = ctx.status.lock() {
        board.remove(&key);
    }
}
