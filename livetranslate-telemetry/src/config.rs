//! Settings read from the environment, over the defaults given to the builder.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SERVICE_NAME` | builder's name | `service` label |
//! | `ENVIRONMENT` | `development` | `environment` label |
//! | `SERVICE_VERSION` | builder's version | `version` label |
//! | `CLUSTER` | `livetranslate` | `cluster` label |
//! | `PROMETHEUS_METRICS_ENABLED` | `true` | `false` turns `/api/metrics` (404) and HTTP metrics off |
//! | `HEALTH_CHECK_INTERVAL` | `10` | seconds between health check runs (fractions allowed, at least 0.1) |
//! | `LOG_FORMAT` | `json` | `json` or `pretty` (stdout; `LOG_FILE` is always JSON) |
//! | `LOG_FILE` | unset | append JSON log lines to this file too |
//! | `RUST_LOG` | `info` | level filter, `tracing` directive syntax |
//! | `WEBSOCKET_MAX_CONNECTIONS` | `10000` | WebSocket connection limit |
//! | `PORT` | the port given to `serve` | listening port |
//! | `BIND_ADDRESS` | `0.0.0.0` | IP address `serve` listens on (`127.0.0.1`, `::`, …) |
//! | `MANAGEMENT_PORT` | unset | serve `/api/metrics` and `/api/health*` on this port only, not on `PORT` |
//! | `MANAGEMENT_BIND_ADDRESS` | `BIND_ADDRESS` | IP address of the management listener |
//! | `HTTP_HEADER_READ_TIMEOUT` | `30` | seconds a connection may take to send a request's headers (and may sit idle between requests) before it is closed |
//! | `SHUTDOWN_DRAIN_PERIOD` | `0` | seconds `serve` keeps serving after SIGTERM, with `/api/health/ready` answering 503, before it shuts down |
//! | `SHUTDOWN_TIMEOUT` | `30` | seconds `serve` then waits for requests in progress before it closes their connections |
//!
//! An empty variable counts as unset.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::labels::{validate_label_value, InvalidLabel, StandardLabels};

/// A setting with a bad value. Its message names the variable (or label) and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value failed validation.
    #[error("invalid {setting}={value:?}: {reason}")]
    Invalid {
        /// The environment variable or builder setting.
        setting: String,
        /// The rejected value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<InvalidLabel> for ConfigError {
    fn from(e: InvalidLabel) -> Self {
        ConfigError::Invalid {
            setting: e.setting,
            value: e.value,
            reason: e.reason.to_owned(),
        }
    }
}

fn invalid(setting: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// How log lines are written to stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, for development.
    Pretty,
}

/// The resolved settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The standard labels.
    pub labels: StandardLabels,
    /// Whether `/api/metrics` and HTTP metrics are on.
    pub metrics_enabled: bool,
    /// Time between runs of each health check.
    pub health_check_interval: Duration,
    /// Stdout log format.
    pub log_format: LogFormat,
    /// Extra JSON log file.
    pub log_file: Option<PathBuf>,
    /// Level filter directives.
    pub log_filter: String,
    /// WebSocket connection limit.
    pub websocket_limit: u64,
    /// Where `serve` listens, and how it shuts down.
    pub server: ServerConfig,
}

/// Where [`Telemetry::serve`](crate::Telemetry::serve) listens and how it shuts down.
///
/// ```
/// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false)
/// #     .env_lookup(|v| (v == "BIND_ADDRESS").then(|| "127.0.0.1".to_owned()))
/// #     .build().unwrap();
/// let server = &telemetry.config().server; // BIND_ADDRESS=127.0.0.1
/// assert_eq!(server.bind_address.to_string(), "127.0.0.1");
/// assert_eq!(server.management_port, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// `PORT`, when set (otherwise `serve`'s default port).
    pub port: Option<u16>,
    /// The address of the main listener.
    pub bind_address: IpAddr,
    /// The port of the separate management listener (`/api/metrics`, `/api/health*`), if any.
    pub management_port: Option<u16>,
    /// The address of the management listener.
    pub management_bind_address: IpAddr,
    /// How long a connection may take to send a request's headers, or sit idle between
    /// requests, before it is closed.
    pub header_read_timeout: Duration,
    /// How long `serve` keeps serving after SIGTERM (readiness answering 503) before it stops.
    pub drain_period: Duration,
    /// How long `serve` then waits for requests in progress.
    pub shutdown_timeout: Duration,
}

