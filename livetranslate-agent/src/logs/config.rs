//! `logs:` — the log half's settings: their YAML form ([`LogsFile`]) and the checked
//! [`LogsConfig`] the pipeline runs from (flags for paths, Loki URL and positions file win
//! over the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::decode::LongLines;
use super::input::{Input, LogInput};
use super::labels::StreamLimits;
use crate::duration::{duration_in, HumanDuration, HOUR, MINUTE, MS};
use crate::loki::{LokiConfig, LokiFile};
use crate::validate::{KeyPath, Origin, ValidationError};

/// Where positions are kept when neither the file nor the flags say.
pub const DEFAULT_POSITIONS_FILE: &str = "/var/lib/livetranslate-agent/positions.yml";

/// The default input when logs are shipped but no input is configured.
pub const DEFAULT_LOG_PATH: &str = "/app/logs/*.log";

/// `logs:`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsFile {
    /// Globs of JSON files to tail (shorthand for one `inputs` entry).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Inputs: globs, format, labels, promoted fields, multiline.
    #[serde(default)]
    pub inputs: Vec<LogInput>,
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
    pub long_lines: Option<LongLines>,
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
    /// Most distinct values of one varying label (a promoted field, a label a stage sets)
    /// per input (100); further values become `__overflow__`.
    pub max_label_values: Option<usize>,
    /// Most distinct streams per file (200); further streams' varying labels become
    /// `__overflow__`.
    pub max_streams_per_file: Option<usize>,
    /// Start with no positions when the positions file is corrupt (it is rewritten), as
    /// Promtail's `positions.ignore_invalid_yaml`; by default a corrupt file is an error.
    #[serde(default)]
    pub ignore_invalid_positions: bool,
}

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// Longest line kept whole.
    pub max_line_bytes: usize,
    /// What to do with longer lines.
    pub long_lines: LongLines,
    /// Pause when no file has new data.
    pub poll_interval: Duration,
    /// How often globs are re-evaluated.
    pub discover_interval: Duration,
    /// How long a rotated-away file is still watched for late writes after its end.
    pub rotate_wait: Duration,
    /// Labels on every stream (the standard labels, a Promtail client's external labels),
    /// lowest precedence.
    pub common_labels: Vec<(String, String)>,
    /// Caps on streams.
    pub limits: StreamLimits,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            max_line_bytes: 256 * 1024,
            long_lines: LongLines::Truncate,
            poll_interval: Duration::from_millis(100),
            discover_interval: Duration::from_millis(100),
            rotate_wait: Duration::from_secs(5),
            common_labels: Vec::new(),
            limits: StreamLimits::default(),
        }
    }
}

/// The log pipeline's settings.
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// What to tail.
    pub inputs: Vec<LogInput>,
    /// Where to push (none: only a dry run ships anything).
    pub loki: Option<LokiConfig>,
    /// Print entries as JSON lines on stdout instead of pushing.
    pub dry_run: bool,
    /// Acknowledged offsets.
    pub positions_file: PathBuf,
    /// Reader settings (line limits, polling, rotation, the standard labels).
    pub reader: ReaderConfig,
    /// Cap on bytes read but not yet acknowledged.
    pub max_buffer_bytes: usize,
    /// How often positions are saved.
    pub sync_period: Duration,
    /// How long shutdown may spend flushing.
    pub shutdown_timeout: Duration,
    /// Start empty when the positions file is corrupt.
    pub ignore_invalid_positions: bool,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            inputs: Vec::new(),
            loki: None,
            dry_run: false,
            positions_file: PathBuf::from(DEFAULT_POSITIONS_FILE),
            reader: ReaderConfig::default(),
            max_buffer_bytes: 16 * 1024 * 1024,
            sync_period: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
            ignore_invalid_positions: false,
        }
    }
}

/// Where an input was written.
enum Written {
    /// A `logs.inputs` entry.
    Entry(KeyPath),
    /// The `logs.paths` shorthand.
    Paths(KeyPath),
    /// `--log-path` (or the default path).
    Flag,
}

