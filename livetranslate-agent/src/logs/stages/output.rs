//! The line-rewriting stages: `output` (the line from an extracted value) and `decolorize`
//! (ANSI colour and cursor codes removed, with Loki's pattern).

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Cx, Entry, Stage, StageError, Step};

/// `output:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Extracted value that becomes the line.
    pub source: String,
}

#[derive(Debug)]
pub(crate) struct OutputStage {
    source: String,
}

impl OutputStage {
    pub(crate) fn new(cfg: &OutputConfig) -> Result<Self, StageError> {
        if cfg.source.is_empty() {
            return Err(StageError::key("source", "output source value is required"));
        }
        Ok(OutputStage {
            source: cfg.source.clone(),
        })
    }
}

impl Stage for OutputStage {
    fn name(&self) -> &'static str {
        "output"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        if let Some(text) = entry.extracted_text(&self.source) {
            let text = text.into_owned();
            entry.line = text;
        }
        Step::Next(entry)
    }
}

/// Loki's decolorizer pattern (from acarl005/stripansi).
const ANSI: &str = "[\u{1b}\u{9b}][\\[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u{7})|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))";

#[derive(Debug)]
pub(crate) struct DecolorizeStage {
    re: Regex,
}

impl DecolorizeStage {
    pub(crate) fn new() -> Self {
        DecolorizeStage {
            // A fixed pattern, tested below.
            re: Regex::new(ANSI).unwrap_or_else(|e| unreachable!("ANSI pattern: {e}")),
        }
    }
}

impl Stage for DecolorizeStage {
    fn name(&self) -> &'static str {
        "decolorize"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        if entry.line.contains(['\u{1b}', '\u{9b}']) {
            if let std::borrow::Cow::Owned(s) = self.re.replace_all(&entry.line, "") {
                entry.line = s;
            }
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::entry::labels;
    use super::super::Value;
    use super::*;

    fn run(s: &mut dyn Stage, e: Entry) -> Entry {
        match s.process(e, &mut Cx::default()) {
            Step::Next(e) => e,
            _ => panic!("never drops"),
        }
    }

    #[test]
    fn output_sets_the_line_from_extracted() {
        let mut s = OutputStage::new(&OutputConfig {
            source: "message".into(),
        })
        .expect("stage");
        let mut e = Entry::new("{\"message\":\"hi\"}", 0, labels([]));
        e.set_extracted(&Arc::from("message"), Value::from("hi"));
        assert_eq!(run(&mut s, e).line, "hi");
        // Missing or null: the line stays.
        let mut e = Entry::new("keep", 0, labels([]));
        assert_eq!(run(&mut s, e.clone()).line, "keep");
        e.set_extracted(&Arc::from("message"), Value::Null);
        assert_eq!(run(&mut s, e).line, "keep");
        let mut n = OutputStage::new(&OutputConfig { source: "n".into() }).expect("stage");
        let mut e = Entry::new("x", 0, labels([]));
        e.set_extracted(&Arc::from("n"), Value::Float(1.5));
        assert_eq!(run(&mut n, e).line, "1.5");
        assert!(OutputStage::new(&OutputConfig {
            source: String::new()
        })
        .is_err());
    }

    #[test]
    fn decolorize_removes_ansi_codes() {
        let mut s = DecolorizeStage::new();
        for (input, want) in [
            ("\u{1b}[0;32mINFO\u{1b}[0m started", "INFO started"),
            ("\u{1b}[1m\u{1b}[31mERROR\u{1b}[39m\u{1b}[22m x", "ERROR x"),
            ("\u{1b}]0;title\u{7}text", "text"),
            ("plain", "plain"),
        ] {
            assert_eq!(
                run(&mut s, Entry::new(input, 0, labels([]))).line,
                want,
                "{input:?}"
            );
        }
    }
}
