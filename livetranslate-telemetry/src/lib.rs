//! # livetranslate-telemetry
//!
//! One builder call gives an axum service:
//!
//! - `/api/metrics`: Prometheus text exposition (HTTP metrics named after the OpenTelemetry
//!   HTTP semantic conventions, process metrics, build info, LiveTranslate domain metrics);
//! - `/api/health`, `/api/health/live`, `/api/health/ready`, `/api/health/{group}`: JSON health
//!   from background checks, readiness for Kubernetes (the application's own
//!   [`Telemetry::set_ready`], and 503 from SIGTERM on while [`Telemetry::serve`] drains),
//!   named [`health::HealthGroup`]s;
//! - [`Telemetry::serve`]: `BIND_ADDRESS`, an optional management port for the telemetry
//!   endpoints, a header-read timeout, a graceful SIGTERM drain;
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

pub mod breaker;
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
pub mod names;
pub mod registry;
mod request_id;
mod server;
pub mod time;

/// The axum this library is built with: depend on it through this re-export (or on the same
/// version, see the README) so that your `Router` is the type [`Telemetry::router`] takes.
pub use axum;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;

pub use config::{Config, ConfigError, LogFormat, ServerConfig};
pub use labels::{InvalidLabel, StandardLabels, STANDARD_LABEL_NAMES};
pub use request_id::{RequestId, REQUEST_ID_HEADER};

