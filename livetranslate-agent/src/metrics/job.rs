//! Scrape jobs: their YAML form (`scrape:` defaults, `scrape_configs:` entries written with
//! Prometheus's own key names, target groups, `file_sd_configs`) and the checked [`ScrapeJob`]
//! the target manager runs, including the job made of `--scrape-target` URLs.
//!
//! A job block copied from `prometheus.yml` works as it is: `scrape_interval`,
//! `scrape_timeout`, `metrics_path`, `scheme`, `params`, `honor_labels`, `honor_timestamps`,
//! `sample_limit`, `label_limit`, `label_name_length_limit`, `label_value_length_limit`,
//! `body_size_limit`, `basic_auth`, `authorization`, `bearer_token(_file)`, `tls_config`,
//! `follow_redirects`, `enable_http2`, `proxy_url`, `proxy_from_environment`,
//! `static_configs`, `file_sd_configs`, `relabel_configs`, `metric_relabel_configs`. The
//! agent's earlier short names (`interval`, `timeout`, `tls`) stay as aliases (one spelling
//! per setting; errors name the one written). A key
//! Prometheus knows but this agent does not implement (`oauth2`, `kubernetes_sd_configs`, …)
//! is an error naming the key, as is any other unknown key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use livetranslate_push::{
    AuthorizationSettings, BasicAuthSettings, HttpClientConfig, HttpClientSettings, TlsSettings,
};
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::byte_size::ByteSize;
use crate::duration::HumanDuration;
use crate::relabel::RelabelConfig;
use crate::validate::{parse_http_url, KeyPath, ValidationError};
use livetranslate_telemetry::names::is_valid_label_name as valid_label_name;

/// Default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
/// Default (and maximum default) scrape timeout.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default job name of `--scrape-target` URLs.
pub const DEFAULT_JOB_NAME: &str = "agent";
/// Default `file_sd` refresh interval.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// Default `body_size_limit` (Prometheus has none; the agent keeps this bound unless
/// `body_size_limit: 0` turns it off).
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 64 << 20;

/// Keys of a Prometheus 2.42 `scrape_config` (and its HTTP client settings) that this agent
/// does not implement: named in the error instead of "unknown key".
const PROMETHEUS_UNSUPPORTED: &[&str] = &[
    "oauth2",
    "no_proxy",
    "proxy_connect_header",
    "target_limit",
    "native_histogram_bucket_limit",
    "scrape_classic_histograms",
    "keep_dropped_targets",
    "enable_compression",
    "scrape_protocols",
    "track_timestamps_staleness",
    "metric_name_validation_scheme",
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "http_sd_configs",
    "ionos_sd_configs",
    "kubernetes_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// `shard:`: this agent is replica `index` of `count` and scrapes only the targets whose
/// `__address__` hashes to `index` (Prometheus's `hashmod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    /// This replica, `0..count`.
    pub index: u64,
    /// Number of replicas.
    pub count: u64,
}

/// `scrape:` defaults, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeDefaults {
    /// Default scrape interval (15s).
    #[serde(alias = "scrape_interval")]
    pub interval: Option<HumanDuration>,
    /// Default scrape timeout (10s, capped at the interval).
    #[serde(alias = "scrape_timeout")]
    pub timeout: Option<HumanDuration>,
    /// Job name of the targets given with `--scrape-target` (`agent`).
    pub job_name: Option<String>,
    /// Sharding of every job over agent replicas (a job's own `shard:` wins).
    pub shard: Option<ShardFile>,
}

/// `authorization:` or the `bearer_token` shorthand, as written.
type Authorization = AuthorizationSettings;

