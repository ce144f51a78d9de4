//! One log input: its YAML form ([`LogInput`], a `logs.inputs` entry or a Promtail
//! `scrape_configs` entry after relabelling) and its compiled form ([`Input`]): globs, the
//! line parser, static labels and the pipeline stages every file of the input runs through.
//!
//! Written once: a native input's `format: docker` / `format: cri` and `multiline:` become the
//! `docker`, `cri` and `multiline` stages of [`super::stages`], the implementation a
//! promtail.yml's `pipeline_stages` use; only the JSON fast path (timestamp and promoted
//! fields read without building a document) and `format: syslog` ([`super::syslog`]) are
//! parsed by the input's own [`Parser`].
//!
//! Where a file sits names it too ([`super::metadata`]): a `format: docker` file under
//! Docker's data root gets its container's labels (`docker:` settings), a `format: cri` file
//! in kubelet's `/var/log/pods` layout gets `namespace`, `pod` and `container`
//! (`kubernetes: false` turns that off; kubelet's compressed and temporary files are then
//! excluded whatever the globs say).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::docker::DockerConfig as ContainerMetadataConfig;
use super::kubernetes::EXCLUDE_GLOBS;
use super::metadata::Source;
use super::parse::{Format, Parser};
use super::paths::{GlobError, Globs};
use super::stages::{self, CriConfig, DockerConfig, Pipeline, StageConfig};
use super::syslog::{SyslogConfig, SyslogParser, ZoneError};
use crate::duration::HumanDuration;
use livetranslate_telemetry::names::{
    is_reserved_label_name as reserved_label_name, is_valid_label_name as valid_label_name,
};

/// `multiline:` settings of a native input: a line matching `first_line` starts a new entry;
/// the lines after it are joined to it (with `\n`), up to `max_lines` lines or `max_wait`
/// without a new line. Run by the `multiline` stage, per stream.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regular expression matching the first line of an entry.
    pub first_line: String,
    /// Most lines joined into one entry (default 500).
    #[serde(default = "default_max_lines")]
    pub max_lines: u64,
    /// Longest time an entry waits for more lines (default 3s).
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

fn default_max_lines() -> u64 {
    500
}

fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}

impl MultilineConfig {
    /// The same rule as a `multiline` stage.
    pub fn stage(&self) -> StageConfig {
        StageConfig::Multiline(stages::MultilineConfig {
            firstline: self.first_line.clone(),
            max_wait_time: Some(format!("{}ns", self.max_wait.0.as_nanos())),
            max_lines: Some(self.max_lines.max(1)),
        })
    }
}

/// One input: files to tail and how to read them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogInput {
    /// Glob patterns (`/app/logs/*.log`, `/var/log/**/*.log`, `{a,b}.log`); new matching
    /// files are picked up while running.
    pub paths: Vec<String>,
    /// Glob patterns of files to leave out (`*.gz`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Line format.
    #[serde(default)]
    pub format: Format,
    /// Static labels of this input's streams.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// JSON fields promoted to labels (keep it to a few low-cardinality fields). The default
    /// is the library's `level` and its four standard labels.
    #[serde(default = "default_promote")]
    pub promote: Vec<String>,
    /// Multi-line joining.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// `format: syslog` settings: the zone of RFC 3164 timestamps (`timezone: local`, `UTC`,
    /// `+01:00`, `Europe/Berlin`).
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
    /// `format: docker` settings: Docker's data root (`/var/lib/docker`) and the container
    /// labels copied to stream labels (`label_allowlist`).
    #[serde(default)]
    pub docker: Option<ContainerMetadataConfig>,
    /// `format: cri`: whether files in kubelet's layout
    /// (`…/<namespace>_<pod>_<uid>/<container>/<n>.log`) get `namespace`, `pod` and
    /// `container` labels from their path and kubelet's `*.gz` / `*.tmp` files are excluded
    /// (default: true).
    #[serde(default)]
    pub kubernetes: Option<bool>,
    /// Whether the file's path is a stream label (`filename`), as Promtail makes it. Off by
    /// default for `format: json` (the library's lines name their service: its streams are
    /// then the same whichever way its lines are shipped, and a line read again after a
    /// rotation or a crash is an exact duplicate Loki drops); on for the other formats, where
    /// the file is the only name a line has.
    #[serde(default)]
    pub filename_label: Option<bool>,
    /// Promtail pipeline stages, run after the format's own stages.
    #[serde(default)]
    pub pipeline_stages: Vec<StageConfig>,
    /// The Promtail `job_name` this input came from (not a YAML key of native inputs).
    #[serde(skip)]
    pub job: Option<String>,
}

