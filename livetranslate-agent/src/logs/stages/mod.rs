//! Promtail's `pipeline_stages`, read and run as Promtail 2.7 does.
//!
//! It knows nothing of the rest of the agent but its leaves ([`crate::duration`], [`crate::tz`]).
//! Give it the stages of a
//! `scrape_configs[].pipeline_stages` list and feed it entries; it hands back what to ship
//! and what was dropped, with Promtail's drop reasons.
//!
//! ```
//! use livetranslate_agent::logs::stages::{labels, Entry, Outcome, Pipeline, StageConfig};
//!
//! let stages: Vec<StageConfig> = serde_yaml_ng::from_str(
//!     "- json:\n    expressions: {level: level, ts: time}\n\
//!      - labels: {level: }\n\
//!      - timestamp: {source: ts, format: RFC3339}\n",
//! )
//! .unwrap();
//! let mut pipeline = Pipeline::new(&stages).unwrap();
//! let mut out = Vec::new();
//! let line = r#"{"level":"info","time":"2023-11-14T22:13:20Z","msg":"hi"}"#;
//! pipeline.process(Entry::new(line, 0, labels([("job", "app")])), &mut out);
//! let Outcome::Ship(entry) = &out[0] else { panic!() };
//! assert_eq!(&*entry.labels()["level"], "info");
//! assert_eq!(entry.timestamp_ns, 1_700_000_000_000_000_000);
//! ```
//!
//! Stages: `docker`, `cri`, `json`, `regex`, `logfmt`, `replace`, `template`, `labels`,
//! `static_labels`, `labeldrop`, `labelallow`, `tenant`, `timestamp`, `output`,
//! `decolorize`, `drop`, `sampling`, `limit`, `match`, `multiline`. `metrics`, `pack`,
//! `geoip`, `eventlogmessage`, `structured_metadata`/`non_indexed_labels` are refused when
//! the configuration is read, naming the stage: nothing is silently ignored.
//!
//! Configuration: `Vec<StageConfig>` deserializes from Promtail's YAML. Every check —
//! unknown stage or key, regexes, templates and their functions, time layouts and
//! locations, LogQL selectors, JMESPath expressions — runs while deserializing, so the YAML
//! library's error carries the path (`pipeline_stages[2].match.stages[0]`), the key inside
//! the stage (`regex.expression: ...`) and the line and column. [`Pipeline::new`] runs the
//! same checks for configurations built in code and returns a [`StageError`].
//!
//! Stateful stages (`multiline`, partial `cri`/`docker` lines) hold entries between calls:
//! call [`Pipeline::flush_expired`] by [`Pipeline::next_deadline`], and
//! [`Pipeline::flush_all`] when the input stops; [`Pipeline::held_sources`] says which
//! lines must not be acknowledged yet. A `limit` stage without `drop` asks the caller to
//! pause through [`Pipeline::take_throttle`].

mod bounded;
mod container;
mod drop;
mod entry;
mod go;
mod golayout;
mod gotemplate;
mod json;
mod labels;
mod limit;
mod logfmt;
mod matcher;
mod multiline;
mod output;
mod regex;
mod replace;
mod template;
mod timestamp;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

pub use container::{CriConfig, DockerConfig};
pub use drop::{DropConfig, SamplingConfig};
pub use entry::{labels, stream_key, Entry, Labels, Value, ValueRef};
pub use json::JsonConfig;
pub use labels::{LabelsConfig, StaticLabelsConfig, TenantConfig, RESERVED_LABEL_TENANT_ID};
pub use limit::LimitConfig;
pub use logfmt::LogfmtConfig;
pub use matcher::MatchConfig;
pub use multiline::MultilineConfig;
pub use output::OutputConfig;
pub use regex::RegexConfig;
pub use replace::ReplaceConfig;
pub use template::TemplateConfig;
pub use timestamp::TimestampConfig;