/// One `scrape_configs:` entry, as written (Prometheus's key names; the agent's earlier short
/// names as aliases).
#[derive(Debug, Default, Deserialize)]
pub struct ScrapeConfigFile {
    /// The `job` label.
    pub job_name: String,
    /// Scrape interval.
    pub scrape_interval: Option<HumanDuration>,
    /// `scrape_interval` by its earlier name.
    pub interval: Option<HumanDuration>,
    /// Scrape timeout.
    pub scrape_timeout: Option<HumanDuration>,
    /// `scrape_timeout` by its earlier name.
    pub timeout: Option<HumanDuration>,
    /// Path of the metrics endpoint (`/metrics`).
    pub metrics_path: Option<String>,
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// URL parameters of every scrape (`?name=value`).
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the scraped labels on conflict with target labels.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the timestamps the target gives (default true).
    pub honor_timestamps: Option<bool>,
    /// Most samples (after metric relabelling) a scrape may have; more fails the scrape.
    pub sample_limit: Option<u64>,
    /// Most labels a series may have.
    pub label_limit: Option<u64>,
    /// Longest label name.
    pub label_name_length_limit: Option<u64>,
    /// Longest label value.
    pub label_value_length_limit: Option<u64>,
    /// Largest uncompressed body.
    pub body_size_limit: Option<ByteSize>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthSettings>,
    /// `Authorization` header (`type` defaults to `Bearer`).
    pub authorization: Option<Authorization>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    pub tls_config: Option<TlsSettings>,
    /// `tls_config` by its earlier name.
    pub tls: Option<TlsSettings>,
    /// Follow HTTP redirects (default true).
    pub follow_redirects: Option<bool>,
    /// Accepted for compatibility: scrapes use HTTP/1.1.
    pub enable_http2: Option<bool>,
    /// HTTP proxy for the scrapes.
    pub proxy_url: Option<String>,
    /// Take the proxy from `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` (default false).
    pub proxy_from_environment: Option<bool>,
    /// Targets listed in the file.
    #[serde(default)]
    pub static_configs: Vec<TargetGroupFile>,
    /// Targets read from (and re-read when they change) JSON or YAML files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdFile>,
    /// Target relabelling (Prometheus semantics).
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of every scraped sample.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Sharding over agent replicas.
    pub shard: Option<ShardFile>,
    /// Every other key: refused with its name.
    #[serde(flatten)]
    pub other: BTreeMap<String, IgnoredAny>,
}

/// A group of targets sharing labels, as written (also the element of a `file_sd` file).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupFile {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs:` entry, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdFile {
    /// File paths; `*` and `?` (and `[…]`) are allowed in the last path component.
    pub files: Vec<String>,
    /// How often the files are checked for changes (5s).
    pub refresh_interval: Option<HumanDuration>,
}

/// A group of targets sharing labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target in the group (may include `__scheme__` / `__metrics_path__` /
    /// `__param_*` overrides and `__meta_*` labels for relabelling).
    pub labels: BTreeMap<String, String>,
}

impl From<TargetGroupFile> for TargetGroup {
    fn from(g: TargetGroupFile) -> Self {
        TargetGroup {
            targets: g.targets,
            labels: g.labels,
        }
    }
}

/// A `file_sd` source.
#[derive(Debug, Clone)]
pub struct FileSdConfig {
    /// Paths, wildcards allowed in the last component.
    pub patterns: Vec<PathBuf>,
    /// How often the files are checked for changes.
    pub refresh_interval: Duration,
}

/// Prometheus's per-scrape limits; 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeLimits {
    /// Samples after metric relabelling.
    pub sample_limit: u64,
    /// Labels per series (`__name__` included).
    pub label_limit: u64,
    /// Bytes of a label name.
    pub label_name_length_limit: u64,
    /// Bytes of a label value.
    pub label_value_length_limit: u64,
    /// Uncompressed bytes of a body.
    pub body_size_limit: u64,
}

impl Default for ScrapeLimits {
    fn default() -> Self {
        ScrapeLimits {
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: DEFAULT_BODY_SIZE_LIMIT,
        }
    }
}

/// How the scrape client connects.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Follow redirects.
    pub follow_redirects: bool,
    /// Proxy, if any (may hold credentials: never print it unredacted).
    pub proxy_url: Option<reqwest::Url>,
    /// Take the proxy from the environment.
    pub proxy_from_environment: bool,
}

