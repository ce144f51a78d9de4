use std::sync::Arc;

use tower_layer::Layer;

use super::metrics::HttpMetrics;
use super::service::{HttpService, Settings};
use crate::registry::{MetricError, Registry};

/// The HTTP instrumentation middleware: request metrics, `x-request-id`, a trace context, a
/// request span and one access-log line per request.
///
/// Apply it with [`Router::layer`](axum::Router::layer) so that it sees the matched route
/// template; [`Telemetry::router`](crate::Telemetry::router) does this for you.
///
/// The library's own endpoints (`/api/metrics`, `/api/health*`) are not counted in the
/// metrics unless [`count_own_endpoints`](Self::count_own_endpoints) asks for them.
///
/// ```
/// use axum::{routing::get, Router};
/// use livetranslate_telemetry::{http::HttpLayer, registry::Registry};
/// let registry = Registry::new(&[("service", "demo")]);
/// let layer = HttpLayer::with_registry(&registry).unwrap().access_log(false);
/// let app: Router = Router::new().route("/api/users/{id}", get(|| async { "hi" })).layer(layer);
/// ```
#[derive(Clone, Debug)]
pub struct HttpLayer {
    settings: Settings,
}

impl Default for HttpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpLayer {
    /// A layer with request ids and access logs but no metrics.
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new();
    /// ```
    pub fn new() -> Self {
        HttpLayer {
            settings: Settings {
                metrics: None,
                request_id: true,
                access_log: true,
                routes: Arc::default(),
            },
        }
    }

    /// A layer that also records the `http_server_*` metrics into `registry` (once per
    /// registry: a second call returns [`MetricError::Conflict`]; clone the layer instead).
    pub fn with_registry(registry: &Registry) -> Result<Self, MetricError> {
        Ok(Self::from_parts(Some(HttpMetrics::register(
            registry, None,
        )?)))
    }

    /// Like [`with_registry`](Self::with_registry), with these request-duration histogram
    /// buckets instead of [`LATENCY_BUCKETS`](crate::registry::LATENCY_BUCKETS) (bad bounds are
    /// a [`MetricError::InvalidBuckets`]).
    ///
    /// ```
    /// use livetranslate_telemetry::{http::HttpLayer, registry::Registry};
    /// let registry = Registry::new(&[]);
    /// let layer = HttpLayer::with_registry_and_buckets(&registry, &[0.01, 0.1, 1.0]).unwrap();
    /// assert!(HttpLayer::with_registry_and_buckets(&Registry::new(&[]), &[1.0, 0.1]).is_err());
    /// ```
    pub fn with_registry_and_buckets(
        registry: &Registry,
        duration_buckets: &[f64],
    ) -> Result<Self, MetricError> {
        Ok(Self::from_parts(Some(HttpMetrics::register(
            registry,
            Some(duration_buckets),
        )?)))
    }

    pub(crate) fn from_parts(metrics: Option<&'static HttpMetrics>) -> Self {
        let mut layer = Self::new();
        layer.settings.metrics = metrics;
        layer
    }

    /// Turns `x-request-id` handling, and with it the request context (id and trace context
    /// for outbound calls, trace ids on exemplars), on or off (on by default).
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new().request_id(false);
    /// ```
    pub fn request_id(mut self, enabled: bool) -> Self {
        self.settings.request_id = enabled;
        self
    }

    /// Turns the per-request span and access-log line on or off (on by default).
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new().access_log(false);
    /// ```
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.settings.access_log = enabled;
        self
    }

    /// Stops recording metrics (as `PROMETHEUS_METRICS_ENABLED=false` does).
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new().without_metrics();
    /// ```
    pub fn without_metrics(mut self) -> Self {
        self.settings.metrics = None;
        self
    }

    /// Leaves requests whose route template matches `pattern` out of the metrics: the exact
    /// template (`/internal/stats`, `/api/users/{id}`), or every template starting with a
    /// prefix when the pattern ends in `*` (`/internal/*`). Request ids and the access log
    /// still apply to them.
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new()
    ///     .exclude_route("/internal/*")
    ///     .exclude_route("/favicon.ico");
    /// ```
    pub fn exclude_route(mut self, pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        self.settings.routes = self.settings.routes.changed(|r| r.exclude.push(pattern));
        self
    }

    /// Counts the library's own endpoints (`/api/metrics`, `/api/health`, `/api/health/*`) in
    /// the HTTP metrics too; off by default, so scrapes and probes do not crowd the service's
    /// own traffic.
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new().count_own_endpoints(true);
    /// ```
    pub fn count_own_endpoints(mut self, count: bool) -> Self {
        self.settings.routes = self.settings.routes.changed(|r| r.count_own = count);
        self
    }

    /// Counts each route template under the `http_route` value `group` returns for it, so
    /// that several templates share one series (`/api/v1/*` for every versioned route). It
    /// sees templates (or [`UNMATCHED_ROUTE`](super::UNMATCHED_ROUTE)), never raw paths, and
    /// runs once per template and thread; keep its answers a small fixed set.
    ///
    /// ```
    /// let layer = livetranslate_telemetry::http::HttpLayer::new().group_routes(|template| {
    ///     match template.strip_prefix("/api/v1/") {
    ///         Some(_) => "/api/v1/*".to_owned(),
    ///         None => template.to_owned(),
    ///     }
    /// });
    /// ```
    pub fn group_routes(mut self, group: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let group: super::route::RouteGroup = Arc::new(group);
        self.settings.routes = self.settings.routes.changed(|r| r.group = Some(group));
        self
    }
}

impl<S> Layer<S> for HttpLayer {
    type Service = HttpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService::new(inner, self.settings.clone())
    }
}
