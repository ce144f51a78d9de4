//! `remote_write:` — where samples are pushed, where they wait (the write-ahead log, or a
//! memory queue bounded in samples and bytes) and how they are batched: the YAML form
//! ([`RemoteWriteFile`]) and the checked settings ([`RemoteWriteConfig`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use livetranslate_push::{BasicAuthSettings, HttpClientConfig, HttpClientSettings, TlsSettings};
use reqwest::Url;
use serde::Deserialize;

use crate::byte_size::ByteSize;
use crate::duration::{duration_in, HumanDuration, HOUR, MS};
use crate::metrics::wal::{SyncPolicy, WalConfig};
use crate::validate::{parse_http_url, KeyPath, Origin, ValidationError};

/// Request timeout unless `remote_write.timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the write-ahead log lives unless `remote_write.wal.dir` or `--wal-dir` says.
pub const DEFAULT_WAL_DIR: &str = "/var/lib/livetranslate-agent/wal";

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
    /// The write-ahead log.
    #[serde(default)]
    pub wal: WalFile,
}

/// `remote_write.wal:`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalFile {
    /// `false`: samples wait in memory only (lost on exit), bounded by `queue.capacity` and
    /// `queue.max_bytes`.
    pub enabled: Option<bool>,
    /// Directory (one agent per directory).
    pub dir: Option<PathBuf>,
    /// Bound on the bytes on disk (512MiB); beyond it the oldest segments are dropped.
    pub max_size: Option<ByteSize>,
    /// Bound on the age of what waits (4h); older segments are dropped.
    pub max_age: Option<HumanDuration>,
    /// Size of one segment file (16MiB).
    pub segment_size: Option<ByteSize>,
    /// fsync: `always` (every append; the default), `never`, or an interval such as `1s`.
    pub sync: Option<String>,
}

/// `remote_write.queue:`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFile {
    /// Samples held in memory at most when the WAL is off (100000).
    pub capacity: Option<usize>,
    /// Bytes (encoded) held in memory at most when the WAL is off (64MiB).
    pub max_bytes: Option<ByteSize>,
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
    /// Samples held in memory at most (WAL off); the oldest are dropped beyond.
    pub capacity: usize,
    /// Encoded bytes held in memory at most (WAL off); the oldest are dropped beyond.
    pub max_bytes: u64,
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
            max_bytes: 64 << 20,
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
    /// The write-ahead log; `None` when samples wait in memory only.
    pub wal: Option<WalSettings>,
}

/// The checked `remote_write.wal:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalSettings {
    /// Directory.
    pub dir: PathBuf,
    /// The log's settings.
    pub config: WalConfig,
}

fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s.trim() {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        other => crate::duration::parse_duration(other)
            .ok()
            .filter(|d| !d.is_zero())
            .map(SyncPolicy::Interval)
            .ok_or_else(|| format!("{other:?}: expected always, never or an interval such as 1s")),
    }
}

