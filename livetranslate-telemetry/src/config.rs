//! Settings read from the environment, over the defaults given to the builder.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SERVICE_NAME` | builder's name | `service` label |
//! | `ENVIRONMENT` | `development` | `environment` label |
//! | `SERVICE_VERSION` | builder's version | `version` label |
//! | `CLUSTER` | `livetranslate` | `cluster` label |
//! | `PROMETHEUS_METRICS_ENABLED` | `true` | `false` turns `/api/metrics` (404) and HTTP metrics off |
//! | `HEALTH_CHECK_INTERVAL` | `10` | seconds between health check runs (may be fractional) |
//! | `LOG_FORMAT` | `json` | `json` or `pretty` (stdout; `LOG_FILE` is always JSON) |
//! | `LOG_FILE` | unset | append JSON log lines to this file too |
//! | `RUST_LOG` | `info` | level filter, `tracing` directive syntax |
//! | `WEBSOCKET_MAX_CONNECTIONS` | `10000` | WebSocket connection limit |
//! | `PORT` | the port given to `serve` | listening port |
//!
//! An empty variable counts as unset.

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
}

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
            Some(v) => parse_seconds("HEALTH_CHECK_INTERVAL", &v)?,
            None => defaults.health_check_interval,
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
        Ok(Config {
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
        ] {
            let err = resolve(&[(var, value)]).expect_err(var).to_string();
            assert!(err.contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn empty_value_counts_as_unset() {
        let c = resolve(&[("HEALTH_CHECK_INTERVAL", ""), ("LOG_FILE", "")]).expect("config");
        assert_eq!(c.health_check_interval, Duration::from_secs(10));
        assert!(c.log_file.is_none());
    }
}
