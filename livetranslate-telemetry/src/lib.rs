//! # livetranslate-telemetry
//!
//! One builder call gives an axum service:
//!
//! - `/api/metrics`: Prometheus text exposition (HTTP metrics named after the OpenTelemetry
//!   HTTP semantic conventions, process metrics, build info, LiveTranslate domain metrics);
//! - `/api/health`, `/api/health/live`, `/api/health/ready`: JSON health from background checks;
//! - JSON logs on stdout (and `LOG_FILE`) with a request id and an access-log line per request;
//! - the standard labels `service`, `environment`, `version`, `cluster` on every series and line.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use livetranslate_telemetry::Telemetry;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), livetranslate_telemetry::Error> {
//!     let telemetry = Telemetry::builder("audio").version(env!("CARGO_PKG_VERSION")).build()?;
//!     let app = Router::new().route("/api/audio/{id}", get(|| async { "ok" }));
//!     telemetry.serve(app, 5001).await
//! }
//! ```
//!
//! Settings come from the builder and the environment ([`config`] lists the variables);
//! a bad value is an [`Error`] naming the variable.

#![warn(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod context;
pub mod health;
pub mod http;
mod labels;
pub mod logging;
#[cfg(feature = "loki")]
pub mod loki;
pub mod metrics;
mod request_id;
pub mod time;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub use config::{Config, ConfigError, LogFormat};
pub use labels::{StandardLabels, STANDARD_LABEL_NAMES};
pub use request_id::{RequestId, REQUEST_ID_HEADER};

use config::Defaults;
use health::{Health, HealthCheck, HealthReport};
use metrics::{
    BreakerConfig, BreakerMetrics, CircuitBreaker, MetricError, Registry, Sessions,
    TranslationQuality, WebSockets,
};

