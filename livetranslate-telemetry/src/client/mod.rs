//! Outbound HTTP instrumentation for `reqwest`: every call to a named upstream records
//! `http_client_request_duration_seconds` and `http_client_active_requests`, goes through the
//! upstream's circuit breaker, and carries the incoming request's `x-request-id` and
//! `traceparent`.
//!
//! ```no_run
//! # async fn f(telemetry: livetranslate_telemetry::Telemetry) -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest::Client::new();
//! let audio = telemetry.upstream("audio", Default::default())?;
//! let res = audio.send(client.get("http://audio:5001/api/audio/models")).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::breaker::{BreakerConfig, BreakerOpen, CircuitBreaker};
use crate::context::RequestContext;
use crate::http::metrics::FxHasher;
use crate::registry::{Family, Gauge, Histogram, MetricError, Registry, LATENCY_BUCKETS};

/// The client metric families of one registry.
#[derive(Debug, Clone)]
pub(crate) struct ClientMetrics {
    duration: Family<Histogram>,
    active: Family<Gauge>,
}

impl ClientMetrics {
    pub(crate) fn new(registry: &Registry) -> Result<Self, MetricError> {
        Ok(ClientMetrics {
            duration: registry.histogram(
                "http_client_request_duration_seconds",
                "Duration of outbound HTTP requests to an upstream.",
                &[
                    "http_request_method",
                    "upstream",
                    "http_response_status_code",
                    "error_type",
                ],
                LATENCY_BUCKETS,
            )?,
            active: registry.gauge(
                "http_client_active_requests",
                "Outbound HTTP requests in flight, per upstream.",
                &["upstream"],
            )?,
        })
    }
}

/// Why an outbound call failed before a response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or connection timed out.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Anything else (TLS, protocol, body, building the request).
    Other,
}

impl ErrorKind {
    /// The `error_type` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Other => "other",
        }
    }

    fn of(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_connect() {
            ErrorKind::Connect
        } else {
            ErrorKind::Other
        }
    }
}

/// A failed outbound call.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream's breaker is open; nothing was sent.
    #[error(transparent)]
    Open(#[from] BreakerOpen),
    /// The request failed without a response.
    #[error("request to {upstream} failed ({}): {source}", kind.as_str())]
    Request {
        /// The upstream.
        upstream: String,
        /// Timeout, connect or other.
        kind: ErrorKind,
        /// The client error (its URL removed).
        source: reqwest::Error,
    },
}

type SeriesKey = (&'static str, u16, &'static str);

struct Inner {
    name: String,
    breaker: CircuitBreaker,
    active: Gauge,
    metrics: ClientMetrics,
    series: Mutex<HashMap<SeriesKey, Histogram, std::hash::BuildHasherDefault<FxHasher>>>,
}

/// A named upstream: its calls are measured, propagate the request context, and pass its
/// circuit breaker (5xx, timeouts and connection errors are failures; other statuses are
/// successes).
#[derive(Clone)]
pub struct Upstream(Arc<Inner>);

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.0.name)
            .finish()
    }
}

/// Counts one call in `http_client_active_requests` for as long as it lives, so a call whose
/// future is dropped mid-flight (a timeout around `send`, a cancelled handler, an aborted
/// task) is not left counted.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn method_label(m: &reqwest::Method) -> &'static str {
    crate::http::route::METHODS[crate::http::route::method_index(m)]
}

impl Upstream {
    pub(crate) fn new(
        metrics: ClientMetrics,
        name: &str,
        breaker: CircuitBreaker,
    ) -> Result<Self, MetricError> {
        Ok(Upstream(Arc::new(Inner {
            name: name.to_owned(),
            active: metrics.active.with(&[name])?,
            breaker,
            metrics,
            series: Mutex::new(HashMap::default()),
        })))
    }

    /// The upstream's name (the `upstream` label).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Its circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.0.breaker
    }

    fn observe(&self, method: &'static str, status: u16, error: &'static str, secs: f64) {
        let mut series = self.0.series.lock().unwrap_or_else(|e| e.into_inner());
        let key = (method, status, error);
        if let Some(h) = series.get(&key) {
            h.observe(secs);
            return;
        }
        let code = if status == 0 {
            String::new()
        } else {
            status.to_string()
        };
        if let Ok(h) = self
            .0
            .metrics
            .duration
            .with(&[method, &self.0.name, &code, error])
        {
            h.observe(secs);
            series.insert(key, h);
        }
    }

    /// Sends `request` (built from any `reqwest::Client`) through the breaker, with the
    /// current request's id and trace context added to its headers.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        let (client, built) = request.build_split();
        let mut req = built.map_err(|source| UpstreamError::Request {
            upstream: self.0.name.clone(),
            kind: ErrorKind::Other,
            source: source.without_url(),
        })?;
        if let Some(ctx) = RequestContext::current() {
            ctx.inject(req.headers_mut());
        }
        let method = method_label(req.method());
        let permit = self.0.breaker.try_acquire()?;
        let in_flight = InFlight::enter(&self.0.active);
        let start = Instant::now();
        let result = client.execute(req).await;
        let secs = start.elapsed().as_secs_f64();
        drop(in_flight);
        match result {
            Ok(res) => {
                let status = res.status();
                self.observe(method, status.as_u16(), "", secs);
                if status.is_server_error() {
                    permit.failure();
                } else {
                    permit.success();
                }
                Ok(res)
            }
            Err(e) => {
                let kind = ErrorKind::of(&e);
                self.observe(method, 0, kind.as_str(), secs);
                permit.failure();
                Err(UpstreamError::Request {
                    upstream: self.0.name.clone(),
                    kind,
                    source: e.without_url(),
                })
            }
        }
    }
}

impl crate::health::HealthCheck {
    /// A check that GETs `url` with `client` and is healthy only on a 2xx answer: an
    /// upstream answering 503 is down, whatever it says in the body; no answer (connection
    /// refused, the client's or the check's timeout) is unhealthy too. Its messages show the
    /// URL without credentials (`user:password@`, token-like query parameters).
    ///
    /// ```
    /// use std::time::Duration;
    /// use livetranslate_telemetry::health::HealthCheck;
    /// let client = reqwest::Client::new();
    /// let check = HealthCheck::http_get("audio-service", &client, "http://audio:5001/api/health/live")
    ///     .timeout(Duration::from_secs(2));
    /// ```
    pub fn http_get(name: impl Into<String>, client: &reqwest::Client, url: &str) -> Self {
        let (client, url) = (client.clone(), url.to_owned());
        crate::health::HealthCheck::new(name, move || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let shown = livetranslate_push::redact_url(&url);
                let res = match client.get(&url).send().await {
                    Ok(r) => r,
                    Err(e) => return Err(format!("GET {shown}: {}", e.without_url()).into()),
                };
                let status = res.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("GET {shown} answered {status}").into())
                }
            }
        })
    }
}

impl crate::Telemetry {
    /// An instrumented upstream called `name` (a fixed, bounded name such as `audio`, never a
    /// URL) with its own circuit breaker.
    pub fn upstream(&self, name: &str, breaker: BreakerConfig) -> Result<Upstream, MetricError> {
        Upstream::new(
            self.client_metrics().clone(),
            name,
            self.circuit_breaker(name, breaker)?,
        )
    }
}
