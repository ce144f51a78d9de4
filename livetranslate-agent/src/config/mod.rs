//! Configuration: it only parses and assembles. The command-line flags ([`cli`]), the YAML
//! file ([`file`], after `${VAR}` expansion by [`env`]) are merged — flags win — and each
//! section is handed to the component that owns it, which checks it:
//!
//! | section | owner |
//! |---|---|
//! | `listen` | [`crate::server::listen_address`] |
//! | `scrape`, `scrape_configs` | [`crate::metrics::job`] |
//! | `remote_write` | [`crate::metrics::remote_write::config`] |
//! | `logs` (and `logs.loki`) | [`crate::logs::config`] ([`crate::loki::config`]) |
//!
//! A component's error names the key path of the bad value (`scrape_configs[0].timeout`);
//! [`Config::load`] turns it into `file:line:column` with [`locate`].
//!
//! A promtail.yml ([`promtail`]) is read too: the format is told from the file's keys (or
//! `--config-format`), and its sections are handed to the same components. `--config` and
//! Promtail's `-config.file` may name one file each, one of each format: the promtail.yml
//! then gives the log half and the server, the agent's file the rest.

pub mod cli;
pub mod env;
pub mod file;
pub mod locate;
pub mod promtail;
mod summary;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cli::{Cli, ConfigFormat};
pub use file::FileConfig;
pub use promtail::{FileFormat, PromtailFile};

use crate::logs::config::LogsFlags;
use crate::logs::LogsConfig;
use crate::metrics::job::{build_jobs, ScrapeFlags, ScrapeJob};
use crate::metrics::remote_write::RemoteWriteConfig;
use crate::validate::{KeyPath, ValidationError};
use livetranslate_telemetry::names::{
    is_reserved_label_name as reserved_label_name, is_valid_label_name as valid_label_name,
};

/// Default bound on the final flush at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration that cannot be used. [`fmt::Display`] gives a one-line message that names
/// the file, line and column where the value was written (or the flag).
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
    #[error("{}{error}", Located(location))]
    Invalid {
        /// The file, line and column of the key, when it was written in the file.
        location: Option<(PathBuf, usize, usize)>,
        /// What is wrong, and the key path or flag.
        error: ValidationError,
    },
}

/// Displays `file:line:column: ` (or nothing).
struct Located<'a>(&'a Option<(PathBuf, usize, usize)>);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((p, l, c)) => write!(f, "{}:{l}:{c}: ", p.display()),
            None => Ok(()),
        }
    }
}

impl From<ValidationError> for ConfigError {
    fn from(error: ValidationError) -> Self {
        ConfigError::Invalid {
            location: None,
            error,
        }
    }
}

impl ConfigError {
    /// Points an [`ConfigError::Invalid`] error at its key in `text`, the file `path`'s
    /// (expanded) contents.
    pub fn locate_in(self, path: &Path, text: &str) -> ConfigError {
        match self {
            ConfigError::Invalid {
                location: None,
                error,
            } => {
                let location = error
                    .path()
                    .and_then(|p| locate::locate(text, p))
                    .map(|(l, c)| (path.to_owned(), l, c));
                ConfigError::Invalid { location, error }
            }
            other => other,
        }
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
    /// The files it came from, with their formats.
    pub files: Vec<(PathBuf, FileFormat)>,
    /// A log level asked for by the configuration (`server.log_level`, `-log.level`).
    pub log_level: Option<String>,
}

/// One configuration file, read (and expanded when its format says so).
struct Source {
    path: PathBuf,
    text: String,
}

/// The files of a configuration, by format.
#[derive(Default)]
struct Sources {
    agent: Option<(Source, FileConfig)>,
    promtail: Option<(Source, PromtailFile)>,
}

/// Strips serde_yaml's " at line N column M" suffix (the location is printed up front).
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_owned(),
        _ => msg,
    }
}

/// Reads the file and expands `${VAR}` with `env`: the text the YAML is parsed from.
pub fn read_config_text(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
        path: path.to_owned(),
        line: 1,
        column: 1,
        message: "not UTF-8".to_owned(),
    })?;
    env::expand_env(&text, env).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// Parses expanded configuration text (an empty file is an empty configuration).
