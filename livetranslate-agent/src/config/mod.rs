//! Configuration: command-line flags ([`Cli`]), an optional YAML file ([`file`]) and the
//! validated result ([`Config`]) the agent runs from. Flags override the file.

pub mod cli;
pub mod duration;
pub mod file;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

pub use cli::Cli;

use crate::logs::tail::ReaderConfig;
use crate::logs::LogInput;
use crate::loki::LokiConfig;
use file::{BasicAuthFile, FileConfig, TlsFile};

/// Default `--listen` address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9080";
/// Default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
/// Default (and maximum default) scrape timeout.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default job name of `--scrape-target` URLs.
pub const DEFAULT_JOB_NAME: &str = "agent";

/// A configuration that cannot be used. [`std::fmt::Display`] gives a one-line message that
/// names the file (and line and column where known).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The YAML is malformed, has unknown keys or wrong types, or `${VAR}` expansion failed.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// TLS settings, files already read.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate followed by its key (PEM).
    pub identity_pem: Option<Vec<u8>>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
}

/// Authentication and TLS of an HTTP client.
#[derive(Clone, Default)]
pub struct HttpClientConfig {
    /// User name and password.
    pub basic_auth: Option<(String, String)>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// TLS settings.
    pub tls: TlsConfig,
}

impl std::fmt::Debug for HttpClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientConfig")
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<secret>"),
            )
            .field("tls", &self.tls)
            .finish()
    }
}

impl HttpClientConfig {
    /// Builds a client with these TLS settings (authentication is added per request, see
    /// [`HttpClientConfig::authorize`]).
    pub fn client(&self, user_agent: &str) -> Result<reqwest::Client, ConfigError> {
        let mut b = reqwest::Client::builder()
            .user_agent(user_agent)
            .danger_accept_invalid_certs(self.tls.insecure_skip_verify);
        if let Some(pem) = &self.tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| invalid(format!("tls ca_file: {e}")))?;
            if certs.is_empty() {
                return Err(invalid("tls ca_file: no certificate found"));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(pem) = &self.tls.identity_pem {
            let id = reqwest::Identity::from_pem(pem)
                .map_err(|e| invalid(format!("tls cert_file/key_file: {e}")))?;
            b = b.identity(id);
        }
        b.build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))
    }

    /// Adds the configured authentication to a request.
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some((user, pass)) = &self.basic_auth {
            req.basic_auth(user, Some(pass))
        } else if let Some(token) = &self.bearer_token {
            req.bearer_auth(token)
        } else {
            req
        }
    }
}