use breaker::{BreakerConfig, BreakerMetrics, CircuitBreaker};
use config::Defaults;
use health::{Health, HealthCheck, HealthGroup, HealthReport, InvalidHealthGroup};
use registry::{
    Matcher, MetricError, MetricsRecorder, RecorderError, Registry, Sessions, TranslationQuality,
    WebSockets,
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
    /// A health group refers to a check that does not exist, or has a bad name.
    #[error(transparent)]
    HealthGroup(#[from] InvalidHealthGroup),
    /// The `metrics` facade recorder could not be set up or installed.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
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
    groups: Vec<HealthGroup>,
    install_logging: bool,
    env: EnvLookup,
    facade: FacadeOptions,
}

/// The builder's `metrics` facade and histogram settings.
#[derive(Debug, Clone)]
struct FacadeOptions {
    install: bool,
    buckets: Option<Vec<f64>>,
    rules: Vec<(Matcher, Vec<f64>)>,
    http_duration_buckets: Option<Vec<f64>>,
}

impl Default for FacadeOptions {
    fn default() -> Self {
        FacadeOptions {
            install: true,
            buckets: None,
            rules: Vec::new(),
            http_duration_buckets: None,
        }
    }
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("defaults", &self.defaults)
            .field("checks", &self.checks)
            .field("groups", &self.groups)
            .field("facade", &self.facade)
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

    /// Adds a named health group, served on `/api/health/{name}` (see [`HealthGroup`]).
    /// A group naming a check that is not registered is an error from
    /// [`build`](Self::build).
    pub fn health_group(mut self, group: HealthGroup) -> Self {
        self.groups.push(group);
        self
    }

    /// Time between health check runs (at least 0.1 s); `HEALTH_CHECK_INTERVAL` overrides it.
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

    /// The IP address [`serve`](Telemetry::serve) listens on (default `0.0.0.0`, every IPv4
    /// interface); `BIND_ADDRESS` overrides it.
    ///
    /// ```
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false)
    /// #     .env_lookup(|_| None)
    /// .bind_address([127, 0, 0, 1].into())
    /// # .build().unwrap();
    /// # assert_eq!(telemetry.config().server.bind_address.to_string(), "127.0.0.1");
    /// ```
    pub fn bind_address(mut self, address: IpAddr) -> Self {
        self.defaults.bind_address = address;
        self
    }

    /// Serves `/api/metrics` and `/api/health*` on a separate listener on this port (at
    /// the management bind address) and not on the main port, so that they need not be
    /// public; `MANAGEMENT_PORT` overrides it, `MANAGEMENT_BIND_ADDRESS` sets the address
    /// (default: the main bind address).
    ///
    /// ```
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false)
    /// #     .env_lookup(|_| None)
    /// .management_port(9102) // Prometheus and the probes use :9102; the app is on PORT alone
    /// # .build().unwrap();
    /// # assert_eq!(telemetry.config().server.management_port, Some(9102));
    /// ```
    pub fn management_port(mut self, port: u16) -> Self {
        self.defaults.management_port = Some(port);
        self
    }

    /// How long a connection may take to send a request's headers, and sit idle between
    /// requests, before it is closed (default 30 s, at least 0.1 s);
    /// `HTTP_HEADER_READ_TIMEOUT` overrides it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false)
    /// #     .env_lookup(|_| None)
    /// .header_read_timeout(Duration::from_secs(10))
    /// # .build().unwrap();
    /// # assert_eq!(telemetry.config().server.header_read_timeout, Duration::from_secs(10));
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.defaults.header_read_timeout = timeout;
        self
    }

    /// How long [`serve`](Telemetry::serve) keeps serving after SIGTERM, with
    /// `/api/health/ready` answering 503, before it stops accepting connections (default 0;
    /// under Kubernetes, a little more than the readiness probe's `periodSeconds` ×
    /// `failureThreshold`); `SHUTDOWN_DRAIN_PERIOD` overrides it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false)
    /// #     .env_lookup(|_| None)
    /// .shutdown_drain_period(Duration::from_secs(15)) // readiness probe: every 5 s, 2 failures
    /// .shutdown_timeout(Duration::from_secs(20))
    /// # .build().unwrap();
    /// # assert_eq!(telemetry.config().server.drain_period, Duration::from_secs(15));
    /// ```
    pub fn shutdown_drain_period(mut self, period: Duration) -> Self {
        self.defaults.drain_period = period;
        self
    }

    /// How long [`serve`](Telemetry::serve) then waits for requests in progress before it
    /// closes their connections (default 30 s); `SHUTDOWN_TIMEOUT` overrides it.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.defaults.shutdown_timeout = timeout;
        self
    }

    /// Whether [`build`](Self::build) installs the global log subscriber (default `true`).
    /// Turn it off when the application sets up `tracing` itself, or in tests.
    pub fn install_logging(mut self, install: bool) -> Self {
        self.install_logging = install;
        self
    }

    /// Whether [`build`](Self::build) makes the library's recorder the process's global
    /// [`metrics`](https://docs.rs/metrics) recorder (default `true`), so that
    /// `metrics::counter!`, `gauge!` and `histogram!` from the service and its dependencies
    /// are served on `/api/metrics` with the standard labels.
    ///
    /// The `metrics` crate allows one global recorder per process. When another one (say
    /// metrics-exporter-prometheus') is installed already, `build()` fails with
    /// [`RecorderError::AlreadyInstalled`] rather than leave the facade silently elsewhere:
    /// turn this off to keep the other recorder, and use [`Telemetry::recorder`] to feed
    /// this registry where you want. A later `Telemetry` built with the recorder installed
    /// takes the facade over from an earlier one. Nothing is installed while metrics are
    /// disabled.
    ///
    /// ```
    /// use livetranslate_telemetry::Telemetry;
    /// let telemetry = Telemetry::builder("audio")
    ///     .install_logging(false)
    ///     .install_recorder(false)
    ///     .build()
    ///     .unwrap();
    /// assert!(!telemetry.recorder().is_installed());
    /// ```
    pub fn install_recorder(mut self, install: bool) -> Self {
        self.facade.install = install;
        self
    }

    /// Bucket bounds of the `metrics` facade's histograms (default
    /// [`LATENCY_BUCKETS`](registry::LATENCY_BUCKETS)); a bad list is an error from `build()`.
    ///
    /// ```
    /// let telemetry = livetranslate_telemetry::Telemetry::builder("audio")
    ///     .install_logging(false)
    ///     .install_recorder(false)
    ///     .histogram_buckets(&[0.01, 0.1, 1.0, 10.0])
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn histogram_buckets(mut self, bounds: &[f64]) -> Self {
        self.facade.buckets = Some(bounds.to_vec());
        self
    }

    /// Bucket bounds of the `metrics` facade's histograms whose name `matcher` matches (a full
    /// match wins over a prefix, a prefix over a suffix).
    ///
    /// ```
    /// use livetranslate_telemetry::{registry::Matcher, Telemetry};
    /// let telemetry = Telemetry::builder("audio")
    ///     .install_logging(false)
    ///     .install_recorder(false)
    ///     .histogram_buckets_for(Matcher::Suffix("_bytes".into()), &[1024.0, 65536.0, 1048576.0])
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn histogram_buckets_for(mut self, matcher: Matcher, bounds: &[f64]) -> Self {
        self.facade.rules.push((matcher, bounds.to_vec()));
        self
    }

    /// Bucket bounds of `http_server_request_duration_seconds` (default
    /// [`LATENCY_BUCKETS`](registry::LATENCY_BUCKETS)); a bad list is an error from `build()`.
    ///
    /// ```
    /// let telemetry = livetranslate_telemetry::Telemetry::builder("audio")
    ///     .install_logging(false)
    ///     .http_duration_buckets(&[0.05, 0.1, 0.2, 0.5, 1.0])
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn http_duration_buckets(mut self, bounds: &[f64]) -> Self {
        self.facade.http_duration_buckets = Some(bounds.to_vec());
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
        registry.register_collector(
            registry::process::NAMES,
            registry::process::ProcessCollector,
        )?;
        registry
            .gauge(
                "livetranslate_build_info",
                "Always 1; the labels identify the build.",
                &[],
            )?
            .with(&[])?
            .set(1.0);
        let http = if config.metrics_enabled {
            Some(http::metrics::HttpMetrics::register(
                &registry,
                self.facade.http_duration_buckets.as_deref(),
            )?)
        } else {
            None
        };
        let groups = health::resolve_groups(self.groups, &self.checks)?;
        let health = Health::new(config.labels.clone(), self.checks, groups, &registry)?;
        let recorder = self.facade.recorder(&registry)?;
        if config.metrics_enabled && self.facade.install {
            recorder.install()?;
        }
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
            recorder,
            registry,
            config,
            log_guard: Mutex::new(log_guard),
        })))
    }
}