/// The flags of the log half (each wins over its key in the file).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogsFlags<'a> {
    /// `--log-path` globs.
    pub log_paths: &'a [String],
    /// `--loki-url`.
    pub loki_url: Option<&'a str>,
    /// `--positions-file`.
    pub positions_file: Option<&'a Path>,
}

impl LogsConfig {
    /// Whether the log pipeline runs: there is somewhere to ship to (Loki, or a dry run).
    pub fn enabled(&self) -> bool {
        !self.inputs.is_empty() && (self.loki.is_some() || self.dry_run)
    }

    /// Checks `logs:` with the flags over it. `common_labels` go on every stream.
    pub fn from_parts(
        flags: LogsFlags<'_>,
        file: LogsFile,
        common_labels: &BTreeMap<String, String>,
        dry_run: bool,
        shutdown_timeout: Duration,
    ) -> Result<LogsConfig, ValidationError> {
        let at = KeyPath::root().key("logs");
        let defaults = LogsConfig::default();
        // Each input with where it was written, for errors.
        let mut inputs: Vec<(LogInput, Written)> = Vec::new();
        if !flags.log_paths.is_empty() {
            inputs.push((LogInput::json(flags.log_paths.to_vec()), Written::Flag));
        } else {
            for (i, input) in file.inputs.into_iter().enumerate() {
                inputs.push((input, Written::Entry(at.key("inputs").index(i))));
            }
            if !file.paths.is_empty() {
                inputs.push((LogInput::json(file.paths), Written::Paths(at.key("paths"))));
            }
        }
        let loki_url = match (flags.loki_url, file.loki_url) {
            (Some(u), _) => Some((u.to_owned(), Origin::Flag("--loki-url"))),
            (None, Some(u)) => Some((u, Origin::Key(at.key("loki_url")))),
            (None, None) => None,
        }
        .filter(|(u, _)| !u.trim().is_empty());
        if inputs.is_empty() && (loki_url.is_some() || dry_run) {
            inputs.push((
                LogInput::json(vec![DEFAULT_LOG_PATH.to_owned()]),
                Written::Flag,
            ));
        }
        for (input, written) in &inputs {
            if let Err(e) = Input::compile(input) {
                return Err(match written {
                    Written::Entry(p) => ValidationError::at(p.key(&e.key()), e.to_string()),
                    Written::Paths(p) => ValidationError::at(p.clone(), e.to_string()),
                    Written::Flag => ValidationError::flag("--log-path", e.to_string()),
                });
            }
        }
        let loki = match loki_url {
            Some((url, origin)) => Some(LokiConfig::from_parts(
                url,
                origin,
                file.loki,
                &at.key("loki"),
            )?),
            None => None,
        };
        let r = &defaults.reader;
        let max_line_bytes = file.max_line_bytes.unwrap_or(r.max_line_bytes);
        if max_line_bytes == 0 {
            return Err(ValidationError::at(
                at.key("max_line_bytes"),
                "must be more than 0",
            ));
        }
        for (key, v) in [
            ("max_label_values", file.max_label_values),
            ("max_streams_per_file", file.max_streams_per_file),
        ] {
            if v == Some(0) {
                return Err(ValidationError::at(at.key(key), "must be more than 0"));
            }
        }
        let poll_interval = duration_in(file.poll_interval, r.poll_interval, (MS, MINUTE))
            .map_err(|m| ValidationError::at(at.key("poll_interval"), m))?;
        let discover_interval =
            duration_in(file.discover_interval, r.discover_interval, (10 * MS, HOUR))
                .map_err(|m| ValidationError::at(at.key("discover_interval"), m))?;
        let rotate_wait = duration_in(file.rotate_wait, r.rotate_wait, (Duration::ZERO, 24 * HOUR))
            .map_err(|m| ValidationError::at(at.key("rotate_wait"), m))?;
        let sync_period = duration_in(file.sync_period, defaults.sync_period, (10 * MS, HOUR))
            .map_err(|m| ValidationError::at(at.key("sync_period"), m))?;
        Ok(LogsConfig {
            inputs: inputs.into_iter().map(|(i, _)| i).collect(),
            loki,
            dry_run,
            positions_file: flags
                .positions_file
                .map(Path::to_path_buf)
                .or(file.positions_file)
                .unwrap_or(defaults.positions_file),
            reader: ReaderConfig {
                max_line_bytes,
                long_lines: file.long_lines.unwrap_or(r.long_lines),
                poll_interval,
                discover_interval,
                rotate_wait,
                common_labels: common_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                limits: StreamLimits {
                    max_label_values: file.max_label_values.unwrap_or(r.limits.max_label_values),
                    max_streams_per_file: file
                        .max_streams_per_file
                        .unwrap_or(r.limits.max_streams_per_file),
                },
            },
            max_buffer_bytes: file
                .max_buffer_bytes
                .unwrap_or(defaults.max_buffer_bytes)
                .max(64 * 1024),
            sync_period,
            shutdown_timeout,
            ignore_invalid_positions: file.ignore_invalid_positions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(flags: LogsFlags<'_>, yaml: &str) -> Result<LogsConfig, ValidationError> {
        let file: LogsFile = match serde_yaml_ng::from_str(yaml) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        LogsConfig::from_parts(flags, file, &BTreeMap::new(), false, Duration::from_secs(1))
    }

    #[test]
    fn input_errors_name_the_entry_and_key() {
        let e = build(
            LogsFlags::default(),
            "inputs: [{paths: ['/a']}, {paths: ['/b'], multiline: {first_line: '(['}}]",
        );
        assert!(e.is_err_and(|e| e.to_string().starts_with(
            "logs.inputs[1].multiline.first_line: invalid multiline.first_line regex"
        )));
        let e = build(LogsFlags::default(), "paths: ['']");
        assert!(e.is_err_and(|e| e.to_string() == "logs.paths: empty glob in paths"));
        let flag = vec![String::new()];
        let e = build(
            LogsFlags {
                log_paths: &flag,
                ..Default::default()
            },
            "{}",
        );
        assert!(e.is_err_and(|e| e.origin == Origin::Flag("--log-path")));
        let e = build(LogsFlags::default(), "max_line_bytes: 0");
        assert!(e.is_err_and(|e| e.to_string() == "logs.max_line_bytes: must be more than 0"));
    }

    #[test]
    fn zero_and_absurd_durations_are_refused() {
        for (yaml, key) in [
            ("poll_interval: 0s", "logs.poll_interval"),
            ("poll_interval: 2h", "logs.poll_interval"),
            ("discover_interval: 0", "logs.discover_interval"),
            ("sync_period: 0ms", "logs.sync_period"),
            ("rotate_wait: 30d", "logs.rotate_wait"),
            ("max_label_values: 0", "logs.max_label_values"),
            (
                "loki_url: http://l:3100\nloki: {timeout: 0s}",
                "logs.loki.timeout",
            ),
            (
                "loki_url: http://l:3100\nloki: {min_backoff: 0s}",
                "logs.loki.min_backoff",
            ),
            (
                "loki_url: http://l:3100\nloki: {max_backoff: 0s}",
                "logs.loki.max_backoff",
            ),
            (
                "loki_url: http://l:3100\nloki: {min_backoff: 5s, max_backoff: 1s}",
                "logs.loki.max_backoff",
            ),
            (
                "loki_url: http://l:3100\nloki: {batch_wait: 0s}",
                "logs.loki.batch_wait",
            ),
        ] {
            let e = build(LogsFlags::default(), yaml)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.starts_with(&format!("{key}: must be"))),
                "{yaml}: {e:?}"
            );
        }
        assert!(build(LogsFlags::default(), "rotate_wait: 0s\npoll_interval: 10ms").is_ok());
    }

    #[test]
    fn flags_win_and_a_loki_url_alone_tails_the_default_path() {
        let c = build(
            LogsFlags {
                loki_url: Some("http://127.0.0.1:3100"),
                positions_file: Some(Path::new("p.yml")),
                ..Default::default()
            },
            "loki_url: http://elsewhere:3100\npositions_file: other.yml\n",
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(c.enabled());
        assert_eq!(c.inputs[0].paths, [DEFAULT_LOG_PATH]);
        assert_eq!(
            c.loki.map(|l| l.url).as_deref(),
            Some("http://127.0.0.1:3100")
        );
        assert_eq!(c.positions_file, Path::new("p.yml"));
    }
}