/// The default promoted fields: the library's `level` and its standard labels.
pub fn default_promote() -> Vec<String> {
    ["level", "service", "environment", "version", "cluster"]
        .map(str::to_owned)
        .to_vec()
}

impl LogInput {
    /// An input tailing `paths` as JSON lines.
    pub fn json(paths: Vec<String>) -> Self {
        LogInput {
            paths,
            exclude: Vec::new(),
            format: Format::Json,
            labels: BTreeMap::new(),
            promote: default_promote(),
            multiline: None,
            syslog: None,
            docker: None,
            kubernetes: None,
            filename_label: None,
            pipeline_stages: Vec::new(),
            job: None,
        }
    }

    /// Whether `filename` is a stream label (see [`LogInput::filename_label`]).
    pub fn has_filename_label(&self) -> bool {
        self.filename_label.unwrap_or(self.format != Format::Json)
    }

    /// Every stage a file of this input runs through: the format's (`docker`, `cri`), the
    /// native `multiline`, then `pipeline_stages`.
    pub fn stages(&self) -> Vec<StageConfig> {
        let mut out = Vec::new();
        match self.format {
            Format::Docker => out.push(StageConfig::Docker(DockerConfig::default())),
            Format::Cri => out.push(StageConfig::Cri(CriConfig::default())),
            Format::Json | Format::Raw | Format::Syslog => {}
        }
        if let Some(m) = &self.multiline {
            out.push(m.stage());
        }
        out.extend(self.pipeline_stages.iter().cloned());
        out
    }
}

/// Why an input could not be set up. [`InputError::key`] names the offending key of the
/// entry.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A glob pattern is invalid.
    #[error(transparent)]
    Glob(#[from] GlobError),
    /// A path is empty.
    #[error("empty glob in paths")]
    EmptyGlob,
    /// A multiline pattern is invalid.
    #[error("invalid multiline.first_line regex: {0}")]
    Regex(String),
    /// A label name is invalid.
    #[error(
        "invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"
    )]
    Label {
        /// `labels` or `promote`.
        key: &'static str,
        /// The name.
        name: String,
    },
    /// A static label value is empty or holds control characters.
    #[error("label {name}: {reason}")]
    LabelValue {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A pipeline stage is invalid.
    #[error(transparent)]
    Stage(#[from] stages::StageError),
    /// The `syslog.timezone` cannot be used.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// A settings block for another format.
    #[error("`{key}` applies to `format: {format}` inputs only")]
    Misplaced {
        /// `syslog`, `docker` or `kubernetes`.
        key: &'static str,
        /// The format it belongs to.
        format: &'static str,
    },
    /// An empty entry in `docker.label_allowlist`.
    #[error("docker.label_allowlist: empty entry")]
    EmptyAllow,
}

impl InputError {
    /// The key of the input entry the error is about (`paths`, `multiline.first_line`, …).
    pub fn key(&self) -> String {
        match self {
            InputError::Glob(e) => e.key.to_owned(),
            InputError::EmptyGlob => "paths".to_owned(),
            InputError::Regex(_) => "multiline.first_line".to_owned(),
            InputError::Label {
                key: "labels",
                name,
            } => format!("labels.{name}"),
            InputError::LabelValue { name, .. } => format!("labels.{name}"),
            InputError::Label { key, .. } => (*key).to_owned(),
            InputError::Stage(e) => e.key_path(),
            InputError::Zone(_) => "syslog.timezone".to_owned(),
            InputError::Misplaced { key, .. } => (*key).to_owned(),
            InputError::EmptyAllow => "docker.label_allowlist".to_owned(),
        }
    }
}

/// An input with its parser and compiled options.
#[derive(Debug)]
pub struct Input {
    /// Include and exclude globs.
    pub globs: Globs,
    /// The line parser (JSON fast path, or raw text).
    pub parser: Parser,
    /// Static labels.
    pub labels: Vec<(String, String)>,
    /// Whether `filename` is a stream label.
    pub filename_label: bool,
    /// Every stage of the input's files (empty: the fast path).
    pub stages: Vec<StageConfig>,
    /// Whether a stage may hold entries (multiline, partial container lines): then a file's
    /// position must not pass the first line held.
    pub holds: bool,
    /// Promtail's `job_name`, when the input came from a promtail.yml.
    pub job: Option<String>,
    /// Where labels from a file's location come from (Docker, Kubernetes, nowhere).
    pub source: Source,
    /// The configuration it was compiled from (to tell a changed input on reload).
    pub spec: LogInput,
}

/// Whether a label value can go to Loki as written in a configuration: not empty, no control
/// characters.
pub fn check_label_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        Err("empty value")
    } else if value.chars().any(char::is_control) {
        Err("the value holds control characters (a newline, a tab, an escape)")
    } else {
        Ok(())
    }
}