/// One scrape job.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// The `job` label.
    pub job_name: String,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout (≤ interval): covers the request, the body and its parsing.
    pub timeout: Duration,
    /// Metrics path.
    pub metrics_path: String,
    /// URL parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// `http` or `https`.
    pub scheme: String,
    /// Keep scraped labels that clash with target labels.
    pub honor_labels: bool,
    /// Use the timestamps targets give.
    pub honor_timestamps: bool,
    /// Per-scrape limits.
    pub limits: ScrapeLimits,
    /// Authentication and TLS.
    pub http: HttpClientConfig,
    /// Redirects and proxy.
    pub client: ClientOptions,
    /// Targets from the configuration.
    pub static_groups: Vec<TargetGroup>,
    /// Targets from files.
    pub file_sd: Vec<FileSdConfig>,
    /// Target relabelling, the sharding rules last.
    pub relabel_configs: Arc<[RelabelConfig]>,
    /// Relabelling of scraped samples.
    pub metric_relabel_configs: Arc<[RelabelConfig]>,
    /// This replica's shard, when the job is sharded.
    pub shard: Option<ShardFile>,
}

/// The flags that add scrape targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeFlags<'a> {
    /// `--scrape-target` URLs.
    pub targets: &'a [String],
    /// `--scrape-interval`.
    pub interval: Option<Duration>,
}

/// Builds every job: the `scrape_configs:` entries, then one job per `--scrape-target` URL
/// (named by `scrape.job_name`). Errors name the entry's key path.
pub fn build_jobs(
    flags: ScrapeFlags<'_>,
    defaults: ScrapeDefaults,
    configs: Vec<ScrapeConfigFile>,
) -> Result<Vec<ScrapeJob>, ValidationError> {
    let default_interval = flags
        .interval
        .or(defaults.interval.map(|d| d.0))
        .unwrap_or(DEFAULT_SCRAPE_INTERVAL);
    let default_timeout = defaults.timeout.map(|d| d.0);
    let cli_job = defaults
        .job_name
        .unwrap_or_else(|| DEFAULT_JOB_NAME.to_owned());
    let scrape_at = KeyPath::root().key("scrape");
    if let Some(s) = defaults.shard {
        check_shard(s).map_err(|m| ValidationError::at(scrape_at.key("shard"), m))?;
    }
    let list = KeyPath::root().key("scrape_configs");
    let mut jobs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, sc) in configs.into_iter().enumerate() {
        let at = list.index(i);
        if sc.job_name.trim().is_empty() {
            return Err(ValidationError::at(at.key("job_name"), "must not be empty"));
        }
        if !names.insert(sc.job_name.clone()) {
            return Err(ValidationError::at(
                at.key("job_name"),
                format!("duplicate job_name {:?}", sc.job_name),
            ));
        }
        let job = job_from_file(sc, &at, default_interval, default_timeout, defaults.shard)?;
        jobs.push(job);
    }
    for target in flags.targets {
        let job = job_from_flag(
            target,
            &cli_job,
            default_interval,
            default_timeout,
            defaults.shard,
        )
        .map_err(|m| ValidationError::flag("--scrape-target", m))?;
        jobs.push(job);
    }
    Ok(jobs)
}

fn check_shard(s: ShardFile) -> Result<(), String> {
    if s.count == 0 || s.index >= s.count {
        return Err(format!(
            "need 0 <= index < count (index {}, count {})",
            s.index, s.count
        ));
    }
    Ok(())
}

/// The relabelling rules with the sharding rules appended.
fn with_shard(
    mut rules: Vec<RelabelConfig>,
    shard: Option<ShardFile>,
) -> Result<Vec<RelabelConfig>, String> {
    if let Some(s) = shard {
        check_shard(s)?;
        rules.extend(RelabelConfig::sharding(s.index, s.count).map_err(|e| e.to_string())?);
    }
    Ok(rules)
}

fn check_other_keys(
    other: &BTreeMap<String, IgnoredAny>,
    at: &KeyPath,
) -> Result<(), ValidationError> {
    if let Some(key) = other.keys().next() {
        let message = if PROMETHEUS_UNSUPPORTED.contains(&key.as_str()) {
            format!("{key:?} is a Prometheus setting this agent does not support")
        } else {
            format!("unknown key {key:?}")
        };
        return Err(ValidationError::at(at.key(key), message));
    }
    Ok(())
}