/// One entry of `pipeline_stages`: `{<stage name>: <settings>}`.
#[derive(Debug, Clone, PartialEq)]
pub enum StageConfig {
    /// `docker: {}`: Docker's json-file lines.
    Docker(DockerConfig),
    /// `cri: {}`: CRI (containerd, CRI-O) lines.
    Cri(CriConfig),
    /// `json:` extraction by JMESPath expressions.
    Json(JsonConfig),
    /// `regex:` extraction by named groups.
    Regex(RegexConfig),
    /// `logfmt:` extraction.
    Logfmt(LogfmtConfig),
    /// `replace:` rewriting of regex captures.
    Replace(ReplaceConfig),
    /// `template:` a Go template over the extracted map.
    Template(TemplateConfig),
    /// `labels:` extracted values as labels.
    Labels(LabelsConfig),
    /// `static_labels:` fixed labels.
    StaticLabels(StaticLabelsConfig),
    /// `labeldrop:` labels to remove.
    LabelDrop(Vec<String>),
    /// `labelallow:` labels to keep (all others removed).
    LabelAllow(Vec<String>),
    /// `tenant:` the Loki tenant of the entry.
    Tenant(TenantConfig),
    /// `timestamp:` the entry's time from an extracted value.
    Timestamp(TimestampConfig),
    /// `output:` the line from an extracted value.
    Output(OutputConfig),
    /// `decolorize:` ANSI colour codes removed from the line.
    Decolorize,
    /// `drop:` entries removed by condition.
    Drop(DropConfig),
    /// `sampling:` a random fraction of entries kept.
    Sampling(SamplingConfig),
    /// `limit:` a rate limit.
    Limit(LimitConfig),
    /// `match:` stages for entries whose labels match a selector.
    Match(MatchConfig),
    /// `multiline:` lines joined into one entry.
    Multiline(MultilineConfig),
}

/// Stage names Promtail has that this module refuses, with why.
const REFUSED: &[(&str, &str)] = &[
    ("metrics", "the agent does not create metrics from log lines; count them with a Loki recording rule instead"),
    ("pack", "packing labels into the line is not supported"),
    ("geoip", "GeoIP lookups (MaxMind databases) are not supported"),
    ("eventlogmessage", "Windows event log messages are not read by this agent"),
    ("structured_metadata", "structured metadata needs Loki 2.9+ and is not sent by this agent"),
    ("non_indexed_labels", "structured metadata needs Loki 2.9+ and is not sent by this agent"),
];

/// Every stage name this module runs.
pub const STAGE_NAMES: &[&str] = &[
    "docker",
    "cri",
    "json",
    "regex",
    "logfmt",
    "replace",
    "template",
    "labels",
    "static_labels",
    "labeldrop",
    "labelallow",
    "tenant",
    "timestamp",
    "output",
    "decolorize",
    "drop",
    "sampling",
    "limit",
    "match",
    "multiline",
];