/// The shortest `HEALTH_CHECK_INTERVAL`: a smaller one would run a check nonstop.
pub const MIN_HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The shortest `HTTP_HEADER_READ_TIMEOUT`.
pub const MIN_HEADER_READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Values the builder supplies, which the environment may override.
#[derive(Clone, Debug)]
pub(crate) struct Defaults {
    pub service: String,
    pub version: String,
    pub environment: String,
    pub cluster: String,
    pub metrics_enabled: bool,
    pub health_check_interval: Duration,
    pub log_format: LogFormat,
    pub log_file: Option<PathBuf>,
    pub log_filter: String,
    pub websocket_limit: u64,
    pub bind_address: IpAddr,
    pub management_port: Option<u16>,
    pub header_read_timeout: Duration,
    pub drain_period: Duration,
    pub shutdown_timeout: Duration,
}

impl Defaults {
    pub(crate) fn new(service: &str) -> Self {
        Defaults {
            service: service.to_owned(),
            version: "unknown".to_owned(),
            environment: "development".to_owned(),
            cluster: "livetranslate".to_owned(),
            metrics_enabled: true,
            health_check_interval: Duration::from_secs(10),
            log_format: LogFormat::Json,
            log_file: None,
            log_filter: "info".to_owned(),
            websocket_limit: 10_000,
            bind_address: IpAddr::from([0, 0, 0, 0]),
            management_port: None,
            header_read_timeout: Duration::from_secs(30),
            drain_period: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

pub(crate) fn parse_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, value, "expected true or false")),
    }
}