/// One of a setting's two spellings (Prometheus's and the agent's earlier one), and the key
/// that was written.
fn either<T>(
    at: &KeyPath,
    new: Option<T>,
    new_key: &'static str,
    old: Option<T>,
    old_key: &'static str,
) -> Result<(Option<T>, &'static str), ValidationError> {
    match (new, old) {
        (Some(_), Some(_)) => Err(ValidationError::at(
            at.key(old_key),
            format!("{old_key} is another name for {new_key}: set one of them"),
        )),
        (Some(v), None) => Ok((Some(v), new_key)),
        (None, Some(v)) => Ok((Some(v), old_key)),
        (None, None) => Ok((None, new_key)),
    }
}

fn job_from_file(
    sc: ScrapeConfigFile,
    at: &KeyPath,
    default_interval: Duration,
    default_timeout: Option<Duration>,
    default_shard: Option<ShardFile>,
) -> Result<ScrapeJob, ValidationError> {
    check_other_keys(&sc.other, at)?;
    let (interval, interval_key) = either(
        at,
        sc.scrape_interval,
        "scrape_interval",
        sc.interval,
        "interval",
    )?;
    let (timeout, timeout_key) = either(
        at,
        sc.scrape_timeout,
        "scrape_timeout",
        sc.timeout,
        "timeout",
    )?;
    let (tls, tls_key) = either(at, sc.tls_config, "tls_config", sc.tls, "tls")?;
    let interval = interval.map_or(default_interval, |d| d.0);
    let timeout = timeout
        .map(|d| d.0)
        .or(default_timeout)
        .unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(interval));
    let mut http = HttpClientSettings {
        basic_auth: sc.basic_auth,
        bearer_token: sc.bearer_token,
        bearer_token_file: sc.bearer_token_file,
        tls,
    }
    .resolve()
    .map_err(|e| {
        let key = match e.key.strip_prefix("tls") {
            Some(rest) => format!("{tls_key}{rest}"),
            None => e.key.to_owned(),
        };
        ValidationError::at(at.key(&key), e.message)
    })?;
    if let Some(a) = sc.authorization {
        a.apply_to(&mut http)
            .map_err(|e| ValidationError::at(at.key(e.key), e.message))?;
    }
    let mut file_sd = Vec::new();
    for (k, f) in sc.file_sd_configs.into_iter().enumerate() {
        if f.files.is_empty() {
            return Err(ValidationError::at(
                at.key("file_sd_configs").index(k).key("files"),
                "file_sd_configs without files",
            ));
        }
        file_sd.push(FileSdConfig {
            patterns: f.files.into_iter().map(PathBuf::from).collect(),
            refresh_interval: f.refresh_interval.map_or(DEFAULT_REFRESH_INTERVAL, |d| d.0),
        });
    }
    for (name, values) in &sc.params {
        if name.is_empty() || values.is_empty() {
            return Err(ValidationError::at(
                at.key("params").key(name),
                "a parameter needs a name and at least one value",
            ));
        }
    }
    let proxy_url = match sc.proxy_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            Some(parse_http_url(raw).map_err(|m| ValidationError::at(at.key("proxy_url"), m))?)
        }
    };
    let proxy_from_environment = sc.proxy_from_environment.unwrap_or(false);
    if proxy_url.is_some() && proxy_from_environment {
        return Err(ValidationError::at(
            at.key("proxy_from_environment"),
            "use proxy_url or proxy_from_environment, not both",
        ));
    }
    let shard = sc.shard.or(default_shard);
    let relabel_configs = with_shard(sc.relabel_configs, shard)
        .map_err(|m| ValidationError::at(at.key("shard"), m))?;
    let d = ScrapeLimits::default();
    let job = ScrapeJob {
        job_name: sc.job_name,
        interval,
        timeout,
        metrics_path: sc.metrics_path.unwrap_or_else(|| "/metrics".into()),
        params: sc.params,
        scheme: sc.scheme.unwrap_or_else(|| "http".into()),
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps.unwrap_or(true),
        limits: ScrapeLimits {
            sample_limit: sc.sample_limit.unwrap_or(d.sample_limit),
            label_limit: sc.label_limit.unwrap_or(d.label_limit),
            label_name_length_limit: sc
                .label_name_length_limit
                .unwrap_or(d.label_name_length_limit),
            label_value_length_limit: sc
                .label_value_length_limit
                .unwrap_or(d.label_value_length_limit),
            body_size_limit: sc.body_size_limit.map_or(d.body_size_limit, |b| b.0),
        },
        http,
        client: ClientOptions {
            follow_redirects: sc.follow_redirects.unwrap_or(true),
            proxy_url,
            proxy_from_environment,
        },
        static_groups: sc.static_configs.into_iter().map(Into::into).collect(),
        file_sd,
        relabel_configs: relabel_configs.into(),
        metric_relabel_configs: sc.metric_relabel_configs.into(),
        shard,
    };
    job.validate().map_err(|(key, m)| {
        let key = match key {
            Some("scrape_interval") => interval_key,
            Some("scrape_timeout") => timeout_key,
            Some(k) => k,
            None => return ValidationError::at(at.clone(), m),
        };
        ValidationError::at(at.key(key), m)
    })?;
    for (g, group) in job.static_groups.iter().enumerate() {
        check_group(group, &job.scheme, &job.metrics_path)
            .map_err(|m| ValidationError::at(at.key("static_configs").index(g), m))?;
    }
    Ok(job)
}

