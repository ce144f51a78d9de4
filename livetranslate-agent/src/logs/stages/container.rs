//! The container log formats: `docker` (json-file driver) and `cri` (containerd, CRI-O).
//!
//! Both do what Promtail's do, stage for stage: `docker` extracts `output` (from `log`),
//! `stream` and `timestamp` (from `time`), sets the `stream` label, the timestamp (RFC 3339,
//! fudged on failure) and the line; `cri` extracts `time`, `stream`, `flags` and `content`
//! the same way. A line that does not have the format goes on unchanged.
//!
//! Long lines split by the runtime are joined, per stream (label set), by concatenation:
//! CRI's `P` (partial) fragments up to the `F` one — as Promtail 2.8+ does; Promtail 2.7
//! joined them with a newline, into one buffer for all streams — and Docker's fragments
//! (a `log` without the final newline), which Promtail ships as separate entries. Joining is
//! bounded: at most `max_partial_lines` streams hold fragments (beyond, what is held is let
//! out as is), `max_partial_line_size` (with `max_partial_line_size_truncate`) caps a joined
//! line, and fragments idle for 5 s are let out. Docker's `log` loses its final `\n`
//! (Promtail keeps it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::bounded::FxMap;
use super::go::weak_string_opt;
use super::json::Extractor;
use super::labels::LabelsStage;
use super::timestamp::{TimestampConfig, TimestampStage};
use super::{Cx, Entry, LabelsConfig, Outcome, Stage, StageError, Step, Value};

/// `docker: {}` (no settings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {}

/// `cri:` settings (Promtail 2.8+; `cri: {}` takes the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CriConfig {
    /// Most streams holding partial fragments at once (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_partial_lines: Option<usize>,
    /// Longest joined line, as a byte size (`64KB`); only with the next setting.
    #[serde(
        default,
        deserialize_with = "weak_string_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_partial_line_size: Option<String>,
    /// Cut joined lines at `max_partial_line_size`.
    #[serde(default)]
    pub max_partial_line_size_truncate: bool,
}

/// Default `max_partial_lines`.
const MAX_PARTIAL_STREAMS: usize = 100;
/// Fragments waiting longer than this for the rest of their line are let out.
const PARTIAL_IDLE: Duration = Duration::from_secs(5);

/// Joined fragments, when the last came, the first one's [`Entry::source`].
type Held = (Entry, Instant, Option<(u64, u64)>);

/// Fragments held per stream.
#[derive(Debug)]
struct Partials {
    max_streams: usize,
    max_size: Option<usize>,
    /// Per stream: the joined fragments, when the last came, the first one's source.
    pending: FxMap<u64, Held>,
}

impl Partials {
    fn new(max_streams: usize, max_size: Option<usize>) -> Self {
        Partials {
            max_streams: max_streams.max(1),
            max_size,
            pending: FxMap::default(),
        }
    }

    fn truncate(&self, e: &mut Entry) {
        if let Some(max) = self.max_size {
            if e.line.len() > max {
                let mut cut = max;
                while !e.line.is_char_boundary(cut) {
                    cut -= 1;
                }
                e.line.truncate(cut);
            }
        }
    }

    /// A fragment: held; what the stream bound lets out is returned.
    fn hold(&mut self, key: u64, mut e: Entry, now: Instant) -> Step {
        if let Some((prev, _, first)) = self.pending.remove(&key) {
            e.line.insert_str(0, &prev.line);
            self.truncate(&mut e);
            self.pending.insert(key, (e, now, first));
            return Step::Held;
        }
        self.truncate(&mut e);
        let first = e.source;
        if self.pending.len() >= self.max_streams {
            let out = self
                .pending
                .drain()
                .map(|(_, (p, _, _))| Outcome::Ship(p))
                .collect();
            self.pending.insert(key, (e, now, first));
            return Step::Emit(out);
        }
        self.pending.insert(key, (e, now, first));
        Step::Held
    }

    /// The last fragment: the joined entry (this entry's time, labels and source).
    fn complete(&mut self, key: u64, mut e: Entry) -> Entry {
        if let Some((prev, _, _)) = self.pending.remove(&key) {
            e.line.insert_str(0, &prev.line);
            self.truncate(&mut e);
        }
        e
    }

