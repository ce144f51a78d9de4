//! One `logs.inputs` entry: its YAML form ([`LogInput`]) and its compiled form ([`Input`]):
//! exclusion globs, the line parser, static labels and the multi-line rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::multiline::{Multiline, MultilineConfig};
use super::parse::{Format, Parser};
use livetranslate_telemetry::names::{
    is_reserved_label_name as reserved_label_name, is_valid_label_name as valid_label_name,
};

/// One `logs.inputs` entry: files to tail and how to read them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogInput {
    /// Glob patterns (`/app/logs/*.log`); new matching files are picked up while running.
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
    /// JSON fields promoted to labels (keep it to a few low-cardinality fields).
    #[serde(default = "default_promote")]
    pub promote: Vec<String>,
    /// Multi-line joining.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
}

/// The default promoted fields: the library's `level` and `service`.
pub fn default_promote() -> Vec<String> {
    vec!["level".to_owned(), "service".to_owned()]
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
        }
    }
}

/// Why an input could not be set up. [`InputError::key`] names the offending key of the
/// entry.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A glob pattern is invalid.
    #[error("invalid glob {pattern:?}: {reason}")]
    Glob {
        /// `paths` or `exclude`.
        key: &'static str,
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
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
}

impl InputError {
    /// The key of the input entry the error is about (`paths`, `multiline.first_line`, …).
    pub fn key(&self) -> String {
        match self {
            InputError::Glob { key, .. } => (*key).to_owned(),
            InputError::EmptyGlob => "paths".to_owned(),
            InputError::Regex(_) => "multiline.first_line".to_owned(),
            InputError::Label {
                key: "labels",
                name,
            } => format!("labels.{name}"),
            InputError::Label { key, .. } => (*key).to_owned(),
        }
    }
}

/// An input with its parser and compiled options.
#[derive(Debug)]
pub struct Input {
    /// Include globs.
    pub patterns: Vec<String>,
    /// Exclude globs.
    pub exclude: Vec<glob::Pattern>,
    /// The line parser.
    pub parser: Parser,
    /// Static labels.
    pub labels: Vec<(String, String)>,
    /// The multi-line rule.
    pub multiline: Option<Multiline>,
}

fn pattern(key: &'static str, p: &str) -> Result<glob::Pattern, InputError> {
    glob::Pattern::new(p).map_err(|e| InputError::Glob {
        key,
        pattern: p.to_owned(),
        reason: e.to_string(),
    })
}

impl Input {
    /// Compiles an input, checking its globs, label names and multi-line pattern.
    pub fn compile(input: &LogInput) -> Result<Input, InputError> {
        for p in &input.paths {
            if p.trim().is_empty() {
                return Err(InputError::EmptyGlob);
            }
            pattern("paths", p)?;
        }
        let exclude = input
            .exclude
            .iter()
            .map(|p| pattern("exclude", p))
            .collect::<Result<_, _>>()?;
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
        let multiline = input
            .multiline
            .as_ref()
            .map(|m| Multiline::new(m).map_err(|e| InputError::Regex(e.to_string())))
            .transpose()?;
        Ok(Input {
            patterns: input.paths.clone(),
            exclude,
            parser: Parser::new(input.format, &input.promote),
            labels: input
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            multiline,
        })
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
            key("{paths: ['/x'], promote: ['__x']}").as_deref(),
            Some("promote")
        );
        assert_eq!(
            key("{paths: ['/x'], multiline: {first_line: '(['}}").as_deref(),
            Some("multiline.first_line")
        );
    }
}
