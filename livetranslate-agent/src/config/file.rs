//! The YAML configuration file: its schema and `${VAR}` / `${VAR:-default}` expansion.
//!
//! ```yaml
//! listen: 0.0.0.0:9080
//! labels: {environment: production, cluster: eu-1}   # added to every pushed series
//! scrape:
//!   interval: 15s            # default for every job
//!   timeout: 10s
//!   job_name: agent          # job of --scrape-target URLs
//! scrape_configs:
//!   - job_name: agent-audio
//!     interval: 5s
//!     metrics_path: /api/metrics
//!     honor_labels: true
//!     bearer_token_file: /run/secrets/token
//!     static_configs:
//!       - targets: ["audio:3000"]
//!         labels: {service: audio}
//!     file_sd_configs:
//!       - files: ["/etc/agent/targets/*.json"]
//!         refresh_interval: 5s
//! remote_write:
//!   url: http://prometheus:9090/api/v1/write
//!   queue: {capacity: 100000, max_samples_per_send: 2000, batch_send_deadline: 5s}
//! logs:
//!   paths: ["/var/log/livetranslate/*.log"]
//!   loki_url: http://loki:3100
//!   positions_file: /var/lib/agent/positions.yml
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::duration::HumanDuration;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address of the HTTP server (`/metrics`, `/ready`, status page).
    pub listen: Option<String>,
    /// Standard labels (`service`, `environment`, `version`, `cluster`) added to every
    /// pushed series.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Defaults for every scrape job.
    #[serde(default)]
    pub scrape: ScrapeDefaults,
    /// Scrape jobs.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfigFile>,
    /// Where samples are pushed.
    pub remote_write: Option<RemoteWriteFile>,
    /// The log half.
    #[serde(default)]
    pub logs: LogsFile,
    /// Print samples (and log entries) as JSON lines instead of pushing them.
    #[serde(default)]
    pub dry_run: bool,
    /// Upper bound on the final flush at shutdown.
    pub shutdown_timeout: Option<HumanDuration>,
}

/// `scrape:` defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeDefaults {
    /// Default scrape interval (15s).
    pub interval: Option<HumanDuration>,
    /// Default scrape timeout (10s, capped at the interval).
    pub timeout: Option<HumanDuration>,
    /// Job name of the targets given with `--scrape-target` (`agent`).
    pub job_name: Option<String>,
}

/// HTTP client settings shared by scrape jobs and remote write.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthFile {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<String>,
    /// File holding the password (trailing newline stripped).
    pub password_file: Option<PathBuf>,
}

/// TLS settings.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM file with the CA certificates to trust (in addition to the built-in roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM client key.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// One scrape job.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfigFile {
    /// The `job` label.
    pub job_name: String,
    /// Scrape interval.
    pub interval: Option<HumanDuration>,
    /// Scrape timeout.
    pub timeout: Option<HumanDuration>,
    /// Path of the metrics endpoint (`/metrics`).
    pub metrics_path: Option<String>,
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// Keep the scraped labels on conflict with target labels.
    #[serde(default)]
    pub honor_labels: bool,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthFile>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    pub tls: Option<TlsFile>,
    /// Targets listed in the file.
    #[serde(default)]
    pub static_configs: Vec<TargetGroupFile>,
    /// Targets read from (and re-read when they change) JSON or YAML files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdFile>,
}

/// A group of targets sharing labels (also the element of a `file_sd` file).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupFile {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd` source.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdFile {
    /// File paths; `*` and `?` are allowed in the last path component.
    pub files: Vec<String>,
    /// How often the files are checked for changes (5s).
    pub refresh_interval: Option<HumanDuration>,
}

/// `remote_write:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteFile {
    /// Endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: Option<String>,
    /// Request timeout (30s).
    pub timeout: Option<HumanDuration>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthFile>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    pub tls: Option<TlsFile>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Queue and batching.
    #[serde(default)]
    pub queue: QueueFile,
}

/// `remote_write.queue:`.
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

/// `logs:` (the log half).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsFile {
    /// Globs of JSON files to tail (shorthand for one `inputs` entry).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Inputs: globs, format, labels, promoted fields, multiline.
    #[serde(default)]
    pub inputs: Vec<crate::logs::LogInput>,
    /// Loki base URL (or full push URL).
    pub loki_url: Option<String>,
    /// Where acknowledged offsets are remembered.
    pub positions_file: Option<PathBuf>,
    /// Push client settings.
    #[serde(default)]
    pub loki: LokiFile,
    /// Longest line kept whole (256 KiB).
    pub max_line_bytes: Option<usize>,
    /// `truncate` (default) or `drop` longer lines.
    pub long_lines: Option<crate::logs::tail::LongLines>,
    /// Cap on bytes read but not yet acknowledged by Loki (16 MiB).
    pub max_buffer_bytes: Option<usize>,
    /// Pause when no file has new data (100ms).
    pub poll_interval: Option<HumanDuration>,
    /// How often globs are re-evaluated (100ms).
    pub discover_interval: Option<HumanDuration>,
    /// How often positions are saved (1s).
    pub sync_period: Option<HumanDuration>,
    /// How long a rotated-away file is watched after its end (5s).
    pub rotate_wait: Option<HumanDuration>,
}

/// `logs.loki:` push client settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiFile {
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthFile>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS.
    pub tls: Option<TlsFile>,
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