    fn flush(&mut self, now: Option<Instant>, out: &mut Vec<Outcome>) {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, since, _))| {
                now.is_none_or(|n| n.duration_since(*since) >= PARTIAL_IDLE)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            if let Some((e, _, _)) = self.pending.remove(&k) {
                out.push(Outcome::Ship(e));
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|(_, since, _)| *since + PARTIAL_IDLE)
            .min()
    }

    fn held_sources(&self, out: &mut Vec<(u64, u64)>) {
        out.extend(self.pending.values().filter_map(|(_, _, first)| *first));
    }
}

fn stream_labels() -> LabelsStage {
    let mut cfg = LabelsConfig::new();
    cfg.insert("stream".to_owned(), None);
    // A fixed, valid configuration.
    LabelsStage::new(&cfg).unwrap_or_else(|_| unreachable!("the stream label is valid"))
}

fn rfc3339(source: &str) -> Result<TimestampStage, StageError> {
    TimestampStage::new(&TimestampConfig {
        source: source.to_owned(),
        format: "RFC3339Nano".to_owned(),
        fallback_formats: Vec::new(),
        location: None,
        action_on_failure: None,
    })
}

fn next(step: Step) -> Entry {
    match step {
        Step::Next(e) => e,
        // The inner stages used here (labels, timestamp) always continue.
        _ => unreachable!("labels and timestamp stages never hold or drop"),
    }
}

#[derive(Debug)]
pub(crate) struct DockerStage {
    json: Extractor,
    labels: LabelsStage,
    timestamp: TimestampStage,
    output: Arc<str>,
    partials: Partials,
}

impl DockerStage {
    pub(crate) fn new(_cfg: &DockerConfig) -> Result<Self, StageError> {
        let json = Extractor::new([
            ("output", "log"),
            ("stream", "stream"),
            ("timestamp", "time"),
        ])
        .map_err(|(_, e)| StageError::key("", e))?;
        Ok(DockerStage {
            json,
            labels: stream_labels(),
            timestamp: rfc3339("timestamp")?,
            output: Arc::from("output"),
            partials: Partials::new(MAX_PARTIAL_STREAMS, None),
        })
    }
}

impl Stage for DockerStage {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn process(&mut self, mut entry: Entry, cx: &mut Cx) -> Step {
        let line = std::mem::take(&mut entry.line);
        let parsed = self.json.extract(&line, &mut entry).is_ok();
        entry.line = line;
        let mut entry = next(self.labels.process(entry, cx));
        entry = next(self.timestamp.process(entry, cx));
        if !parsed {
            return Step::Next(entry);
        }
        let Some(text) = entry.extracted_text(&self.output).map(|t| t.into_owned()) else {
            return Step::Next(entry);
        };
        let complete = text.ends_with('\n');
        let text = match text.strip_suffix('\n') {
            Some(t) => t.strip_suffix('\r').unwrap_or(t).to_owned(),
            None => text,
        };
        entry.set_extracted(&self.output, Value::String(text.clone()));
        entry.line = text;
        let key = entry.stream_key();
        if complete {
            Step::Next(self.partials.complete(key, entry))
        } else {
            self.partials.hold(key, entry, cx.now)
        }
    }

    fn flush(&mut self, now: Option<Instant>, _cx: &mut Cx, out: &mut Vec<Outcome>) {
        self.partials.flush(now, out);
    }

    fn deadline(&self) -> Option<Instant> {
        self.partials.deadline()
    }

    fn held_sources(&self, out: &mut Vec<(u64, u64)>) {
        self.partials.held_sources(out);
    }
}

#[derive(Debug)]
pub(crate) struct CriStage {
    keys: [Arc<str>; 4],
    labels: LabelsStage,
    timestamp: TimestampStage,
    partials: Partials,
}