/// The job of one `--scrape-target` URL: its path is the metrics path, its query the
/// parameters, its `user:password@` basic authentication.
fn job_from_flag(
    target: &str,
    job_name: &str,
    interval: Duration,
    timeout: Option<Duration>,
    shard: Option<ShardFile>,
) -> Result<ScrapeJob, String> {
    let url = parse_http_url(target)?;
    let address = match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) if h.contains(':') && !h.starts_with('[') => format!("[{h}]:{p}"),
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => {
            return Err(format!(
                "{:?} has no host",
                livetranslate_push::redact_url(target)
            ))
        }
    };
    let mut http = HttpClientConfig::default();
    if !url.username().is_empty() {
        http.basic_auth = Some((
            percent_decode(url.username()),
            percent_decode(url.password().unwrap_or_default()),
        ));
    }
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        params
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let job = ScrapeJob {
        job_name: job_name.to_owned(),
        interval,
        timeout: timeout.unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(interval)),
        metrics_path: url.path().to_owned(),
        params,
        scheme: url.scheme().to_owned(),
        honor_labels: false,
        honor_timestamps: true,
        limits: ScrapeLimits::default(),
        http,
        client: ClientOptions {
            follow_redirects: true,
            ..ClientOptions::default()
        },
        static_groups: vec![TargetGroup {
            targets: vec![address],
            labels: BTreeMap::new(),
        }],
        file_sd: Vec::new(),
        relabel_configs: with_shard(Vec::new(), shard)?.into(),
        metric_relabel_configs: Arc::new([]),
        shard,
    };
    job.validate().map_err(|(_, m)| m)?;
    for g in &job.static_groups {
        check_group(g, &job.scheme, &job.metrics_path)?;
    }
    Ok(job)
}

