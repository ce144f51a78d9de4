//! The stages that discard entries by condition: `drop` and `sampling`.
//!
//! ```yaml
//! - drop:
//!     source: level              # or a list: [app, level], joined with `separator` (";")
//!     value: debug               # or expression: '.*debug.*' (a regex); neither: drop if present
//!     older_than: 24h            # Go duration
//!     longer_than: 8KB           # byte size
//!     drop_counter_reason: noisy # default drop_stage
//! - sampling:
//!     rate: 0.1                  # keep 10 %
//! ```
//!
//! As in Promtail, all the conditions given must hold for the entry to be dropped. `value`
//! is compared with the extracted value's text (`500` matches a JSON number 500, as in
//! Promtail 2.8+).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::go::{parse_bytes, weak_string_opt};
use super::regex::compile;
use super::{Cx, Entry, Stage, StageError, Step};
use crate::duration::parse_duration;

/// `source:` of a `drop` stage: one name or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Sources {
    /// One extracted name.
    One(String),
    /// Several, their values joined with the separator.
    Many(Vec<String>),
}

/// `drop:` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    /// Extracted value(s) to test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// Joins several sources' values (default `;`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// Drop when the source's value is this.
    #[serde(
        default,
        deserialize_with = "weak_string_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<String>,
    /// Drop when this regex matches the source's value (or the line, without source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Drop entries older than this (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
    /// Drop lines longer than this (byte size).
    #[serde(
        default,
        deserialize_with = "weak_string_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub longer_than: Option<String>,
    /// The reason dropped entries are counted under (default `drop_stage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_counter_reason: Option<String>,
}

#[derive(Debug)]
pub(crate) struct DropStage {
    sources: Vec<String>,
    separator: String,
    value: Option<String>,
    regex: Option<Regex>,
    older_than: Option<Duration>,
    longer_than: Option<usize>,
    reason: Arc<str>,
}

fn reason(r: &Option<String>, default: &str) -> Arc<str> {
    Arc::from(r.as_deref().filter(|r| !r.is_empty()).unwrap_or(default))
}

impl DropStage {
    pub(crate) fn new(cfg: &DropConfig) -> Result<Self, StageError> {
        if cfg.source.is_none()
            && cfg.expression.is_none()
            && cfg.older_than.is_none()
            && cfg.longer_than.is_none()
        {
            return Err(StageError::key(
                "",
                "drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`",
            ));
        }
        if cfg.value.is_some() && cfg.expression.is_some() {
            return Err(StageError::key(
                "value",
                "`value` and `expression` cannot both be defined at the same time",
            ));
        }
        let sources = match &cfg.source {
            None => Vec::new(),
            Some(Sources::One(s)) => vec![s.clone()],
            Some(Sources::Many(v)) => v.clone(),
        };
        if cfg.source.is_some() && (sources.is_empty() || sources.iter().any(String::is_empty)) {
            return Err(StageError::key("source", "empty source"));
        }
        let regex = cfg
            .expression
            .as_deref()
            .map(|e| compile("expression", e))
            .transpose()?;
        let older_than = cfg
            .older_than
            .as_deref()
            .map(|d| parse_duration(d).map_err(|e| StageError::key("older_than", e.to_string())))
            .transpose()?;
        let longer_than = cfg
            .longer_than
            .as_deref()
            .map(|b| {
                parse_bytes(b)
                    .map(|n| n as usize)
                    .map_err(|e| StageError::key("longer_than", e))
            })
            .transpose()?;
        Ok(DropStage {
            sources,
            separator: cfg.separator.clone().unwrap_or_else(|| ";".to_owned()),
            value: cfg.value.clone(),
            regex,
            older_than,
            longer_than,
            reason: reason(&cfg.drop_counter_reason, "drop_stage"),
        })
    }

    /// The source's text: one value, or all of them joined; `None` if one is missing.
    fn source_text(&self, entry: &Entry) -> Option<Option<String>> {
        if self.sources.len() == 1 {
            let v = entry.extracted(&self.sources[0])?;
            return Some(v.to_text().map(|t| t.into_owned()));
        }
        let mut parts = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            parts.push(
                entry
                    .extracted(s)?
                    .to_text()
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
            );
        }
        Some(Some(parts.join(&self.separator)))
    }

    fn should_drop(&self, entry: &Entry) -> bool {
        if let Some(max) = self.longer_than {
            if entry.line.len() <= max {
                return false;
            }
        }
        if let Some(age) = self.older_than {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            let limit = now.saturating_sub(age.as_nanos() as i64);
            if entry.timestamp_ns >= limit {
                return false;
            }
        }
        if !self.sources.is_empty() {
            // Present in the extracted map (even as null)?
            let Some(text) = self.source_text(entry) else {
                return false;
            };
            match (&self.value, &self.regex) {
                (Some(v), _) => {
                    if text.as_deref() != Some(v.as_str()) {
                        return false;
                    }
                }
                (None, Some(re)) => match text {
                    Some(t) if re.is_match(&t) => {}
                    _ => return false,
                },
                (None, None) => {}
            }
        } else if let Some(re) = &self.regex {
            if !re.is_match(&entry.line) {
                return false;
            }
        }
        true
    }
}

impl Stage for DropStage {
    fn name(&self) -> &'static str {
        "drop"
    }

    fn process(&mut self, entry: Entry, _cx: &mut Cx) -> Step {
        if self.should_drop(&entry) {
            Step::Drop(entry, self.reason.clone())
        } else {
            Step::Next(entry)
        }
    }
}

/// `sampling:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Fraction of entries kept, 0.0 to 1.0.
    pub rate: f64,
    /// The reason dropped entries are counted under (default `sampling_stage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_counter_reason: Option<String>,
}

