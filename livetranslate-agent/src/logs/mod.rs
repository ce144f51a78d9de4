//! The log pipeline, cut along its seams: paths (globs) → fingerprint (file identity) →
//! tail (reading, rotation, truncation) → parse (formats, multiline) → the Loki batcher; the
//! tracker and the positions file record what Loki has acknowledged.
//!
//! file → [`tail::Reader`] → [`budget::ByteBudget`]-bounded channel → [`pipeline`] batches
//! and pushes → on acknowledgement [`tracker::Tracker`] advances → positions file.

pub mod budget;
pub mod docker;
pub mod fingerprint;
pub mod kubernetes;
pub mod multiline;
pub mod parse;
pub mod pipeline;
pub mod positions;
pub mod syslog;
pub mod tail;
pub mod tracker;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use parse::Format;

/// Identifies one generation of one tailed file within a run of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

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
    pub multiline: Option<multiline::MultilineConfig>,
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

/// Whether `name` is a valid Loki / Prometheus label name.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Renders a label set the way Loki's push API takes it: `{a="x", b="y"}`, sorted by name.
pub fn render_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> = labels.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::from("{");
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_escaped_and_first_value_wins() {
        assert_eq!(
            render_labels([
                ("service", "audio"),
                ("level", "info"),
                ("service", "dup"),
                ("x", "a\"b")
            ]),
            r#"{level="info", service="audio", x="a\"b"}"#
        );
        assert!(valid_label_name("service_name"));
        assert!(
            !valid_label_name("__name__") && !valid_label_name("1x") && !valid_label_name("a-b")
        );
    }
}
