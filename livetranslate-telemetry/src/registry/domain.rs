//! Typed metrics for the LiveTranslate alerts: WebSocket connections, sessions and
//! translation quality (the circuit breaker lives in [`crate::breaker`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Counter, Family, Gauge, Histogram, MetricError, Registry, SCORE_BUCKETS};

/// The WebSocket connection gauge, its limit and the open/rejected counters.
///
/// A connection is counted for as long as its [`WebSocketGuard`] lives.
///
/// ```
/// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
/// let ws = telemetry.websockets();
/// let guard = ws.try_open().expect("below the limit");
/// assert_eq!(ws.active(), 1);
/// drop(guard);
/// assert_eq!(ws.active(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct WebSockets {
    count: Arc<AtomicU64>,
    limit: u64,
    active: Gauge,
    opened: Counter,
    rejected: Counter,
}

/// Returned by [`WebSockets::try_open`] when the limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WebSocket connection limit of {limit} reached")]
pub struct ConnectionLimitReached {
    /// The configured limit.
    pub limit: u64,
}

/// Keeps one WebSocket connection counted; dropping it decrements the gauge.
#[derive(Debug)]
#[must_use = "the connection is only counted while the guard lives"]
pub struct WebSocketGuard {
    ws: WebSockets,
}

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.ws.count.fetch_sub(1, Ordering::AcqRel);
        self.ws.active.dec();
    }
}

impl WebSockets {
    pub(crate) fn new(registry: &Registry, limit: u64) -> Result<Self, MetricError> {
        let active = registry
            .gauge(
                "livetranslate_websocket_connections",
                "Open WebSocket connections.",
                &[],
            )?
            .with(&[])?;
        registry
            .gauge(
                "livetranslate_websocket_connections_limit",
                "Configured maximum number of open WebSocket connections.",
                &[],
            )?
            .with(&[])?
            .set(limit as f64);
        let opened = registry
            .counter(
                "livetranslate_websocket_connections_opened_total",
                "WebSocket connections accepted.",
                &[],
            )?
            .with(&[])?;
        let rejected = registry
            .counter(
                "livetranslate_websocket_connections_rejected_total",
                "WebSocket connections refused because the limit was reached.",
                &[],
            )?
            .with(&[])?;
        Ok(WebSockets {
            count: Arc::new(AtomicU64::new(0)),
            limit,
            active,
            opened,
            rejected,
        })
    }

    /// Counts a new connection, or refuses it (and counts the refusal) at the limit.
    pub fn try_open(&self) -> Result<WebSocketGuard, ConnectionLimitReached> {
        let limit = self.limit;
        match self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            }) {
            Ok(_) => {
                self.active.inc();
                self.opened.inc();
                Ok(WebSocketGuard { ws: self.clone() })
            }
            Err(_) => {
                self.rejected.inc();
                Err(ConnectionLimitReached { limit })
            }
        }
    }

    /// Open connections now.
    pub fn active(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// The configured limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// Session counters: active gauge, created and failed (by reason) counters.
///
/// ```
/// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
/// let sessions = telemetry.sessions();
/// let s = sessions.start();
/// assert_eq!(sessions.active(), 1.0);
/// s.fail("upstream_unavailable");
/// assert_eq!(sessions.active(), 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct Sessions {
    active: Gauge,
    created: Counter,
    failed: Family<Counter>,
}

/// An open session; ends (normally) when dropped, or with [`SessionGuard::fail`].
#[derive(Debug)]
#[must_use = "the session is only counted as active while the guard lives"]
pub struct SessionGuard {
    sessions: Sessions,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.active.dec();
    }
}

impl Sessions {
    pub(crate) fn new(registry: &Registry) -> Result<Self, MetricError> {
        Ok(Sessions {
            active: registry
                .gauge("livetranslate_sessions_active", "Open sessions.", &[])?
                .with(&[])?,
            created: registry
                .counter(
                    "livetranslate_sessions_created_total",
                    "Sessions started.",
                    &[],
                )?
                .with(&[])?,
            failed: registry.counter(
                "livetranslate_sessions_failed_total",
                "Sessions that ended in failure, by reason.",
                &["reason"],
            )?,
        })
    }

    /// Starts a session.
    pub fn start(&self) -> SessionGuard {
        self.created.inc();
        self.active.inc();
        SessionGuard {
            sessions: self.clone(),
        }
    }

    /// Counts a session that failed before it could start (no guard was created).
    pub fn failed_to_start(&self, reason: &str) {
        self.created.inc();
        self.count_failure(reason);
    }

    /// Open sessions now.
    pub fn active(&self) -> f64 {
        self.active.get()
    }

    fn count_failure(&self, reason: &str) {
        if let Ok(c) = self.failed.with(&[reason]) {
            c.inc();
        }
    }
}

impl SessionGuard {
    /// Ends the session as failed, counted under `reason` (keep reasons a small fixed set).
    pub fn fail(self, reason: &str) {
        self.sessions.count_failure(reason);
    }
}

/// Translation quality scores (0 to 1) per language pair.
///
/// ```
/// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
/// let quality = telemetry.translation_quality();
/// quality.observe("en-de", 0.92).unwrap();
/// assert!(quality.observe("en-de", 1.5).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct TranslationQuality {
    family: Family<Histogram>,
}

impl TranslationQuality {
    pub(crate) fn new(registry: &Registry) -> Result<Self, MetricError> {
        Ok(TranslationQuality {
            family: registry.histogram(
                "livetranslate_translation_quality_score",
                "Translation quality score between 0 and 1.",
                &["language_pair"],
                SCORE_BUCKETS,
            )?,
        })
    }

    /// The histogram for one language pair (keep the handle for repeated use).
    pub fn for_pair(&self, language_pair: &str) -> Result<Histogram, MetricError> {
        self.family.with(&[language_pair])
    }

    /// Records one score; scores outside `0..=1` (or NaN) are refused.
    pub fn observe(&self, language_pair: &str, score: f64) -> Result<(), MetricError> {
        if !(0.0..=1.0).contains(&score) {
            return Err(MetricError::OutOfRange {
                metric: "livetranslate_translation_quality_score".to_owned(),
                value: score.to_string(),
            });
        }
        self.for_pair(language_pair)?.observe(score);
        Ok(())
    }
}