/// Everything that can go wrong setting telemetry up or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting has a bad value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] logging::LoggingError),
    /// A metric could not be registered.
    #[error(transparent)]
    Metric(#[from] MetricError),
    /// Health checks need a tokio runtime to run on.
    #[error("health checks need a tokio runtime: call build() inside one")]
    NoRuntime,
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Configures a [`Telemetry`]; start with [`Telemetry::builder`].
///
/// ```
/// use livetranslate_telemetry::Telemetry;
/// let telemetry = Telemetry::builder("translation")
///     .version("1.4.2")
///     .environment("staging")
///     .install_logging(false)
///     .build()
///     .unwrap();
/// assert_eq!(telemetry.labels().service, "translation");
/// ```
pub struct TelemetryBuilder {
    defaults: Defaults,
    checks: Vec<HealthCheck>,
    install_logging: bool,
    env: EnvLookup,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("defaults", &self.defaults)
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// The service's version (`version` label); `SERVICE_VERSION` overrides it.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.defaults.version = version.into();
        self
    }

    /// The deployment environment (`environment` label); `ENVIRONMENT` overrides it.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.defaults.environment = environment.into();
        self
    }

    /// The cluster identifier (`cluster` label); `CLUSTER` overrides it.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.defaults.cluster = cluster.into();
        self
    }

    /// Registers a health check.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.checks.push(check);
        self
    }

    /// Time between health check runs; `HEALTH_CHECK_INTERVAL` overrides it.
    pub fn health_check_interval(mut self, interval: Duration) -> Self {
        self.defaults.health_check_interval = interval;
        self
    }

    /// WebSocket connection limit; `WEBSOCKET_MAX_CONNECTIONS` overrides it.
    pub fn websocket_limit(mut self, limit: u64) -> Self {
        self.defaults.websocket_limit = limit;
        self
    }

    /// Whether metrics are on; `PROMETHEUS_METRICS_ENABLED` overrides it.
    pub fn metrics_enabled(mut self, enabled: bool) -> Self {
        self.defaults.metrics_enabled = enabled;
        self
    }

    /// Stdout log format; `LOG_FORMAT` overrides it.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.defaults.log_format = format;
        self
    }

    /// A JSON log file to append to; `LOG_FILE` overrides it.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.defaults.log_file = Some(path.into());
        self
    }

    /// Whether [`build`](Self::build) installs the global log subscriber (default `true`).
    /// Turn it off when the application sets up `tracing` itself, or in tests.
    pub fn install_logging(mut self, install: bool) -> Self {
        self.install_logging = install;
        self
    }

    /// Reads settings from `lookup` instead of the process environment (for tests).
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Box::new(lookup);
        self
    }

    /// Resolves the settings, installs logging, registers the metrics and starts the health
    /// checks (which need a tokio runtime when there are any).
    pub fn build(self) -> Result<Telemetry, Error> {
        let config = Config::resolve(&self.defaults, &self.env)?;
        let runtime = tokio::runtime::Handle::try_current().ok();
        if !self.checks.is_empty() && runtime.is_none() {
            return Err(Error::NoRuntime);
        }
        let registry = Registry::new(&config.labels.pairs());
        registry.register_collector(metrics::process::NAMES, metrics::process::ProcessCollector)?;
        registry
            .gauge(
                "livetranslate_build_info",
                "Always 1; the labels identify the build.",
                &[],
            )?
            .with(&[])?
            .set(1.0);
        let http = if config.metrics_enabled {
            Some(http::metrics::HttpMetrics::register(&registry)?)
        } else {
            None
        };
        let health = Health::new(config.labels.clone(), self.checks, &registry)?;
        #[cfg(feature = "loki")]
        let loki = match loki::LokiSettings::from_env(&self.env)? {
            Some(settings) => {
                let rt = runtime.as_ref().ok_or(Error::NoRuntime)?;
                Some(loki::start(settings, &config.labels, &registry, rt)?)
            }
            None => None,
        };
        #[cfg(not(feature = "loki"))]
        let loki: Option<logging::NoLoki> = None;
        #[cfg(feature = "loki")]
        let loki_handle = loki.clone();
        let log_guard = if self.install_logging {
            Some(logging::install(&config, loki)?)
        } else {
            None
        };
        if let Some(rt) = &runtime {
            health.spawn(config.health_check_interval, rt);
        }
        Ok(Telemetry(Arc::new(Inner {
            websockets: WebSockets::new(&registry, config.websocket_limit)?,
            sessions: Sessions::new(&registry)?,
            quality: TranslationQuality::new(&registry)?,
            breakers: BreakerMetrics::new(&registry)?,
            #[cfg(feature = "client")]
            client: client::ClientMetrics::new(&registry)?,
            #[cfg(feature = "loki")]
            loki: loki_handle,
            http,
            health,
            registry,
            config,
            log_guard: Mutex::new(log_guard),
        })))
    }
}

struct Inner {
    config: Config,
    registry: Registry,
    http: Option<&'static http::metrics::HttpMetrics>,
    health: Arc<Health>,
    websockets: WebSockets,
    sessions: Sessions,
    quality: TranslationQuality,
    breakers: BreakerMetrics,
    #[cfg(feature = "client")]
    client: client::ClientMetrics,
    #[cfg(feature = "loki")]
    loki: Option<loki::LokiWriter>,
    log_guard: Mutex<Option<logging::LogGuard>>,
}

