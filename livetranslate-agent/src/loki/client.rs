//! The Loki client: `POST /loki/api/v1/push` of encoded batches through the shared push
//! client (authentication, TLS, tenant, retries with backoff and `Retry-After`), with the
//! agent's Loki metrics and log messages.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use livetranslate_push::{
    ClientError, PushClient, PushEvent, PushOutcome as Delivery, RetryPolicy,
};

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
    /// The agent is stopping (or the client is being replaced by a reload); the batch was
    /// not acknowledged.
    Interrupted,
}

/// Pushes encoded batches to Loki.
#[derive(Debug, Clone)]
pub struct LokiClient {
    push: PushClient,
    /// Clients for tenants set by a `tenant` pipeline stage, sharing `push`'s connections.
    tenants: Arc<Mutex<HashMap<Arc<str>, PushClient>>>,
    config: LokiConfig,
    policy: RetryPolicy,
    batch_size: usize,
    metrics: LogMetrics,
}

impl LokiClient {
    /// Builds the client. Credentials in the URL become basic authentication unless the
    /// configuration sets its own.
    pub fn new(config: LokiConfig, metrics: LogMetrics) -> Result<Self, LokiError> {
        let url = livetranslate_push::loki::parse_push_url(&config.url)?;
        let settings = config.clone();
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
            tenants: Arc::default(),
            config: settings,
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

    /// The settings it was built from.
    pub fn config(&self) -> &LokiConfig {
        &self.config
    }

    /// The client for `tenant` (the configured one for `None`).
    fn client_for(&self, tenant: Option<&Arc<str>>) -> Result<PushClient, ClientError> {
        let Some(t) = tenant else {
            return Ok(self.push.clone());
        };
        let mut map = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(t) {
            return Ok(c.clone());
        }
        let c = self.push.with_tenant_id(t)?;
        // Tenants come from configured stages; bound the map all the same.
        if map.len() < 1000 {
            map.insert(t.clone(), c.clone());
        }
        Ok(c)
    }

    /// The push URL (without credentials).
    pub fn url(&self) -> &str {
        self.push.url().as_str()
    }

    /// Sends one encoded batch to `tenant` (the configured one for `None`), retrying
    /// connection errors, 429 and 5xx with exponential backoff and jitter until Loki accepts
    /// it, refuses it for good, retries run out, or `cancel` completes.
    pub async fn push(
        &self,
        tenant: Option<&Arc<str>>,
        body: Bytes,
        lines: usize,
        cancel: impl Future,
    ) -> PushOutcome {
        let bytes = body.len();
        let push = match self.client_for(tenant) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, lines, "cannot push to this tenant; dropping the batch");
                self.metrics.batch_failed(LineDropReason::Rejected, lines);
                return PushOutcome::Dropped;
            }
        };
        let delivery = push
            .push(body, &self.policy, cancel, |event| match event {
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