/// CRI's `<time> <stream> <flags> <content>`, as Promtail's regex
/// `^(?s)(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$` reads it.
fn split_cri(line: &str) -> Option<(&str, &str, &str, &str)> {
    let not_space = |s: &str| {
        !s.is_empty()
            && !s
                .bytes()
                .any(|b| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r'))
    };
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    let (flags, content) = rest.split_once(' ')?;
    (not_space(time) && matches!(stream, "stdout" | "stderr") && not_space(flags))
        .then_some((time, stream, flags, content))
}

impl CriStage {
    pub(crate) fn new(cfg: &CriConfig) -> Result<Self, StageError> {
        let max_size = match (
            &cfg.max_partial_line_size,
            cfg.max_partial_line_size_truncate,
        ) {
            (Some(s), true) => Some(
                super::go::parse_bytes(s)
                    .map_err(|e| StageError::key("max_partial_line_size", e))?
                    as usize,
            )
            .filter(|&n| n > 0),
            _ => None,
        };
        Ok(CriStage {
            keys: [
                Arc::from("time"),
                Arc::from("stream"),
                Arc::from("flags"),
                Arc::from("content"),
            ],
            labels: stream_labels(),
            timestamp: rfc3339("time")?,
            partials: Partials::new(
                cfg.max_partial_lines
                    .filter(|&n| n > 0)
                    .unwrap_or(MAX_PARTIAL_STREAMS),
                max_size,
            ),
        })
    }
}

impl Stage for CriStage {
    fn name(&self) -> &'static str {
        "cri"
    }

    fn process(&mut self, mut entry: Entry, cx: &mut Cx) -> Step {
        let mut partial = false;
        let mut content = None;
        if let Some((time, stream, flags, c)) = split_cri(&entry.line) {
            let (time, stream, flags, c) = (
                time.to_owned(),
                stream.to_owned(),
                flags.to_owned(),
                c.to_owned(),
            );
            partial = flags.split(':').next() == Some("P");
            let [k_time, k_stream, k_flags, k_content] = &self.keys;
            entry.set_extracted(k_time, Value::String(time));
            entry.set_extracted(k_stream, Value::String(stream));
            entry.set_extracted(k_flags, Value::String(flags));
            entry.set_extracted(k_content, Value::String(c.clone()));
            content = Some(c);
        }
        let mut entry = next(self.labels.process(entry, cx));
        entry = next(self.timestamp.process(entry, cx));
        let Some(content) = content else {
            return Step::Next(entry);
        };
        entry.line = content;
        let key = entry.stream_key();
        if partial {
            self.partials.hold(key, entry, cx.now)
        } else {
            Step::Next(self.partials.complete(key, entry))
        }
    }

    fn flush(&mut self, now: Option<Instant>, _cx: &mut Cx, out: &mut Vec<Outcome>) {
        self.partials.flush(now, out);
    }

    fn deadline(&self) -> Option<Instant> {
        self.partials.deadline()
    }

    fn held_sources(&self, out: &mut Vec<(u64, u64)>) {
        self.partials.held_sources(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn ship(step: Step) -> Entry {
        match step {
            Step::Next(e) => e,
            _ => panic!("expected the entry to go on"),
        }
    }

    #[test]
    fn docker_doc_example() {
        let mut s = DockerStage::new(&DockerConfig {}).expect("stage");
        let e = ship(s.process(
            Entry::new(
                r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#,
                7,
                labels([("job", "docker")]),
            ),
            &mut Cx::default(),
        ));
        assert_eq!(e.line, "log message");
        assert_eq!(&*e.labels()["stream"], "stderr");
        assert_eq!(e.timestamp_ns, 1_556_590_361_844_351_500);
        assert_eq!(e.extracted_text("output").as_deref(), Some("log message"));
        assert_eq!(e.extracted_text("stream").as_deref(), Some("stderr"));
        assert_eq!(
            e.extracted_text("timestamp").as_deref(),
            Some("2019-04-30T02:12:41.8443515Z")
        );
    }

    #[test]
    fn docker_joins_fragments_per_stream_and_passes_other_lines() {
        let mut s = DockerStage::new(&DockerConfig {}).expect("stage");
        let mut cx = Cx::default();
        let frag = |log: &str, stream: &str| {
            Entry::new(
                format!(r#"{{"log":"{log}","stream":"{stream}","time":"2019-04-30T02:12:41Z"}}"#),
                0,
                labels([]),
            )
        };
        assert!(matches!(
            s.process(frag("aaa", "stdout"), &mut cx),
            Step::Held
        ));
        assert!(matches!(
            s.process(frag("xx", "stderr"), &mut cx),
            Step::Held
        ));
        assert!(matches!(
            s.process(frag("bbb", "stdout"), &mut cx),
            Step::Held
        ));
        let e = ship(s.process(frag("ccc\\n", "stdout"), &mut cx));
        assert_eq!(e.line, "aaabbbccc");
        let e = ship(s.process(frag("yy\\r\\n", "stderr"), &mut cx));
        assert_eq!(e.line, "xxyy");
        // Not Docker's format: unchanged, the read time kept (nothing to fudge from yet).
        let e = ship(s.process(Entry::new("plain text", 5, labels([("a", "b")])), &mut cx));
        assert_eq!(e.line, "plain text");
        assert_eq!(e.timestamp_ns, 5);
        // A fragment left alone is let out after the idle time, or by flush_all.
        assert!(matches!(
            s.process(frag("tail", "stdout"), &mut cx),
            Step::Held
        ));
        let mut out = Vec::new();
        s.flush(Some(cx.now), &mut cx, &mut out);
        assert!(out.is_empty());
        s.flush(Some(cx.now + PARTIAL_IDLE), &mut cx, &mut out);
        assert!(matches!(&out[..], [Outcome::Ship(e)] if e.line == "tail"));
    }

    #[test]
    fn cri_doc_examples() {
        let mut s = CriStage::new(&CriConfig::default()).expect("stage");
        let e = ship(s.process(
            Entry::new(
                "2019-04-30T02:12:41.8443515Z stdout xx message",
                0,
                labels([]),
            ),
            &mut Cx::default(),
        ));
        assert_eq!(e.line, "message");
        assert_eq!(&*e.labels()["stream"], "stdout");
        assert_eq!(e.extracted_text("flags").as_deref(), Some("xx"));
        assert_eq!(e.extracted_text("content").as_deref(), Some("message"));
        assert_eq!(e.timestamp_ns, 1_556_590_361_844_351_500);
        // From Promtail's docs: only the first of these is CRI.
        for (line, ok) in [
            ("2019-01-01T01:00:00.000000001Z stderr P test\ngood", true),
            ("2019-01-01 T01:00:00.000000001Z stderr testgood", false),
            ("2019-01-01T01:00:00.000000001Z testgood", false),
        ] {
            assert_eq!(split_cri(line).is_some(), ok, "{line}");
        }
    }

    #[test]
    fn cri_joins_partial_lines_per_stream_by_concatenation() {
        let mut s = CriStage::new(&CriConfig::default()).expect("stage");
        let mut cx = Cx::default();
        let line = |stream: &str, flag: &str, text: &str| {
            Entry::new(
                format!("2023-11-14T22:13:20Z {stream} {flag} {text}"),
                0,
                labels([("job", "k")]),
            )
        };
        assert!(matches!(
            s.process(line("stdout", "P", "hel"), &mut cx),
            Step::Held
        ));
        assert!(matches!(
            s.process(line("stderr", "P", "oth"), &mut cx),
            Step::Held
        ));
        assert!(matches!(
            s.process(line("stdout", "P", "lo "), &mut cx),
            Step::Held
        ));
        let e = ship(s.process(line("stdout", "F", "world"), &mut cx));
        assert_eq!(e.line, "hello world");
        let e = ship(s.process(line("stderr", "F", "er"), &mut cx));
        assert_eq!(e.line, "other");
        let e = ship(s.process(line("stdout", "F", "single"), &mut cx));
        assert_eq!(e.line, "single");
    }

    #[test]
    fn cri_bounds_streams_and_size() {
        let cfg: CriConfig = serde_yaml_ng::from_str(
            "max_partial_lines: 2\nmax_partial_line_size: 8\nmax_partial_line_size_truncate: true\n",
        )
        .expect("config");
        let mut s = CriStage::new(&cfg).expect("stage");
        let mut cx = Cx::default();
        let line = |job: &str, flag: &str, text: &str| {
            Entry::new(
                format!("2023-11-14T22:13:20Z stdout {flag} {text}"),
                0,
                labels([("job", job)]),
            )
        };
        assert!(matches!(
            s.process(line("a", "P", "0123456"), &mut cx),
            Step::Held
        ));
        assert!(matches!(
            s.process(line("b", "P", "b"), &mut cx),
            Step::Held
        ));
        // A third stream: the two held are let out as they are.
        match s.process(line("c", "P", "c"), &mut cx) {
            Step::Emit(out) => assert_eq!(out.len(), 2),
            _ => panic!("expected the held fragments out"),
        }
        let e = ship(s.process(line("c", "F", "0123456789"), &mut cx));
        assert_eq!(e.line, "c0123456");
        assert!(serde_yaml_ng::from_str::<CriConfig>("max_partial_lines: 2\nbogus: 1\n").is_err());
        let bad: CriConfig = serde_yaml_ng::from_str(
            "max_partial_line_size: lots\nmax_partial_line_size_truncate: true\n",
        )
        .expect("yaml");
        assert_eq!(
            CriStage::new(&bad).expect_err("bad size").key,
            "max_partial_line_size"
        );
    }
}