#[cfg_attr(not(feature = "loki"), allow(dead_code))]
pub(crate) fn parse_seconds(var: &str, value: &str) -> Result<Duration, ConfigError> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(var, value, "expected a number of seconds, e.g. 10 or 0.5"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(invalid(
            var,
            value,
            "must be more than 0 and at most 86400 seconds",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses seconds (fractions allowed) between `min` and `max`, both included.
pub(crate) fn parse_seconds_between(
    var: &str,
    value: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(var, value, "expected a number of seconds, e.g. 10 or 0.5"))?;
    check_between(var, value, secs, min, max)
}

fn check_between(
    setting: &str,
    value: &str,
    secs: f64,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    if !(secs.is_finite() && secs >= min.as_secs_f64() && secs <= max.as_secs_f64()) {
        return Err(invalid(
            setting,
            value,
            format!(
                "must be between {} and {} seconds",
                min.as_secs_f64(),
                max.as_secs_f64()
            ),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration the builder was given, checked like its environment variable.
fn check_builder_duration(
    setting: &str,
    d: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let secs = d.as_secs_f64();
    check_between(setting, &format!("{secs}s"), secs, min, max).map(|_| d)
}

/// Parses an IP address to listen on.
pub(crate) fn parse_ip(var: &str, value: &str) -> Result<IpAddr, ConfigError> {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    v.parse().map_err(|_| {
        invalid(
            var,
            value,
            "expected an IP address such as 0.0.0.0, 127.0.0.1 or :: (not a host name or a port)",
        )
    })
}

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

pub(crate) fn parse_u64(var: &str, value: &str, min: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(
            var,
            value,
            format!("expected a whole number >= {min}"),
        )),
    }
}

/// Parses a `PORT` value.
pub fn parse_port(var: &str, value: &str) -> Result<u16, ConfigError> {
    match value.trim().parse::<u16>() {
        Ok(p) => Ok(p),
        Err(_) => Err(invalid(var, value, "expected a port number 0-65535")),
    }
}

impl Config {
    /// Resolves the settings from `defaults` and an environment lookup.
    pub(crate) fn resolve(
        defaults: &Defaults,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let get = |var: &str| env(var).filter(|v| !v.is_empty());
        let label = |var: &str, default: &str| -> Result<String, ConfigError> {
            let value = get(var).unwrap_or_else(|| default.to_owned());
            validate_label_value(var, &value)?;
            Ok(value)
        };
        let labels = StandardLabels {
            service: label("SERVICE_NAME", &defaults.service)?,
            environment: label("ENVIRONMENT", &defaults.environment)?,
            version: label("SERVICE_VERSION", &defaults.version)?,
            cluster: label("CLUSTER", &defaults.cluster)?,
        };
        let metrics_enabled = match get("PROMETHEUS_METRICS_ENABLED") {
            Some(v) => parse_bool("PROMETHEUS_METRICS_ENABLED", &v)?,
            None => defaults.metrics_enabled,
        };
        let health_check_interval = match get("HEALTH_CHECK_INTERVAL") {
            Some(v) => {
                parse_seconds_between("HEALTH_CHECK_INTERVAL", &v, MIN_HEALTH_CHECK_INTERVAL, DAY)?
            }
            None => check_builder_duration(
                "health_check_interval",
                defaults.health_check_interval,
                MIN_HEALTH_CHECK_INTERVAL,
                DAY,
            )?,
        };
        let log_format = match get("LOG_FORMAT") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "pretty" | "text" => LogFormat::Pretty,
                _ => return Err(invalid("LOG_FORMAT", &v, "expected json or pretty")),
            },
            None => defaults.log_format,
        };
        let log_file = get("LOG_FILE")
            .map(PathBuf::from)
            .or_else(|| defaults.log_file.clone());
        let log_filter = get("RUST_LOG").unwrap_or_else(|| defaults.log_filter.clone());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            return Err(invalid("RUST_LOG", &log_filter, e.to_string()));
        }
        let websocket_limit = match get("WEBSOCKET_MAX_CONNECTIONS") {
            Some(v) => parse_u64("WEBSOCKET_MAX_CONNECTIONS", &v, 1)?,
            None => defaults.websocket_limit,
        };
        let server = ServerConfig::resolve(defaults, &get)?;
        Ok(Config {
            server,
            labels,
            metrics_enabled,
            health_check_interval,
            log_format,
            log_file,
            log_filter,
            websocket_limit,
        })
    }
}

impl ServerConfig {
    fn resolve(
        defaults: &Defaults,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let seconds = |var: &str, setting: &str, default: Duration, min, max| match get(var) {
            Some(v) => parse_seconds_between(var, &v, min, max),
            None => check_builder_duration(setting, default, min, max),
        };
        let port = get("PORT").map(|v| parse_port("PORT", &v)).transpose()?;
        let bind_address = match get("BIND_ADDRESS") {
            Some(v) => parse_ip("BIND_ADDRESS", &v)?,
            None => defaults.bind_address,
        };
        let management_port = match get("MANAGEMENT_PORT") {
            Some(v) => Some(parse_port("MANAGEMENT_PORT", &v)?),
            None => defaults.management_port,
        };
        if let (Some(m), Some(p)) = (management_port, port) {
            if m == p && m != 0 {
                return Err(invalid(
                    "MANAGEMENT_PORT",
                    &m.to_string(),
                    "must differ from PORT (unset it to serve everything on PORT)",
                ));
            }
        }
        let management_bind_address = match get("MANAGEMENT_BIND_ADDRESS") {
            Some(v) => parse_ip("MANAGEMENT_BIND_ADDRESS", &v)?,
            None => bind_address,
        };
        Ok(ServerConfig {
            port,
            bind_address,
            management_port,
            management_bind_address,
            header_read_timeout: seconds(
                "HTTP_HEADER_READ_TIMEOUT",
                "header_read_timeout",
                defaults.header_read_timeout,
                MIN_HEADER_READ_TIMEOUT,
                HOUR,
            )?,
            drain_period: seconds(
                "SHUTDOWN_DRAIN_PERIOD",
                "shutdown_drain_period",
                defaults.drain_period,
                Duration::ZERO,
                HOUR,
            )?,
            shutdown_timeout: seconds(
                "SHUTDOWN_TIMEOUT",
                "shutdown_timeout",
                defaults.shutdown_timeout,
                Duration::ZERO,
                HOUR,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::resolve(&Defaults::new("audio"), |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_without_env() {
        let c = resolve(&[]).expect("config");
        assert_eq!(c.labels.service, "audio");
        assert_eq!(c.labels.environment, "development");
        assert!(c.metrics_enabled);
        assert_eq!(c.health_check_interval, Duration::from_secs(10));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.websocket_limit, 10_000);
    }

    #[test]
    fn env_overrides_defaults() {
        let c = resolve(&[
            ("ENVIRONMENT", "production"),
            ("CLUSTER", "eu-1"),
            ("SERVICE_VERSION", "2.0.1"),
            ("PROMETHEUS_METRICS_ENABLED", "false"),
            ("HEALTH_CHECK_INTERVAL", "0.5"),
            ("LOG_FORMAT", "pretty"),
            ("LOG_FILE", "/tmp/x.log"),
            ("WEBSOCKET_MAX_CONNECTIONS", "42"),
        ])
        .expect("config");
        assert_eq!(c.labels.environment, "production");
        assert_eq!(c.labels.cluster, "eu-1");
        assert_eq!(c.labels.version, "2.0.1");
        assert!(!c.metrics_enabled);
        assert_eq!(c.health_check_interval, Duration::from_millis(500));
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.websocket_limit, 42);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("HEALTH_CHECK_INTERVAL", "banana"),
            ("HEALTH_CHECK_INTERVAL", "-1"),
            ("HEALTH_CHECK_INTERVAL", "NaN"),
            ("PROMETHEUS_METRICS_ENABLED", "maybe"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "info,[[[["),
            ("WEBSOCKET_MAX_CONNECTIONS", "0"),
            ("CLUSTER", "a\nb"),
            ("HEALTH_CHECK_INTERVAL", "1e-12"),
            ("HEALTH_CHECK_INTERVAL", "0.05"),
            ("BIND_ADDRESS", "localhost"),
            ("BIND_ADDRESS", "0.0.0.0:80"),
            ("MANAGEMENT_PORT", "70000"),
            ("MANAGEMENT_BIND_ADDRESS", "x"),
            ("HTTP_HEADER_READ_TIMEOUT", "0"),
            ("HTTP_HEADER_READ_TIMEOUT", "inf"),
            ("SHUTDOWN_DRAIN_PERIOD", "-1"),
            ("SHUTDOWN_DRAIN_PERIOD", "7200"),
            ("SHUTDOWN_TIMEOUT", "soon"),
        ] {
            let err = resolve(&[(var, value)]).expect_err(var).to_string();
            assert!(err.contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn health_check_interval_has_a_floor() {
        let err = resolve(&[("HEALTH_CHECK_INTERVAL", "1e-12")])
            .expect_err("a picosecond interval spins the check")
            .to_string();
        assert!(err.contains("between 0.1 and 86400 seconds"), "{err}");
        let c = resolve(&[("HEALTH_CHECK_INTERVAL", "0.1")]).expect("the floor itself");
        assert_eq!(c.health_check_interval, MIN_HEALTH_CHECK_INTERVAL);
        // The builder's value is held to the same floor.
        let mut d = Defaults::new("audio");
        d.health_check_interval = Duration::from_nanos(1);
        let err = Config::resolve(&d, |_| None).expect_err("builder value checked");
        assert!(err.to_string().contains("health_check_interval"), "{err}");
    }

    #[test]
    fn server_settings() {
        let c = resolve(&[]).expect("config").server;
        assert_eq!(c.bind_address, IpAddr::from([0, 0, 0, 0]));
        assert_eq!((c.port, c.management_port), (None, None));
        assert_eq!(c.management_bind_address, c.bind_address);
        assert_eq!(c.header_read_timeout, Duration::from_secs(30));
        assert_eq!(c.drain_period, Duration::ZERO);
        let c = resolve(&[
            ("PORT", "8080"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("MANAGEMENT_PORT", "9090"),
            ("HTTP_HEADER_READ_TIMEOUT", "2.5"),
            ("SHUTDOWN_DRAIN_PERIOD", "10"),
            ("SHUTDOWN_TIMEOUT", "0"),
        ])
        .expect("config")
        .server;
        assert_eq!(c.port, Some(8080));
        assert_eq!(c.bind_address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.management_port, Some(9090));
        assert_eq!(c.management_bind_address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.header_read_timeout, Duration::from_millis(2500));
        assert_eq!(c.drain_period, Duration::from_secs(10));
        assert_eq!(c.shutdown_timeout, Duration::ZERO);
        let c = resolve(&[("BIND_ADDRESS", "[::]"), ("MANAGEMENT_BIND_ADDRESS", "::1")])
            .expect("config")
            .server;
        assert_eq!(c.bind_address, "::".parse::<IpAddr>().expect("ip"));
        assert_eq!(
            c.management_bind_address,
            "::1".parse::<IpAddr>().expect("ip")
        );
        let err = resolve(&[("PORT", "9000"), ("MANAGEMENT_PORT", "9000")])
            .expect_err("same port twice")
            .to_string();
        assert!(
            err.contains("MANAGEMENT_PORT") && err.contains("differ"),
            "{err}"
        );
    }

    #[test]
    fn empty_value_counts_as_unset() {
        let c = resolve(&[("HEALTH_CHECK_INTERVAL", ""), ("LOG_FILE", "")]).expect("config");
        assert_eq!(c.health_check_interval, Duration::from_secs(10));
        assert!(c.log_file.is_none());
    }
}
