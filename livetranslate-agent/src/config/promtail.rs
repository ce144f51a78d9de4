//! promtail.yml, read as Promtail 2.7 reads it, and handed to the components that own each
//! part: `server` → the listen address ([`crate::server`]), `positions` and
//! `scrape_configs` → the log inputs ([`crate::logs::config`]), `clients` → the Loki client
//! ([`crate::loki::config`]). Relabelling runs on each static target with the one engine the
//! metrics side uses ([`crate::relabel`]); `pipeline_stages` are [`crate::logs::stages`].
//!
//! Whatever the agent does not support is an error naming the key and its line and column,
//! never ignored: other service discoveries (`kubernetes_sd_configs`, …), other sources
//! (`journal`, `syslog`, …), `limits_config`, several clients. Two keys are accepted that
//! change nothing: `server.grpc_listen_port` / `grpc_listen_address` (the agent serves no
//! gRPC; Promtail configurations set it to 0) and `server.enable_runtime_reload` (reload is
//! always on: SIGHUP, `POST /-/reload`, `/reload`).
//!
//! What differs from Promtail, deliberately: without `backoff_config.max_retries` a batch is
//! retried until Loki takes it (the files are the buffer; Promtail drops it after 10
//! retries); `-config.expand-env` refuses an undefined `${VAR}` (unless `${VAR:-default}`)
//! instead of making it empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::duration::HumanDuration;
use crate::logs::input::LogInput;
use crate::logs::stages::StageConfig;
use crate::logs::{Format, LogsFile};
use crate::loki::LokiFile;
use crate::relabel::{self, RelabelConfig};
use crate::validate::{KeyPath, Segment, ValidationError};
use livetranslate_push::{BasicAuthSettings, TlsSettings};
use livetranslate_telemetry::names::{is_reserved_label_name, is_valid_label_name};

/// Promtail's default positions file.
pub const DEFAULT_POSITIONS_FILE: &str = "/var/log/positions.yaml";

/// The whole promtail.yml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromtailFile {
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerSection,
    /// Where read offsets are kept.
    #[serde(default)]
    pub positions: PositionsSection,
    /// Where logs are pushed.
    #[serde(default)]
    pub clients: Vec<ClientSection>,
    /// The single client of old Promtail versions.
    pub client: Option<ClientSection>,
    /// What to read.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeSection>,
    /// How often globs are evaluated again.
    #[serde(default)]
    pub target_config: TargetSection,
    /// Promtail's read rate limits: not supported.
    pub limits_config: Option<Value>,
    /// Stream lag labels: not supported.
    pub options: Option<Value>,
    /// Tracing: not supported.
    pub tracing: Option<Value>,
    /// File watch settings (Promtail 2.8): not supported.
    pub global: Option<Value>,
}

/// `server:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address (default all interfaces).
    pub http_listen_address: Option<String>,
    /// Listen port (default 9080, the agent's; 0 picks a free one).
    pub http_listen_port: Option<u16>,
    /// Only `tcp`.
    pub http_listen_network: Option<String>,
    /// Accepted; the agent serves no gRPC.
    pub grpc_listen_address: Option<String>,
    /// Accepted; the agent serves no gRPC.
    pub grpc_listen_port: Option<u16>,
    /// `debug`, `info`, `warn`, `error` (`RUST_LOG` wins).
    pub log_level: Option<String>,
    /// Bound on the final flush at shutdown.
    pub graceful_shutdown_timeout: Option<HumanDuration>,
    /// Accepted; reload is always on.
    pub enable_runtime_reload: Option<bool>,
    /// Only `true`: the agent always serves its own metrics.
    pub register_instrumentation: Option<bool>,
    /// Only `false`: the HTTP server (`/ready`, `/metrics`, reload) always runs.
    pub disable: Option<bool>,
}

/// `positions:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionsSection {
    /// The positions file (default `/var/log/positions.yaml`).
    pub filename: Option<PathBuf>,
    /// How often it is written.
    pub sync_period: Option<HumanDuration>,
    /// Start over when it is corrupt.
    #[serde(default)]
    pub ignore_invalid_yaml: bool,
}

