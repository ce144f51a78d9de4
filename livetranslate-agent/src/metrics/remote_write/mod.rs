//! Prometheus remote write 1.0: the body ([`proto`]: protobuf `WriteRequest`, snappy block
//! compression), batching by count and age, and delivery through the shared push client
//! (retries with exponential backoff, jitter and `Retry-After`). Its settings: [`config`].
//!
//! A single sender drains the queue in order, so the samples of a series always reach the
//! remote in timestamp order (Prometheus rejects out-of-order samples).

pub mod config;
pub mod proto;

use std::sync::Arc;

use bytes::Bytes;
use livetranslate_push::{Attempt, ClientError, PushClient, PushEvent, PushOutcome, RetryPolicy};
use tokio::sync::{watch, Notify};

use super::queue::SampleQueue;
use super::{Sample, SampleSink};
use crate::internal_events::{AgentMetrics, DropReason};
pub use config::{QueueConfig, RemoteWriteConfig, RemoteWriteFile};
pub use proto::{build_request, decode_body, encode_body};

/// A server asking for more than a few minutes is capped: the queue keeps filling meanwhile.
const RETRY_AFTER_CAP: std::time::Duration = std::time::Duration::from_secs(300);

/// The remote-write end of the pipeline: a [`SampleSink`] that queues, and the sender task
/// that drains the queue.
pub struct RemoteWriter {
    config: RemoteWriteConfig,
    client: PushClient,
    queue: Arc<dyn SampleQueue>,
    notify: Arc<Notify>,
    metrics: AgentMetrics,
}

impl std::fmt::Debug for RemoteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriter")
            .field("url", &self.config.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The queue side of a [`RemoteWriter`].
#[derive(Clone)]
pub struct QueueSink {
    queue: Arc<dyn SampleQueue>,
    notify: Arc<Notify>,
    metrics: AgentMetrics,
}

impl SampleSink for QueueSink {
    fn push(&self, samples: Vec<Sample>) {
        let dropped = self.queue.push(samples);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "remote-write queue full; dropped the oldest samples"
            );
            self.metrics.samples_dropped(DropReason::QueueFull, dropped);
        }
        self.metrics
            .queue_state(self.queue.len(), self.queue.capacity());
        self.notify.notify_one();
    }
}

impl RemoteWriter {
    /// A writer for `config` draining `queue`.
    pub fn new(
        config: RemoteWriteConfig,
        queue: Arc<dyn SampleQueue>,
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
        metrics.queue_state(queue.len(), queue.capacity());
        Ok(RemoteWriter {
            config,
            client,
            queue,
            notify: Arc::new(Notify::new()),
            metrics,
        })
    }

    /// The sink scrape loops push into.
    pub fn sink(&self) -> QueueSink {
        QueueSink {
            queue: self.queue.clone(),
            notify: self.notify.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Logs one attempt the way Prometheus' own remote write does: retryable failures as
    /// warnings, a rejection as an error.
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
                tracing::warn!(%status, body = %reason, "remote write throttled; will retry")
            }
            Attempt::Retry {
                status: Some(status),
                reason,
                ..
            } => tracing::warn!(%status, body = %reason, "remote write failed; will retry"),
            Attempt::Rejected { status, reason } => {
                tracing::error!(%status, body = %reason, "remote write rejected; dropping the batch")
            }
        }
    }

    /// Sends one batch, retrying retryable failures until it is delivered or `give_up`
    /// becomes true.
    async fn send_batch(&self, batch: Vec<Sample>, give_up: &mut watch::Receiver<bool>) {
        let n = batch.len();
        let body: Bytes = match encode_body(&build_request(&batch)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot compress a remote-write batch; dropping it");
                self.metrics.samples_dropped(DropReason::Rejected, n);
                return;
            }
        };
        let policy = RetryPolicy {
            min_backoff: self.config.queue.min_backoff,
            max_backoff: self.config.queue.max_backoff,
            max_retries: None,
            retry_after_cap: RETRY_AFTER_CAP,
        };
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
                PushEvent::Retrying { .. } => self.metrics.samples_retried(n),
            })
            .await;
        match outcome {
            PushOutcome::Sent => self.metrics.samples_sent(n),
            PushOutcome::Rejected { .. } | PushOutcome::GaveUp { .. } => {
                self.metrics.samples_dropped(DropReason::Rejected, n)
            }
            PushOutcome::Cancelled => {
                tracing::warn!(samples = n, "giving up on an undelivered batch at shutdown");
            }
        }
    }

    /// Drains the queue until `shutdown` turns true, then sends what is left (stopping early
    /// if `give_up` turns true).
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut give_up: watch::Receiver<bool>,
    ) {
        let max = self.config.queue.max_samples_per_send;
        let deadline = self.config.queue.batch_send_deadline;
        let mut closed = false;
        loop {
            let stopping = closed || *shutdown.borrow();
            let len = self.queue.len();
            let age = self
                .queue
                .oldest_enqueued_at()
                .map(|t| t.elapsed())
                .unwrap_or_default();
            if len > 0 && (stopping || len >= max || age >= deadline) {
                let batch = self.queue.pop(max);
                self.metrics
                    .queue_state(self.queue.len(), self.queue.capacity());
                self.send_batch(batch, &mut give_up).await;
                if *give_up.borrow() {
                    break;
                }
                continue;
            }
            if stopping {
                break;
            }
            let wait = if len > 0 {
                deadline.saturating_sub(age)
            } else {
                deadline
            };
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                r = shutdown.changed() => closed = r.is_err(),
            }
        }
        let left = self.queue.len();
        if left > 0 {
            tracing::warn!(samples = left, "shutdown: samples left unsent");
        }
    }
}
