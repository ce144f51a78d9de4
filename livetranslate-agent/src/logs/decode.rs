//! From framed line to entry: UTF-8 check, the input's format parser, Docker / CRI partial
//! lines joined, then the multi-line rule. Per file; it tracks the end offset of the last
//! line it consumed, which is what may be acknowledged.

use super::framing::Line;
use super::multiline::{Joiner, Multiline};
use super::parse::{Parsed, Parser};
use crate::internal_events::{LineDropReason, LogMetrics};

/// What to do with a line longer than the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LongLines {
    /// Ship its first `max_line_bytes` bytes (counted as `truncated`).
    #[default]
    Truncate,
    /// Drop it (counted as `too_long`).
    Drop,
}

/// Timestamp and promoted labels of an entry's first line.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The line's own timestamp, if it has one.
    pub timestamp_ns: Option<i64>,
    /// Labels the line promoted (`level`, `service`, `stream`).
    pub labels: Vec<(&'static str, String)>,
}

/// A finished entry: its first line's metadata, its text, and the file offset it reaches.
#[derive(Debug)]
pub struct Decoded {
    /// Metadata of the first line.
    pub meta: Meta,
    /// The text (joined lines for a multi-line entry).
    pub text: String,
    /// Acknowledging the entry lets the file's position advance to here.
    pub end: u64,
}

/// Per-file decoding state.
#[derive(Debug)]
pub struct LineDecoder {
    long_lines: LongLines,
    max_line_bytes: usize,
    /// Docker / CRI fragments waiting for their end.
    partial: Option<(Meta, String)>,
    joiner: Option<Joiner<Meta>>,
    /// End offset of the last line consumed.
    last_end: u64,
}

impl LineDecoder {
    /// A decoder for a file read from `start`.
    pub fn new(
        multiline: Option<Multiline>,
        long_lines: LongLines,
        max_line_bytes: usize,
        start: u64,
    ) -> Self {
        LineDecoder {
            long_lines,
            max_line_bytes,
            partial: None,
            joiner: multiline.map(Joiner::new),
            last_end: start,
        }
    }

    /// End offset of the last line consumed (every line before it is in an emitted entry or
    /// was dropped).
    pub fn last_end(&self) -> u64 {
        self.last_end
    }

    /// Starts over at offset 0 (the file was truncated; call [`LineDecoder::flush`] first).
    pub fn restart(&mut self) {
        self.last_end = 0;
    }

