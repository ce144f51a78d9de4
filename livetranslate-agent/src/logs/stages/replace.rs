//! The `replace` stage: every capture group of a regular expression, in the line or an
//! extracted value, replaced by a template's result (`.Value` is the captured text; the
//! extracted values are there too). Named groups are also extracted, with their replaced
//! value. As Promtail does, down to its handling of nested groups.
//!
//! ```yaml
//! - replace:
//!     expression: 'password (\S+)'
//!     replace: '****'
//!     source: msg           # optional
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::gotemplate::{Data, Template};
use super::regex::compile;
use super::{Cx, Entry, Stage, StageError, Step, Value};

/// `replace:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceConfig {
    /// The expression whose capture groups are replaced.
    pub expression: String,
    /// Extracted value to rewrite instead of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The replacement, a Go template (`{{ .Value }}` is the captured text).
    #[serde(default)]
    pub replace: String,
}

struct CaptureData<'a> {
    entry: &'a Entry,
    value: &'a str,
}

impl Data for CaptureData<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        if name == "Value" {
            return Some(Cow::Borrowed(self.value));
        }
        self.entry.extracted_text(name)
    }
}

#[derive(Debug)]
pub(crate) struct ReplaceStage {
    re: Regex,
    names: Vec<(usize, Arc<str>)>,
    source: Option<Arc<str>>,
    template: Template,
}

impl ReplaceStage {
    pub(crate) fn new(cfg: &ReplaceConfig) -> Result<Self, StageError> {
        if cfg.expression.is_empty() {
            return Err(StageError::key("expression", "expression is required"));
        }
        if cfg.source.as_deref() == Some("") {
            return Err(StageError::key("source", "empty source in replace stage"));
        }
        let re = compile("expression", &cfg.expression)?;
        let template = Template::new(&cfg.replace)
            .map_err(|e| StageError::key("replace", format!("invalid template: {e}")))?;
        let names = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, Arc::from(n))))
            .collect();
        Ok(ReplaceStage {
            re,
            names,
            source: cfg.source.as_deref().map(Arc::from),
            template,
        })
    }

    /// The rewritten input and each captured text's replacement; `None` when nothing
    /// matched or the template failed.
    fn rewrite(&self, input: &str, entry: &Entry) -> Option<(String, HashMap<String, String>)> {
        let mut result = String::new();
        let mut prev_end = 0usize;
        let mut replaced: HashMap<String, String> = HashMap::new();
        let mut any = false;
        for caps in self.re.captures_iter(input) {
            any = true;
            for i in 1..caps.len() {
                let Some(m) = caps.get(i) else { continue };
                let mut st = String::new();
                let data = CaptureData {
                    entry,
                    value: m.as_str(),
                };
                self.template.execute(&data, &mut st).ok()?;
                if prev_end == 0 || prev_end < m.start() {
                    result.push_str(&input[prev_end..m.start()]);
                    result.push_str(&st);
                    prev_end = m.end();
                }
                replaced.insert(m.as_str().to_owned(), st);
            }
        }
        if !any {
            return None;
        }
        result.push_str(&input[prev_end..]);
        Some((result, replaced))
    }
}

impl Stage for ReplaceStage {
    fn name(&self) -> &'static str {
        "replace"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let input: String = match &self.source {
            None => entry.line.clone(),
            Some(s) => match entry.extracted_text(s) {
                Some(t) => t.into_owned(),
                None => return Step::Next(entry),
            },
        };
        if !self.re.is_match(&input) {
            return Step::Next(entry);
        }
        let Some((result, replaced)) = self.rewrite(&input, &entry) else {
            return Step::Next(entry);
        };
        // Named groups: the replacement of what the first match captured.
        let first = self.re.captures(&input);
        for (i, name) in &self.names {
            let captured = first
                .as_ref()
                .and_then(|c| c.get(*i))
                .map_or("", |m| m.as_str());
            if let Some(v) = replaced.get(captured) {
                entry.set_extracted(name, Value::String(v.clone()));
            }
        }
        match &self.source {
            Some(s) => entry.set_extracted(s, Value::String(result)),
            None => entry.line = result,
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn run(yaml: &str, e: Entry) -> Entry {
        let cfg: ReplaceConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        let mut s = ReplaceStage::new(&cfg).expect("stage");
        match s.process(e, &mut Cx::default()) {
            Step::Next(e) => e,
            _ => panic!("replace never drops"),
        }
    }

    #[test]
    fn promtail_doc_examples() {
        let line = r#"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6""#;
        // Mask the IP address and user.
        let e = run(
            "expression: '^(?P<ip>\\S+) (?P<identd>\\S+) (?P<user>\\S+) \\[(?P<timestamp>[\\w:/]+\\s[+\\-]\\d{4})\\] \"(?P<action>\\S+)\\s?(?P<path>\\S+)?\\s?(?P<protocol>\\S+)?\" (?P<status>\\d{3}|-) (?P<size>\\d+|-)\\s?\"?(?P<referer>[^\"]*)\"?\\s?\"?(?P<useragent>[^\"]*)?\"?$'\nreplace: ''\n",
            Entry::new(line, 0, labels([])),
        );
        assert_eq!(e.line, r#"   [] "  "   "" """#);
        let e = run(
            "expression: '^(\\S+) \\S+ (\\S+)'\nreplace: '{{ if eq .Value \"frank\" }}*****{{ else }}{{ .Value }}{{ end }}'\n",
            Entry::new(line, 0, labels([])),
        );
        assert!(
            e.line.starts_with("11.11.11.11 - ***** [25/Jan"),
            "{}",
            e.line
        );
        // Every match, several groups, named groups extracted with their new value.
        let e = run(
            "expression: '(?P<ip>\\d{2}.\\d{2}.\\d{2}.\\d{2}) - (\\S+)'\nreplace: '{{ .Value | ToUpper }}'\n",
            Entry::new("11.11.11.11 - frank 12.12.12.12 - frank", 0, labels([])),
        );
        assert_eq!(e.line, "11.11.11.11 - FRANK 12.12.12.12 - FRANK");
        assert_eq!(e.extracted_text("ip").as_deref(), Some("11.11.11.11"));
    }

    #[test]
    fn source_no_match_and_errors() {
        let mut e = Entry::new("line", 0, labels([]));
        e.set_extracted(&Arc::from("msg"), Value::from("password hunter2 ok"));
        let e = run(
            "expression: 'password (\\S+)'\nreplace: '****'\nsource: msg\n",
            e,
        );
        assert_eq!(e.extracted_text("msg").as_deref(), Some("password **** ok"));
        assert_eq!(e.line, "line");
        let e = run(
            "expression: 'x(\\d)'\nreplace: 'y'\n",
            Entry::new("nothing", 0, labels([])),
        );
        assert_eq!(e.line, "nothing");
        for (yaml, key) in [
            ("expression: '('\nreplace: x", "expression"),
            ("expression: '(a)'\nreplace: '{{ Bad }}'", "replace"),
            ("expression: '(a)'\nsource: ''", "source"),
        ] {
            let cfg: ReplaceConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert_eq!(ReplaceStage::new(&cfg).expect_err(yaml).key, key);
        }
    }
}
