//! From framed line to text: the long-line rule and the UTF-8 check. Per file; it tracks the
//! end offset of the last line it consumed, which is what may be acknowledged once every
//! entry before it is.

use super::framing::Line;
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

/// One line as text, with where it lies in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text (invalid UTF-8 replaced, a trailing `\r` removed).
    pub text: String,
    /// Offset of its first byte.
    pub start: u64,
    /// Offset just past its newline.
    pub end: u64,
}

/// Per-file decoding state.
#[derive(Debug)]
pub struct LineDecoder {
    long_lines: LongLines,
    /// End offset of the last line consumed.
    last_end: u64,
}

impl LineDecoder {
    /// A decoder for a file read from `start`.
    pub fn new(long_lines: LongLines, start: u64) -> Self {
        LineDecoder {
            long_lines,
            last_end: start,
        }
    }

    /// End offset of the last line consumed (every line before it was handed on or dropped).
    pub fn last_end(&self) -> u64 {
        self.last_end
    }

    /// Starts over at `offset` (the file was truncated, or its reading moved to a copy).
    pub fn restart(&mut self, offset: u64) {
        self.last_end = offset;
    }

    /// Decodes one framed line: `Err(end)` when it was dropped (too long), so that its end
    /// offset can still be acknowledged.
    pub fn line(&mut self, line: Line<'_>, metrics: &LogMetrics) -> Result<Decoded, u64> {
        let start = self.last_end;
        self.last_end = line.end;
        if line.overlong {
            match self.long_lines {
                LongLines::Truncate => metrics.dropped(LineDropReason::Truncated, 1),
                LongLines::Drop => {
                    metrics.dropped(LineDropReason::TooLong, 1);
                    return Err(line.end);
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
        Ok(Decoded {
            text,
            start,
            end: line.end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> LogMetrics {
        LogMetrics::detached()
    }

    fn run(d: &mut LineDecoder, lines: &[(&[u8], bool)]) -> Vec<Result<Decoded, u64>> {
        let m = metrics();
        let mut end = d.last_end();
        lines
            .iter()
            .map(|(bytes, overlong)| {
                end += bytes.len() as u64 + 1;
                d.line(
                    Line {
                        bytes,
                        end,
                        overlong: *overlong,
                    },
                    &m,
                )
            })
            .collect()
    }

    #[test]
    fn lines_carry_their_start_and_end() {
        let mut d = LineDecoder::new(LongLines::Truncate, 10);
        let out = run(&mut d, &[(b"ab\r", false), (b"\xffc", false)]);
        assert_eq!(
            out,
            [
                Ok(Decoded {
                    text: "ab".into(),
                    start: 10,
                    end: 14
                }),
                Ok(Decoded {
                    text: "\u{fffd}c".into(),
                    start: 14,
                    end: 17
                })
            ]
        );
        assert_eq!(d.last_end(), 17);
    }

    #[test]
    fn overlong_lines_are_cut_or_dropped() {
        let mut d = LineDecoder::new(LongLines::Drop, 0);
        let out = run(&mut d, &[(b"xx", true), (b"ok", false)]);
        assert_eq!(out[0], Err(3));
        assert_eq!(out[1].as_ref().map(|d| d.start), Ok(3));
        let mut d = LineDecoder::new(LongLines::Truncate, 0);
        let out = run(&mut d, &[(b"xx", true)]);
        assert_eq!(out[0].as_ref().map(|d| d.text.as_str()), Ok("xx"));
    }
}