    /// Decodes one framed line, calling `emit` for every entry it completes.
    pub fn line(
        &mut self,
        line: Line<'_>,
        parser: &Parser,
        metrics: &LogMetrics,
        emit: &mut impl FnMut(Decoded),
    ) {
        if line.overlong {
            match self.long_lines {
                LongLines::Truncate => metrics.dropped(LineDropReason::Truncated, 1),
                LongLines::Drop => {
                    metrics.dropped(LineDropReason::TooLong, 1);
                    self.last_end = line.end;
                    return;
                }
            }
        }
        let bytes = line.bytes.strip_suffix(b"\r").unwrap_or(line.bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                metrics.dropped(LineDropReason::InvalidUtf8, 1);
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        let parsed = parser.parse(text);
        if parsed.malformed {
            metrics.dropped(LineDropReason::Malformed, 1);
        }
        let Parsed {
            timestamp_ns,
            line: text,
            labels,
            partial,
            ..
        } = parsed;
        let meta = Meta {
            timestamp_ns,
            labels,
        };
        // Docker / CRI split long lines into fragments.
        if partial {
            match &mut self.partial {
                Some((_, joined)) => {
                    if joined.len() < self.max_line_bytes {
                        joined.push_str(&text);
                    }
                }
                None => self.partial = Some((meta, text)),
            }
            return;
        }
        let (meta, text) = match self.partial.take() {
            Some((first, mut joined)) => {
                joined.push_str(&text);
                (first, joined)
            }
            None => (meta, text),
        };
        let prev_end = self.last_end;
        self.last_end = line.end;
        match &mut self.joiner {
            None => emit(Decoded {
                meta,
                text,
                end: line.end,
            }),
            Some(j) => {
                if let Some((done, included)) = j.push(&text, meta) {
                    emit(Decoded {
                        meta: done.first,
                        text: done.text,
                        end: if included { line.end } else { prev_end },
                    });
                }
            }
        }
    }

    /// Emits a joined entry that waited longer than the multi-line limit.
    pub fn expired(&mut self, now: std::time::Instant, emit: &mut impl FnMut(Decoded)) {
        if let Some(done) = self.joiner.as_mut().and_then(|j| j.expired(now)) {
            emit(Decoded {
                meta: done.first,
                text: done.text,
                end: self.last_end,
            });
        }
    }

    /// Emits whatever is pending (the file is closing or was truncated).
    pub fn flush(&mut self, emit: &mut impl FnMut(Decoded)) {
        if let Some((meta, text)) = self.partial.take() {
            emit(Decoded {
                meta,
                text,
                end: self.last_end,
            });
        }
        if let Some(done) = self.joiner.as_mut().and_then(Joiner::take) {
            emit(Decoded {
                meta: done.first,
                text: done.text,
                end: self.last_end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;
    use crate::logs::multiline::MultilineConfig;
    use crate::logs::parse::Format;
    use std::time::Duration;

    fn metrics() -> LogMetrics {
        let registry = livetranslate_telemetry::registry::Registry::new(&[]);
        match LogMetrics::new(&registry) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn run(d: &mut LineDecoder, parser: &Parser, lines: &[(&str, bool)]) -> Vec<(String, u64)> {
        let m = metrics();
        let mut out = Vec::new();
        let mut end = 0;
        for (text, overlong) in lines {
            end += text.len() as u64 + 1;
            d.line(
                Line {
                    bytes: text.as_bytes(),
                    end,
                    overlong: *overlong,
                },
                parser,
                &m,
                &mut |e| out.push((e.text, e.end)),
            );
        }
        out
    }

    #[test]
    fn cri_fragments_join_and_ack_at_the_last_fragment() {
        let p = Parser::new(Format::Cri, &[]);
        let mut d = LineDecoder::new(None, LongLines::Truncate, 1000, 0);
        let out = run(
            &mut d,
            &p,
            &[
                ("2023-11-14T22:13:20Z stdout P hel", false),
                ("2023-11-14T22:13:20Z stdout F lo", false),
            ],
        );
        assert_eq!(out, [("hello".to_owned(), 67)]);
    }

    #[test]
    fn multiline_entries_ack_up_to_their_last_line() {
        let p = Parser::new(Format::Raw, &[]);
        let rule = Multiline::new(&MultilineConfig {
            first_line: "^E".into(),
            max_lines: 100,
            max_wait: HumanDuration(Duration::from_secs(60)),
        });
        let rule = match rule {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let mut d = LineDecoder::new(Some(rule), LongLines::Truncate, 1000, 0);
        let out = run(&mut d, &p, &[("E1", false), (" at", false), ("E2", false)]);
        assert_eq!(out, [("E1\n at".to_owned(), 7)]);
        let mut rest = Vec::new();
        d.flush(&mut |e| rest.push((e.text, e.end)));
        assert_eq!(rest, [("E2".to_owned(), 10)]);
    }

    #[test]
    fn overlong_lines_are_cut_or_dropped() {
        let p = Parser::new(Format::Raw, &[]);
        let mut d = LineDecoder::new(None, LongLines::Drop, 2, 0);
        let out = run(&mut d, &p, &[("xx", true), ("ok", false)]);
        assert_eq!(out, [("ok".to_owned(), 6)]);
        let mut d = LineDecoder::new(None, LongLines::Truncate, 2, 0);
        let out = run(&mut d, &p, &[("xx", true)]);
        assert_eq!(out, [("xx".to_owned(), 3)]);
    }
}