impl WalSettings {
    /// Checks `remote_write.wal:` (at `path`) with `--wal-dir` over its `dir`; `None` when
    /// the log is turned off.
    pub fn from_parts(
        dir_flag: Option<&std::path::Path>,
        file: WalFile,
        path: &KeyPath,
    ) -> Result<Option<WalSettings>, ValidationError> {
        if file.enabled == Some(false) {
            return Ok(None);
        }
        let d = WalConfig::default();
        let mut config = WalConfig {
            max_total_bytes: file.max_size.map_or(d.max_total_bytes, |b| b.0),
            max_age: file.max_age.map_or(d.max_age, |a| Some(a.0)),
            ..d
        };
        if let Some(seg) = file.segment_size {
            config.max_segment_bytes = seg.0;
        }
        // A record must fit a segment; chunks are cut at about 1 MiB, so 4 MiB is plenty,
        // but small segments (tests) need smaller records.
        let room = config.max_segment_bytes.saturating_sub(
            crate::metrics::wal::SEGMENT_HEADER_LEN + crate::metrics::wal::FRAME_HEADER_LEN,
        );
        config.max_record_bytes = config.max_record_bytes.min(room.max(1));
        if file.max_size.is_some() && file.segment_size.is_none() {
            // Keep room for at least four segments under a small bound.
            let seg = (config.max_total_bytes / 4)
                .clamp(crate::metrics::wal::MIN_SEGMENT_BYTES, d.max_segment_bytes);
            config.max_segment_bytes = seg;
            let room = seg
                - crate::metrics::wal::SEGMENT_HEADER_LEN
                - crate::metrics::wal::FRAME_HEADER_LEN;
            config.max_record_bytes = d.max_record_bytes.min(room);
        }
        if let Some(s) = &file.sync {
            config.sync = parse_sync(s).map_err(|m| ValidationError::at(path.key("sync"), m))?;
        }
        config.validate().map_err(|e| {
            let (field, message) = match &e {
                crate::metrics::wal::WalError::Config { field, reason } => (*field, reason.clone()),
                other => ("max_size", other.to_string()),
            };
            let key = match field {
                "max_total_bytes" => "max_size",
                "max_segment_bytes" | "max_record_bytes" => "segment_size",
                "max_age" => "max_age",
                "sync" => "sync",
                other => other,
            };
            ValidationError::at(path.key(key), message)
        })?;
        let dir = dir_flag
            .map(ToOwned::to_owned)
            .or(file.dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_WAL_DIR));
        if dir.as_os_str().is_empty() {
            return Err(ValidationError::at(path.key("dir"), "must not be empty"));
        }
        Ok(Some(WalSettings { dir, config }))
    }
}

