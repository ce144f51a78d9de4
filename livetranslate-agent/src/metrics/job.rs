//! Scrape jobs: their YAML form (`scrape:` defaults, `scrape_configs:` entries, target groups,
//! `file_sd_configs`) and the checked [`ScrapeJob`] the target manager runs, including the
//! job made of `--scrape-target` URLs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use livetranslate_push::{BasicAuthSettings, HttpClientConfig, HttpClientSettings, TlsSettings};
use serde::Deserialize;

use crate::duration::HumanDuration;
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

/// `scrape:` defaults, as written.
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

/// One `scrape_configs:` entry, as written.
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
    pub basic_auth: Option<BasicAuthSettings>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    pub tls: Option<TlsSettings>,
    /// Targets listed in the file.
    #[serde(default)]
    pub static_configs: Vec<TargetGroupFile>,
    /// Targets read from (and re-read when they change) JSON or YAML files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdFile>,
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
    /// Labels of every target in the group (may include `__scheme__` / `__metrics_path__`
    /// overrides).
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
        let job = job_from_file(sc, &at, default_interval, default_timeout)?;
        jobs.push(job);
    }
    for target in flags.targets {
        let job = job_from_flag(target, &cli_job, default_interval, default_timeout)
            .map_err(|m| ValidationError::flag("--scrape-target", m))?;
        jobs.push(job);
    }
    Ok(jobs)
}

fn job_from_file(
    sc: ScrapeConfigFile,
    at: &KeyPath,
    default_interval: Duration,
    default_timeout: Option<Duration>,
) -> Result<ScrapeJob, ValidationError> {
    let interval = sc.interval.map_or(default_interval, |d| d.0);
    let timeout = sc
        .timeout
        .map(|d| d.0)
        .or(default_timeout)
        .unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(interval));
    let http = HttpClientSettings {
        basic_auth: sc.basic_auth,
        bearer_token: sc.bearer_token,
        bearer_token_file: sc.bearer_token_file,
        tls: sc.tls,
    }
    .resolve()
    .map_err(|e| ValidationError::at(at.key(e.key), e.message))?;
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
    let job = ScrapeJob {
        job_name: sc.job_name,
        interval,
        timeout,
        metrics_path: sc.metrics_path.unwrap_or_else(|| "/metrics".into()),
        query: None,
        scheme: sc.scheme.unwrap_or_else(|| "http".into()),
        honor_labels: sc.honor_labels,
        http,
        static_groups: sc.static_configs.into_iter().map(Into::into).collect(),
        file_sd,
    };
    job.validate().map_err(|(key, m)| match key {
        Some(k) => ValidationError::at(at.key(k), m),
        None => ValidationError::at(at.clone(), m),
    })?;
    for (g, group) in job.static_groups.iter().enumerate() {
        check_group(group, &job.scheme, &job.metrics_path)
            .map_err(|m| ValidationError::at(at.key("static_configs").index(g), m))?;
    }
    Ok(job)
}

/// The job of one `--scrape-target` URL: its path and query are the metrics path, its
/// `user:password@` becomes basic authentication.
fn job_from_flag(
    target: &str,
    job_name: &str,
    interval: Duration,
    timeout: Option<Duration>,
) -> Result<ScrapeJob, String> {
    let url = parse_http_url(target)?;
    let address = match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) if h.contains(':') && !h.starts_with('[') => format!("[{h}]:{p}"),
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => return Err(format!("{target:?} has no host")),
    };
    let mut http = HttpClientConfig::default();
    if !url.username().is_empty() {
        http.basic_auth = Some((
            url.username().to_owned(),
            url.password().unwrap_or_default().to_owned(),
        ));
    }
    let job = ScrapeJob {
        job_name: job_name.to_owned(),
        interval,
        timeout: timeout.unwrap_or(DEFAULT_SCRAPE_TIMEOUT.min(interval)),
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
    };
    job.validate().map_err(|(_, m)| m)?;
    for g in &job.static_groups {
        check_group(g, &job.scheme, &job.metrics_path)?;
    }
    Ok(job)
}

impl ScrapeJob {
    /// Checks the job's own settings; the error names the offending key of its entry.
    fn validate(&self) -> Result<(), (Option<&'static str>, String)> {
        if self.interval.is_zero() {
            return Err((Some("interval"), "must be > 0".into()));
        }
        if self.timeout.is_zero() || self.timeout > self.interval {
            return Err((
                Some("timeout"),
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
                "target {t:?} must be host:port (no scheme or path)"
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
    }

    #[test]
    fn flag_targets_become_jobs() {
        let targets = vec!["http://u:p@127.0.0.1:3000/api/metrics?x=1".to_owned()];
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
        assert_eq!(jobs[0].query.as_deref(), Some("x=1"));
        assert_eq!(jobs[0].static_groups[0].targets, ["127.0.0.1:3000"]);
        assert_eq!(jobs[0].timeout, Duration::from_secs(1));
        assert_eq!(
            jobs[0].http.basic_auth,
            Some(("u".to_owned(), "p".to_owned()))
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