pub fn parse_config_text(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: yaml_message(&e),
        }
    })
}

/// The top-level keys of a YAML text (none when it does not parse).
fn top_level_keys(text: &str) -> Vec<String> {
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Ok(serde_yaml_ng::Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks the standard labels of `labels:`.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    let at = KeyPath::root().key("labels");
    for (name, value) in labels {
        let here = at.key(name);
        if !valid_label_name(name) || reserved_label_name(name) {
            return Err(ValidationError::at(
                here,
                format!("invalid label name {name:?}"),
            ));
        }
        if matches!(name.as_str(), "job" | "instance") {
            return Err(ValidationError::at(
                here,
                format!("{name:?} is set per target, not globally"),
            ));
        }
        if value.is_empty() {
            return Err(ValidationError::at(here, format!("{name} is empty")));
        }
    }
    Ok(())
}

/// Reads the files `--config` and `-config.file` name, each in its format.
fn read_sources(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Sources, ConfigError> {
    let mut sources = Sources::default();
    for (path, flag) in [
        (&cli.config, "--config"),
        (&cli.config_file, "-config.file"),
    ] {
        let Some(path) = path else { continue };
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let raw = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: "not UTF-8".to_owned(),
        })?;
        let format = match cli.config_format {
            ConfigFormat::Agent => FileFormat::Agent,
            ConfigFormat::Promtail => FileFormat::Promtail,
            ConfigFormat::Auto => {
                promtail::detect(&raw).map_err(|message| ConfigError::Syntax {
                    path: path.to_owned(),
                    line: 1,
                    column: 1,
                    message,
                })?
            }
        };
        // Promtail expands variables only with -config.expand-env; the agent's file always.
        let text = if format == FileFormat::Agent || cli.expand_env {
            env::expand_env(&raw, env).map_err(|e| ConfigError::Syntax {
                path: path.to_owned(),
                line: e.line,
                column: e.column,
                message: e.message,
            })?
        } else {
            raw
        };
        let source = Source {
            path: path.to_owned(),
            text,
        };
        let twice = || {
            ConfigError::Invalid {
            location: None,
            error: ValidationError::flag(
                flag,
                "two configuration files in the same format; give one of each (--config for the agent's, -config.file for a promtail.yml)",
            ),
        }
        };
        match format {
            FileFormat::Agent => {
                let file = parse_config_text(&source.path, &source.text)?;
                if sources.agent.replace((source, file)).is_some() {
                    return Err(twice());
                }
            }
            FileFormat::Promtail => {
                let file: PromtailFile = if source.text.trim().is_empty() {
                    PromtailFile::default()
                } else {
                    serde_yaml_ng::from_str(&source.text).map_err(|e| {
                        let (line, column) =
                            e.location().map_or((1, 1), |l| (l.line(), l.column()));
                        ConfigError::Syntax {
                            path: source.path.clone(),
                            line,
                            column,
                            message: yaml_message(&e),
                        }
                    })?
                };
                if sources.promtail.replace((source, file)).is_some() {
                    return Err(twice());
                }
            }
        }
    }
    Ok(sources)
}

