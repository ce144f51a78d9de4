//! Prometheus remote write 1.0: samples encoded at scrape time ([`chunk`]), stored in the
//! write-ahead log or the memory queue ([`buffer`]), sent from there by one sender in order,
//! and acknowledged (the log truncated) only after the remote accepted them. Delivery goes
//! through the shared push client (retries with exponential backoff, jitter and
//! `Retry-After`). Its settings: [`config`]; the messages: [`proto`].
//!
//! - 2xx: acknowledged.
//! - 5xx, 429, connection errors: the same request again, with backoff, until it is taken or
//!   the agent stops (with the WAL nothing is lost by stopping: the next start sends it).
//! - Any other 4xx: the request is split in halves and each half sent on its own, down to
//!   single chunks; a single chunk the remote refuses is dropped and counted. A refused request
//!   of several chunks is usually one that a crash made the agent send twice: Prometheus
//!   refuses a request with a sample older than what it already has, so the chunks it already
//!   has must not take the new ones down with them.
//!
//! A single sender reads in order, so the samples of a series reach the remote in timestamp
//! order (Prometheus rejects out-of-order samples).

pub mod buffer;
pub mod chunk;
pub mod config;
pub mod proto;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use livetranslate_push::{Attempt, ClientError, PushClient, PushEvent, PushOutcome, RetryPolicy};
use tokio::sync::{watch, Notify};

use super::SampleSink;
use crate::internal_events::{AgentMetrics, DropReason, WalFigures};
use buffer::{Buffer, BufferDrop, Cursor, Pending};
use chunk::Chunk;
pub use config::{QueueConfig, RemoteWriteConfig, RemoteWriteFile, WalSettings};
pub use proto::{build_request, decode_body, encode_body};

/// A server asking for more than a few minutes is capped: the buffer keeps filling meanwhile.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// How often the WAL's age bound and pending fsync are looked after.
const MAINTENANCE: Duration = Duration::from_secs(1);

fn drop_reason(d: BufferDrop) -> DropReason {
    match d {
        BufferDrop::QueueFull => DropReason::QueueFull,
        BufferDrop::WalSize => DropReason::WalSize,
        BufferDrop::WalAge => DropReason::WalAge,
        BufferDrop::TooLarge => DropReason::TooLarge,
        BufferDrop::WalError => DropReason::WalError,
    }
}

fn report_drops(metrics: &AgentMetrics, drops: &[(BufferDrop, u64)]) {
    for &(d, n) in drops {
        metrics.samples_dropped(drop_reason(d), n as usize);
    }
}

/// Sets the queue (and WAL) gauges from the buffer.
pub fn report_state(metrics: &AgentMetrics, buffer: &Buffer) {
    let st = buffer.state();
    metrics.buffer_state(st.samples, st.bytes, st.max_samples, st.max_bytes);
    if let Some(w) = st.wal {
        metrics.wal_state(WalFigures {
            segments: w.segments as u64,
            pending_records: w.ack_lag_records,
            oldest_record_seconds: w
                .oldest_record_time
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
            dropped_size: w.records_dropped_size,
            dropped_age: w.records_dropped_age,
            dropped_corrupt: w.records_skipped_corrupt,
            cut_torn: w.torn_records_cut,
        });
    }
}

/// The remote-write end of the pipeline: a [`SampleSink`] that stores, and the sender task
/// that sends what is stored.
pub struct RemoteWriter {
    config: RemoteWriteConfig,
    client: PushClient,
    buffer: Arc<Buffer>,
    notify: Arc<Notify>,
    metrics: AgentMetrics,
}

impl std::fmt::Debug for RemoteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriter")
            .field(
                "url",
                &livetranslate_push::redact_url(self.config.url.as_str()),
            )
            .finish_non_exhaustive()
    }
}

/// The storing side of a [`RemoteWriter`].
#[derive(Clone)]
pub struct BufferSink {
    buffer: Arc<Buffer>,
    notify: Arc<Notify>,
    metrics: AgentMetrics,
}

impl SampleSink for BufferSink {
    fn push(&self, chunks: Vec<Chunk>) {
        if chunks.is_empty() {
            return;
        }
        let drops = self.buffer.append(chunks);
        for &(d, n) in &drops {
            if d == BufferDrop::QueueFull {
                tracing::warn!(
                    dropped = n,
                    "remote-write queue full; dropped the oldest samples"
                );
            }
        }
        report_drops(&self.metrics, &drops);
        report_state(&self.metrics, &self.buffer);
        self.notify.notify_one();
    }
}