impl StageConfig {
    /// The stage's name as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            StageConfig::Docker(_) => "docker",
            StageConfig::Cri(_) => "cri",
            StageConfig::Json(_) => "json",
            StageConfig::Regex(_) => "regex",
            StageConfig::Logfmt(_) => "logfmt",
            StageConfig::Replace(_) => "replace",
            StageConfig::Template(_) => "template",
            StageConfig::Labels(_) => "labels",
            StageConfig::StaticLabels(_) => "static_labels",
            StageConfig::LabelDrop(_) => "labeldrop",
            StageConfig::LabelAllow(_) => "labelallow",
            StageConfig::Tenant(_) => "tenant",
            StageConfig::Timestamp(_) => "timestamp",
            StageConfig::Output(_) => "output",
            StageConfig::Decolorize => "decolorize",
            StageConfig::Drop(_) => "drop",
            StageConfig::Sampling(_) => "sampling",
            StageConfig::Limit(_) => "limit",
            StageConfig::Match(_) => "match",
            StageConfig::Multiline(_) => "multiline",
        }
    }

    /// Whether the stage may hold entries between calls (joined lines: `multiline`, partial
    /// `docker` / `cri` lines, and `match` stages nesting them): a caller acknowledging read
    /// positions must then ask [`Pipeline::held_sources`].
    pub fn may_hold(&self) -> bool {
        match self {
            StageConfig::Docker(_) | StageConfig::Cri(_) | StageConfig::Multiline(_) => true,
            StageConfig::Match(m) => m.stages.iter().any(StageConfig::may_hold),
            _ => false,
        }
    }

    /// Builds the stage (compiles its regexes, templates, layouts).
    fn build(&self) -> Result<Box<dyn Stage>, StageError> {
        Ok(match self {
            StageConfig::Docker(c) => Box::new(container::DockerStage::new(c)?),
            StageConfig::Cri(c) => Box::new(container::CriStage::new(c)?),
            StageConfig::Json(c) => Box::new(json::JsonStage::new(c)?),
            StageConfig::Regex(c) => Box::new(regex::RegexStage::new(c)?),
            StageConfig::Logfmt(c) => Box::new(logfmt::LogfmtStage::new(c)?),
            StageConfig::Replace(c) => Box::new(replace::ReplaceStage::new(c)?),
            StageConfig::Template(c) => Box::new(template::TemplateStage::new(c)?),
            StageConfig::Labels(c) => Box::new(labels::LabelsStage::new(c)?),
            StageConfig::StaticLabels(c) => Box::new(labels::StaticLabelsStage::new(c)?),
            StageConfig::LabelDrop(c) => Box::new(labels::LabelDropStage::new(c)?),
            StageConfig::LabelAllow(c) => Box::new(labels::LabelAllowStage::new(c)?),
            StageConfig::Tenant(c) => Box::new(labels::TenantStage::new(c)?),
            StageConfig::Timestamp(c) => Box::new(timestamp::TimestampStage::new(c)?),
            StageConfig::Output(c) => Box::new(output::OutputStage::new(c)?),
            StageConfig::Decolorize => Box::new(output::DecolorizeStage::new()),
            StageConfig::Drop(c) => Box::new(drop::DropStage::new(c)?),
            StageConfig::Sampling(c) => Box::new(drop::SamplingStage::new(c)?),
            StageConfig::Limit(c) => Box::new(limit::LimitStage::new(c)?),
            StageConfig::Match(c) => Box::new(matcher::MatchStage::new(c)?),
            StageConfig::Multiline(c) => Box::new(multiline::MultilineStage::new(c)?),
        })
    }
}

impl<'de> Deserialize<'de> for StageConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StageVisitor)
    }
}

/// `serde_yaml_ng::Value`-free "anything" for stages without settings (`docker: {}`,
/// `docker:`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

struct StageVisitor;

