//! The `template` stage: a Go template over the extracted map, its result stored under
//! `source` (an empty result removes the key, as in Promtail).
//!
//! ```yaml
//! - template:
//!     source: app
//!     template: '{{ .level }} for app {{ ToUpper .Value }}'   # .Value: the source's value; .Entry: the line
//! ```
//!
//! The template is compiled when the configuration is read: unknown functions, wrong
//! argument counts and unsupported actions are refused there (Promtail only fails at run
//! time, silently). See [`super::gotemplate`] for what is supported.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::gotemplate::{Data, Template};
use super::{Cx, Entry, Stage, StageError, Step, Value};

/// `template:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Extracted key the result is stored under (created if absent); `.Value` reads it.
    pub source: String,
    /// The Go template.
    #[serde(default)]
    pub template: String,
}

/// The template's view of an entry: `.Entry`, `.Value`, and every extracted value as text.
struct EntryData<'a> {
    entry: &'a Entry,
    source: &'a str,
}

impl Data for EntryData<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            "Entry" => Some(Cow::Borrowed(&self.entry.line)),
            "Value" => self
                .entry
                .extracted_text(self.source)
                .or_else(|| self.entry.extracted_text("Value")),
            _ => self.entry.extracted_text(name),
        }
    }
}

#[derive(Debug)]
pub(crate) struct TemplateStage {
    source: Arc<str>,
    template: Template,
}

impl TemplateStage {
    pub(crate) fn new(cfg: &TemplateConfig) -> Result<Self, StageError> {
        if cfg.source.is_empty() {
            return Err(StageError::key(
                "source",
                "template source value is required",
            ));
        }
        let template = Template::new(&cfg.template)
            .map_err(|e| StageError::key("template", format!("invalid template: {e}")))?;
        Ok(TemplateStage {
            source: Arc::from(cfg.source.as_str()),
            template,
        })
    }
}

impl Stage for TemplateStage {
    fn name(&self) -> &'static str {
        "template"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let mut out = String::new();
        let data = EntryData {
            entry: &entry,
            source: &self.source,
        };
        if self.template.execute(&data, &mut out).is_err() {
            // Promtail logs the error (at debug level) and leaves the entry as it is.
            return Step::Next(entry);
        }
        if out.is_empty() {
            entry.remove_extracted(&self.source);
        } else {
            entry.set_extracted(&self.source, Value::String(out));
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn run(yaml: &str, e: Entry) -> Entry {
        let cfg: TemplateConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        let mut s = TemplateStage::new(&cfg).expect("stage");
        match s.process(e, &mut Cx::default()) {
            Step::Next(e) => e,
            _ => panic!("template never drops"),
        }
    }

    fn entry() -> Entry {
        let mut e = Entry::new("the line", 0, labels([("job", "j")]));
        e.set_extracted(&Arc::from("app"), Value::from("loki"));
        e.set_extracted(&Arc::from("level"), Value::from("warn"));
        e.set_extracted(&Arc::from("module"), Value::from("test"));
        e.set_extracted(&Arc::from("code"), Value::Int(200));
        e
    }

    #[test]
    fn promtail_doc_examples() {
        let e = run("source: new_key\ntemplate: 'hello world!'", entry());
        assert_eq!(e.extracted_text("new_key").as_deref(), Some("hello world!"));
        let e = run("source: app\ntemplate: '{{ .Value }}_some_suffix'", entry());
        assert_eq!(e.extracted_text("app").as_deref(), Some("loki_some_suffix"));
        let e = run("source: app\ntemplate: '{{ ToUpper .Value }}'", entry());
        assert_eq!(e.extracted_text("app").as_deref(), Some("LOKI"));
        let e = run(
            "source: output_msg\ntemplate: '{{ .level }} for app {{ ToUpper .app }}'",
            entry(),
        );
        assert_eq!(
            e.extracted_text("output_msg").as_deref(),
            Some("warn for app LOKI")
        );
        let e = run(
            "source: app\ntemplate: '{{ .level }} for app {{ ToUpper .Value }} in module {{.module}}'",
            entry(),
        );
        assert_eq!(
            e.extracted_text("app").as_deref(),
            Some("warn for app LOKI in module test")
        );
        let e = run(
            "source: app\ntemplate: '{{ Replace .Value \"loki\" \"blokey\" 1 }}'",
            entry(),
        );
        assert_eq!(e.extracted_text("app").as_deref(), Some("blokey"));
    }

    #[test]
    fn entry_labels_numbers_empty_result_and_errors() {
        let e = run(
            "source: x\ntemplate: '{{ .Entry }}/{{ .job }}/{{ .code }}'",
            entry(),
        );
        assert_eq!(e.extracted_text("x").as_deref(), Some("the line/j/200"));
        // An empty result removes the key.
        let e = run(
            "source: app\ntemplate: '{{ if eq .level \"info\" }}kept{{ end }}'",
            entry(),
        );
        assert!(e.extracted("app").is_none());
        // An execution error leaves everything as it was.
        let e = run("source: app\ntemplate: '{{ ToUpper .nothing }}'", entry());
        assert_eq!(e.extracted_text("app").as_deref(), Some("loki"));
        for (yaml, key) in [
            ("source: ''\ntemplate: x", "source"),
            ("source: a\ntemplate: '{{ Nope .Value }}'", "template"),
        ] {
            let cfg: TemplateConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert_eq!(TemplateStage::new(&cfg).expect_err(yaml).key, key);
        }
    }
}