impl Config {
    /// Builds the configuration from flags and the files `--config` / `-config.file` name
    /// (each the agent's format or a promtail.yml), reading environment variables through
    /// `env` for `${VAR}` expansion.
    pub fn load(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let sources = read_sources(cli, env)?;
        let Some((psrc, pfile)) = sources.promtail else {
            return match sources.agent {
                None => Self::from_parts(cli, FileConfig::default()),
                Some((src, file)) => {
                    let mut c = Self::from_parts(cli, file)
                        .map_err(|e| e.locate_in(&src.path, &src.text))?;
                    c.files = vec![(src.path, FileFormat::Agent)];
                    Ok(c)
                }
            };
        };
        let in_promtail =
            |e: ValidationError| ConfigError::from(e).locate_in(&psrc.path, &psrc.text);
        let parts = pfile.into_parts().map_err(in_promtail)?;
        let (mut file, agent_src) = match sources.agent {
            Some((src, f)) => (f, Some(src)),
            None => (FileConfig::default(), None),
        };
        let in_agent = |e: ConfigError| match &agent_src {
            Some(src) => e.locate_in(&src.path, &src.text),
            None => e,
        };
        if agent_src.is_some() {
            let keys = top_level_keys(agent_src.as_ref().map_or("", |s| s.text.as_str()));
            if keys.iter().any(|k| k == "logs") {
                return Err(in_agent(ConfigError::from(ValidationError::at(
                    KeyPath::root().key("logs"),
                    "the logs are configured by the promtail.yml given with -config.file; remove `logs` from this file",
                ))));
            }
            if keys.iter().any(|k| k == "listen") && parts.listen.is_some() {
                return Err(in_agent(ConfigError::from(ValidationError::at(
                    KeyPath::root().key("listen"),
                    "the promtail.yml's server block gives the listen address too; keep one",
                ))));
            }
        }
        if file.listen.is_none() {
            if let Some((l, at)) = &parts.listen {
                crate::server::listen_address(None, Some(l))
                    .map_err(|e| in_promtail(ValidationError::at(at.clone(), e.message)))?;
                file.listen = Some(l.to_string());
            }
        }
        if file.shutdown_timeout.is_none() {
            file.shutdown_timeout = parts.shutdown_timeout;
        }
        let origins = parts.origins;
        file.logs = parts.logs;
        // The client's external labels are the lowest precedence, under the standard labels.
        let external = parts.external_labels;
        let mut c = Self::from_parts_with(cli, file, &external, |e| match e {
            ConfigError::Invalid {
                location: None,
                error,
            } if error.path().is_some_and(|p| {
                p.segments().first() == Some(&crate::validate::Segment::Key("logs".into()))
            }) =>
            {
                let path = error.path().map(|p| promtail::promtail_path(p, &origins));
                let error = ValidationError {
                    origin: path.map_or(error.origin.clone(), crate::validate::Origin::Key),
                    message: error.message,
                };
                ConfigError::from(error).locate_in(&psrc.path, &psrc.text)
            }
            other => in_agent(other),
        })?;
        c.log_level = c.log_level.or(parts.log_level);
        c.files = agent_src
            .map(|s| (s.path, FileFormat::Agent))
            .into_iter()
            .chain([(psrc.path.clone(), FileFormat::Promtail)])
            .collect();
        Ok(c)
    }

    /// Merges flags over a parsed file and has each component check its section. Errors
    /// carry the key path (see [`ConfigError::locate_in`]).
    pub fn from_parts(cli: &Cli, file: FileConfig) -> Result<Config, ConfigError> {
        Self::from_parts_with(cli, file, &BTreeMap::new(), |e| e)
    }

    /// [`Config::from_parts`] with labels under the standard ones (a Promtail client's
    /// external labels) and a way to place errors.
    fn from_parts_with(
        cli: &Cli,
        file: FileConfig,
        external_labels: &BTreeMap<String, String>,
        place: impl Fn(ConfigError) -> ConfigError,
    ) -> Result<Config, ConfigError> {
        Self::assemble(cli, file, external_labels).map_err(place)
    }