impl<'de> Visitor<'de> for StageVisitor {
    type Value = StageConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a pipeline stage: a map with one key, the stage name (e.g. `- json: {...}`)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StageConfig, E> {
        Err(E::custom(format!(
            "stage `{v}` has no settings: write it as a YAML map (`- {v}: {{}}`), as Promtail requires"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StageConfig, A::Error> {
        let Some(name) = m.next_key::<String>()? else {
            return Err(de::Error::custom(
                "empty pipeline stage: expected `<stage name>: <settings>`",
            ));
        };
        let cfg = match name.as_str() {
            "docker" => {
                StageConfig::Docker(m.next_value::<Option<DockerConfig>>()?.unwrap_or_default())
            }
            "cri" => StageConfig::Cri(m.next_value::<Option<CriConfig>>()?.unwrap_or_default()),
            "json" => StageConfig::Json(m.next_value()?),
            "regex" => StageConfig::Regex(m.next_value()?),
            "logfmt" => StageConfig::Logfmt(m.next_value()?),
            "replace" => StageConfig::Replace(m.next_value()?),
            "template" => StageConfig::Template(m.next_value()?),
            "labels" => {
                StageConfig::Labels(m.next_value::<Option<LabelsConfig>>()?.unwrap_or_default())
            }
            "static_labels" => StageConfig::StaticLabels(
                m.next_value::<Option<StaticLabelsConfig>>()?
                    .unwrap_or_default(),
            ),
            "labeldrop" => {
                StageConfig::LabelDrop(m.next_value::<Option<Vec<String>>>()?.unwrap_or_default())
            }
            "labelallow" => {
                StageConfig::LabelAllow(m.next_value::<Option<Vec<String>>>()?.unwrap_or_default())
            }
            "tenant" => StageConfig::Tenant(m.next_value()?),
            "timestamp" => StageConfig::Timestamp(m.next_value()?),
            "output" => StageConfig::Output(m.next_value()?),
            "decolorize" => {
                m.next_value::<Option<NoSettings>>()?;
                StageConfig::Decolorize
            }
            "drop" => StageConfig::Drop(m.next_value()?),
            "sampling" => StageConfig::Sampling(m.next_value()?),
            "limit" => StageConfig::Limit(m.next_value()?),
            "match" => StageConfig::Match(m.next_value()?),
            "multiline" => StageConfig::Multiline(m.next_value()?),
            other => {
                if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == other) {
                    return Err(de::Error::custom(format!(
                        "stage `{other}` is not supported: {why}"
                    )));
                }
                return Err(de::Error::custom(format!(
                    "unknown pipeline stage `{other}`, expected one of: {}",
                    STAGE_NAMES.join(", ")
                )));
            }
        };
        if let Some(second) = m.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a pipeline stage has exactly one key; found `{name}` and `{second}` \
                 (start each stage with its own `- `)"
            )));
        }
        // Check what only the built stage knows (regexes, templates, layouts, selectors),
        // while the YAML location is still at hand.
        if let Err(mut e) = cfg.build() {
            e.path.insert(0, (0, cfg.name()));
            return Err(de::Error::custom(e.relative()));
        }
        Ok(cfg)
    }
}

impl Serialize for StageConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self {
            StageConfig::Docker(c) => m.serialize_entry("docker", c)?,
            StageConfig::Cri(c) => m.serialize_entry("cri", c)?,
            StageConfig::Json(c) => m.serialize_entry("json", c)?,
            StageConfig::Regex(c) => m.serialize_entry("regex", c)?,
            StageConfig::Logfmt(c) => m.serialize_entry("logfmt", c)?,
            StageConfig::Replace(c) => m.serialize_entry("replace", c)?,
            StageConfig::Template(c) => m.serialize_entry("template", c)?,
            StageConfig::Labels(c) => m.serialize_entry("labels", c)?,
            StageConfig::StaticLabels(c) => m.serialize_entry("static_labels", c)?,
            StageConfig::LabelDrop(c) => m.serialize_entry("labeldrop", c)?,
            StageConfig::LabelAllow(c) => m.serialize_entry("labelallow", c)?,
            StageConfig::Tenant(c) => m.serialize_entry("tenant", c)?,
            StageConfig::Timestamp(c) => m.serialize_entry("timestamp", c)?,
            StageConfig::Output(c) => m.serialize_entry("output", c)?,
            StageConfig::Decolorize => m.serialize_entry("decolorize", &EmptyMap)?,
            StageConfig::Drop(c) => m.serialize_entry("drop", c)?,
            StageConfig::Sampling(c) => m.serialize_entry("sampling", c)?,
            StageConfig::Limit(c) => m.serialize_entry("limit", c)?,
            StageConfig::Match(c) => m.serialize_entry("match", c)?,
            StageConfig::Multiline(c) => m.serialize_entry("multiline", c)?,
        }
        m.end()
    }
}

struct EmptyMap;