/// A group of targets sharing labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target in the group (may include `__scheme__` / `__metrics_path__`
    /// overrides).
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd` source.
#[derive(Debug, Clone)]
pub struct FileSdConfig {
    /// Paths, `*` / `?` allowed in the last component.
    pub patterns: Vec<PathBuf>,
    /// How often the files are checked for changes.
    pub refresh_interval: Duration,
}

/// One scrape job.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// The `job` label.
    pub job_name: String,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout (≤ interval).
    pub timeout: Duration,
    /// Metrics path.
    pub metrics_path: String,
    /// Query string appended to the metrics path, if any.
    pub query: Option<String>,
    /// `http` or `https`.
    pub scheme: String,
    /// Keep scraped labels that clash with target labels.
    pub honor_labels: bool,
    /// Authentication and TLS.
    pub http: HttpClientConfig,
    /// Targets from the configuration.
    pub static_groups: Vec<TargetGroup>,
    /// Targets from files.
    pub file_sd: Vec<FileSdConfig>,
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

/// Where positions are kept when neither the file nor the flags say.
pub const DEFAULT_POSITIONS_FILE: &str = "/var/lib/livetranslate-agent/positions.yml";

/// The default input when logs are shipped but no input is configured.
pub const DEFAULT_LOG_PATH: &str = "/app/logs/*.log";

/// The log half's settings (validated here, used by the log pipeline).
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// What to tail.
    pub inputs: Vec<LogInput>,
    /// Where to push (none: only a dry run ships anything).
    pub loki: Option<LokiConfig>,
    /// Acknowledged offsets.
    pub positions_file: PathBuf,
    /// Reader settings (line limits, polling, rotation, the standard labels).
    pub reader: ReaderConfig,
    /// Cap on bytes read but not yet acknowledged.
    pub max_buffer_bytes: usize,
    /// How often positions are saved.
    pub sync_period: Duration,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            inputs: Vec::new(),
            loki: None,
            positions_file: PathBuf::from(DEFAULT_POSITIONS_FILE),
            reader: ReaderConfig::default(),
            max_buffer_bytes: 16 * 1024 * 1024,
            sync_period: Duration::from_secs(1),
        }
    }
}

impl LogsConfig {
    /// Whether the log pipeline runs: there is somewhere to ship to (Loki, or a dry run).
    pub fn enabled(&self, dry_run: bool) -> bool {
        !self.inputs.is_empty() && (self.loki.is_some() || dry_run)
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The YAML file it came from, if any.
    pub source: Option<PathBuf>,
    /// HTTP server address.
    pub listen: SocketAddr,
    /// Standard labels added to every pushed series.
    pub labels: BTreeMap<String, String>,
    /// Scrape jobs.
    pub jobs: Vec<ScrapeJob>,
    /// Remote write, if configured.
    pub remote_write: Option<RemoteWriteConfig>,
    /// Print instead of push.
    pub dry_run: bool,
    /// The log half.
    pub logs: LogsConfig,
    /// Bound on the final flush at shutdown.
    pub shutdown_timeout: Duration,
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an absolute http(s) URL.
pub fn parse_http_url(what: &str, s: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(s.trim()).map_err(|e| invalid(format!("{what}: invalid URL {s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("{what}: URL {s:?} must use http or https")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{what}: URL {s:?} has no host")));
    }
    Ok(url)
}

fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_secret(path: &Path) -> Result<String, ConfigError> {
    let bytes = read_file(path)?;
    let s =
        String::from_utf8(bytes).map_err(|_| invalid(format!("{}: not UTF-8", path.display())))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

fn http_config(
    what: &str,
    basic: Option<BasicAuthFile>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    tls: Option<TlsFile>,
) -> Result<HttpClientConfig, ConfigError> {
    let mut out = HttpClientConfig::default();
    if token.is_some() && token_file.is_some() {
        return Err(invalid(format!(
            "{what}: set bearer_token or bearer_token_file, not both"
        )));
    }
    out.bearer_token = match (token, token_file) {
        (Some(t), _) => Some(t),
        (None, Some(f)) => Some(read_secret(&f)?),
        (None, None) => None,
    };
    if let Some(b) = basic {
        if out.bearer_token.is_some() {
            return Err(invalid(format!(
                "{what}: basic_auth and a bearer token are mutually exclusive"
            )));
        }
        let pass = match (b.password, b.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "{what}: set basic_auth password or password_file, not both"
                )))
            }
            (Some(p), None) => p,
            (None, Some(f)) => read_secret(&f)?,
            (None, None) => String::new(),
        };
        out.basic_auth = Some((b.username, pass));
    }
    if let Some(t) = tls {
        out.tls.insecure_skip_verify = t.insecure_skip_verify;
        if let Some(ca) = t.ca_file {
            out.tls.ca_pem = Some(read_file(&ca)?);
        }
        match (t.cert_file, t.key_file) {
            (Some(c), Some(k)) => {
                let mut pem = read_file(&c)?;
                pem.push(b'\n');
                pem.extend(read_file(&k)?);
                out.tls.identity_pem = Some(pem);
            }
            (None, None) => {}
            _ => {
                return Err(invalid(format!(
                    "{what}: tls cert_file and key_file go together"
                )))
            }
        }
    }
    // Fail now rather than at the first request.
    out.client("livetranslate-agent")?;
    Ok(out)
}

/// Strips serde_yaml's " at line N column M" suffix (the location is printed up front).
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_owned(),
        _ => msg,
    }
}

/// Reads and parses the YAML file (after `${VAR}` expansion with `env`).
pub fn read_config_file(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let bytes = read_file(path)?;
    let text =
        String::from_utf8(bytes).map_err(|_| invalid(format!("{}: not UTF-8", path.display())))?;
    let expanded = file::expand_env(&text, env).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    if expanded.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml_ng::from_str(&expanded).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: yaml_message(&e),
        }
    })
}

impl Config {
    /// Builds the configuration from flags and (if `--config` is given) the file, reading
    /// environment variables through `env` for `${VAR}` expansion.
    pub fn load(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_config_file(path, env)?,
            None => FileConfig::default(),
        };
        Self::from_parts(cli, file)
    }

    /// Merges flags over a parsed file and validates the result.
    pub fn from_parts(cli: &Cli, file: FileConfig) -> Result<Config, ConfigError> {
        let listen_str = cli
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_str
            .trim()
            .parse()
            .map_err(|_| invalid(format!("listen: {listen_str:?} is not an IP:port address")))?;

        for (name, value) in &file.labels {
            if !valid_label_name(name) || name.starts_with("__") {
                return Err(invalid(format!("labels: invalid label name {name:?}")));
            }
            if matches!(name.as_str(), "job" | "instance") {
                return Err(invalid(format!(
                    "labels: {name:?} is set per target, not globally"
                )));
            }
            if value.is_empty() {
                return Err(invalid(format!("labels: {name} is empty")));
            }
        }

        let default_interval = cli
            .scrape_interval
            .or(file.scrape.interval)
            .map_or(DEFAULT_SCRAPE_INTERVAL, |d| d.0);
        let default_timeout = file.scrape.timeout.map(|d| d.0);
        let cli_job = file
            .scrape
            .job_name
            .clone()
            .unwrap_or_else(|| DEFAULT_JOB_NAME.to_owned());
        let mut jobs = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for sc in file.scrape_configs {
            let what = format!("scrape_configs[{}]", sc.job_name);
            if sc.job_name.trim().is_empty() {
                return Err(invalid("scrape_configs: job_name must not be empty"));
            }
            if !names.insert(sc.job_name.clone()) {
                return Err(invalid(format!("{what}: duplicate job_name")));
            }
            let interval = sc.interval.map_or(default_interval, |d| d.0);
            let timeout = sc
                .timeout
                .map(|d| d.0)
                .or(default_timeout)
                .unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(interval));
            let scheme = sc.scheme.unwrap_or_else(|| "http".into());
            let metrics_path = sc.metrics_path.unwrap_or_else(|| "/metrics".into());
            let http = http_config(
                &what,
                sc.basic_auth,
                sc.bearer_token,
                sc.bearer_token_file,
                sc.tls,
            )?;
            let mut static_groups = Vec::new();
            for g in sc.static_configs {
                static_groups.push(TargetGroup {
                    targets: g.targets,
                    labels: g.labels,
                });
            }
            let mut file_sd = Vec::new();
            for f in sc.file_sd_configs {
                if f.files.is_empty() {
                    return Err(invalid(format!("{what}: file_sd_configs without files")));
                }
                file_sd.push(FileSdConfig {
                    patterns: f.files.into_iter().map(PathBuf::from).collect(),
                    refresh_interval: f.refresh_interval.map_or(Duration::from_secs(5), |d| d.0),
                });
            }
            jobs.push(ScrapeJob {
                job_name: sc.job_name,
                interval,
                timeout,
                metrics_path,
                query: None,
                scheme,
                honor_labels: sc.honor_labels,
                http,
                static_groups,
                file_sd,
            });
        }
        for target in &cli.scrape_targets {
            let url = parse_http_url("--scrape-target", target)?;
            let address = match (url.host_str(), url.port_or_known_default()) {
                (Some(h), Some(p)) if h.contains(':') && !h.starts_with('[') => {
                    format!("[{h}]:{p}")
                }
                (Some(h), Some(p)) => format!("{h}:{p}"),
                _ => return Err(invalid(format!("--scrape-target: {target:?} has no host"))),
            };
            let mut http = HttpClientConfig::default();
            if !url.username().is_empty() {
                http.basic_auth = Some((
                    url.username().to_owned(),
                    url.password().unwrap_or_default().to_owned(),
                ));
            }
            jobs.push(ScrapeJob {
                job_name: cli_job.clone(),
                interval: default_interval,
                timeout: default_timeout.unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(default_interval)),
                metrics_path: url.path().to_owned(),
                query: url.query().map(str::to_owned),
                scheme: url.scheme().to_owned(),
                honor_labels: false,
                http,
                static_groups: vec![TargetGroup {
                    targets: vec![address],
                    labels: BTreeMap::new(),
                }],
                file_sd: Vec::new(),
            });
        }
        for job in &jobs {
            validate_job(job)?;
        }

        let rw_file = file.remote_write.unwrap_or_default();
        let rw_url = cli.remote_write_url.clone().or(rw_file.url);
        let remote_write = match rw_url {
            Some(u) if !u.trim().is_empty() => {
                let url = parse_http_url("remote write", &u)?;
                let d = QueueConfig::default();
                let q = rw_file.queue;
                let queue = QueueConfig {
                    capacity: q.capacity.unwrap_or(d.capacity),
                    max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
                    batch_send_deadline: q
                        .batch_send_deadline
                        .map_or(d.batch_send_deadline, |x| x.0),
                    min_backoff: q.min_backoff.map_or(d.min_backoff, |x| x.0),
                    max_backoff: q.max_backoff.map_or(d.max_backoff, |x| x.0),
                };
                if queue.max_samples_per_send == 0 || queue.capacity < queue.max_samples_per_send {
                    return Err(invalid(
                        "remote_write.queue: need 0 < max_samples_per_send <= capacity",
                    ));
                }
                if queue.batch_send_deadline.is_zero()
                    || queue.min_backoff.is_zero()
                    || queue.max_backoff < queue.min_backoff
                {
                    return Err(invalid(
                        "remote_write.queue: need batch_send_deadline > 0 and 0 < min_backoff <= max_backoff",
                    ));
                }
                for (name, value) in &rw_file.headers {
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                        || http::HeaderValue::from_str(value).is_err()
                    {
                        return Err(invalid(format!(
                            "remote_write.headers: invalid header {name:?}"
                        )));
                    }
                }
                Some(RemoteWriteConfig {
                    url,
                    timeout: rw_file.timeout.map_or(Duration::from_secs(30), |d| d.0),
                    http: http_config(
                        "remote_write",
                        rw_file.basic_auth,
                        rw_file.bearer_token,
                        rw_file.bearer_token_file,
                        rw_file.tls,
                    )?,
                    headers: rw_file.headers,
                    queue,
                })
            }
            _ => None,
        };

        let dry_run = cli.dry_run || file.dry_run;
        let logs = logs_config(cli, file.logs, &file.labels, dry_run)?;

        Ok(Config {
            source: cli.config.clone(),
            listen,
            labels: file.labels,
            jobs,
            remote_write,
            dry_run,
            logs,
            shutdown_timeout: file
                .shutdown_timeout
                .map_or(Duration::from_secs(10), |d| d.0),
        })
    }

    /// A human-readable summary (printed by `--check-config`).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let src = self
            .source
            .as_ref()
            .map_or_else(|| "flags only".to_owned(), |p| p.display().to_string());
        let _ = writeln!(s, "configuration OK ({src})");
        let _ = writeln!(s, "listen: {}", self.listen);
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(s, "labels: {}", l.join(", "));
        }
        let _ = writeln!(s, "scrape jobs: {}", self.jobs.len());
        for j in &self.jobs {
            let _ = writeln!(
                s,
                "  job {:?}: every {}, timeout {}, {}://…{}{}",
                j.job_name,
                duration::HumanDuration(j.interval),
                duration::HumanDuration(j.timeout),
                j.scheme,
                j.metrics_path,
                if j.honor_labels { ", honor_labels" } else { "" }
            );
            for g in &j.static_groups {
                let _ = writeln!(s, "    targets: {}", g.targets.join(", "));
            }
            for f in &j.file_sd {
                let p: Vec<String> = f.patterns.iter().map(|p| p.display().to_string()).collect();
                let _ = writeln!(s, "    file_sd: {}", p.join(", "));
            }
        }
        match &self.remote_write {
            Some(rw) => {
                let _ = writeln!(
                    s,
                    "remote write: {} (queue {} samples, batches of {} or every {})",
                    rw.url,
                    rw.queue.capacity,
                    rw.queue.max_samples_per_send,
                    duration::HumanDuration(rw.queue.batch_send_deadline)
                );
            }
            None if self.dry_run => {
                let _ = writeln!(
                    s,
                    "remote write: none (dry run: samples printed as JSON lines)"
                );
            }
            None => {
                let _ = writeln!(s, "remote write: none (samples are scraped but not pushed)");
            }
        }
        match (&self.logs.loki, self.logs.enabled(self.dry_run)) {
            (_, false) => {
                let _ = writeln!(s, "logs: not shipped (no Loki URL)");
            }
            (loki, true) => {
                let to = match loki {
                    Some(l) if !self.dry_run => {
                        format!("Loki {}", crate::loki::client::redact_userinfo(&l.url))
                    }
                    _ => "dry run: printed as JSON lines".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "logs: {to}, positions in {}",
                    self.logs.positions_file.display()
                );
                for i in &self.logs.inputs {
                    let _ = writeln!(s, "  {:?}: {}", i.format, i.paths.join(", "));
                }
            }
        }
        s
    }
}

fn logs_config(
    cli: &Cli,
    lf: file::LogsFile,
    labels: &BTreeMap<String, String>,
    dry_run: bool,
) -> Result<LogsConfig, ConfigError> {
    let defaults = LogsConfig::default();
    let mut inputs = lf.inputs;
    if !cli.log_paths.is_empty() {
        // Flags override the file.
        inputs = vec![LogInput::json(cli.log_paths.clone())];
    } else if !lf.paths.is_empty() {
        inputs.push(LogInput::json(lf.paths));
    }
    if inputs
        .iter()
        .flat_map(|i| &i.paths)
        .any(|p| p.trim().is_empty())
    {
        return Err(invalid("logs: empty glob in paths"));
    }
    let loki_url = cli
        .loki_url
        .clone()
        .or(lf.loki_url)
        .filter(|u| !u.trim().is_empty());
    if inputs.is_empty() && (loki_url.is_some() || dry_run) {
        inputs.push(LogInput::json(vec![DEFAULT_LOG_PATH.to_owned()]));
    }
    crate::logs::tail::validate_inputs(&inputs)
        .map_err(|e| invalid(format!("logs.inputs: {e}")))?;
    let lk = lf.loki;
    let loki = match loki_url {
        Some(url) => {
            crate::loki::client::normalize_url(&url).map_err(|e| invalid(e.to_string()))?;
            if lk
                .tenant_id
                .as_deref()
                .is_some_and(|t| reqwest::header::HeaderValue::from_str(t).is_err())
            {
                return Err(invalid("logs.loki.tenant_id: not a valid header value"));
            }
            let base = LokiConfig::new(url);
            let batch_size = lk.batch_size.unwrap_or(base.batch_size);
            if batch_size == 0 {
                return Err(invalid("logs.loki.batch_size: must be more than 0"));
            }
            Some(LokiConfig {
                tenant_id: lk.tenant_id,
                http: http_config(
                    "logs.loki",
                    lk.basic_auth,
                    lk.bearer_token,
                    lk.bearer_token_file,
                    lk.tls,
                )?,
                timeout: lk.timeout.map_or(base.timeout, |d| d.0),
                min_backoff: lk.min_backoff.map_or(base.min_backoff, |d| d.0),
                max_backoff: lk.max_backoff.map_or(base.max_backoff, |d| d.0),
                max_retries: lk.max_retries,
                batch_size,
                batch_wait: lk.batch_wait.map_or(base.batch_wait, |d| d.0),
                ..base
            })
        }
        None => None,
    };
    let r = &defaults.reader;
    let max_line_bytes = lf.max_line_bytes.unwrap_or(r.max_line_bytes);
    if max_line_bytes == 0 {
        return Err(invalid("logs.max_line_bytes: must be more than 0"));
    }
    Ok(LogsConfig {
        inputs,
        loki,
        positions_file: cli
            .positions_file
            .clone()
            .or(lf.positions_file)
            .unwrap_or(defaults.positions_file),
        reader: ReaderConfig {
            max_line_bytes,
            long_lines: lf.long_lines.unwrap_or(r.long_lines),
            poll_interval: lf.poll_interval.map_or(r.poll_interval, |d| d.0),
            discover_interval: lf.discover_interval.map_or(r.discover_interval, |d| d.0),
            rotate_wait: lf.rotate_wait.map_or(r.rotate_wait, |d| d.0),
            common_labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        },
        max_buffer_bytes: lf
            .max_buffer_bytes
            .unwrap_or(defaults.max_buffer_bytes)
            .max(64 * 1024),
        sync_period: lf.sync_period.map_or(defaults.sync_period, |d| d.0),
    })
}

fn validate_job(job: &ScrapeJob) -> Result<(), ConfigError> {
    let what = format!("job {:?}", job.job_name);
    if job.interval.is_zero() {
        return Err(invalid(format!("{what}: interval must be > 0")));
    }
    if job.timeout.is_zero() || job.timeout > job.interval {
        return Err(invalid(format!(
            "{what}: timeout must be > 0 and not longer than the interval"
        )));
    }
    if !matches!(job.scheme.as_str(), "http" | "https") {
        return Err(invalid(format!("{what}: scheme must be http or https")));
    }
    if !job.metrics_path.starts_with('/') {
        return Err(invalid(format!("{what}: metrics_path must start with '/'")));
    }
    for g in &job.static_groups {
        check_group(&what, g, &job.scheme, &job.metrics_path)?;
    }
    Ok(())
}

/// Checks one target group's addresses and labels (also used for `file_sd` files).
pub fn check_group(
    what: &str,
    group: &TargetGroup,
    scheme: &str,
    metrics_path: &str,
) -> Result<(), ConfigError> {
    for name in group.labels.keys() {
        if !valid_label_name(name) {
            return Err(invalid(format!("{what}: invalid label name {name:?}")));
        }
    }
    for t in &group.targets {
        if t.is_empty() || t.contains('/') || t.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "{what}: target {t:?} must be host:port (no scheme or path)"
            )));
        }
        parse_http_url(what, &format!("{scheme}://{t}{metrics_path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        use clap::Parser;
        let mut v = vec!["livetranslate-agent"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn yaml(text: &str) -> FileConfig {
        match serde_yaml_ng::from_str(text) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_parts(&cli(&[]), FileConfig::default());
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.jobs.is_empty());
        assert!(c.remote_write.is_none());
    }

    #[test]
    fn cli_target_becomes_a_job() {
        let c = Config::from_parts(
            &cli(&[
                "--scrape-target",
                "http://127.0.0.1:3000/api/metrics?x=1",
                "--scrape-interval",
                "1s",
                "--remote-write-url",
                "http://127.0.0.1:9090/api/v1/write",
            ]),
            FileConfig::default(),
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let j = &c.jobs[0];
        assert_eq!(j.job_name, DEFAULT_JOB_NAME);
        assert_eq!(j.metrics_path, "/api/metrics");
        assert_eq!(j.query.as_deref(), Some("x=1"));
        assert_eq!(j.static_groups[0].targets, ["127.0.0.1:3000"]);
        assert_eq!(j.interval, Duration::from_secs(1));
        assert_eq!(j.timeout, Duration::from_secs(1));
        assert!(c
            .summary()
            .contains("remote write: http://127.0.0.1:9090/api/v1/write"));
    }

    #[test]
    fn flags_override_the_file() {
        let f = yaml("listen: 127.0.0.1:1\nremote_write: {url: 'http://127.0.0.1:2/w'}\nscrape: {interval: 30s}\n");
        let c = Config::from_parts(
            &cli(&[
                "--listen",
                "127.0.0.1:3",
                "--remote-write-url",
                "http://127.0.0.1:4/w",
            ]),
            f,
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.listen.port(), 3);
        assert_eq!(c.remote_write.map(|r| r.url.port()), Some(Some(4)));
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |args: &[&str], text: &str| {
            Config::from_parts(&cli(args), yaml(text))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(bad(&["--remote-write-url", "not a url"], "{}").is_err());
        assert!(bad(&["--remote-write-url", "ftp://127.0.0.1/x"], "{}").is_err());
        assert!(bad(&["--scrape-target", "127.0.0.1:3000"], "{}").is_err());
        assert!(bad(&["--listen", "nowhere"], "{}").is_err());
        assert!(bad(
            &[],
            "scrape_configs: [{job_name: a, interval: 1s, timeout: 2s}]"
        )
        .is_err());
        assert!(bad(&[], "scrape_configs: [{job_name: a}, {job_name: a}]").is_err());
        assert!(bad(
            &[],
            "scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:1']}]}]"
        )
        .is_err());
        assert!(bad(&[], "labels: {job: x}").is_err());
        assert!(bad(&[], "remote_write: {url: 'http://127.0.0.1:1/w', queue: {capacity: 10, max_samples_per_send: 20}}").is_err());
        assert!(bad(&["--loki-url", "nope"], "{}").is_err());
        assert!(bad(
            &[],
            "scrape_configs: [{job_name: a, bearer_token: x, basic_auth: {username: u}}]"
        )
        .is_err());
    }

    #[test]
    fn tls_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("agent-tls-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let junk = dir.join("junk.pem");
        if let Err(e) = std::fs::write(&junk, "not a certificate\n") {
            panic!("{e}");
        }
        let check = |tls: &str| {
            let text = format!("scrape_configs: [{{job_name: a, tls: {tls}}}]");
            Config::from_parts(&cli(&[]), yaml(&text))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let bad_ca = check(&format!("{{ca_file: '{}'}}", junk.display()));
        let half_pair = check(&format!("{{cert_file: '{}'}}", junk.display()));
        let missing = check("{ca_file: '/nonexistent/ca.pem'}");
        let insecure = check("{insecure_skip_verify: true}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(bad_ca.is_err_and(|e| e.contains("ca_file")));
        assert!(half_pair.is_err_and(|e| e.contains("go together")));
        assert!(missing.is_err_and(|e| e.contains("/nonexistent/ca.pem")));
        assert_eq!(insecure, Ok(()));
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = std::env::temp_dir().join(format!("agent-cfg-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let token = dir.join("token");
        if let Err(e) = std::fs::write(&token, "s3cret\n") {
            panic!("{e}");
        }
        let text = format!(
            "scrape_configs: [{{job_name: a, bearer_token_file: '{}'}}]",
            token.display()
        );
        let c = Config::from_parts(&cli(&[]), yaml(&text));
        let _ = std::fs::remove_dir_all(&dir);
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.jobs[0].http.bearer_token.as_deref(), Some("s3cret"));
        assert!(!format!("{:?}", c.jobs[0].http).contains("s3cret"));
    }
}