/// `target_config:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// How often globs are evaluated again.
    pub sync_period: Option<HumanDuration>,
    /// Only `false`.
    pub stdin: Option<bool>,
}

/// `backoff_config:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSection {
    /// First retry delay.
    pub min_period: Option<HumanDuration>,
    /// Longest retry delay.
    pub max_period: Option<HumanDuration>,
    /// Give a batch up after this many retries (default: never).
    pub max_retries: Option<u32>,
}

/// `tls_config:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Client key.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Not supported.
    pub server_name: Option<String>,
    /// Not supported.
    pub min_version: Option<String>,
}

/// `authorization:` (Prometheus' HTTP client).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationSection {
    /// Only `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The token.
    pub credentials: Option<String>,
    /// A file holding the token.
    pub credentials_file: Option<PathBuf>,
}

/// One entry of `clients:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// The push URL (`http://loki:3100/loki/api/v1/push`; a base URL works too).
    pub url: Option<String>,
    /// A name (accepted).
    pub name: Option<String>,
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Batch age limit.
    pub batchwait: Option<HumanDuration>,
    /// Batch size limit, bytes.
    pub batchsize: Option<usize>,
    /// Request timeout.
    pub timeout: Option<HumanDuration>,
    /// Retries.
    #[serde(default)]
    pub backoff_config: BackoffSection,
    /// Labels on every stream of this client (lowest precedence).
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthSettings>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// Bearer token file.
    pub bearer_token_file: Option<PathBuf>,
    /// `authorization: {type: Bearer, credentials(_file)}`.
    pub authorization: Option<AuthorizationSection>,
    /// TLS.
    pub tls_config: Option<TlsSection>,
    /// Not supported.
    pub proxy_url: Option<String>,
    /// Not supported: `oauth2`.
    pub oauth2: Option<Value>,
    /// Accepted (redirects are followed).
    pub follow_redirects: Option<bool>,
    /// Accepted.
    pub enable_http2: Option<bool>,
}

/// One `static_configs` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSection {
    /// Hosts (`__address__`); Promtail's are `localhost`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels, with `__path__` (the glob) and `__path_exclude__`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One entry of `scrape_configs:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeSection {
    /// The job's name.
    pub job_name: Option<String>,
    /// Files to read.
    #[serde(default)]
    pub static_configs: Vec<StaticSection>,
    /// Relabelling of each target's labels before it is tailed.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// The stages every line goes through.
    #[serde(default)]
    pub pipeline_stages: Vec<StageConfig>,
    /// Promtail's other discoveries and sources: refused by name.
    pub journal: Option<Value>,
    /// Refused (see the module documentation).
    pub syslog: Option<Value>,
    /// Refused (see the module documentation).
    pub gcplog: Option<Value>,
    /// Refused (see the module documentation).
    pub loki_push_api: Option<Value>,
    /// Refused (see the module documentation).
    pub windows_events: Option<Value>,
    /// Refused (see the module documentation).
    pub kafka: Option<Value>,
    /// Refused (see the module documentation).
    pub gelf: Option<Value>,
    /// Refused (see the module documentation).
    pub cloudflare: Option<Value>,
    /// Refused (see the module documentation).
    pub heroku_drain: Option<Value>,
    /// Refused (see the module documentation).
    pub azure_event_hubs: Option<Value>,
    /// Refused (see the module documentation).
    pub file_sd_configs: Option<Value>,
    /// Refused (see the module documentation).
    pub kubernetes_sd_configs: Option<Value>,
    /// Refused (see the module documentation).
    pub docker_sd_configs: Option<Value>,
    /// Refused (see the module documentation).
    pub consul_sd_configs: Option<Value>,
    /// Refused (see the module documentation).
    pub consulagent_sd_configs: Option<Value>,
    /// Refused (see the module documentation).
    pub encoding: Option<Value>,
    /// Refused (see the module documentation).
    pub decompression: Option<Value>,
}