/// Undoes `%XX` escapes of URL userinfo (invalid escapes are kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ScrapeJob {
    /// Checks the job's own settings; the error names the offending key of its entry.
    fn validate(&self) -> Result<(), (Option<&'static str>, String)> {
        if self.interval.is_zero() {
            return Err((Some("scrape_interval"), "must be > 0".into()));
        }
        if self.timeout.is_zero() || self.timeout > self.interval {
            return Err((
                Some("scrape_timeout"),
                "must be > 0 and not longer than the interval".into(),
            ));
        }
        if !matches!(self.scheme.as_str(), "http" | "https") {
            return Err((Some("scheme"), "must be http or https".into()));
        }
        if !self.metrics_path.starts_with('/') {
            return Err((Some("metrics_path"), "must start with '/'".into()));
        }
        Ok(())
    }

    /// The scrape client of this job: its TLS, redirects and proxy.
    pub fn build_client(
        &self,
        user_agent: &str,
    ) -> Result<reqwest::Client, livetranslate_push::ClientError> {
        let mut b = self.http.client_builder(Some(user_agent))?;
        if !self.client.follow_redirects {
            b = b.redirect(reqwest::redirect::Policy::none());
        }
        if let Some(p) = &self.client.proxy_url {
            let proxy = reqwest::Proxy::all(p.as_str())
                .map_err(|e| livetranslate_push::ClientError::Build(e.without_url().to_string()))?;
            b = b.proxy(proxy);
        } else if !self.client.proxy_from_environment {
            b = b.no_proxy();
        }
        b.build()
            .map_err(|e| livetranslate_push::ClientError::Build(e.without_url().to_string()))
    }
}

