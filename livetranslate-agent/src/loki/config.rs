//! `logs.loki:` — how to reach Loki: its YAML form ([`LokiFile`]) and the checked settings
//! ([`LokiConfig`]).

use std::time::Duration;

use livetranslate_push::{BasicAuthSettings, HttpClientConfig, HttpClientSettings, TlsSettings};
use serde::Deserialize;

use crate::duration::{duration_in, HumanDuration, HOUR, MS};
use crate::validate::{KeyPath, Origin, ValidationError};

/// `logs.loki:` push client settings, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiFile {
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthSettings>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// TLS.
    pub tls: Option<TlsSettings>,
    /// Request timeout (10s).
    pub timeout: Option<HumanDuration>,
    /// First retry delay (500ms).
    pub min_backoff: Option<HumanDuration>,
    /// Longest retry delay (30s).
    pub max_backoff: Option<HumanDuration>,
    /// Give a batch up after this many retries (default: never; the files are the buffer).
    pub max_retries: Option<u32>,
    /// Batch size in bytes (1 MiB).
    pub batch_size: Option<usize>,
    /// Batch age limit (1s).
    pub batch_wait: Option<HumanDuration>,
}

/// How to reach Loki.
#[derive(Clone, Debug, PartialEq)]
pub struct LokiConfig {
    /// Base URL (`http://loki:3100`) or full push URL; credentials in it become basic auth.
    pub url: String,
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Authentication and TLS (secrets already read).
    pub http: HttpClientConfig,
    /// Per-request timeout.
    pub timeout: Duration,
    /// First retry delay.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Give up a batch after this many retries (`None`: retry until Loki accepts or the agent
    /// stops, which is what "no loss" needs: the files are the buffer).
    pub max_retries: Option<u32>,
    /// Flush a batch at this many bytes.
    pub batch_size: usize,
    /// Flush a batch this long after its first entry.
    pub batch_wait: Duration,
}

impl LokiConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        LokiConfig {
            url: url.into(),
            tenant_id: None,
            http: HttpClientConfig::default(),
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            batch_size: 1024 * 1024,
            batch_wait: Duration::from_secs(1),
        }
    }

    /// Checks the URL (from `url_origin`: a flag or `logs.loki_url`) and the `logs.loki:`
    /// block at `path`, reading secret files.
    pub fn from_parts(
        url: String,
        url_origin: Origin,
        file: LokiFile,
        path: &KeyPath,
    ) -> Result<LokiConfig, ValidationError> {
        if let Err(e) = livetranslate_push::loki::parse_push_url(&url) {
            return Err(ValidationError {
                origin: url_origin,
                message: e.to_string(),
            });
        }
        if let Some(t) = &file.tenant_id {
            livetranslate_push::loki::tenant_header(t)
                .map_err(|e| ValidationError::at(path.key("tenant_id"), e.to_string()))?;
        }
        let base = LokiConfig::new(url);
        let batch_size = file.batch_size.unwrap_or(base.batch_size);
        if batch_size == 0 {
            return Err(ValidationError::at(
                path.key("batch_size"),
                "must be more than 0",
            ));
        }
        let http = HttpClientSettings {
            basic_auth: file.basic_auth,
            bearer_token: file.bearer_token,
            bearer_token_file: file.bearer_token_file,
            tls: file.tls,
        }
        .resolve()
        .map_err(|e| ValidationError::at(path.key(e.key), e.message))?;
        let within = |key: &str, v: Option<HumanDuration>, default: Duration, min, max| {
            duration_in(v, default, (min, max)).map_err(|m| ValidationError::at(path.key(key), m))
        };
        // Zero would be a request that cannot succeed, a retry loop without a pause, or a
        // batch per line; hours are a typo (or a stall that looks like an outage).
        let timeout = within("timeout", file.timeout, base.timeout, 100 * MS, HOUR)?;
        let min_backoff = within("min_backoff", file.min_backoff, base.min_backoff, MS, HOUR)?;
        let max_backoff = within(
            "max_backoff",
            file.max_backoff,
            base.max_backoff,
            MS,
            24 * HOUR,
        )?;
        if max_backoff < min_backoff {
            return Err(ValidationError::at(
                path.key("max_backoff"),
                format!(
                    "must be at least min_backoff ({})",
                    HumanDuration(min_backoff)
                ),
            ));
        }
        let batch_wait = within("batch_wait", file.batch_wait, base.batch_wait, MS, HOUR)?;
        Ok(LokiConfig {
            tenant_id: file.tenant_id,
            http,
            timeout,
            min_backoff,
            max_backoff,
            max_retries: file.max_retries,
            batch_size,
            batch_wait,
            ..base
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_key_or_flag() {
        let p = KeyPath::root().key("logs").key("loki");
        let e = LokiConfig::from_parts(
            "nope".into(),
            Origin::Flag("--loki-url"),
            LokiFile::default(),
            &p,
        );
        assert!(e.is_err_and(|e| e.origin == Origin::Flag("--loki-url")));
        let e = LokiConfig::from_parts(
            "http://l:3100".into(),
            Origin::Flag("--loki-url"),
            LokiFile {
                batch_size: Some(0),
                ..Default::default()
            },
            &p,
        );
        assert!(e.is_err_and(|e| e.to_string() == "logs.loki.batch_size: must be more than 0"));
        let e = LokiConfig::from_parts(
            "http://l:3100".into(),
            Origin::Flag("--loki-url"),
            LokiFile {
                tenant_id: Some("a\nb".into()),
                ..Default::default()
            },
            &p,
        );
        assert!(e.is_err_and(|e| e.path() == Some(&p.key("tenant_id"))));
    }
}