impl Input {
    /// Compiles an input, checking its globs, label names, multi-line pattern and stages.
    pub fn compile(input: &LogInput) -> Result<Input, InputError> {
        for p in &input.paths {
            if p.trim().is_empty() {
                return Err(InputError::EmptyGlob);
            }
        }
        for (key, set, format, wanted) in [
            ("syslog", input.syslog.is_some(), "syslog", Format::Syslog),
            ("docker", input.docker.is_some(), "docker", Format::Docker),
            ("kubernetes", input.kubernetes.is_some(), "cri", Format::Cri),
        ] {
            if set && input.format != wanted {
                return Err(InputError::Misplaced { key, format });
            }
        }
        let source = match input.format {
            Format::Docker => {
                let docker = input.docker.clone().unwrap_or_default();
                if docker.label_allowlist.iter().any(|k| k.trim().is_empty()) {
                    return Err(InputError::EmptyAllow);
                }
                Source::Docker(docker)
            }
            Format::Cri if input.kubernetes != Some(false) => Source::Kubernetes,
            _ => Source::Plain,
        };
        let mut exclude = input.exclude.clone();
        if source == Source::Kubernetes {
            // kubelet's compressed rotated files and its files being compressed: their lines
            // were read before, from the file they were compressed from.
            exclude.extend(EXCLUDE_GLOBS.iter().map(|g| (*g).to_owned()));
        }
        let globs = Globs::new(&input.paths, &exclude)?;
        let parser = match input.format {
            Format::Syslog => Parser::syslog(SyslogParser::new(
                &input.syslog.clone().unwrap_or_default(),
            )?),
            format => Parser::new(format, &input.promote),
        };
        for (key, name) in input
            .labels
            .keys()
            .map(|n| ("labels", n))
            .chain(input.promote.iter().map(|n| ("promote", n)))
        {
            if !valid_label_name(name) || reserved_label_name(name) {
                return Err(InputError::Label {
                    key,
                    name: name.clone(),
                });
            }
        }
        for (name, value) in &input.labels {
            check_label_value(value).map_err(|reason| InputError::LabelValue {
                name: name.clone(),
                reason,
            })?;
        }
        if let Some(m) = &input.multiline {
            // Checked on its own first, so the error names the native key.
            Pipeline::new(&[m.stage()]).map_err(|e| InputError::Regex(e.message))?;
        }
        let stages = input.stages();
        Pipeline::new(&stages).map_err(|mut e| {
            // Indexes of `pipeline_stages` as written, after the format's own stages.
            let own = stages.len() - input.pipeline_stages.len();
            if let Some(first) = e.path.first_mut() {
                first.0 = first.0.saturating_sub(own);
            }
            InputError::Stage(e)
        })?;
        Ok(Input {
            globs,
            parser,
            labels: input
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            filename_label: input.has_filename_label(),
            holds: stages.iter().any(StageConfig::may_hold),
            stages,
            job: input.job.clone(),
            source,
            spec: input.clone(),
        })
    }