impl RemoteWriteConfig {
    /// Checks the `remote_write:` block (at `path`) with the URL flag over its `url`; `None`
    /// when neither gives a URL.
    pub fn from_parts(
        url_flag: Option<&str>,
        wal_dir_flag: Option<&std::path::Path>,
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
        let qp = path.key("queue");
        // The same bounds as Loki's: zero is a request that cannot succeed or a retry loop
        // without a pause; hours are a typo.
        let within = |at: &KeyPath, key: &str, v, default, range| {
            duration_in(v, default, range).map_err(|m| ValidationError::at(at.key(key), m))
        };
        let timeout = within(
            path,
            "timeout",
            file.timeout,
            DEFAULT_TIMEOUT,
            (100 * MS, HOUR),
        )?;
        let queue = QueueConfig {
            capacity: q.capacity.unwrap_or(d.capacity),
            max_bytes: q.max_bytes.map_or(d.max_bytes, |b| b.0),
            max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
            batch_send_deadline: within(
                &qp,
                "batch_send_deadline",
                q.batch_send_deadline,
                d.batch_send_deadline,
                (MS, HOUR),
            )?,
            min_backoff: within(&qp, "min_backoff", q.min_backoff, d.min_backoff, (MS, HOUR))?,
            max_backoff: within(
                &qp,
                "max_backoff",
                q.max_backoff,
                d.max_backoff,
                (MS, 24 * HOUR),
            )?,
        };
        if queue.max_bytes == 0 {
            return Err(ValidationError::at(
                qp.key("max_bytes"),
                "need max_bytes > 0",
            ));
        }
        if queue.max_samples_per_send == 0 || queue.capacity < queue.max_samples_per_send {
            return Err(ValidationError::at(
                qp.key("max_samples_per_send"),
                "need 0 < max_samples_per_send <= capacity",
            ));
        }
        if queue.max_backoff < queue.min_backoff {
            return Err(ValidationError::at(
                qp.key("max_backoff"),
                format!(
                    "must be at least min_backoff ({})",
                    HumanDuration(queue.min_backoff)
                ),
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
        let wal = WalSettings::from_parts(wal_dir_flag, file.wal, &path.key("wal"))?;
        Ok(Some(RemoteWriteConfig {
            url,
            timeout,
            http,
            headers: file.headers,
            queue,
            wal,
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
            None,
            file("{url: 'http://127.0.0.1:1/w', queue: {capacity: 10, max_samples_per_send: 20}}"),
            &p,
        );
        assert!(e.is_err_and(|e| e
            .to_string()
            .starts_with("remote_write.queue.max_samples_per_send: ")));
        let e =
            RemoteWriteConfig::from_parts(Some("ftp://x/w"), None, file("{url: 'http://x/w'}"), &p);
        assert!(e.is_err_and(|e| e.origin == Origin::Flag("--remote-write-url")));
        let e = RemoteWriteConfig::from_parts(None, None, file("{url: 'nope'}"), &p);
        assert!(e.is_err_and(|e| e.path() == Some(&p.key("url"))));
        let none = RemoteWriteConfig::from_parts(None, None, None, &p);
        assert!(matches!(none, Ok(None)));
        let e = RemoteWriteConfig::from_parts(
            None,
            None,
            file("{url: 'http://x/w', wal: {sync: sometimes}}"),
            &p,
        );
        assert!(e.is_err_and(|e| e.path() == Some(&p.key("wal").key("sync"))));
        let e = RemoteWriteConfig::from_parts(
            None,
            None,
            file("{url: 'http://x/w', wal: {max_size: 1MB, segment_size: 1MB}}"),
            &p,
        );
        assert!(e.is_err_and(|e| e.path() == Some(&p.key("wal").key("max_size"))));
        // Zero or absurd durations are refused, as for Loki.
        for (yaml, key) in [
            ("{url: 'http://x/w', timeout: 0s}", p.key("timeout")),
            ("{url: 'http://x/w', timeout: 3h}", p.key("timeout")),
            (
                "{url: 'http://x/w', queue: {batch_send_deadline: 0s}}",
                p.key("queue").key("batch_send_deadline"),
            ),
            (
                "{url: 'http://x/w', queue: {min_backoff: 2s, max_backoff: 1s}}",
                p.key("queue").key("max_backoff"),
            ),
        ] {
            let e = RemoteWriteConfig::from_parts(None, None, file(yaml), &p);
            assert!(e.is_err_and(|e| e.path() == Some(&key)), "{yaml}");
        }
    }

    #[test]
    fn wal_defaults_flag_and_memory_mode() {
        let p = KeyPath::root().key("remote_write");
        let c = RemoteWriteConfig::from_parts(None, None, file("{url: 'http://x/w'}"), &p);
        let wal = c.ok().flatten().and_then(|c| c.wal);
        assert_eq!(
            wal.as_ref().map(|w| w.dir.clone()),
            Some(PathBuf::from(DEFAULT_WAL_DIR))
        );
        assert_eq!(wal.map(|w| w.config), Some(WalConfig::default()));
        let c = RemoteWriteConfig::from_parts(
            None,
            Some(std::path::Path::new("/tmp/x")),
            file("{url: 'http://x/w', wal: {dir: /y, max_size: 8MiB, max_age: 30m, sync: 1s}}"),
            &p,
        );
        let wal = c.ok().flatten().and_then(|c| c.wal);
        let wal = match wal {
            Some(w) => w,
            None => panic!("no wal"),
        };
        assert_eq!(wal.dir, PathBuf::from("/tmp/x"), "the flag wins");
        assert_eq!(wal.config.max_total_bytes, 8 << 20);
        assert_eq!(wal.config.max_segment_bytes, 2 << 20);
        assert_eq!(wal.config.max_age, Some(Duration::from_secs(1800)));
        assert_eq!(
            wal.config.sync,
            SyncPolicy::Interval(Duration::from_secs(1))
        );
        let c = RemoteWriteConfig::from_parts(
            None,
            None,
            file("{url: 'http://x/w', wal: {enabled: false}}"),
            &p,
        );
        assert!(c.is_ok_and(|c| c.is_some_and(|c| c.wal.is_none())));
    }
}