impl Serialize for EmptyMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// A configuration error: which stage (by index, nested `match` stages included), which key
/// of it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageError {
    /// The stage's index and name at each level: `[(2, "match"), (0, "regex")]` is the first
    /// stage nested in the third.
    pub path: Vec<(usize, &'static str)>,
    /// The key within the stage (`expression`, `fallback_formats[1]`); empty for the stage
    /// as a whole.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl StageError {
    /// An error about `key` of the stage being built.
    pub(crate) fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        StageError {
            path: Vec::new(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The message relative to the stage entry (the first level of `path`):
    /// `regex.expression: ...`, `match.stages[0].regex.expression: ...`.
    fn relative(&self) -> String {
        let mut s = String::new();
        for (depth, (i, name)) in self.path.iter().enumerate() {
            if depth == 0 {
                s.push_str(name);
            } else {
                s.push_str(&format!(".stages[{i}].{name}"));
            }
        }
        if !self.key.is_empty() {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(&self.key);
        }
        format!("{s}: {}", self.message)
    }

    /// The key path from `pipeline_stages`: `pipeline_stages[2].match.stages[0].regex.expression`.
    pub fn key_path(&self) -> String {
        let mut s = String::from("pipeline_stages");
        for (depth, (i, name)) in self.path.iter().enumerate() {
            if depth > 0 {
                s.push_str(".stages");
            }
            s.push_str(&format!("[{i}].{name}"));
        }
        if !self.key.is_empty() {
            s.push('.');
            s.push_str(&self.key);
        }
        s
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key_path(), self.message)
    }
}

impl std::error::Error for StageError {}

/// What became of an entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Went through every stage: ship it.
    Ship(Entry),
    /// A stage dropped it.
    Dropped(Dropped),
}

/// An entry a stage dropped, with Promtail's reason (the `reason` label of
/// `logentry_dropped_lines_total`: `drop_stage`, `match_stage`, `ratelimit_drop_stage`,
/// `sampling_stage`, or the configured `drop_counter_reason`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// The entry as it was when dropped.
    pub entry: Entry,
    /// Why.
    pub reason: Arc<str>,
    /// The stage that dropped it.
    pub stage: &'static str,
}

/// The time a stage runs at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx {
    pub(crate) now: Instant,
    /// A `limit` stage that waits asks the caller not to feed entries before this.
    pub(crate) throttle: Option<Instant>,
}

impl Default for Cx {
    fn default() -> Self {
        Cx {
            now: Instant::now(),
            throttle: None,
        }
    }
}

/// What a stage did with an entry.
pub(crate) enum Step {
    /// Continue with the next stage.
    Next(Entry),
    /// Dropped.
    Drop(Entry, Arc<str>),
    /// Kept by the stage (it comes out later, joined or flushed).
    Held,
    /// Entries the stage let out (continuing with the next stage) or dropped.
    Emit(Vec<Outcome>),
}

/// One running stage.
pub(crate) trait Stage: Send + fmt::Debug {
    fn name(&self) -> &'static str;
    fn process(&mut self, entry: Entry, cx: &mut Cx) -> Step;
    /// Lets out held entries: those past their deadline, or all when `now` is `None`.
    fn flush(&mut self, _now: Option<Instant>, _cx: &mut Cx, _out: &mut Vec<Outcome>) {}
    /// When `flush` would let something out.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// The source of the first line of each entry held.
    fn held_sources(&self, _out: &mut Vec<(u64, u64)>) {}
}

/// A compiled pipeline.
#[derive(Debug)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
    throttle: Option<Instant>,
}