/// The telemetry of one service: cheap to clone, shared by the router and handlers.
///
/// ```
/// use axum::{routing::get, Router};
/// use livetranslate_telemetry::Telemetry;
/// let telemetry = Telemetry::builder("audio").install_logging(false).build().unwrap();
/// let app: Router = telemetry.router(Router::new().route("/api/x", get(|| async { "x" })));
/// ```
#[derive(Clone)]
pub struct Telemetry(Arc<Inner>);

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("labels", &self.0.config.labels)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts configuring telemetry for the service called `service` (`service` label;
    /// `SERVICE_NAME` overrides it).
    pub fn builder(service: impl AsRef<str>) -> TelemetryBuilder {
        TelemetryBuilder {
            defaults: Defaults::new(service.as_ref()),
            checks: Vec::new(),
            install_logging: true,
            env: Box::new(|var| std::env::var(var).ok()),
        }
    }

    /// The resolved settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The standard labels.
    pub fn labels(&self) -> &StandardLabels {
        &self.0.config.labels
    }

    /// The metric registry, for custom business metrics: every series registered here carries
    /// the standard labels and is served on `/api/metrics`.
    ///
    /// ```
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
    /// let jobs = telemetry.metrics().counter("livetranslate_jobs_total", "Jobs run.", &["kind"]).unwrap();
    /// jobs.with(&["transcribe"]).unwrap().inc();
    /// assert!(telemetry.render_metrics().contains("livetranslate_jobs_total{service=\"doc\""));
    /// ```
    pub fn metrics(&self) -> &Registry {
        &self.0.registry
    }

    /// The WebSocket connection metrics.
    pub fn websockets(&self) -> &WebSockets {
        &self.0.websockets
    }

    /// The session metrics.
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// The translation quality histogram.
    pub fn translation_quality(&self) -> &TranslationQuality {
        &self.0.quality
    }

    /// A circuit breaker for `upstream`, exported in `livetranslate_circuit_breaker_*`.
    pub fn circuit_breaker(
        &self,
        upstream: &str,
        config: BreakerConfig,
    ) -> Result<CircuitBreaker, MetricError> {
        CircuitBreaker::new(&self.0.breakers, upstream, config)
    }

    #[cfg(feature = "client")]
    pub(crate) fn client_metrics(&self) -> &client::ClientMetrics {
        &self.0.client
    }

    /// The HTTP middleware, recording metrics unless they are disabled.
    pub fn http_layer(&self) -> http::HttpLayer {
        http::HttpLayer::from_parts(self.0.http)
    }

    /// The latest health report.
    pub fn health(&self) -> HealthReport {
        self.0.health.report()
    }

    /// Every metric in the Prometheus text format (what `/api/metrics` serves).
    pub fn render_metrics(&self) -> String {
        self.0.registry.render()
    }

    /// The telemetry endpoints alone: `/api/health*` and, unless metrics are disabled,
    /// `/api/metrics`.
    pub fn routes(&self) -> Router {
        let mut router = health::routes(self.0.health.clone());
        if self.0.config.metrics_enabled {
            let registry = self.0.registry.clone();
            router = router.route(
                "/api/metrics",
                get(move || {
                    let registry = registry.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                metrics::encode::CONTENT_TYPE,
                            )],
                            registry.render(),
                        )
                            .into_response()
                    }
                }),
            );
        }
        router
    }

    /// `app` with the telemetry endpoints merged in and the HTTP middleware applied to every
    /// route (and to the fallback, so unmatched requests are counted under one route value).
    pub fn router(&self, app: Router) -> Router {
        app.merge(self.routes()).layer(self.http_layer())
    }

    /// Serves `app` (through [`router`](Self::router)) on `0.0.0.0:$PORT` (or `default_port`)
    /// until SIGINT or SIGTERM, then flushes the logs.
    pub async fn serve(&self, app: Router, default_port: u16) -> Result<(), Error> {
        let port = match std::env::var("PORT").ok().filter(|p| !p.is_empty()) {
            Some(p) => config::parse_port("PORT", &p)?,
            None => default_port,
        };
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let labels = self.labels();
        tracing::info!(%addr, service = %labels.service, version = %labels.version, "listening");
        axum::serve(listener, self.router(app))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(Error::Serve)?;
        tracing::info!("shut down");
        if !self.drain_loki(Duration::from_secs(5)).await {
            tracing::warn!("log lines still queued for Loki at exit were not shipped");
        }
        self.flush_logs();
        Ok(())
    }

    /// Waits (at most `timeout`) until the log lines queued for Loki are shipped; `true` when
    /// nothing is left (always, without the `loki` feature or `LOKI_URL`). `serve` calls it at
    /// shutdown.
    pub async fn drain_loki(&self, timeout: Duration) -> bool {
        #[cfg(feature = "loki")]
        if let Some(loki) = &self.0.loki {
            return loki.drain(timeout).await;
        }
        let _ = timeout;
        true
    }

    /// Flushes and stops the background log writers (later lines are not written).
    pub fn flush_logs(&self) {
        let guard = self
            .0
            .log_guard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(guard);
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
///
/// ```no_run
/// # async fn f() {
/// livetranslate_telemetry::shutdown_signal().await;
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
