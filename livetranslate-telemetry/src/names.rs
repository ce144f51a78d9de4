//! Prometheus name rules, written once: the metric-name and label-name validators (and the
//! matching sanitisers) used by the registry, the `metrics` facade recorder and the agent.
//!
//! | rule | pattern |
//! |---|---|
//! | metric name | `[a-zA-Z_:][a-zA-Z0-9_:]*` |
//! | label name | `[a-zA-Z_][a-zA-Z0-9_]*`; names starting with `__` are reserved for Prometheus itself |
//!
//! ```
//! use livetranslate_telemetry::names::{is_valid_label_name, is_valid_metric_name};
//! assert!(is_valid_metric_name("http_server_request_duration_seconds"));
//! assert!(!is_valid_metric_name("http.server.duration"));
//! assert!(is_valid_label_name("http_route"));
//! assert!(!is_valid_label_name("http-route"));
//! ```
//!
//! This module imports nothing else of the crate.

use std::borrow::Cow;

/// Whether `name` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
///
/// ```
/// use livetranslate_telemetry::names::is_valid_metric_name;
/// assert!(is_valid_metric_name("jobs_total"));
/// assert!(is_valid_metric_name("job:rate5m"));
/// assert!(!is_valid_metric_name("1jobs"));
/// assert!(!is_valid_metric_name(""));
/// ```
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a syntactically valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
///
/// Names starting with `__` pass (Prometheus uses them internally, e.g. `__name__`); check
/// [`is_reserved_label_name`] too where a user-chosen label is expected.
///
/// ```
/// use livetranslate_telemetry::names::is_valid_label_name;
/// assert!(is_valid_label_name("language_pair"));
/// assert!(is_valid_label_name("__name__"));
/// assert!(!is_valid_label_name("language-pair"));
/// assert!(!is_valid_label_name("job:x"));
/// ```
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is reserved for Prometheus' internal use (starts with `__`).
///
/// ```
/// use livetranslate_telemetry::names::is_reserved_label_name;
/// assert!(is_reserved_label_name("__address__"));
/// assert!(!is_reserved_label_name("_private"));
/// ```
pub fn is_reserved_label_name(name: &str) -> bool {
    name.starts_with("__")
}

/// `name` with every character a metric name cannot hold replaced by `_` (a leading digit
/// too), as metrics-exporter-prometheus does; borrowed when it was valid already. An empty
/// name stays empty (there is nothing sensible to make of it).
///
/// ```
/// use livetranslate_telemetry::names::sanitize_metric_name;
/// assert_eq!(sanitize_metric_name("db.query-time"), "db_query_time");
/// assert_eq!(sanitize_metric_name("2xx_total"), "_xx_total");
/// assert!(matches!(sanitize_metric_name("ok_total"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn sanitize_metric_name(name: &str) -> Cow<'_, str> {
    if name.is_empty() || is_valid_metric_name(name) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                let ok = c.is_ascii_alphabetic()
                    || c == '_'
                    || c == ':'
                    || (i > 0 && c.is_ascii_digit());
                if ok {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// `name` with every character a label name cannot hold replaced by `_` (a leading digit
/// too); borrowed when it was valid already. An empty name stays empty.
///
/// ```
/// use livetranslate_telemetry::names::sanitize_label_name;
/// assert_eq!(sanitize_label_name("http.method"), "http_method");
/// assert_eq!(sanitize_label_name("job:x"), "job_x");
/// ```
pub fn sanitize_label_name(name: &str) -> Cow<'_, str> {
    if name.is_empty() || is_valid_label_name(name) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                let ok = c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit());
                if ok {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitised_names_are_valid() {
        for raw in ["a.b", "9lives", "é_x", "a b-c", "_", ":x", "x:y"] {
            assert!(is_valid_metric_name(&sanitize_metric_name(raw)), "{raw}");
            assert!(is_valid_label_name(&sanitize_label_name(raw)), "{raw}");
        }
        assert_eq!(sanitize_metric_name("é_x"), "__x");
        assert_eq!(sanitize_label_name(""), "");
    }

    #[test]
    fn non_ascii_is_never_valid() {
        assert!(!is_valid_metric_name("tempé"));
        assert!(!is_valid_label_name("ü"));
    }
}