impl ScrapeSection {
    /// The first of Promtail's other sources or discoveries this entry uses.
    fn other_source(&self) -> Option<&'static str> {
        let set = [
            ("journal", self.journal.is_some()),
            ("syslog", self.syslog.is_some()),
            ("gcplog", self.gcplog.is_some()),
            ("loki_push_api", self.loki_push_api.is_some()),
            ("windows_events", self.windows_events.is_some()),
            ("kafka", self.kafka.is_some()),
            ("gelf", self.gelf.is_some()),
            ("cloudflare", self.cloudflare.is_some()),
            ("heroku_drain", self.heroku_drain.is_some()),
            ("azure_event_hubs", self.azure_event_hubs.is_some()),
            ("file_sd_configs", self.file_sd_configs.is_some()),
            (
                "kubernetes_sd_configs",
                self.kubernetes_sd_configs.is_some(),
            ),
            ("docker_sd_configs", self.docker_sd_configs.is_some()),
            ("consul_sd_configs", self.consul_sd_configs.is_some()),
            (
                "consulagent_sd_configs",
                self.consulagent_sd_configs.is_some(),
            ),
            ("encoding", self.encoding.is_some()),
            ("decompression", self.decompression.is_some()),
        ];
        set.into_iter().find(|(_, on)| *on).map(|(k, _)| k)
    }
}

/// Scrape-config keys Promtail has that this agent refuses, with why.
const OTHER_SOURCES: &[(&str, &str)] = &[
    ("journal", "the systemd journal is not read by this agent; tail /var/log files"),
    ("syslog", "the agent does not receive syslog over the network; tail the files rsyslog writes"),
    ("gcplog", "Google Cloud Logging is not supported"),
    ("loki_push_api", "the agent does not receive pushes"),
    ("windows_events", "Windows event logs are not read by this agent"),
    ("kafka", "Kafka is not supported"),
    ("gelf", "GELF is not supported"),
    ("cloudflare", "Cloudflare logs are not supported"),
    ("heroku_drain", "Heroku drains are not supported"),
    ("azure_event_hubs", "Azure Event Hubs are not supported"),
    ("file_sd_configs", "only static_configs are supported for log files"),
    ("kubernetes_sd_configs", "only static_configs are supported for log files (use a __path__ glob under /var/log/pods)"),
    ("docker_sd_configs", "only static_configs are supported for log files (use a __path__ glob under /var/lib/docker/containers)"),
    ("consul_sd_configs", "only static_configs are supported for log files"),
    ("consulagent_sd_configs", "only static_configs are supported for log files"),
    ("encoding", "only UTF-8 files are read"),
    ("decompression", "compressed files are not read"),
];

/// Where a log input came from in the promtail.yml.
#[derive(Debug, Clone)]
pub struct InputOrigin {
    /// `scrape_configs[i]`.
    pub scrape: KeyPath,
    /// `scrape_configs[i].static_configs[j]`.
    pub group: KeyPath,
}

/// What a promtail.yml gives the components.
#[derive(Debug, Default)]
pub struct PromtailParts {
    /// The listen address, and where it was written.
    pub listen: Option<(String, KeyPath)>,
    /// The log half, in the agent's terms.
    pub logs: LogsFile,
    /// The client's external labels.
    pub external_labels: BTreeMap<String, String>,
    /// `server.graceful_shutdown_timeout`.
    pub shutdown_timeout: Option<HumanDuration>,
    /// `server.log_level`.
    pub log_level: Option<String>,
    /// Where each input of `logs.inputs` came from.
    pub origins: Vec<InputOrigin>,
}

fn refuse(at: KeyPath, why: impl Into<String>) -> ValidationError {
    ValidationError::at(
        at,
        format!("not supported by livetranslate-agent: {}", why.into()),
    )
}

