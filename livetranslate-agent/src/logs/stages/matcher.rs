//! The `match` stage: a LogQL stream selector (and optional line filters) chooses the
//! entries a nested pipeline runs on — or that are dropped.
//!
//! ```yaml
//! - match:
//!     selector: '{app="loki", level=~"warn|error"} |= "timeout" != "retry"'
//!     pipeline_name: loki_warnings   # optional
//!     action: keep                   # keep (default: run `stages`) or drop
//!     drop_counter_reason: noisy     # with drop (default match_stage)
//!     stages:
//!       - json: {expressions: {msg: message}}
//! ```
//!
//! Label matchers `=`, `!=`, `=~`, `!~` (regexes anchored, as in Prometheus; a missing
//! label is the empty string); line filters `|=`, `!=`, `|~`, `!~` as Promtail 2.7's client
//! LogQL has them. Strings are Go string literals (`"..."`; `` `...` `` too).

use std::sync::Arc;
use std::time::Instant;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Cx, Entry, Outcome, Pipeline, Stage, StageConfig, StageError, Step};

/// `match:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// LogQL stream selector with optional line filters.
    pub selector: String,
    /// Stages run on matching entries (with `action: keep`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageConfig>,
    /// `keep` (default) or `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Names the nested pipeline (Promtail uses it in metric names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_name: Option<String>,
    /// The reason dropped entries are counted under (default `match_stage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_counter_reason: Option<String>,
}

#[derive(Debug, Clone)]
enum LabelMatch {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

#[derive(Debug, Clone)]
enum LineFilter {
    Contains(String),
    NotContains(String),
    Re(Regex),
    NotRe(Regex),
}

/// A parsed selector.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    matchers: Vec<(String, LabelMatch)>,
    filters: Vec<LineFilter>,
}

impl Selector {
    /// Parses `{name op "value", ...} [filter "value" ...]`.
    pub(crate) fn parse(src: &str) -> Result<Selector, String> {
        let mut p = Lexer { s: src, i: 0 };
        p.expect("{")?;
        let mut matchers = Vec::new();
        loop {
            let name = p.ident()?;
            let op = p.op(&["=~", "!~", "!=", "="])?;
            let value = p.string()?;
            let anchored = |v: &str| {
                Regex::new(&format!("^(?:{v})$"))
                    .map_err(|e| format!("invalid regex {v:?} for label {name}: {e}"))
            };
            let m = match op {
                "=" => LabelMatch::Eq(value),
                "!=" => LabelMatch::Ne(value),
                "=~" => LabelMatch::Re(anchored(&value)?),
                _ => LabelMatch::NotRe(anchored(&value)?),
            };
            matchers.push((name, m));
            if p.eat(",") {
                continue;
            }
            p.expect("}")?;
            break;
        }
        let mut filters = Vec::new();
        while !p.done() {
            let op = p.op(&["|=", "|~", "!=", "!~"]).map_err(|e| {
                if p.rest().starts_with('|') {
                    format!("{e} (only line filters |= != |~ !~ are supported after the selector)")
                } else {
                    e
                }
            })?;
            let value = p.string()?;
            let re = |v: &str| {
                Regex::new(v).map_err(|e| format!("invalid line filter regex {v:?}: {e}"))
            };
            filters.push(match op {
                "|=" => LineFilter::Contains(value),
                "!=" => LineFilter::NotContains(value),
                "|~" => LineFilter::Re(re(&value)?),
                _ => LineFilter::NotRe(re(&value)?),
            });
        }
        Ok(Selector { matchers, filters })
    }

    /// Whether the entry's labels and line match.
    pub(crate) fn matches(&self, entry: &Entry) -> bool {
        let labels = entry.labels();
        for (name, m) in &self.matchers {
            let v = labels.get(name.as_str()).map_or("", |v| &**v);
            let ok = match m {
                LabelMatch::Eq(x) => v == x,
                LabelMatch::Ne(x) => v != x,
                LabelMatch::Re(r) => r.is_match(v),
                LabelMatch::NotRe(r) => !r.is_match(v),
            };
            if !ok {
                return false;
            }
        }
        self.filters.iter().all(|f| match f {
            LineFilter::Contains(s) => entry.line.contains(s.as_str()),
            LineFilter::NotContains(s) => !entry.line.contains(s.as_str()),
            LineFilter::Re(r) => r.is_match(&entry.line),
            LineFilter::NotRe(r) => !r.is_match(&entry.line),
        })
    }
}