/// An undefined variable in `${VAR}` expansion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ExpandError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Replaces `${VAR}` with the variable's value (an error if unset) and `${VAR:-default}` with
/// the value or, if unset or empty, `default`. `$$` is a literal `$`; any other `$` is kept.
/// YAML comments (`#` at the start of a line or after a blank, outside quotes) are copied
/// unchanged, so they may mention `${VAR}` freely.
pub fn expand_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let cut = comment_start(line);
        expand_line(&line[..cut], i + 1, lookup, &mut out)?;
        out.push_str(&line[cut..]);
    }
    Ok(out)
}

/// Byte offset where a YAML comment starts in `line` (or its length).
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('\'') if c == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                chars.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' && (prev == ' ' || prev == '\t') => return i,
            None if (c == '"' || c == '\'')
                && matches!(prev, ' ' | '\t' | ':' | '[' | '{' | ',' | '-') =>
            {
                quote = Some(c);
            }
            None => {}
        }
        prev = c;
    }
    line.len()
}

fn expand_line(
    line_text: &str,
    line: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ExpandError> {
    let mut col = 1;
    let mut rest = line_text;
    while let Some(pos) = rest.find('$') {
        let (before, at) = rest.split_at(pos);
        out.push_str(before);
        col += before.chars().count();
        if let Some(after) = at.strip_prefix("$$") {
            out.push('$');
            col += 2;
            rest = after;
            continue;
        }
        let Some(body) = at.strip_prefix("${") else {
            out.push('$');
            col += 1;
            rest = &at[1..];
            continue;
        };
        let err = |message: String| ExpandError {
            line,
            column: col,
            message,
        };
        let end = body
            .find('}')
            .ok_or_else(|| err("unterminated ${".into()))?;
        let expr = &body[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(err(format!("invalid variable name {name:?}")));
        }
        let value = match (lookup(name), default) {
            (Some(v), Some(d)) if v.is_empty() => d.to_owned(),
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                return Err(err(format!(
                    "environment variable {name} is not set (use ${{{name}:-default}})"
                )))
            }
        };
        out.push_str(&value);
        col += expr.chars().count() + 3;
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("prom".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion() {
        let ok = |s: &str| expand_env(s, &env).map_err(|e| e.to_string());
        assert_eq!(
            ok("url: http://${HOST}:9090"),
            Ok("url: http://prom:9090".into())
        );
        assert_eq!(ok("a: ${NOPE:-x y}"), Ok("a: x y".into()));
        assert_eq!(ok("a: ${EMPTY:-d}"), Ok("a: d".into()));
        assert_eq!(ok("a: ${EMPTY}"), Ok("a: ".into()));
        assert_eq!(ok("a: $$HOST $x"), Ok("a: $HOST $x".into()));
        assert_eq!(ok("a: ${HOST:-}"), Ok("a: prom".into()));
    }

    #[test]
    fn comments_are_not_expanded() {
        let ok = |s: &str| expand_env(s, &env).map_err(|e| e.to_string());
        assert_eq!(ok("# uses ${UNSET}\n"), Ok("# uses ${UNSET}\n".into()));
        assert_eq!(
            ok("a: ${HOST}  # not ${UNSET}\nb: 1\n"),
            Ok("a: prom  # not ${UNSET}\nb: 1\n".into())
        );
        assert_eq!(ok("u: http://x/#${HOST}"), Ok("u: http://x/#prom".into()));
        assert_eq!(ok("s: \"a # ${HOST}\""), Ok("s: \"a # prom\"".into()));
        assert_eq!(ok("s: 'it''s # ${HOST}'"), Ok("s: 'it''s # prom'".into()));
        assert!(ok("s: \"x\" ${UNSET}").is_err());
    }

    #[test]
    fn expansion_errors_carry_a_position() {
        let e = expand_env("a: 1\nb: x${NOPE}\n", &env);
        assert_eq!(
            e.as_ref().map_err(|e| (e.line, e.column)),
            Err((2, 5)),
            "{e:?}"
        );
        assert!(expand_env("a: ${HOST", &env).is_err());
        assert!(expand_env("a: ${HOST\n}", &env).is_err());
        assert!(expand_env("a: ${1X}", &env).is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let r: Result<FileConfig, _> = serde_yaml_ng::from_str("listen: x\nbogus: 1\n");
        let e = match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
        assert_eq!(e.location().map(|l| l.line()), Some(2));
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
listen: 127.0.0.1:9080
labels: {environment: production, cluster: eu-1}
scrape: {interval: 15s, timeout: 10s, job_name: agent}
scrape_configs:
  - job_name: agent-audio
    interval: 5s
    metrics_path: /api/metrics
    honor_labels: true
    basic_auth: {username: u, password: p}
    tls: {insecure_skip_verify: true}
    static_configs:
      - targets: ["127.0.0.1:3000"]
        labels: {service: audio}
    file_sd_configs:
      - files: ["targets/*.json"]
        refresh_interval: 2s
remote_write:
  url: http://127.0.0.1:9090/api/v1/write
  headers: {X-Scope-OrgID: a}
  queue: {capacity: 1000, max_samples_per_send: 100, batch_send_deadline: 1s}
logs:
  paths: ["/var/log/*.log"]
dry_run: false
shutdown_timeout: 5s
"#;
        let r: Result<FileConfig, _> = serde_yaml_ng::from_str(text);
        let c = match r {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            c.scrape_configs[0].static_configs[0].targets,
            ["127.0.0.1:3000"]
        );
        assert_eq!(c.remote_write.and_then(|r| r.queue.capacity), Some(1000));
    }
}