impl PromtailFile {
    /// Checks what the YAML types could not, and converts to the agent's terms.
    pub fn into_parts(self) -> Result<PromtailParts, ValidationError> {
        let root = KeyPath::root();
        for (key, value) in [
            ("limits_config", &self.limits_config),
            ("options", &self.options),
            ("tracing", &self.tracing),
            ("global", &self.global),
        ] {
            if value.is_some() {
                return Err(refuse(
                    root.key(key),
                    format!("Promtail's `{key}` block has no equivalent here"),
                ));
            }
        }
        let s = &self.server;
        let srv = root.key("server");
        if s.http_listen_network.as_deref().is_some_and(|n| n != "tcp") {
            return Err(refuse(srv.key("http_listen_network"), "only tcp"));
        }
        if s.register_instrumentation == Some(false) {
            return Err(refuse(
                srv.key("register_instrumentation"),
                "the agent always serves /metrics",
            ));
        }
        if s.disable == Some(true) {
            return Err(refuse(
                srv.key("disable"),
                "the HTTP server (/ready, /metrics, reload) always runs",
            ));
        }
        if let Some(level) = &s.log_level {
            if !matches!(level.as_str(), "debug" | "info" | "warn" | "error") {
                return Err(ValidationError::at(
                    srv.key("log_level"),
                    format!("{level:?} is not one of debug, info, warn, error"),
                ));
            }
        }
        let listen = match (&s.http_listen_address, s.http_listen_port) {
            (None, None) => None,
            (addr, port) => {
                let host = addr
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .unwrap_or("0.0.0.0");
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                let at = if port.is_some() {
                    srv.key("http_listen_port")
                } else {
                    srv.key("http_listen_address")
                };
                Some((format!("{host}:{}", port.unwrap_or(9080)), at))
            }
        };
        if self.target_config.stdin == Some(true) {
            return Err(refuse(
                root.key("target_config").key("stdin"),
                "logs are read from files only",
            ));
        }

        let (client, client_at) = match (self.client, self.clients.len()) {
            (Some(_), n) if n > 0 => {
                return Err(ValidationError::at(
                    root.key("client"),
                    "give either `client` or `clients`, not both",
                ))
            }
            (Some(c), _) => (Some(c), root.key("client")),
            (None, 0) => (None, root.key("clients")),
            (None, 1) => (
                self.clients.into_iter().next(),
                root.key("clients").index(0),
            ),
            (None, _) => {
                return Err(refuse(
                    root.key("clients").index(1),
                    "one client only (run one agent per Loki to ship to several)",
                ))
            }
        };
        let mut loki_url = None;
        let mut loki = LokiFile::default();
        let mut external_labels = BTreeMap::new();
        if let Some(c) = client {
            let (url, file, labels) = client_parts(c, &client_at)?;
            loki_url = Some(url);
            loki = file;
            external_labels = labels;
        }

        let mut inputs = Vec::new();
        let mut origins = Vec::new();
        let mut jobs = BTreeSet::new();
        for (i, sc) in self.scrape_configs.into_iter().enumerate() {
            let at = root.key("scrape_configs").index(i);
            let Some(job) = sc.job_name.clone().filter(|j| !j.is_empty()) else {
                return Err(ValidationError::at(
                    at.key("job_name"),
                    "every scrape config needs a job_name",
                ));
            };
            if !jobs.insert(job.clone()) {
                return Err(ValidationError::at(
                    at.key("job_name"),
                    format!("job_name {job:?} is used twice"),
                ));
            }
            if let Some(key) = sc.other_source() {
                let why = OTHER_SOURCES
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or("", |(_, w)| *w);
                return Err(refuse(at.key(key), why));
            }
            if sc.static_configs.is_empty() {
                return Err(ValidationError::at(
                    at.key("static_configs"),
                    "no static_configs: nothing to read (each entry names files with a __path__ label)",
                ));
            }
            for (j, group) in sc.static_configs.iter().enumerate() {
                let g = at.key("static_configs").index(j);
                let targets: Vec<Option<&String>> = if group.targets.is_empty() {
                    vec![None]
                } else {
                    group.targets.iter().map(Some).collect()
                };
                for target in targets {
                    let mut labels: BTreeMap<String, String> = group.labels.clone();
                    if let Some(t) = target {
                        labels.insert("__address__".to_owned(), t.clone());
                    }
                    let Some(kept) =
                        relabel::apply(relabel::Labels::from(labels), &sc.relabel_configs)
                    else {
                        tracing::info!(job = %job, "a target was dropped by relabel_configs");
                        continue;
                    };
                    let labels: BTreeMap<String, String> = kept.into();
                    let Some(path) = labels.get("__path__").filter(|p| !p.is_empty()).cloned()
                    else {
                        return Err(ValidationError::at(
                            g.key("labels"),
                            "no __path__ label (after relabelling): the glob of the files to read",
                        ));
                    };
                    let exclude: Vec<String> = labels
                        .get("__path_exclude__")
                        .filter(|p| !p.is_empty())
                        .cloned()
                        .into_iter()
                        .collect();
                    let mut static_labels = BTreeMap::new();
                    for (name, value) in labels {
                        if name.starts_with("__") {
                            continue;
                        }
                        if !is_valid_label_name(&name) || is_reserved_label_name(&name) {
                            return Err(ValidationError::at(
                                g.key("labels").key(&name),
                                format!("invalid label name {name:?}"),
                            ));
                        }
                        if value.is_empty() {
                            continue;
                        }
                        static_labels.insert(name, value);
                    }
                    let input = LogInput {
                        paths: vec![path],
                        exclude,
                        format: Format::Raw,
                        labels: static_labels,
                        promote: Vec::new(),
                        multiline: None,
                        syslog: None,
                        docker: None,
                        kubernetes: None,
                        filename_label: Some(true),
                        pipeline_stages: sc.pipeline_stages.clone(),
                        job: Some(job.clone()),
                    };
                    if !inputs.contains(&input) {
                        inputs.push(input);
                        origins.push(InputOrigin {
                            scrape: at.clone(),
                            group: g.clone(),
                        });
                    }
                }
            }
        }

        Ok(PromtailParts {
            listen,
            logs: LogsFile {
                inputs,
                loki_url,
                positions_file: Some(
                    self.positions
                        .filename
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_POSITIONS_FILE)),
                ),
                loki,
                sync_period: self.positions.sync_period,
                discover_interval: self.target_config.sync_period,
                ignore_invalid_positions: self.positions.ignore_invalid_yaml,
                ..LogsFile::default()
            },
            external_labels,
            shutdown_timeout: s.graceful_shutdown_timeout,
            log_level: s.log_level.clone(),
            origins,
        })
    }
}