#[derive(Debug)]
pub(crate) struct SamplingStage {
    /// Keep when a random u64 is below this.
    boundary: u64,
    keep_all: bool,
    state: u64,
    reason: Arc<str>,
}

impl SamplingStage {
    pub(crate) fn new(cfg: &SamplingConfig) -> Result<Self, StageError> {
        if !(0.0..=1.0).contains(&cfg.rate) {
            return Err(StageError::key(
                "rate",
                format!(
                    "sampling rate must be between 0.0 and 1.0, received {}",
                    cfg.rate
                ),
            ));
        }
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
        Ok(SamplingStage {
            boundary: (cfg.rate * u64::MAX as f64) as u64,
            keep_all: cfg.rate >= 1.0,
            state: seed,
            reason: reason(&cfg.drop_counter_reason, "sampling_stage"),
        })
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Stage for SamplingStage {
    fn name(&self) -> &'static str {
        "sampling"
    }

    fn process(&mut self, entry: Entry, _cx: &mut Cx) -> Step {
        if self.keep_all || self.next() < self.boundary {
            Step::Next(entry)
        } else {
            Step::Drop(entry, self.reason.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::super::Value;
    use super::*;

    fn dropped(yaml: &str, e: Entry) -> Option<String> {
        let cfg: DropConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        let mut s = DropStage::new(&cfg).expect("stage");
        match s.process(e, &mut Cx::default()) {
            Step::Drop(_, r) => Some(r.to_string()),
            Step::Next(_) => None,
            _ => panic!("drop neither holds nor emits"),
        }
    }

    fn entry(line: &str) -> Entry {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let mut e = Entry::new(line, now, labels([("app", "loki")]));
        e.set_extracted(&Arc::from("level"), Value::from("debug"));
        e.set_extracted(&Arc::from("status"), Value::Int(500));
        e.set_extracted(&Arc::from("nil"), Value::Null);
        e
    }

    #[test]
    fn promtail_doc_examples() {
        // Source present: dropped.
        assert_eq!(
            dropped("source: level", entry("x")).as_deref(),
            Some("drop_stage")
        );
        assert_eq!(
            dropped("source: nil", entry("x")).as_deref(),
            Some("drop_stage")
        );
        assert_eq!(dropped("source: absent", entry("x")), None);
        // Source with value.
        assert!(dropped("source: level\nvalue: debug", entry("x")).is_some());
        assert!(dropped("source: level\nvalue: info", entry("x")).is_none());
        assert!(dropped("source: status\nvalue: 500", entry("x")).is_some());
        // Source with expression.
        assert!(dropped("source: level\nexpression: '^deb'", entry("x")).is_some());
        assert!(dropped("source: level\nexpression: '^inf'", entry("x")).is_none());
        // Expression on the line.
        assert!(dropped("expression: '.*health.*'", entry("GET /health")).is_some());
        assert!(dropped("expression: '.*health.*'", entry("GET /users")).is_none());
        // Several sources, joined.
        assert!(dropped("source: [app, level]\nvalue: loki;debug", entry("x")).is_some());
        assert!(dropped(
            "source: [app, level]\nseparator: '|'\nvalue: loki|debug",
            entry("x")
        )
        .is_some());
        assert!(dropped("source: [app, absent]", entry("x")).is_none());
        // Age and length; all conditions must hold.
        let mut old = entry("x");
        old.timestamp_ns -= 2 * 3600 * 1_000_000_000;
        assert!(dropped("older_than: 1h", old.clone()).is_some());
        assert!(dropped("older_than: 1h", entry("x")).is_none());
        assert!(dropped("longer_than: 4", entry("12345")).is_some());
        assert!(dropped("longer_than: 5", entry("12345")).is_none());
        assert!(dropped("longer_than: 1KB", entry(&"x".repeat(1001))).is_some());
        assert!(dropped("older_than: 1h\nlonger_than: 100", old).is_none());
        assert_eq!(
            dropped("source: level\ndrop_counter_reason: debug_logs", entry("x")).as_deref(),
            Some("debug_logs")
        );
    }

    #[test]
    fn config_errors() {
        for (yaml, key) in [
            ("drop_counter_reason: x", ""),
            ("source: a\nvalue: b\nexpression: c", "value"),
            ("expression: '('", "expression"),
            ("older_than: 1y", "older_than"),
            ("longer_than: big", "longer_than"),
            ("source: ''", "source"),
        ] {
            let cfg: DropConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert_eq!(DropStage::new(&cfg).expect_err(yaml).key, key, "{yaml}");
        }
        assert!(serde_yaml_ng::from_str::<DropConfig>("sauce: a").is_err());
    }

    #[test]
    fn sampling_keeps_about_the_rate() {
        let mut s = SamplingStage::new(&SamplingConfig {
            rate: 0.1,
            drop_counter_reason: None,
        })
        .expect("stage");
        let kept = (0..20_000)
            .filter(|_| matches!(s.process(entry("x"), &mut Cx::default()), Step::Next(_)))
            .count();
        assert!((1_500..2_500).contains(&kept), "{kept}");
        let mut all = SamplingStage::new(&SamplingConfig {
            rate: 1.0,
            drop_counter_reason: None,
        })
        .expect("stage");
        assert!(
            (0..1000).all(|_| matches!(all.process(entry("x"), &mut Cx::default()), Step::Next(_)))
        );
        let mut none = SamplingStage::new(&SamplingConfig {
            rate: 0.0,
            drop_counter_reason: Some("s".into()),
        })
        .expect("stage");
        assert!(
            matches!(none.process(entry("x"), &mut Cx::default()), Step::Drop(_, r) if &*r == "s")
        );
        assert!(SamplingStage::new(&SamplingConfig {
            rate: 1.5,
            drop_counter_reason: None
        })
        .is_err());
    }
}
