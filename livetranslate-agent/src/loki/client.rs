//! The Loki client: `POST /loki/api/v1/push` of encoded batches through the shared push
//! client (authentication, TLS, tenant, retries with backoff and `Retry-After`), with the
//! agent's Loki metrics and log messages.

use bytes::Bytes;
use livetranslate_push::{
    ClientError, PushClient, PushEvent, PushOutcome as Delivery, RetryPolicy,
};
use tokio::sync::watch;

use super::config::LokiConfig;
use crate::internal_events::{LineDropReason, LogMetrics};

/// A Loki client that could not be set up (URL, tenant, TLS material).
#[derive(Debug, thiserror::Error)]
#[error("Loki client: {0}")]
pub struct LokiError(#[from] pub ClientError);

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
    push: PushClient,
    policy: RetryPolicy,
    batch_size: usize,
    metrics: LogMetrics,
}

impl LokiClient {
    /// Builds the client. Credentials in the URL become basic authentication unless the
    /// configuration sets its own.
    pub fn new(config: LokiConfig, metrics: LogMetrics) -> Result<Self, LokiError> {
        let url = livetranslate_push::loki::parse_push_url(&config.url)?;
        let mut http = config.http.clone();
        if !http.has_auth() {
            http.basic_auth = url.basic_auth;
        }
        let push = PushClient::builder(url.url)
            .header("content-type", "application/x-protobuf")?
            .tenant_id(config.tenant_id.as_deref())
            .user_agent(crate::USER_AGENT)
            .timeout(config.timeout)
            .http(http)
            .build()?;
        Ok(LokiClient {
            push,
            policy: RetryPolicy {
                min_backoff: config.min_backoff,
                max_backoff: config.max_backoff,
                max_retries: config.max_retries,
                // Loki's Retry-After is honoured up to the longest backoff.
                retry_after_cap: config.max_backoff.max(std::time::Duration::from_millis(1)),
            },
            batch_size: config.batch_size,
            metrics,
        })
    }

    /// Batch size in bytes.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The push URL (without credentials).
    pub fn url(&self) -> &str {
        self.push.url().as_str()
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
        let bytes = body.len();
        let stopping = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        let delivery = self
            .push
            .push(Bytes::from(body), &self.policy, stopping, |event| match event {
                PushEvent::Attempted { elapsed, attempt } => {
                    self.metrics.push_finished(elapsed);
                    self.metrics.push_attempted(attempt);
                }
                PushEvent::Retrying {
                    retries,
                    delay,
                    reason,
                } => {
                    self.metrics.batch_retried();
                    tracing::warn!(reason = %reason, retry_in_ms = delay.as_millis() as u64, retries, "Loki push failed; retrying");
                }
            })
            .await;
        match delivery {
            Delivery::Sent => {
                self.metrics.batch_sent(lines, bytes);
                PushOutcome::Sent
            }
            Delivery::Rejected { status, reason } => {
                tracing::error!(%status, reason = %reason, lines, "Loki refused a batch; dropping it");
                self.metrics.batch_failed(LineDropReason::Rejected, lines);
                PushOutcome::Dropped
            }
            Delivery::GaveUp { retries, reason } => {
                tracing::error!(reason = %reason, lines, retries, "giving up a batch after its retries");
                self.metrics
                    .batch_failed(LineDropReason::RetriesExhausted, lines);
                PushOutcome::Dropped
            }
            Delivery::Cancelled => PushOutcome::Interrupted,
        }
    }
}
