//! The `regex` stage: named groups of a regular expression as extracted values.
//!
//! ```yaml
//! - regex:
//!     expression: '^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+) \[(?P<timestamp>[\w:/]+\s[+\-]\d{4})\]'
//!     source: message     # optional: match this extracted value instead of the line
//! ```
//!
//! Go's RE2 syntax and Rust's `regex` agree on what Promtail users write; one difference:
//! `\d`, `\w`, `\s` match Unicode classes here, ASCII in Go.

use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Cx, Entry, Stage, StageError, Step, Value};

/// `regex:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// The expression; its named groups become extracted values.
    pub expression: String,
    /// Extracted value to match instead of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Compiles a regular expression, naming the key on error.
pub(crate) fn compile(key: &str, expr: &str) -> Result<Regex, StageError> {
    Regex::new(expr)
        .map_err(|e| StageError::key(key, format!("could not compile regular expression: {e}")))
}

#[derive(Debug)]
pub(crate) struct RegexStage {
    re: Regex,
    /// Group index and name of every named group.
    names: Vec<(usize, Arc<str>)>,
    source: Option<String>,
    locs: regex::CaptureLocations,
}

impl RegexStage {
    pub(crate) fn new(cfg: &RegexConfig) -> Result<Self, StageError> {
        if cfg.expression.is_empty() {
            return Err(StageError::key("expression", "expression is required"));
        }
        if cfg.source.as_deref() == Some("") {
            return Err(StageError::key("source", "empty source"));
        }
        let re = compile("expression", &cfg.expression)?;
        let names = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, Arc::from(n))))
            .collect();
        let locs = re.capture_locations();
        Ok(RegexStage {
            re,
            names,
            source: cfg.source.clone(),
            locs,
        })
    }
}

impl Stage for RegexStage {
    fn name(&self) -> &'static str {
        "regex"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let input: String = match &self.source {
            None => std::mem::take(&mut entry.line),
            Some(s) => match entry.extracted_text(s) {
                Some(t) => t.into_owned(),
                None => return Step::Next(entry),
            },
        };
        if self.re.captures_read(&mut self.locs, &input).is_some() {
            for (i, name) in &self.names {
                // A group that did not take part is "" in Go.
                let text = self.locs.get(*i).map_or("", |(s, e)| &input[s..e]);
                entry.set_extracted(name, Value::String(text.to_owned()));
            }
        }
        if self.source.is_none() {
            entry.line = input;
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn run(cfg: &str, e: Entry) -> Entry {
        let cfg: RegexConfig = serde_yaml_ng::from_str(cfg).expect("yaml");
        let mut s = RegexStage::new(&cfg).expect("stage");
        match s.process(e, &mut Cx::default()) {
            Step::Next(e) => e,
            _ => panic!("regex never drops"),
        }
    }

    #[test]
    fn promtail_doc_example_apache_line() {
        let line = r#"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0""#;
        let e = run(
            r#"expression: '^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+) \[(?P<timestamp>[\w:/]+\s[+\-]\d{4})\] "(?P<action>\S+)\s?(?P<path>\S+)?\s?(?P<protocol>\S+)?" (?P<status>\d{3}|-) (?P<size>\d+|-)\s?"?(?P<referer>[^"]*)"?\s?"?(?P<useragent>[^"]*)?"?$'"#,
            Entry::new(line, 0, labels([])),
        );
        let get = |k: &str| e.extracted_text(k).map(|v| v.into_owned());
        assert_eq!(get("ip").as_deref(), Some("11.11.11.11"));
        assert_eq!(get("user").as_deref(), Some("frank"));
        assert_eq!(
            get("timestamp").as_deref(),
            Some("25/Jan/2000:14:00:01 -0500")
        );
        assert_eq!(get("action").as_deref(), Some("GET"));
        assert_eq!(get("status").as_deref(), Some("200"));
        assert_eq!(get("useragent").as_deref(), Some("Mozilla/5.0"));
        assert_eq!(e.line, line);
    }

    #[test]
    fn source_optional_groups_and_no_match() {
        let mut e = Entry::new("line", 0, labels([]));
        e.set_extracted(
            &Arc::from("time"),
            Value::from("2019-01-01T01:00:00.000000001Z"),
        );
        let e = run(
            "expression: '^(?P<year>\\d+)-(?P<month>\\d+)(?P<never>x)?'\nsource: time\n",
            e,
        );
        assert_eq!(e.extracted_text("year").as_deref(), Some("2019"));
        assert_eq!(e.extracted_text("never").as_deref(), Some(""));
        let e = run(
            "expression: '^(?P<n>\\d+)$'\n",
            Entry::new("abc", 0, labels([])),
        );
        assert!(e.extracted("n").is_none());
        let e = run(
            "expression: '(?P<n>x)'\nsource: absent\n",
            Entry::new("x", 0, labels([])),
        );
        assert!(e.extracted("n").is_none());
    }

    #[test]
    fn config_errors() {
        for (yaml, key) in [
            ("expression: '(?P<a>'", "expression"),
            ("expression: ''", "expression"),
            ("expression: a\nsource: ''", "source"),
        ] {
            let cfg: RegexConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert_eq!(RegexStage::new(&cfg).expect_err(yaml).key, key);
        }
        // `(?i)` and Unicode classes compile, as in Go.
        assert!(compile("e", r"(?i)error\p{L}").is_ok());
    }
}
