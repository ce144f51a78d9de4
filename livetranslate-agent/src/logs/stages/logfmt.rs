//! The `logfmt` stage: `key=value` pairs as extracted values, read as go-logfmt (the decoder
//! Promtail 2.7 uses) reads them: values bare or double-quoted with JSON escapes, a key
//! without `=` has an empty value, each line of the input is a record. A syntax error stops
//! the reading; what was read before it is kept.
//!
//! ```yaml
//! - logfmt:
//!     mapping:
//!       time:           # empty: the key of the same name
//!       message: msg    # extracted name: logfmt key
//!     source: line      # optional
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Cx, Entry, Stage, StageError, Step, Value};

/// `logfmt:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogfmtConfig {
    /// Extracted name → logfmt key (empty or null: the same name).
    pub mapping: BTreeMap<String, Option<String>>,
    /// Extracted value to parse instead of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One key/value pair, or the error that stopped the reading.
pub(crate) fn pairs(
    input: &str,
    mut f: impl FnMut(&str, std::borrow::Cow<'_, str>),
) -> Result<(), String> {
    for record in input.split('\n') {
        let record = record.strip_suffix('\r').unwrap_or(record);
        pairs_of_record(record, &mut f)?;
    }
    Ok(())
}

fn pairs_of_record(
    line: &str,
    f: &mut impl FnMut(&str, std::borrow::Cow<'_, str>),
) -> Result<(), String> {
    let b = line.as_bytes();
    let mut pos = 0;
    let err = |pos: usize, msg: &str| Err(format!("logfmt syntax error at pos {}: {msg}", pos + 1));
    loop {
        // Garbage (control characters and spaces) before a key.
        while pos < b.len() && b[pos] <= b' ' {
            pos += 1;
        }
        if pos >= b.len() {
            return Ok(());
        }
        let start = pos;
        while pos < b.len() && b[pos] > b' ' && b[pos] != b'=' {
            if b[pos] == b'"' {
                return err(pos, "unexpected '\"'");
            }
            pos += 1;
        }
        let key = &line[start..pos];
        if pos >= b.len() || b[pos] <= b' ' {
            // A key without a value.
            f(key, std::borrow::Cow::Borrowed(""));
            continue;
        }
        // b[pos] == '='
        if key.is_empty() {
            return err(pos, "unexpected '='");
        }
        pos += 1;
        if pos >= b.len() || b[pos] <= b' ' {
            f(key, std::borrow::Cow::Borrowed(""));
            continue;
        }
        if b[pos] == b'"' {
            let qstart = pos;
            pos += 1;
            let mut escaped = false;
            let mut has_escape = false;
            loop {
                if pos >= b.len() {
                    return err(pos, "unterminated quoted value");
                }
                let c = b[pos];
                if escaped {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                    has_escape = true;
                } else if c == b'"' {
                    break;
                }
                pos += 1;
            }
            let raw = &line[qstart..=pos];
            pos += 1;
            if has_escape {
                match serde_json::from_str::<String>(raw) {
                    Ok(v) => f(key, std::borrow::Cow::Owned(v)),
                    Err(_) => return err(pos, "invalid quoted value"),
                }
            } else {
                f(key, std::borrow::Cow::Borrowed(&raw[1..raw.len() - 1]));
            }
            continue;
        }
        let vstart = pos;
        while pos < b.len() && b[pos] > b' ' {
            if b[pos] == b'=' || b[pos] == b'"' {
                return err(pos, &format!("unexpected {:?}", b[pos] as char));
            }
            pos += 1;
        }
        f(key, std::borrow::Cow::Borrowed(&line[vstart..pos]));
    }
}

#[derive(Debug)]
pub(crate) struct LogfmtStage {
    /// logfmt key → extracted names.
    by_key: Vec<(String, Vec<Arc<str>>)>,
    source: Option<String>,
}

impl LogfmtStage {
    pub(crate) fn new(cfg: &LogfmtConfig) -> Result<Self, StageError> {
        if cfg.mapping.is_empty() {
            return Err(StageError::key("mapping", "logfmt mapping is required"));
        }
        if cfg.source.as_deref() == Some("") {
            return Err(StageError::key("source", "empty source"));
        }
        let mut by_key: Vec<(String, Vec<Arc<str>>)> = Vec::new();
        for (name, key) in &cfg.mapping {
            let key = key.as_deref().filter(|k| !k.is_empty()).unwrap_or(name);
            match by_key.iter_mut().find(|(k, _)| k == key) {
                Some((_, names)) => names.push(Arc::from(name.as_str())),
                None => by_key.push((key.to_owned(), vec![Arc::from(name.as_str())])),
            }
        }
        Ok(LogfmtStage {
            by_key,
            source: cfg.source.clone(),
        })
    }
}

impl Stage for LogfmtStage {
    fn name(&self) -> &'static str {
        "logfmt"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let input: String = match &self.source {
            None => std::mem::take(&mut entry.line),
            Some(s) => match entry.extracted_text(s) {
                Some(t) => t.into_owned(),
                None => return Step::Next(entry),
            },
        };
        let by_key = &self.by_key;
        // Promtail logs the error and keeps what was read before it.
        let _ = pairs(&input, |k, v| {
            if let Some((_, names)) = by_key.iter().find(|(key, _)| key == k) {
                for n in names {
                    entry.set_extracted(n, Value::String(v.clone().into_owned()));
                }
            }
        });
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

    fn collect(input: &str) -> (Vec<(String, String)>, bool) {
        let mut v = Vec::new();
        let ok = pairs(input, |k, val| v.push((k.to_owned(), val.into_owned()))).is_ok();
        (v, ok)
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn decoder_cases() {
        assert_eq!(
            collect("a=1 b=\"two words\" c= d e=\"x\\\"y\\n\""),
            (
                kv(&[
                    ("a", "1"),
                    ("b", "two words"),
                    ("c", ""),
                    ("d", ""),
                    ("e", "x\"y\n")
                ]),
                true
            )
        );
        assert_eq!(
            collect("  lead=1\tnext=2 "),
            (kv(&[("lead", "1"), ("next", "2")]), true)
        );
        assert_eq!(collect("a=1\nb=2"), (kv(&[("a", "1"), ("b", "2")]), true));
        assert_eq!(
            collect("msg=héllo k=ü"),
            (kv(&[("msg", "héllo"), ("k", "ü")]), true)
        );
        // Errors stop the reading; what came before is kept.
        assert_eq!(collect("a=1 =2 b=3"), (kv(&[("a", "1")]), false));
        assert_eq!(collect("a=1 b=\"open"), (kv(&[("a", "1")]), false));
        assert_eq!(collect("a=x=y"), (vec![], false));
        assert_eq!(collect("a\"b=1"), (vec![], false));
        assert_eq!(collect("a=\"bad \\q\""), (vec![], false));
    }

    #[test]
    fn promtail_doc_example() {
        let cfg: LogfmtConfig = serde_yaml_ng::from_str(
            "mapping:\n  timestamp: time\n  app:\n  duration:\n  unknown:\n",
        )
        .expect("yaml");
        let mut s = LogfmtStage::new(&cfg).expect("stage");
        let line = "time=2012-11-01T22:08:41+00:00 app=loki level=WARN duration=125 message=\"this is a log line\" extra=\"user=foo\"";
        let Step::Next(e) = s.process(Entry::new(line, 0, labels([])), &mut Cx::default()) else {
            panic!("kept")
        };
        assert_eq!(
            e.extracted_text("timestamp").as_deref(),
            Some("2012-11-01T22:08:41+00:00")
        );
        assert_eq!(e.extracted_text("app").as_deref(), Some("loki"));
        assert_eq!(e.extracted_text("duration").as_deref(), Some("125"));
        assert!(e.extracted("unknown").is_none());
        assert!(e.extracted("level").is_none());
        assert_eq!(e.line, line);
    }

    #[test]
    fn source_and_config_errors() {
        let cfg: LogfmtConfig =
            serde_yaml_ng::from_str("mapping:\n  user:\nsource: extra\n").expect("yaml");
        let mut s = LogfmtStage::new(&cfg).expect("stage");
        let mut e = Entry::new("x", 0, labels([]));
        e.set_extracted(&Arc::from("extra"), Value::from("user=foo"));
        let Step::Next(e) = s.process(e, &mut Cx::default()) else {
            panic!("kept")
        };
        assert_eq!(e.extracted_text("user").as_deref(), Some("foo"));
        let empty: LogfmtConfig = serde_yaml_ng::from_str("mapping: {}\n").expect("yaml");
        assert_eq!(LogfmtStage::new(&empty).expect_err("empty").key, "mapping");
    }
}