struct Lexer<'a> {
    s: &'a str,
    i: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }
    fn skip_ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start().len();
    }
    fn done(&mut self) -> bool {
        self.skip_ws();
        self.i >= self.s.len()
    }
    fn err(&self, what: &str) -> String {
        format!("parse error at col {}: {what}", self.i + 1)
    }
    fn eat(&mut self, t: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: &str) -> Result<(), String> {
        if self.eat(t) {
            Ok(())
        } else {
            let found = self
                .rest()
                .chars()
                .next()
                .map_or("end of input".to_owned(), |c| format!("{c:?}"));
            Err(self.err(&format!("expected `{t}`, found {found}")))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        self.skip_ws();
        let r = self.rest();
        let n = r
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())
            })
            .count();
        if n == 0 {
            return Err(self.err("expected a label name"));
        }
        let name = r[..n].to_owned();
        self.i += n;
        Ok(name)
    }
    fn op(&mut self, ops: &[&'static str]) -> Result<&'static str, String> {
        self.skip_ws();
        for op in ops {
            if self.rest().starts_with(op) {
                self.i += op.len();
                return Ok(op);
            }
        }
        Err(self.err(&format!("expected one of {}", ops.join(" "))))
    }
    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let (v, n) = super::go::unquote_prefix(self.rest()).map_err(|e| self.err(&e))?;
        self.i += n;
        Ok(v)
    }
}

#[derive(Debug)]
pub(crate) struct MatchStage {
    selector: Selector,
    /// `None` with `action: drop`.
    pipeline: Option<Pipeline>,
    reason: Arc<str>,
    buf: Vec<Outcome>,
}

impl MatchStage {
    pub(crate) fn new(cfg: &MatchConfig) -> Result<Self, StageError> {
        if cfg.pipeline_name.as_deref() == Some("") {
            return Err(StageError::key(
                "pipeline_name",
                "match stage pipeline name can be omitted but cannot be an empty string",
            ));
        }
        if cfg.selector.is_empty() {
            return Err(StageError::key(
                "selector",
                "selector statement required for match stage",
            ));
        }
        let drop = match cfg.action.as_deref() {
            None | Some("") | Some("keep") => false,
            Some("drop") => true,
            Some(other) => {
                return Err(StageError::key(
                    "action",
                    format!("match stage action should be 'keep' or 'drop', not {other:?}"),
                ))
            }
        };
        if !drop && cfg.stages.is_empty() {
            return Err(StageError::key(
                "stages",
                "match stage requires at least one additional stage to be defined in '- stages'",
            ));
        }
        if drop && !cfg.stages.is_empty() {
            return Err(StageError::key(
                "stages",
                "match stage configured to drop entries cannot contains stages",
            ));
        }
        let selector = Selector::parse(&cfg.selector).map_err(|e| {
            StageError::key(
                "selector",
                format!("invalid selector syntax for match stage: {e}"),
            )
        })?;
        let pipeline = if drop {
            None
        } else {
            Some(Pipeline::new(&cfg.stages)?)
        };
        Ok(MatchStage {
            selector,
            pipeline,
            reason: Arc::from(
                cfg.drop_counter_reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .unwrap_or("match_stage"),
            ),
            buf: Vec::new(),
        })
    }
}