    /// A fresh pipeline for one file of this input (`None`: no stages, the fast path).
    pub fn pipeline(&self) -> Option<Pipeline> {
        if self.stages.is_empty() {
            return None;
        }
        // The stages were built once already by `compile`.
        Pipeline::new(&self.stages).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(yaml: &str) -> LogInput {
        match serde_yaml_ng::from_str(yaml) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn errors_name_their_key() {
        let key = |yaml: &str| Input::compile(&input(yaml)).err().map(|e| e.key());
        assert_eq!(key("{paths: ['/x/*.log']}"), None);
        assert_eq!(key("{paths: ['/x/[.log']}").as_deref(), Some("paths"));
        assert_eq!(key("{paths: ['']}").as_deref(), Some("paths"));
        assert_eq!(
            key("{paths: ['/x'], exclude: ['[']}").as_deref(),
            Some("exclude")
        );
        assert_eq!(
            key("{paths: ['/x'], labels: {'bad-name': x}}").as_deref(),
            Some("labels.bad-name")
        );
        assert_eq!(
            key("{paths: ['/x'], labels: {team: \"a\\nb\"}}").as_deref(),
            Some("labels.team")
        );
        assert_eq!(
            key("{paths: ['/x'], promote: ['__x']}").as_deref(),
            Some("promote")
        );
        assert_eq!(
            key("{paths: ['/x'], multiline: {first_line: '(['}}").as_deref(),
            Some("multiline.first_line")
        );
        assert_eq!(
            key("{paths: ['/x'], format: syslog, syslog: {timezone: 'Mars/Olympus'}}").as_deref(),
            Some("syslog.timezone")
        );
        assert_eq!(
            key("{paths: ['/x'], format: syslog, syslog: {timezone: '+02:00'}}"),
            None
        );
        assert_eq!(
            key("{paths: ['/x'], syslog: {timezone: UTC}}").as_deref(),
            Some("syslog")
        );
        assert_eq!(
            key("{paths: ['/x'], format: raw, docker: {}}").as_deref(),
            Some("docker")
        );
        assert_eq!(
            key("{paths: ['/x'], format: json, kubernetes: true}").as_deref(),
            Some("kubernetes")
        );
        assert_eq!(
            key("{paths: ['/x'], format: docker, docker: {label_allowlist: ['']}}").as_deref(),
            Some("docker.label_allowlist")
        );
        // Stages built in code are checked when compiled; the index is the one written.
        let mut bad =
            input("{paths: ['/x'], format: docker, pipeline_stages: [{static_labels: {a: b}}]}");
        bad.pipeline_stages
            .push(StageConfig::Regex(stages::RegexConfig {
                expression: "(".into(),
                source: None,
            }));
        assert_eq!(
            Input::compile(&bad).err().map(|e| e.key()).as_deref(),
            Some("pipeline_stages[1].regex.expression")
        );
    }

    #[test]
    fn docker_and_cri_inputs_read_labels_from_where_their_files_sit() {
        let compiled = |yaml: &str| match Input::compile(&input(yaml)) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        };
        let d = compiled("{paths: ['/x'], format: docker}");
        assert_eq!(
            d.source,
            Source::Docker(ContainerMetadataConfig::default()),
            "the default data root"
        );
        let k = compiled("{paths: ['/p/*/*/*.log*'], format: cri}");
        assert_eq!(k.source, Source::Kubernetes);
        let pod = "/p/ns_pod-1_0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77/c/0.log";
        assert!(k.globs.matches(std::path::Path::new(pod)));
        assert!(k
            .globs
            .matches(std::path::Path::new(&format!("{pod}.20261130-070609"))));
        assert!(!k
            .globs
            .matches(std::path::Path::new(&format!("{pod}.20261130-070609.gz"))));
        assert!(!k.globs.matches(std::path::Path::new(&format!(
            "{pod}.20261130-070609.gz.tmp"
        ))));
        let off = compiled("{paths: ['/p/*/*/*.log*'], format: cri, kubernetes: false}");
        assert_eq!(off.source, Source::Plain);
        assert!(off
            .globs
            .matches(std::path::Path::new(&format!("{pod}.1.gz"))));
        assert_eq!(compiled("{paths: ['/x']}").source, Source::Plain);
    }

    #[test]
    fn formats_and_multiline_are_the_shared_stages() {
        let i = Input::compile(&input(
            "{paths: ['/x'], format: cri, multiline: {first_line: '^\\d', max_wait: 2s}}",
        ))
        .expect("compiles");
        assert_eq!(i.stages.len(), 2);
        assert!(matches!(i.stages[0], StageConfig::Cri(_)));
        assert!(
            matches!(&i.stages[1], StageConfig::Multiline(m) if m.firstline == "^\\d" && m.max_lines == Some(500))
        );
        assert!(i.holds);
        let plain = Input::compile(&input("{paths: ['/x']}")).expect("compiles");
        assert!(plain.stages.is_empty() && !plain.holds && plain.pipeline().is_none());
    }
}
