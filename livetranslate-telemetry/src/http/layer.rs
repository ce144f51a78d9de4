use tower_layer::Layer;

use super::metrics::HttpMetrics;
use super::service::HttpService;
use crate::metrics::{MetricError, Registry};

/// The HTTP instrumentation middleware: request metrics, `x-request-id`, a request span and
/// one access-log line per request.
///
/// Apply it with [`Router::layer`](axum::Router::layer) so that it sees the matched route
/// template; [`Telemetry::router`](crate::Telemetry::router) does this for you.
///
/// ```
/// use axum::{routing::get, Router};
/// use livetranslate_telemetry::{http::HttpLayer, metrics::Registry};
/// let registry = Registry::new(&[("service", "demo")]);
/// let layer = HttpLayer::with_registry(&registry).unwrap().access_log(false);
/// let app: Router = Router::new().route("/api/users/{id}", get(|| async { "hi" })).layer(layer);
/// ```
#[derive(Clone, Debug)]
pub struct HttpLayer {
    pub(crate) metrics: Option<&'static HttpMetrics>,
    pub(crate) request_id: bool,
    pub(crate) access_log: bool,
}

impl Default for HttpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpLayer {
    /// A layer with request ids and access logs but no metrics.
    pub fn new() -> Self {
        HttpLayer {
            metrics: None,
            request_id: true,
            access_log: true,
        }
    }

    /// A layer that also records the `http_server_*` metrics into `registry` (once per
    /// registry: a second call returns [`MetricError::Conflict`]; clone the layer instead).
    pub fn with_registry(registry: &Registry) -> Result<Self, MetricError> {
        Ok(HttpLayer {
            metrics: Some(HttpMetrics::register(registry)?),
            ..Self::new()
        })
    }

    pub(crate) fn from_parts(metrics: Option<&'static HttpMetrics>) -> Self {
        HttpLayer {
            metrics,
            ..Self::new()
        }
    }

    /// Turns `x-request-id` handling on or off (on by default).
    pub fn request_id(mut self, enabled: bool) -> Self {
        self.request_id = enabled;
        self
    }

    /// Turns the per-request span and access-log line on or off (on by default).
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.access_log = enabled;
        self
    }

    /// Stops recording metrics (as `PROMETHEUS_METRICS_ENABLED=false` does).
    pub fn without_metrics(mut self) -> Self {
        self.metrics = None;
        self
    }
}

impl<S> Layer<S> for HttpLayer {
    type Service = HttpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService {
            inner,
            layer: self.clone(),
        }
    }
}