impl Stage for MatchStage {
    fn name(&self) -> &'static str {
        "match"
    }

    fn process(&mut self, mut entry: Entry, cx: &mut Cx) -> Step {
        if !self.selector.matches(&entry) {
            return Step::Next(entry);
        }
        let Some(pipeline) = &mut self.pipeline else {
            return Step::Drop(entry, self.reason.clone());
        };
        // A nested pipeline starts by writing the current labels into the extracted map.
        entry.reseed_labels();
        pipeline.run(0, entry, cx, &mut self.buf);
        match self.buf.len() {
            0 => Step::Held,
            1 => match self.buf.pop() {
                Some(Outcome::Ship(e)) => Step::Next(e),
                Some(dropped) => Step::Emit(vec![dropped]),
                None => Step::Held,
            },
            _ => Step::Emit(std::mem::take(&mut self.buf)),
        }
    }

    fn flush(&mut self, now: Option<Instant>, cx: &mut Cx, out: &mut Vec<Outcome>) {
        if let Some(p) = &mut self.pipeline {
            p.flush_inner(now, cx, out);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.pipeline.as_ref().and_then(Pipeline::next_deadline)
    }

    fn held_sources(&self, out: &mut Vec<(u64, u64)>) {
        if let Some(p) = &self.pipeline {
            out.extend(p.held_sources());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn selectors() {
        let e = Entry::new(
            "GET /health 200 timeout",
            0,
            labels([("app", "loki"), ("level", "warn")]),
        );
        for (s, want) in [
            (r#"{app="loki"}"#, true),
            (r#"{app="other"}"#, false),
            (r#"{app!="other"}"#, true),
            (r#"{level=~"warn|error"}"#, true),
            (r#"{level=~"war"}"#, false),
            (r#"{level!~"debug|info"}"#, true),
            (r#"{app="loki",level="warn"}"#, true),
            (r#"{ app = "loki" , missing="" }"#, true),
            (r#"{missing!=""}"#, false),
            (r#"{app="loki"} |= "timeout""#, true),
            (r#"{app="loki"} |= "timeout" != "200""#, false),
            (r#"{app="loki"} |~ "GET /\\w+""#, true),
            (r#"{app="loki"} !~ "^GET""#, false),
            ("{app=`loki`} |= `health`", true),
        ] {
            assert_eq!(sel(s).matches(&e), want, "{s}");
        }
        for bad in [
            "app=\"loki\"",
            "{}",
            "{app=loki}",
            "{app=\"loki\"",
            "{app=~\"(\"}",
            "{app=\"x\"} | json",
            "{app=\"x\"} |= ",
            "{app==\"x\"}",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    fn stage(yaml: &str) -> MatchStage {
        let cfg: MatchConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        MatchStage::new(&cfg).expect("stage")
    }

    #[test]
    fn keep_runs_nested_stages_on_matching_entries_only() {
        let mut s = stage(
            "selector: '{app=\"loki\"}'\nstages:\n  - regex: {expression: '(?P<word>\\w+)'}\n  - labels: {word: }\n",
        );
        let Step::Next(e) = s.process(
            Entry::new("hello world", 0, labels([("app", "loki")])),
            &mut Cx::default(),
        ) else {
            panic!("kept")
        };
        assert_eq!(e.labels().get("word").map(|v| &**v), Some("hello"));
        let Step::Next(e) = s.process(
            Entry::new("hello", 0, labels([("app", "x")])),
            &mut Cx::default(),
        ) else {
            panic!("kept")
        };
        assert!(e.labels().get("word").is_none());
    }

    #[test]
    fn drop_action_and_nested_drops() {
        let mut s = stage("selector: '{app=\"loki\"} |= \"debug\"'\naction: drop\ndrop_counter_reason: loki_debug\n");
        assert!(matches!(
            s.process(Entry::new("a debug line", 0, labels([("app", "loki")])), &mut Cx::default()),
            Step::Drop(_, r) if &*r == "loki_debug"
        ));
        assert!(matches!(
            s.process(
                Entry::new("an info line", 0, labels([("app", "loki")])),
                &mut Cx::default()
            ),
            Step::Next(_)
        ));
        let mut nested =
            stage("selector: '{app=\"loki\"}'\nstages:\n  - drop: {expression: 'x'}\n");
        match nested.process(
            Entry::new("x", 0, labels([("app", "loki")])),
            &mut Cx::default(),
        ) {
            Step::Emit(out) => assert!(
                matches!(&out[..], [Outcome::Dropped(d)] if &*d.reason == "drop_stage" && d.stage == "drop")
            ),
            _ => panic!("expected the nested drop"),
        }
    }

    #[test]
    fn config_errors() {
        for (yaml, key) in [
            ("selector: '{a=\"b\"}'", "stages"),
            (
                "selector: '{a=\"b\"}'\naction: drop\nstages: [{labeldrop: [a]}]",
                "stages",
            ),
            ("selector: '{a=\"b\"}'\naction: maybe", "action"),
            ("selector: 'a=b'\naction: drop", "selector"),
            ("selector: ''\naction: drop", "selector"),
            (
                "selector: '{a=\"b\"}'\naction: drop\npipeline_name: ''",
                "pipeline_name",
            ),
        ] {
            let cfg: MatchConfig = serde_yaml_ng::from_str(yaml).expect(yaml);
            assert_eq!(MatchStage::new(&cfg).expect_err(yaml).key, key, "{yaml}");
        }
    }
}