/// A client's URL, Loki settings and external labels.
fn client_parts(
    c: ClientSection,
    at: &KeyPath,
) -> Result<(String, LokiFile, BTreeMap<String, String>), ValidationError> {
    let Some(url) = c.url.filter(|u| !u.trim().is_empty()) else {
        return Err(ValidationError::at(at.key("url"), "a client needs a url"));
    };
    if c.proxy_url.is_some() {
        return Err(refuse(at.key("proxy_url"), "proxies"));
    }
    if c.oauth2.is_some() {
        return Err(refuse(at.key("oauth2"), "OAuth 2"));
    }
    let mut bearer_token = c.bearer_token;
    let mut bearer_token_file = c.bearer_token_file;
    if let Some(a) = c.authorization {
        let here = at.key("authorization");
        if a.kind
            .as_deref()
            .is_some_and(|k| !k.eq_ignore_ascii_case("bearer"))
        {
            return Err(refuse(here.key("type"), "only the Bearer type"));
        }
        if bearer_token.is_some() || bearer_token_file.is_some() {
            return Err(ValidationError::at(
                here,
                "give either authorization or bearer_token(_file), not both",
            ));
        }
        bearer_token = a.credentials;
        bearer_token_file = a.credentials_file;
    }
    let tls = match c.tls_config {
        None => None,
        Some(t) => {
            let here = at.key("tls_config");
            if t.server_name.is_some() {
                return Err(refuse(
                    here.key("server_name"),
                    "the server name is the URL's host",
                ));
            }
            if t.min_version.is_some() {
                return Err(refuse(
                    here.key("min_version"),
                    "TLS 1.2 and 1.3 are always accepted",
                ));
            }
            Some(TlsSettings {
                ca_file: t.ca_file,
                cert_file: t.cert_file,
                key_file: t.key_file,
                insecure_skip_verify: t.insecure_skip_verify,
            })
        }
    };
    for (name, value) in &c.external_labels {
        if !is_valid_label_name(name) || is_reserved_label_name(name) {
            return Err(ValidationError::at(
                at.key("external_labels").key(name),
                format!("invalid label name {name:?}"),
            ));
        }
        if let Err(why) = crate::logs::input::check_label_value(value) {
            return Err(ValidationError::at(
                at.key("external_labels").key(name),
                why,
            ));
        }
    }
    let file = LokiFile {
        tenant_id: c.tenant_id.filter(|t| !t.is_empty()),
        basic_auth: c.basic_auth,
        bearer_token,
        bearer_token_file,
        tls,
        timeout: c.timeout,
        min_backoff: c.backoff_config.min_period,
        max_backoff: c.backoff_config.max_period,
        max_retries: c.backoff_config.max_retries,
        batch_size: c.batchsize,
        batch_wait: c.batchwait,
    };
    Ok((url, file, c.external_labels))
}

