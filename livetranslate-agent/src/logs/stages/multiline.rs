//! The `multiline` stage: lines joined into one entry (stack traces), per stream (label set).
//!
//! ```yaml
//! - multiline:
//!     firstline: '^\d{4}-\d{2}-\d{2}'   # a line matching this starts a new entry
//!     max_wait_time: 3s                  # let an entry out after this long without a line
//!     max_lines: 128                     # let an entry out when it has this many lines
//! ```
//!
//! As in Promtail: until a stream's first start line, its lines go through unchanged; a
//! start line lets the entry before it out; the entry keeps its first line's timestamp,
//! labels and extracted values; lines are joined with `\n`. Where Promtail gives a
//! continuation line arriving after a timeout the stale first line's metadata, it takes its
//! own here. Call [`super::Pipeline::flush_expired`] for `max_wait_time` to apply.

use std::time::{Duration, Instant};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::bounded::FxMap;
use super::regex::compile;
use super::{Cx, Entry, Outcome, Stage, StageError, Step};
use crate::duration::parse_duration;

/// `multiline:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regex matching the first line of an entry.
    pub firstline: String,
    /// Longest wait for the next line (Go duration, default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_time: Option<String>,
    /// Most lines in one entry (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u64>,
}

#[derive(Debug, Default)]
struct Block {
    first: Option<Entry>,
    text: String,
    lines: u64,
    last: Option<Instant>,
    source: Option<(u64, u64)>,
}

impl Block {
    fn take(&mut self) -> Option<Entry> {
        let mut e = self.first.take()?;
        e.line = std::mem::take(&mut self.text);
        if self.source.is_some() {
            e.source = self.source.take();
        }
        self.lines = 0;
        Some(e)
    }
}

#[derive(Debug)]
pub(crate) struct MultilineStage {
    firstline: Regex,
    max_wait: Duration,
    max_lines: u64,
    streams: FxMap<u64, Block>,
}

impl MultilineStage {
    pub(crate) fn new(cfg: &MultilineConfig) -> Result<Self, StageError> {
        if cfg.firstline.is_empty() {
            return Err(StageError::key(
                "firstline",
                "multiline stage config must define `firstline` regular expression",
            ));
        }
        let firstline = compile("firstline", &cfg.firstline)?;
        let max_wait = match &cfg.max_wait_time {
            Some(d) => {
                parse_duration(d).map_err(|e| StageError::key("max_wait_time", e.to_string()))?
            }
            None => Duration::from_secs(3),
        };
        if max_wait.is_zero() {
            return Err(StageError::key("max_wait_time", "must be more than 0"));
        }
        Ok(MultilineStage {
            firstline,
            max_wait,
            max_lines: cfg.max_lines.unwrap_or(128),
            streams: FxMap::default(),
        })
    }
}