    fn assemble(
        cli: &Cli,
        file: FileConfig,
        external_labels: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let listen = crate::server::listen_address(cli.listen.as_deref(), file.listen.as_deref())?;
        check_labels(&file.labels)?;
        let jobs = build_jobs(
            ScrapeFlags {
                targets: &cli.scrape_targets,
                interval: cli.scrape_interval.map(|d| d.0),
            },
            file.scrape,
            file.scrape_configs,
        )?;
        let remote_write = RemoteWriteConfig::from_parts(
            cli.remote_write_url.as_deref(),
            cli.wal_dir.as_deref(),
            file.remote_write,
            &KeyPath::root().key("remote_write"),
        )?;
        let dry_run = cli.dry_run || file.dry_run;
        let shutdown_timeout = crate::duration::duration_in(
            file.shutdown_timeout,
            DEFAULT_SHUTDOWN_TIMEOUT,
            (crate::duration::MS, crate::duration::HOUR),
        )
        .map_err(|m| ValidationError::at(KeyPath::root().key("shutdown_timeout"), m))?;
        let mut stream_labels = external_labels.clone();
        stream_labels.extend(file.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let logs = LogsConfig::from_parts(
            LogsFlags {
                log_paths: &cli.log_paths,
                loki_url: cli.loki_url.as_deref(),
                positions_file: cli.positions_file.as_deref(),
            },
            file.logs,
            &stream_labels,
            dry_run,
            shutdown_timeout,
        )?;
        Ok(Config {
            source: cli.config.clone().or_else(|| cli.config_file.clone()),
            listen,
            labels: file.labels,
            jobs,
            remote_write,
            dry_run,
            logs,
            shutdown_timeout,
            files: Vec::new(),
            log_level: cli.log_level.clone(),
        })
    }

    /// A human-readable summary (printed by `--check-config`).
    pub fn summary(&self) -> String {
        summary::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::job::DEFAULT_JOB_NAME;
    use crate::server::DEFAULT_LISTEN;

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
        assert_eq!(j.params["x"], ["1"]);
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
        assert!(bad(&[], "labels: {'a-b': x}").is_err());
        assert!(bad(&[], "remote_write: {url: 'http://127.0.0.1:1/w', queue: {capacity: 10, max_samples_per_send: 20}}").is_err());
        assert!(bad(&["--loki-url", "nope"], "{}").is_err());
        assert!(bad(
            &[],
            "scrape_configs: [{job_name: a, bearer_token: x, basic_auth: {username: u}}]"
        )
        .is_err());
    }

    #[test]
    fn errors_after_parsing_name_file_line_and_column() {
        let text = "listen: 127.0.0.1:1\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    interval: 1s\n    timeout: 20s\nlogs:\n  inputs:\n    - paths: ['/x/*.log']\n      multiline: {first_line: '(['}\n";
        let located = |text: &str| -> String {
            let p = Path::new("agent.yml");
            let file = match parse_config_text(p, text) {
                Ok(f) => f,
                Err(e) => panic!("{e}"),
            };
            match Config::from_parts(&cli(&[]), file) {
                Ok(_) => panic!("accepted"),
                Err(e) => e.locate_in(p, text).to_string(),
            }
        };
        assert_eq!(
            located(text),
            "agent.yml:6:5: scrape_configs[1].timeout: must be > 0 and not longer than the interval"
        );
        let e = located(&text.replace("timeout: 20s", "timeout: 1s"));
        assert!(
            e.starts_with("agent.yml:10:19: logs.inputs[0].multiline.first_line: "),
            "{e}"
        );
        let e = located("remote_write:\n  url: http://x/w\n  queue:\n    capacity: 10\n");
        assert!(
            e.starts_with("agent.yml:3:3: remote_write.queue.max_samples_per_send: "),
            "{e}"
        );
        let e = located("labels:\n  job: x\n");
        assert!(e.starts_with("agent.yml:2:3: labels.job: "), "{e}");
        let e = located(
            "logs:\n  inputs:\n    - paths: ['/var/log/syslog']\n      format: syslog\n      syslog:\n        timezone: Mars/Olympus\n",
        );
        assert!(
            e.starts_with(
                "agent.yml:6:9: logs.inputs[0].syslog.timezone: unknown location \"Mars/Olympus\""
            ),
            "{e}"
        );
        let e = located("logs:\n  inputs:\n    - paths: ['/x']\n      docker: {}\n");
        assert!(
            e.starts_with("agent.yml:4:7: logs.inputs[0].docker: "),
            "{e}"
        );
    }

    #[test]
    fn flag_errors_name_the_flag_not_a_line() {
        let f = yaml("remote_write: {url: 'http://127.0.0.1:2/w'}\n");
        let e = Config::from_parts(&cli(&["--remote-write-url", "nope"]), f)
            .map(|_| ())
            .map_err(|e| {
                e.locate_in(
                    Path::new("agent.yml"),
                    "remote_write: {url: 'http://127.0.0.1:2/w'}\n",
                )
                .to_string()
            });
        assert!(e.is_err_and(|e| e.starts_with("--remote-write-url: ")));
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