impl Pipeline {
    /// Builds a pipeline from its stages' settings.
    ///
    /// ```
    /// use livetranslate_agent::logs::stages::{Pipeline, StageConfig, RegexConfig};
    /// let bad = StageConfig::Regex(RegexConfig { expression: "(".into(), source: None });
    /// let err = Pipeline::new(&[bad]).unwrap_err();
    /// assert!(err.to_string().starts_with("pipeline_stages[0].regex.expression: "));
    /// ```
    pub fn new(stages: &[StageConfig]) -> Result<Pipeline, StageError> {
        let mut built = Vec::with_capacity(stages.len());
        for (i, cfg) in stages.iter().enumerate() {
            match cfg.build() {
                Ok(s) => built.push(s),
                Err(mut e) => {
                    e.path.insert(0, (i, cfg.name()));
                    return Err(e);
                }
            }
        }
        Ok(Pipeline {
            stages: built,
            throttle: None,
        })
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the pipeline has no stage (entries go through unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs one entry through the stages; what comes out (none, when a stage holds it; more
    /// than one when it lets held entries out) is pushed to `out`.
    pub fn process(&mut self, entry: Entry, out: &mut Vec<Outcome>) {
        self.process_at(entry, Instant::now(), out);
    }

    /// [`Pipeline::process`] at a given time (for `multiline` and `limit`).
    pub fn process_at(&mut self, entry: Entry, now: Instant, out: &mut Vec<Outcome>) {
        let mut cx = Cx {
            now,
            throttle: None,
        };
        self.run(0, entry, &mut cx, out);
        if let Some(t) = cx.throttle {
            self.throttle = Some(self.throttle.map_or(t, |old| old.max(t)));
        }
    }

    /// Lets out held entries whose wait is over (`multiline`'s `max_wait_time`).
    pub fn flush_expired(&mut self, now: Instant, out: &mut Vec<Outcome>) {
        let mut cx = Cx {
            now,
            throttle: None,
        };
        self.flush_inner(Some(now), &mut cx, out);
    }

    /// Lets out every held entry (the input is closing, or the agent stopping).
    pub fn flush_all(&mut self, out: &mut Vec<Outcome>) {
        let mut cx = Cx::default();
        self.flush_inner(None, &mut cx, out);
    }

    /// When [`Pipeline::flush_expired`] next has something to let out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.stages.iter().filter_map(|s| s.deadline()).min()
    }

    /// The [`Entry::source`] of the first line of every entry a stage holds (partial
    /// container lines, multiline blocks): a file's position must not be acknowledged past
    /// these lines while they are held. Empty when nothing is held.
    pub fn held_sources(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for s in &self.stages {
            s.held_sources(&mut out);
        }
        out
    }

    /// Set when a `limit` stage without `drop` is over its rate: the caller should not feed
    /// more entries before this instant (Promtail blocks the pipeline instead). Cleared by
    /// the call.
    pub fn take_throttle(&mut self) -> Option<Instant> {
        self.throttle.take()
    }

    pub(crate) fn run(&mut self, start: usize, entry: Entry, cx: &mut Cx, out: &mut Vec<Outcome>) {
        let mut entry = entry;
        let mut i = start;
        while i < self.stages.len() {
            match self.stages[i].process(entry, cx) {
                Step::Next(e) => {
                    entry = e;
                    i += 1;
                }
                Step::Drop(e, reason) => {
                    out.push(Outcome::Dropped(Dropped {
                        entry: e,
                        reason,
                        stage: self.stages[i].name(),
                    }));
                    return;
                }
                Step::Held => return,
                Step::Emit(outcomes) => {
                    for o in outcomes {
                        match o {
                            Outcome::Ship(e) => self.run(i + 1, e, cx, out),
                            dropped => out.push(dropped),
                        }
                    }
                    return;
                }
            }
        }
        out.push(Outcome::Ship(entry));
    }

    pub(crate) fn flush_inner(
        &mut self,
        now: Option<Instant>,
        cx: &mut Cx,
        out: &mut Vec<Outcome>,
    ) {
        for i in 0..self.stages.len() {
            let mut let_out = Vec::new();
            self.stages[i].flush(now, cx, &mut let_out);
            for o in let_out {
                match o {
                    Outcome::Ship(e) => self.run(i + 1, e, cx, out),
                    dropped => out.push(dropped),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