impl Stage for MultilineStage {
    fn name(&self) -> &'static str {
        "multiline"
    }

    fn process(&mut self, entry: Entry, cx: &mut Cx) -> Step {
        let key = entry.stream_key();
        let is_first = self.firstline.is_match(&entry.line);
        let Some(block) = self.streams.get_mut(&key) else {
            if !is_first {
                // No start line seen yet on this stream: pass through.
                return Step::Next(entry);
            }
            self.streams.insert(key, Block::default());
            return self.process(entry, cx);
        };
        let mut out = Vec::new();
        if is_first {
            if let Some(prev) = block.take() {
                out.push(Outcome::Ship(prev));
            }
        }
        if block.first.is_none() {
            block.text.clear();
            block.text.push_str(&entry.line);
            block.source = entry.source;
            block.first = Some(entry);
        } else {
            block.text.push('\n');
            block.text.push_str(&entry.line);
            if entry.source.is_some() {
                block.source = entry.source;
            }
        }
        block.lines += 1;
        block.last = Some(cx.now);
        if block.lines == self.max_lines {
            if let Some(done) = block.take() {
                out.push(Outcome::Ship(done));
            }
        }
        match out.len() {
            0 => Step::Held,
            1 => match out.pop() {
                Some(Outcome::Ship(e)) => Step::Next(e),
                _ => Step::Held,
            },
            _ => Step::Emit(out),
        }
    }

    fn flush(&mut self, now: Option<Instant>, _cx: &mut Cx, out: &mut Vec<Outcome>) {
        for block in self.streams.values_mut() {
            let due = match (now, block.last) {
                (None, _) => true,
                (Some(now), Some(last)) => now.duration_since(last) >= self.max_wait,
                (Some(_), None) => false,
            };
            if due {
                if let Some(e) = block.take() {
                    out.push(Outcome::Ship(e));
                }
            }
        }
    }

    fn held_sources(&self, out: &mut Vec<(u64, u64)>) {
        out.extend(
            self.streams
                .values()
                .filter_map(|b| b.first.as_ref().and_then(|e| e.source)),
        );
    }

    fn deadline(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter(|b| b.first.is_some())
            .filter_map(|b| b.last)
            .min()
            .map(|t| t + self.max_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn stage(yaml: &str) -> MultilineStage {
        let cfg: MultilineConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        MultilineStage::new(&cfg).expect("stage")
    }

    fn e(line: &str, ts: i64, stream: &str) -> Entry {
        Entry::new(line, ts, labels([("stream", stream)]))
    }

    fn lines(step: Step) -> Vec<String> {
        match step {
            Step::Held => vec![],
            Step::Next(e) => vec![e.line],
            Step::Emit(out) => out
                .into_iter()
                .map(|o| match o {
                    Outcome::Ship(e) => e.line,
                    Outcome::Dropped(_) => panic!("multiline never drops"),
                })
                .collect(),
            Step::Drop(..) => panic!("multiline never drops"),
        }
    }

    #[test]
    fn promtail_doc_example_stack_trace() {
        let mut s = stage(
            "firstline: '^\\[\\d{4}-\\d{2}-\\d{2} \\d{1,2}:\\d{2}:\\d{2}\\]'\nmax_wait_time: 3s\n",
        );
        let mut cx = Cx::default();
        // Before any start line: through.
        assert_eq!(lines(s.process(e("stray", 1, "a"), &mut cx)), vec!["stray"]);
        assert!(lines(s.process(
            e("[2020-12-03 11:36:20] Exception in thread", 2, "a"),
            &mut cx
        ))
        .is_empty());
        assert!(lines(s.process(e("  at a()", 3, "a"), &mut cx)).is_empty());
        // Another stream is separate.
        assert!(
            lines(s.process(e("[2020-12-03 11:36:21] other stream", 9, "b"), &mut cx)).is_empty()
        );
        assert!(lines(s.process(e("  at b()", 4, "a"), &mut cx)).is_empty());
        match s.process(e("[2020-12-03 11:36:22] next", 5, "a"), &mut cx) {
            Step::Next(done) => {
                assert_eq!(
                    done.line,
                    "[2020-12-03 11:36:20] Exception in thread\n  at a()\n  at b()"
                );
                assert_eq!(done.timestamp_ns, 2);
            }
            _ => panic!("the block should come out"),
        }
        let mut out = Vec::new();
        s.flush(None, &mut cx, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn max_lines_and_max_wait() {
        let mut s = stage("firstline: '^START'\nmax_lines: 2\nmax_wait_time: 100ms\n");
        let mut cx = Cx::default();
        assert!(lines(s.process(e("START 1", 0, "a"), &mut cx)).is_empty());
        assert_eq!(
            lines(s.process(e("cont", 0, "a"), &mut cx)),
            vec!["START 1\ncont"]
        );
        // After the block went out, a continuation line starts its own block.
        assert!(lines(s.process(e("orphan", 7, "a"), &mut cx)).is_empty());
        let t0 = cx.now;
        assert_eq!(s.deadline(), Some(t0 + Duration::from_millis(100)));
        let mut out = Vec::new();
        s.flush(Some(t0 + Duration::from_millis(50)), &mut cx, &mut out);
        assert!(out.is_empty());
        s.flush(Some(t0 + Duration::from_millis(100)), &mut cx, &mut out);
        match &out[..] {
            [Outcome::Ship(b)] => {
                assert_eq!(b.line, "orphan");
                assert_eq!(b.timestamp_ns, 7);
            }
            _ => panic!("the waiting block should come out"),
        }
        assert_eq!(s.deadline(), None);
        // max_lines: 1: every line is its own entry, including the one letting out the last.
        let mut one = stage("firstline: '^S'\nmax_lines: 1\n");
        assert_eq!(lines(one.process(e("S1", 0, "a"), &mut cx)), vec!["S1"]);
        assert_eq!(lines(one.process(e("x", 0, "a"), &mut cx)), vec!["x"]);
    }

    #[test]
    fn joined_entry_acknowledges_its_last_line() {
        let mut s = stage("firstline: '^S'\n");
        let mut cx = Cx::default();
        let mut a = e("S", 0, "a");
        a.source = Some((1, 10));
        let mut b = e(" more", 0, "a");
        b.source = Some((1, 20));
        s.process(a, &mut cx);
        s.process(b, &mut cx);
        // While held, the first line's position must not be acknowledged.
        let mut held = Vec::new();
        s.held_sources(&mut held);
        assert_eq!(held, vec![(1, 10)]);
        let mut out = Vec::new();
        s.flush(None, &mut cx, &mut out);
        held.clear();
        s.held_sources(&mut held);
        assert!(held.is_empty());
        assert!(matches!(&out[..], [Outcome::Ship(x)] if x.source == Some((1, 20))));
    }

    #[test]
    fn config_errors() {
        for (yaml, key) in [
            ("firstline: '('", "firstline"),
            ("firstline: x\nmax_wait_time: 3x", "max_wait_time"),
            ("firstline: x\nmax_wait_time: 0s", "max_wait_time"),
        ] {
            let cfg: MultilineConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert_eq!(MultilineStage::new(&cfg).expect_err(yaml).key, key);
        }
        assert!(serde_yaml_ng::from_str::<MultilineConfig>("first_line: x").is_err());
    }
}