struct Inner {
    config: Config,
    registry: Registry,
    recorder: MetricsRecorder,
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
            groups: Vec::new(),
            install_logging: true,
            env: Box::new(|var| std::env::var(var).ok()),
            facade: FacadeOptions::default(),
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

    /// The `metrics` facade recorder feeding this registry: the global one unless
    /// [`install_recorder(false)`](TelemetryBuilder::install_recorder); use it for a local
    /// recorder in tests or next to another recorder.
    ///
    /// ```
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).install_recorder(false).build().unwrap();
    /// metrics::with_local_recorder(&telemetry.recorder(), || {
    ///     metrics::gauge!("doc_queue_depth").set(3.0);
    /// });
    /// assert!(telemetry.render_metrics().contains("doc_queue_depth{service=\"doc\""));
    /// ```
    pub fn recorder(&self) -> MetricsRecorder {
        self.0.recorder.clone()
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

    /// Marks the application ready (the default) or not: while not ready,
    /// `/api/health/ready` answers 503 (`"reason": "application"`), so that a load balancer
    /// or a Kubernetes readiness probe sends no traffic, e.g. while caches warm up or a model
    /// loads. Liveness and `/api/health` are not affected.
    ///
    /// ```
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
    /// telemetry.set_ready(false); // before serve(): warming up
    /// assert!(!telemetry.is_ready());
    /// telemetry.set_ready(true);
    /// assert!(telemetry.is_ready());
    /// ```
    pub fn set_ready(&self, ready: bool) {
        self.0.health.set_ready(ready);
    }

    /// Whether `/api/health/ready` answers 200 now: the application is ready, no shutdown
    /// has begun, and every critical check passes.
    ///
    /// ```
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
    /// assert!(telemetry.is_ready()); // no checks, not marked otherwise
    /// ```
    pub fn is_ready(&self) -> bool {
        self.0.health.readiness().is_ok()
    }

    /// Every metric in the Prometheus text format (what `/api/metrics` serves by default).
    pub fn render_metrics(&self) -> String {
        self.0.registry.render()
    }

    /// Every metric in `format` (OpenMetrics is what `/api/metrics` serves when the scraper's
    /// `Accept` asks for it).
    ///
    /// ```
    /// use livetranslate_telemetry::registry::encode::Format;
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).install_recorder(false).build().unwrap();
    /// assert!(telemetry.render_metrics_as(Format::OpenMetrics).ends_with("# EOF\n"));
    /// ```
    pub fn render_metrics_as(&self, format: registry::encode::Format) -> String {
        self.0.registry.render_as(format)
    }

    /// The telemetry endpoints alone: `/api/health*` and, unless metrics are disabled,
    /// `/api/metrics`.
    pub fn routes(&self) -> Router {
        let mut router = health::routes(self.0.health.clone());
        if self.0.config.metrics_enabled {
            let registry = self.0.registry.clone();
            router = router.route(
                "/api/metrics",
                get(move |headers: axum::http::HeaderMap| {
                    let registry = registry.clone();
                    async move { registry::exporter::respond(&registry, &headers) }
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

    /// Serves `app` (through [`router`](Self::router)) on `$BIND_ADDRESS:$PORT` (default
    /// `0.0.0.0` and `default_port`) until SIGINT or SIGTERM, then flushes the logs.
    ///
    /// With `MANAGEMENT_PORT` (or [`TelemetryBuilder::management_port`]) set,
    /// `/api/metrics` and `/api/health*` are served on that port only and `app` alone on the
    /// main one. Connections that do not send a request's headers within
    /// `HTTP_HEADER_READ_TIMEOUT` are closed. On SIGTERM `/api/health/ready` answers 503 at
    /// once while everything keeps being served for `SHUTDOWN_DRAIN_PERIOD`; then the
    /// listeners close and requests in progress get `SHUTDOWN_TIMEOUT` to finish (SIGINT
    /// skips the drain; a second signal cuts it short).
    pub async fn serve(&self, app: Router, default_port: u16) -> Result<(), Error> {
        let s = &self.0.config.server;
        let main_addr = SocketAddr::new(s.bind_address, s.port.unwrap_or(default_port));
        let listeners = match s.management_port {
            None => vec![server::bind("main", main_addr, self.router(app)).await?],
            Some(port) if port != 0 && port == main_addr.port() => {
                return Err(ConfigError::Invalid {
                    setting: "MANAGEMENT_PORT".to_owned(),
                    value: port.to_string(),
                    reason: "must differ from the main port".to_owned(),
                }
                .into())
            }
            Some(port) => vec![
                server::bind("main", main_addr, app.layer(self.http_layer())).await?,
                server::bind(
                    "management",
                    SocketAddr::new(s.management_bind_address, port),
                    self.router(Router::new()),
                )
                .await?,
            ],
        };
        server::serve(listeners, s, self.0.health.clone()).await?;
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

impl FacadeOptions {
    /// The facade recorder of `registry` with these bucket settings.
    fn recorder(&self, registry: &Registry) -> Result<MetricsRecorder, RecorderError> {
        let mut builder = MetricsRecorder::builder(registry);
        if let Some(b) = &self.buckets {
            builder = builder.buckets(b);
        }
        for (m, b) in &self.rules {
            builder = builder.buckets_for(m.clone(), b);
        }
        builder.build()
    }
}