/// Checks one target group's addresses and labels (static groups and `file_sd` files).
pub fn check_group(group: &TargetGroup, scheme: &str, metrics_path: &str) -> Result<(), String> {
    for name in group.labels.keys() {
        if !valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
    }
    for t in &group.targets {
        if t.is_empty() || t.contains('/') || t.contains(char::is_whitespace) {
            return Err(format!(
                "target {:?} must be host:port (no scheme or path)",
                livetranslate_push::redact_url(t)
            ));
        }
        parse_http_url(&format!("{scheme}://{t}{metrics_path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(yaml: &str) -> Vec<ScrapeConfigFile> {
        match serde_yaml_ng::from_str(yaml) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn build(yaml: &str) -> Result<Vec<ScrapeJob>, String> {
        build_jobs(
            ScrapeFlags::default(),
            ScrapeDefaults::default(),
            configs(yaml),
        )
        .map_err(|e| e.to_string())
    }

    fn one(yaml: &str) -> ScrapeJob {
        match build(yaml) {
            Ok(mut j) => j.remove(0),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn errors_name_the_entry_and_key() {
        assert_eq!(
            build("[{job_name: a, interval: 1s, timeout: 2s}]")
                .err()
                .as_deref(),
            Some("scrape_configs[0].timeout: must be > 0 and not longer than the interval")
        );
        assert_eq!(
            build("[{job_name: a}, {job_name: a}]").err().as_deref(),
            Some("scrape_configs[1].job_name: duplicate job_name \"a\"")
        );
        assert!(
            build("[{job_name: a, static_configs: [{targets: ['http://x:1']}]}]")
                .is_err_and(|e| e.starts_with("scrape_configs[0].static_configs[0]: target"))
        );
        assert!(
            build("[{job_name: a, bearer_token: x, basic_auth: {username: u}}]")
                .is_err_and(|e| e.starts_with("scrape_configs[0].basic_auth: "))
        );
        assert_eq!(
            build("[{job_name: a, kubernetes_sd_configs: [{role: pod}]}]").err().as_deref(),
            Some("scrape_configs[0].kubernetes_sd_configs: \"kubernetes_sd_configs\" is a Prometheus setting this agent does not support")
        );
        assert_eq!(
            build("[{job_name: a, scrape_intervall: 5s}]")
                .err()
                .as_deref(),
            Some("scrape_configs[0].scrape_intervall: unknown key \"scrape_intervall\"")
        );
        assert!(
            build("[{job_name: a, authorization: {type: Basic, credentials: x}}]")
                .is_err_and(|e| e.starts_with("scrape_configs[0].authorization.type: "))
        );
        assert!(
            build("[{job_name: a, bearer_token: x, authorization: {credentials: y}}]")
                .is_err_and(|e| e.starts_with("scrape_configs[0].authorization: "))
        );
        assert!(build("[{job_name: a, shard: {index: 3, count: 3}}]")
            .is_err_and(|e| e.starts_with("scrape_configs[0].shard: ")));
        assert!(build("[{job_name: a, tls_config: {cert_file: /x}}]")
            .is_err_and(|e| e.starts_with("scrape_configs[0].tls_config.cert_file: ")));
        assert!(build("[{job_name: a, proxy_url: 'ftp://u:pw@x'}]")
            .is_err_and(|e| e.starts_with("scrape_configs[0].proxy_url: ") && !e.contains("pw")));
    }

    #[test]
    fn prometheus_keys_and_the_old_short_names() {
        let j = one(
            "[{job_name: a, scrape_interval: 5s, scrape_timeout: 2s, params: {module: [http_2xx], x: [1, 2]},
               honor_timestamps: false, sample_limit: 10, label_limit: 5, label_name_length_limit: 20,
               label_value_length_limit: 30, body_size_limit: 1MB, follow_redirects: false, enable_http2: true,
               authorization: {type: Token, credentials: t}, relabel_configs: [{action: labeldrop, regex: x}],
               metric_relabel_configs: [{source_labels: [__name__], regex: go_.*, action: drop}]}]",
        );
        assert_eq!(
            (j.interval, j.timeout),
            (Duration::from_secs(5), Duration::from_secs(2))
        );
        assert_eq!(j.params["x"], ["1", "2"]);
        assert!(!j.honor_timestamps && !j.client.follow_redirects);
        assert_eq!(
            j.limits,
            ScrapeLimits {
                sample_limit: 10,
                label_limit: 5,
                label_name_length_limit: 20,
                label_value_length_limit: 30,
                body_size_limit: 1 << 20,
            }
        );
        assert_eq!(
            j.http.authorization,
            Some(("Token".to_owned(), "t".to_owned()))
        );
        assert_eq!(
            (j.relabel_configs.len(), j.metric_relabel_configs.len()),
            (1, 1)
        );
        let old =
            one("[{job_name: a, interval: 5s, timeout: 1s, tls: {insecure_skip_verify: true}}]");
        assert_eq!(
            (old.interval, old.timeout),
            (Duration::from_secs(5), Duration::from_secs(1))
        );
        assert!(old.http.tls.insecure_skip_verify);
        assert!(old.honor_timestamps && old.client.follow_redirects);
        assert_eq!(old.limits.body_size_limit, DEFAULT_BODY_SIZE_LIMIT);
    }

    #[test]
    fn shards_append_the_hashmod_rules() {
        let j = one("[{job_name: a, shard: {index: 1, count: 3}, relabel_configs: [{action: labeldrop, regex: x}]}]");
        assert_eq!(j.relabel_configs.len(), 3);
        let defaults = ScrapeDefaults {
            shard: Some(ShardFile { index: 0, count: 2 }),
            ..ScrapeDefaults::default()
        };
        let jobs = build_jobs(ScrapeFlags::default(), defaults, configs("[{job_name: a}]"));
        assert_eq!(jobs.map(|j| j[0].relabel_configs.len()).ok(), Some(2));
    }

    #[test]
    fn flag_targets_become_jobs() {
        let targets = vec!["http://u:p%40ss@127.0.0.1:3000/api/metrics?x=1".to_owned()];
        let jobs = build_jobs(
            ScrapeFlags {
                targets: &targets,
                interval: Some(Duration::from_secs(1)),
            },
            ScrapeDefaults::default(),
            Vec::new(),
        );
        let jobs = match jobs {
            Ok(j) => j,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(jobs[0].job_name, DEFAULT_JOB_NAME);
        assert_eq!(jobs[0].params["x"], ["1"]);
        assert_eq!(jobs[0].static_groups[0].targets, ["127.0.0.1:3000"]);
        assert_eq!(jobs[0].timeout, Duration::from_secs(1));
        assert_eq!(
            jobs[0].http.basic_auth,
            Some(("u".to_owned(), "p@ss".to_owned()))
        );
        let bad = vec!["127.0.0.1:3000".to_owned()];
        let e = build_jobs(
            ScrapeFlags {
                targets: &bad,
                interval: None,
            },
            ScrapeDefaults::default(),
            Vec::new(),
        );
        assert!(e.is_err_and(|e| e.to_string().starts_with("--scrape-target: ")));
    }
}