/// What became of one request's chunks.
enum Sent {
    /// Delivered (or dropped as refused); acknowledge up to the end.
    Done,
    /// The agent is stopping; nothing more is sent.
    Cancelled,
}

impl RemoteWriter {
    /// A writer for `config` sending what `buffer` holds.
    pub fn new(
        config: RemoteWriteConfig,
        buffer: Arc<Buffer>,
        metrics: AgentMetrics,
        user_agent: &str,
    ) -> Result<Self, ClientError> {
        let mut builder = PushClient::builder(config.url.as_str())
            .http(config.http.clone())
            .user_agent(user_agent)
            .timeout(config.timeout);
        for (k, v) in &config.headers {
            builder = builder.header(k, v)?;
        }
        let client = builder
            .header("content-encoding", "snappy")?
            .header("content-type", "application/x-protobuf")?
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")?
            .build()?;
        report_state(&metrics, &buffer);
        Ok(RemoteWriter {
            config,
            client,
            buffer,
            notify: Arc::new(Notify::new()),
            metrics,
        })
    }

    /// The sink scrape loops store into.
    pub fn sink(&self) -> BufferSink {
        BufferSink {
            buffer: self.buffer.clone(),
            notify: self.notify.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Logs one attempt the way Prometheus' own remote write does: retryable failures as
    /// warnings, a rejection as an error. Reasons never carry the URL.
    fn log_attempt(&self, attempt: &Attempt) {
        let url = livetranslate_push::redact_url(self.config.url.as_str());
        match attempt {
            Attempt::Sent { .. } => {}
            Attempt::Retry {
                status: None,
                reason,
                ..
            } => {
                tracing::warn!(%url, error = %reason, "remote write failed; will retry")
            }
            Attempt::Retry {
                status: Some(status),
                reason,
                ..
            } if status.as_u16() == 429 => {
                tracing::warn!(%url, %status, body = %reason, "remote write throttled; will retry")
            }
            Attempt::Retry {
                status: Some(status),
                reason,
                ..
            } => tracing::warn!(%url, %status, body = %reason, "remote write failed; will retry"),
            Attempt::Rejected { status, reason } => {
                tracing::warn!(%url, %status, body = %reason, "remote write refused")
            }
        }
    }

    /// Sends `batch`, splitting refused requests down to single chunks; acknowledges as it
    /// goes.
    async fn send_batch(&self, batch: Vec<Pending>, give_up: &watch::Receiver<bool>) -> Sent {
        let policy = RetryPolicy {
            min_backoff: self.config.queue.min_backoff,
            max_backoff: self.config.queue.max_backoff,
            max_retries: None,
            retry_after_cap: RETRY_AFTER_CAP,
        };
        let mut parts: VecDeque<Vec<Pending>> = VecDeque::from([batch]);
        while let Some(part) = parts.pop_front() {
            let Some(end) = part.last().map(|p| p.seq + 1) else {
                continue;
            };
            let samples: usize = part.iter().map(|p| p.chunk.samples as usize).sum();
            let exemplars: usize = part.iter().map(|p| p.chunk.exemplars as usize).sum();
            let chunks: Vec<Chunk> = part.iter().map(|p| p.chunk.clone()).collect();
            let body = match chunk::request_body(&chunks) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, samples, "cannot build a remote-write request; dropping it");
                    self.metrics.samples_dropped(DropReason::Rejected, samples);
                    self.ack(end).await;
                    continue;
                }
            };
            let mut give_up = give_up.clone();
            let giving_up = async move {
                let _ = give_up.wait_for(|g| *g).await;
            };
            let outcome = self
                .client
                .push(body, &policy, giving_up, |event| match event {
                    PushEvent::Attempted { attempt, elapsed } => {
                        self.metrics.request_finished(elapsed);
                        self.metrics.request_attempted(attempt);
                        self.log_attempt(attempt);
                    }
                    PushEvent::Retrying { .. } => self.metrics.samples_retried(samples),
                })
                .await;
            match outcome {
                PushOutcome::Sent => {
                    self.metrics.samples_sent(samples, exemplars);
                    self.ack(end).await;
                }
                PushOutcome::Rejected { status, reason } if part.len() > 1 => {
                    tracing::debug!(%status, body = %reason, chunks = part.len(), "refused; sending the halves on their own");
                    let mut first = part;
                    let second = first.split_off(first.len() / 2);
                    parts.push_front(second);
                    parts.push_front(first);
                }
                PushOutcome::Rejected { reason, .. } | PushOutcome::GaveUp { reason, .. } => {
                    tracing::error!(body = %reason, samples, "remote write refused the samples; dropping them");
                    self.metrics.samples_dropped(DropReason::Rejected, samples);
                    self.ack(end).await;
                }
                PushOutcome::Cancelled => {
                    tracing::warn!(samples, "stopping with an undelivered request");
                    return Sent::Cancelled;
                }
            }
        }
        Sent::Done
    }

    async fn ack(&self, upto: u64) {
        let buffer = self.buffer.clone();
        let r = tokio::task::spawn_blocking(move || buffer.ack(upto)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot acknowledge sent samples in the write-ahead log")
            }
            Err(e) => tracing::error!(error = %e, "acknowledgement task failed"),
        }
        report_state(&self.metrics, &self.buffer);
    }

    async fn read(&self, cursor: Cursor, max: u64) -> (Cursor, Vec<Pending>) {
        let buffer = self.buffer.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut cursor = cursor;
            let r = buffer.read(&mut cursor, max);
            (cursor, r)
        })
        .await;
        match joined {
            Ok((cursor, Ok(v))) => (cursor, v),
            Ok((cursor, Err(e))) => {
                tracing::error!(error = %e, "cannot read the write-ahead log");
                (cursor, Vec::new())
            }
            Err(e) => {
                tracing::error!(error = %e, "reading task failed");
                (self.buffer.cursor(), Vec::new())
            }
        }
    }

    async fn maintain(&self) {
        let buffer = self.buffer.clone();
        if let Ok(drops) = tokio::task::spawn_blocking(move || buffer.maintain()).await {
            report_drops(&self.metrics, &drops);
        }
        report_state(&self.metrics, &self.buffer);
    }

    /// Sends what is stored until `shutdown` turns true, then what is left (stopping early if
    /// `give_up` turns true: with the WAL it waits there for the next start).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, give_up: watch::Receiver<bool>) {
        let max = self.config.queue.max_samples_per_send as u64;
        let deadline = self.config.queue.batch_send_deadline;
        let mut cursor = Some(self.buffer.cursor());
        let mut batch: Vec<Pending> = Vec::new();
        let mut batch_samples = 0u64;
        let mut closed = false;
        let mut last_maintenance = std::time::Instant::now();
        loop {
            let stopping = closed || *shutdown.borrow();
            if last_maintenance.elapsed() >= MAINTENANCE {
                self.maintain().await;
                last_maintenance = std::time::Instant::now();
            }
            if batch_samples < max {
                if let Some(c) = cursor.take() {
                    let (c, more) = self.read(c, max - batch_samples).await;
                    if batch.is_empty()
                        || batch_samples
                            + more.iter().map(|p| u64::from(p.chunk.samples)).sum::<u64>()
                            <= max
                    {
                        batch_samples +=
                            more.iter().map(|p| u64::from(p.chunk.samples)).sum::<u64>();
                        batch.extend(more);
                        cursor = Some(c);
                    } else {
                        // Over the budget: read it again with the next batch.
                        let mut c = c;
                        if let Some(first) = more.first() {
                            self.buffer.seek(&mut c, first.seq);
                        }
                        cursor = Some(c);
                    }
                }
            }
            if !batch.is_empty() {
                let age = batch[0].stored_at.elapsed().unwrap_or(Duration::ZERO);
                if stopping || batch_samples >= max || age >= deadline {
                    let sending = std::mem::take(&mut batch);
                    batch_samples = 0;
                    if let Sent::Cancelled = self.send_batch(sending, &give_up).await {
                        break;
                    }
                    continue;
                }
                let wait = deadline.saturating_sub(age).min(MAINTENANCE);
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    r = shutdown.changed() => closed |= r.is_err(),
                }
                continue;
            }
            if stopping {
                break;
            }
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(MAINTENANCE) => {}
                r = shutdown.changed() => closed |= r.is_err(),
            }
        }
        let state = self.buffer.state();
        if state.samples > 0 {
            if self.buffer.wal_log().is_some() {
                tracing::info!(
                    samples = state.samples,
                    "shutdown: unsent samples stay in the write-ahead log for the next start"
                );
            } else {
                tracing::warn!(
                    samples = state.samples,
                    "shutdown: samples left unsent (no write-ahead log: they are lost)"
                );
            }
        }
        report_state(&self.metrics, &self.buffer);
    }
}
