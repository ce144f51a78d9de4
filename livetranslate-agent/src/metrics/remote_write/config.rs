//! `remote_write:` — where samples are pushed and how they are batched: the YAML form
//! ([`RemoteWriteFile`]) and the checked settings ([`RemoteWriteConfig`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use livetranslate_push::{BasicAuthSettings, HttpClientConfig, HttpClientSettings, TlsSettings};
use reqwest::Url;
use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::validate::{parse_http_url, KeyPath, Origin, ValidationError};

/// `remote_write:`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteFile {
    /// Endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: Option<String>,
    /// Request timeout (30s).
    pub timeout: Option<HumanDuration>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthSettings>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    pub tls: Option<TlsSettings>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Queue and batching.
    #[serde(default)]
    pub queue: QueueFile,
}

/// `remote_write.queue:`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFile {
    /// Samples held in memory at most (100000).
    pub capacity: Option<usize>,
    /// Samples per request at most (2000).
    pub max_samples_per_send: Option<usize>,
    /// A partial batch is sent once its oldest sample is this old (5s).
    pub batch_send_deadline: Option<HumanDuration>,
    /// First retry delay (100ms).
    pub min_backoff: Option<HumanDuration>,
    /// Largest retry delay (5s).
    pub max_backoff: Option<HumanDuration>,
}

/// Remote-write queue and batching.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Samples held at most; the oldest are dropped beyond.
    pub capacity: usize,
    /// Samples per request at most.
    pub max_samples_per_send: usize,
    /// A partial batch is sent once its oldest sample waited this long.
    pub batch_send_deadline: Duration,
    /// First retry delay.
    pub min_backoff: Duration,
    /// Largest retry delay.
    pub max_backoff: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 100_000,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Where and how samples are pushed.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// Endpoint.
    pub url: Url,
    /// Request timeout.
    pub timeout: Duration,
    /// Authentication and TLS.
    pub http: HttpClientConfig,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Queue and batching.
    pub queue: QueueConfig,
}

impl RemoteWriteConfig {
    /// Checks the `remote_write:` block (at `path`) with the URL flag over its `url`; `None`
    /// when neither gives a URL.
    pub fn from_parts(
        url_flag: Option<&str>,
        file: Option<RemoteWriteFile>,
        path: &KeyPath,
    ) -> Result<Option<RemoteWriteConfig>, ValidationError> {
        let file = file.unwrap_or_default();
        let (raw, origin) = match (url_flag, &file.url) {
            (Some(u), _) => (u.to_owned(), Origin::Flag("--remote-write-url")),
            (None, Some(u)) => (u.clone(), Origin::Key(path.key("url"))),
            (None, None) => return Ok(None),
        };
        if raw.trim().is_empty() {
            return Ok(None);
        }
        let url = parse_http_url(&raw).map_err(|message| ValidationError { origin, message })?;
        let d = QueueConfig::default();
        let q = file.queue;
        let queue = QueueConfig {
            capacity: q.capacity.unwrap_or(d.capacity),
            max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
            batch_send_deadline: q.batch_send_deadline.map_or(d.batch_send_deadline, |x| x.0),
            min_backoff: q.min_backoff.map_or(d.min_backoff, |x| x.0),
            max_backoff: q.max_backoff.map_or(d.max_backoff, |x| x.0),
        };
        let qp = path.key("queue");
        if queue.max_samples_per_send == 0 || queue.capacity < queue.max_samples_per_send {
            return Err(ValidationError::at(
                qp.key("max_samples_per_send"),
                "need 0 < max_samples_per_send <= capacity",
            ));
        }
        if queue.batch_send_deadline.is_zero() {
            return Err(ValidationError::at(
                qp.key("batch_send_deadline"),
                "need batch_send_deadline > 0",
            ));
        }
        if queue.min_backoff.is_zero() || queue.max_backoff < queue.min_backoff {
            return Err(ValidationError::at(
                qp.key("min_backoff"),
                "need 0 < min_backoff <= max_backoff",
            ));
        }
        for (name, value) in &file.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(ValidationError::at(
                    path.key("headers").key(name),
                    format!("invalid header {name:?}"),
                ));
            }
        }
        let http = HttpClientSettings {
            basic_auth: file.basic_auth,
            bearer_token: file.bearer_token,
            bearer_token_file: file.bearer_token_file,
            tls: file.tls,
        }
        .resolve()
        .map_err(|e| ValidationError::at(path.key(e.key), e.message))?;
        Ok(Some(RemoteWriteConfig {
            url,
            timeout: file.timeout.map_or(Duration::from_secs(30), |d| d.0),
            http,
            headers: file.headers,
            queue,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(yaml: &str) -> Option<RemoteWriteFile> {
        match serde_yaml_ng::from_str(yaml) {
            Ok(f) => Some(f),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn errors_name_the_key_or_the_flag() {
        let p = KeyPath::root().key("remote_write");
        let e = RemoteWriteConfig::from_parts(
            None,
            file("{url: 'http://127.0.0.1:1/w', queue: {capacity: 10, max_samples_per_send: 20}}"),
            &p,
        );
        assert!(e.is_err_and(|e| e
            .to_string()
            .starts_with("remote_write.queue.max_samples_per_send: ")));
        let e = RemoteWriteConfig::from_parts(Some("ftp://x/w"), file("{url: 'http://x/w'}"), &p);
        assert!(e.is_err_and(|e| e.origin == Origin::Flag("--remote-write-url")));
        let e = RemoteWriteConfig::from_parts(None, file("{url: 'nope'}"), &p);
        assert!(e.is_err_and(|e| e.path() == Some(&p.key("url"))));
        let none = RemoteWriteConfig::from_parts(None, None, &p);
        assert!(matches!(none, Ok(None)));
    }
}