/// The key a component's error names, in promtail.yml's terms: `logs.loki.batch_size` is
/// `clients[0].batchsize`, `logs.inputs[3].pipeline_stages[1]` is
/// `scrape_configs[1].pipeline_stages[1]`, and so on.
pub fn promtail_path(path: &KeyPath, origins: &[InputOrigin]) -> KeyPath {
    let seg = path.segments();
    let key = |i: usize| match seg.get(i) {
        Some(Segment::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let rest = |from: usize, base: KeyPath| {
        seg[from.min(seg.len())..]
            .iter()
            .fold(base, |p, s| match s {
                Segment::Key(k) => p.key(k),
                Segment::Index(i) => p.index(*i),
            })
    };
    let root = KeyPath::root();
    if key(0) != Some("logs") {
        return path.clone();
    }
    match key(1) {
        Some("loki_url") => root.key("clients").index(0).key("url"),
        Some("loki") => {
            let client = root.key("clients").index(0);
            match key(2) {
                Some("batch_size") => client.key("batchsize"),
                Some("batch_wait") => client.key("batchwait"),
                Some("min_backoff") => client.key("backoff_config").key("min_period"),
                Some("max_backoff") => client.key("backoff_config").key("max_period"),
                Some("max_retries") => client.key("backoff_config").key("max_retries"),
                Some("tls") => rest(3, client.key("tls_config")),
                Some(_) => rest(2, client),
                None => client,
            }
        }
        Some("positions_file") => root.key("positions").key("filename"),
        Some("sync_period") => root.key("positions").key("sync_period"),
        Some("discover_interval") => root.key("target_config").key("sync_period"),
        Some("inputs") => {
            let Some(Segment::Index(i)) = seg.get(2) else {
                return root.key("scrape_configs");
            };
            let Some(o) = origins.get(*i) else {
                return root.key("scrape_configs");
            };
            match key(3) {
                Some("pipeline_stages") => rest(3, o.scrape.clone()),
                Some("paths") => o.group.key("labels").key("__path__"),
                Some("exclude") => o.group.key("labels").key("__path_exclude__"),
                Some("labels") => rest(3, o.group.clone()),
                _ => o.group.clone(),
            }
        }
        _ => root.key("server"),
    }
}

/// Which format a configuration file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// The agent's own (`listen`, `labels`, `logs`, `scrape_configs` of metrics, …).
    Agent,
    /// Promtail's (`server`, `positions`, `clients`, `scrape_configs` of log files).
    Promtail,
}

const PROMTAIL_ONLY: &[&str] = &[
    "server",
    "positions",
    "clients",
    "client",
    "target_config",
    "limits_config",
    "options",
    "tracing",
    "global",
];
const AGENT_ONLY: &[&str] = &[
    "listen",
    "labels",
    "logs",
    "remote_write",
    "scrape",
    "dry_run",
    "shutdown_timeout",
];

/// Keys of a scrape job that only Prometheus's `scrape_configs` have (a job block copied
/// from prometheus.yml is the agent's format, whatever service discovery it uses).
const PROMETHEUS_JOB_ONLY: &[&str] = &[
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "params",
    "honor_labels",
    "honor_timestamps",
    "metric_relabel_configs",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "body_size_limit",
    "target_limit",
    "interval",
    "timeout",
];

/// Tells the format of a configuration from its top-level keys (`scrape_configs` alone is
/// Promtail's when an entry has `pipeline_stages`, a log source such as `journal`, or a
/// `__path__` label, and no key only Prometheus's jobs have). `Err` names two
/// keys of different formats found together.
///
/// ```
/// use livetranslate_agent::config::promtail::{detect, FileFormat};
/// assert_eq!(detect("server: {http_listen_port: 9080}\n"), Ok(FileFormat::Promtail));
/// assert_eq!(detect("logs: {paths: [a]}\n"), Ok(FileFormat::Agent));
/// assert_eq!(
///     detect("scrape_configs:\n  - job_name: a\n    static_configs: [{labels: {__path__: /x}}]\n"),
///     Ok(FileFormat::Promtail)
/// );
/// assert_eq!(
///     detect("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    file_sd_configs: [{files: [t.json]}]\n"),
///     Ok(FileFormat::Agent)
/// );
/// assert!(detect("server: {}\nlogs: {}\n").is_err());
/// ```
pub fn detect(text: &str) -> Result<FileFormat, String> {
    let Ok(Value::Mapping(top)) = serde_yaml_ng::from_str::<Value>(text) else {
        return Ok(FileFormat::Agent);
    };
    let keys: Vec<&str> = top.keys().filter_map(Value::as_str).collect();
    let promtail = keys.iter().find(|k| PROMTAIL_ONLY.contains(k));
    let agent = keys.iter().find(|k| AGENT_ONLY.contains(k));
    match (promtail, agent) {
        (Some(p), Some(a)) => Err(format!(
            "the file mixes keys of promtail.yml (`{p}`) and of the agent's own format (`{a}`); \
             give each its own file (`-config.file` and `--config`)"
        )),
        (Some(_), None) => Ok(FileFormat::Promtail),
        (None, Some(_)) => Ok(FileFormat::Agent),
        (None, None) => {
            let logs_like = top
                .get("scrape_configs")
                .and_then(Value::as_sequence)
                .is_some_and(|jobs| {
                    jobs.iter().any(|j| {
                        j.get("pipeline_stages").is_some()
                            || OTHER_SOURCES
                                .iter()
                                .any(|(k, _)| !k.ends_with("_sd_configs") && j.get(*k).is_some())
                            || j.get("static_configs")
                                .and_then(Value::as_sequence)
                                .is_some_and(|g| {
                                    g.iter().any(|g| {
                                        g.get("labels").and_then(|l| l.get("__path__")).is_some()
                                    })
                                })
                    })
                });
            // Service discoveries are keys of both; these are Prometheus's alone.
            let metrics_like = top
                .get("scrape_configs")
                .and_then(Value::as_sequence)
                .is_some_and(|jobs| {
                    jobs.iter()
                        .any(|j| PROMETHEUS_JOB_ONLY.iter().any(|k| j.get(*k).is_some()))
                });
            Ok(if logs_like && !metrics_like {
                FileFormat::Promtail
            } else {
                FileFormat::Agent
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(yaml: &str) -> Result<PromtailParts, String> {
        let f: PromtailFile = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        f.into_parts().map_err(|e| e.to_string())
    }

    const FULL: &str = r#"
server:
  http_listen_address: 127.0.0.1
  http_listen_port: 9999
  grpc_listen_port: 0
  log_level: info
positions:
  filename: /tmp/positions.yaml
  sync_period: 5s
clients:
  - url: http://loki:3100/loki/api/v1/push
    tenant_id: team-a
    batchwait: 2s
    batchsize: 524288
    timeout: 5s
    backoff_config: {min_period: 100ms, max_period: 10s, max_retries: 20}
    external_labels: {host: node-1}
    basic_auth: {username: u, password: p}
target_config:
  sync_period: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [localhost]
        labels: {job: app, team: speech, __path__: /app/logs/*.log, __path_exclude__: /app/logs/*.gz}
    relabel_configs:
      - source_labels: [team]
        target_label: squad
    pipeline_stages:
      - json: {expressions: {level: level}}
      - labels: {level: }
"#;

    #[test]
    fn a_full_promtail_yml_maps_onto_the_components() {
        let p = match parts(FULL) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(p.listen.map(|l| l.0).as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(
            p.logs.loki_url.as_deref(),
            Some("http://loki:3100/loki/api/v1/push")
        );
        assert_eq!(p.logs.loki.batch_size, Some(524_288));
        assert_eq!(p.logs.loki.max_retries, Some(20));
        assert_eq!(
            p.external_labels.get("host").map(String::as_str),
            Some("node-1")
        );
        let input = &p.logs.inputs[0];
        assert_eq!(input.paths, ["/app/logs/*.log"]);
        assert_eq!(input.exclude, ["/app/logs/*.gz"]);
        assert_eq!(
            input
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
            ["job=app", "squad=speech", "team=speech"]
        );
        assert_eq!(input.filename_label, Some(true));
        assert_eq!(input.pipeline_stages.len(), 2);
        assert_eq!(input.job.as_deref(), Some("app"));
    }

    #[test]
    fn unsupported_keys_are_errors_naming_the_key() {
        let cases = [
            ("limits_config: {readline_rate: 10}\n", "limits_config: not supported"),
            ("scrape_configs:\n  - job_name: j\n    journal: {}\n", "scrape_configs[0].journal: not supported"),
            ("scrape_configs:\n  - job_name: j\n    kubernetes_sd_configs: []\n", "scrape_configs[0].kubernetes_sd_configs: not supported"),
            ("clients: [{url: 'http://a/'}, {url: 'http://b/'}]\n", "clients[1]: not supported"),
            ("clients: [{url: 'http://a/', proxy_url: 'http://p/'}]\n", "clients[0].proxy_url: not supported"),
            ("scrape_configs:\n  - job_name: j\n    static_configs: [{labels: {job: x}}]\n", "scrape_configs[0].static_configs[0].labels: no __path__"),
            ("scrape_configs:\n  - job_name: j\n    static_configs: [{labels: {__path__: /x}}]\n  - job_name: j\n    static_configs: [{labels: {__path__: /y}}]\n", "scrape_configs[1].job_name: job_name \"j\" is used twice"),
            ("server: {disable: true}\n", "server.disable: not supported"),
        ];
        for (yaml, want) in cases {
            let e = parts(yaml).map(|_| ()).unwrap_err();
            assert!(e.starts_with(want), "{yaml}: {e}");
        }
        let e = parts("server: {http_listen_port: 1, bogus: 2}\n")
            .map(|_| ())
            .unwrap_err();
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn relabel_configs_can_drop_a_target_or_set_its_path() {
        let p = parts(
            "scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: [a, b]\n        labels: {__path__: /x/*.log}\n    relabel_configs:\n      - {source_labels: [__address__], regex: a, action: drop}\n      - {target_label: __path__, replacement: /y/*.log}\n",
        )
        .expect("parses");
        assert_eq!(p.logs.inputs.len(), 1);
        assert_eq!(p.logs.inputs[0].paths, ["/y/*.log"]);
    }

    #[test]
    fn component_errors_are_named_in_promtail_terms() {
        let origins = vec![InputOrigin {
            scrape: KeyPath::root().key("scrape_configs").index(2),
            group: KeyPath::root()
                .key("scrape_configs")
                .index(2)
                .key("static_configs")
                .index(0),
        }];
        let p = |s: &str| {
            let mut path = KeyPath::root();
            for part in s.split('.') {
                path = match part.split_once('[') {
                    Some((k, i)) => path
                        .key(k)
                        .index(i.trim_end_matches(']').parse().unwrap_or(0)),
                    None => path.key(part),
                };
            }
            promtail_path(&path, &origins).to_string()
        };
        assert_eq!(p("logs.loki.batch_size"), "clients[0].batchsize");
        assert_eq!(
            p("logs.loki.min_backoff"),
            "clients[0].backoff_config.min_period"
        );
        assert_eq!(p("logs.loki.tls.ca_file"), "clients[0].tls_config.ca_file");
        assert_eq!(p("logs.sync_period"), "positions.sync_period");
        assert_eq!(
            p("logs.inputs[0].pipeline_stages[1].regex.expression"),
            "scrape_configs[2].pipeline_stages[1].regex.expression"
        );
        assert_eq!(
            p("logs.inputs[0].paths"),
            "scrape_configs[2].static_configs[0].labels.__path__"
        );
    }
}
