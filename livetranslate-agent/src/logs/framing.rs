//! Line framing: bytes in, complete lines out. A line ends at `\n` (a trailing `\r` is the
//! decoder's business); a partial last line waits for the rest; a line longer than the limit
//! keeps its first `max_line_bytes` bytes and is reported as over-long once its newline
//! arrives, so its end offset is exact.

use std::ops::ControlFlow;

/// One complete line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Its bytes without the newline (at most `max_line_bytes`).
    pub bytes: &'a [u8],
    /// The file offset just past its newline.
    pub end: u64,
    /// It was longer than `max_line_bytes`: `bytes` is its beginning.
    pub overlong: bool,
}

/// Splits a byte stream into lines.
#[derive(Debug)]
pub struct LineFramer {
    max_line_bytes: usize,
    /// Bytes of the incomplete last line.
    buf: Vec<u8>,
    /// Inside an over-long line whose rest is discarded.
    skipping: bool,
}

/// How far [`LineFramer::feed`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Every byte was taken (complete lines handed over, the rest kept).
    All,
    /// The handler asked to stop after the line ending at this offset; later bytes were not
    /// taken.
    StoppedAt(u64),
}

impl LineFramer {
    /// A framer cutting lines at `max_line_bytes` (at least 1).
    pub fn new(max_line_bytes: usize) -> Self {
        LineFramer {
            max_line_bytes: max_line_bytes.max(1),
            buf: Vec::new(),
            skipping: false,
        }
    }

    /// Bytes held of an incomplete last line (at most `max_line_bytes`).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Forgets the incomplete last line (the file was truncated, or reading stopped).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skipping = false;
    }

    /// Takes `chunk`, which starts at file offset `base`, calling `on_line` for every line it
    /// completes. `on_line` may stop the framing after a line ([`ControlFlow::Break`]).
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use livetranslate_agent::logs::framing::{Fed, LineFramer};
    /// let mut f = LineFramer::new(1024);
    /// let mut lines = Vec::new();
    /// let mut take = |l: livetranslate_agent::logs::framing::Line<'_>| {
    ///     lines.push((String::from_utf8_lossy(l.bytes).into_owned(), l.end));
    ///     ControlFlow::Continue(())
    /// };
    /// assert_eq!(f.feed(b"one\ntw", 0, &mut take), Fed::All);
    /// assert_eq!(f.feed(b"o\n", 6, &mut take), Fed::All);
    /// assert_eq!(lines, [("one".to_owned(), 4), ("two".to_owned(), 8)]);
    /// ```
    pub fn feed(
        &mut self,
        chunk: &[u8],
        base: u64,
        on_line: &mut impl FnMut(Line<'_>) -> ControlFlow<()>,
    ) -> Fed {
        let mut from = 0;
        for pos in memchr_iter(chunk) {
            let end = base + pos as u64 + 1;
            let piece = &chunk[from..pos];
            from = pos + 1;
            let flow =
                if self.buf.is_empty() && !self.skipping && piece.len() <= self.max_line_bytes {
                    // The common case: a whole line inside the chunk, handed over without a copy.
                    on_line(Line {
                        bytes: piece,
                        end,
                        overlong: false,
                    })
                } else {
                    self.take(piece);
                    let line = std::mem::take(&mut self.buf);
                    let overlong = std::mem::take(&mut self.skipping);
                    let flow = on_line(Line {
                        bytes: &line,
                        end,
                        overlong,
                    });
                    // Keep the allocation for the next partial line.
                    self.buf = line;
                    self.buf.clear();
                    flow
                };
            if flow.is_break() {
                return Fed::StoppedAt(end);
            }
        }
        if from < chunk.len() {
            self.take(&chunk[from..]);
        }
        Fed::All
    }

    /// Appends part of a line, keeping at most `max_line_bytes`.
    fn take(&mut self, piece: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.buf.len());
        if piece.len() > room {
            self.buf.extend_from_slice(&piece[..room]);
            self.skipping = true;
        } else if !self.skipping {
            self.buf.extend_from_slice(piece);
        }
    }
}

/// Positions of `\n` in `bytes`.
fn memchr_iter(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<(String, u64, bool)> {
        let mut out = Vec::new();
        let mut base = 0;
        for c in chunks {
            framer.feed(c, base, &mut |l| {
                out.push((
                    String::from_utf8_lossy(l.bytes).into_owned(),
                    l.end,
                    l.overlong,
                ));
                ControlFlow::Continue(())
            });
            base += c.len() as u64;
        }
        out
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let mut f = LineFramer::new(100);
        let lines = frame(&mut f, &[b"ab", b"c", b"\nd", b"ef\n\n"]);
        assert_eq!(
            lines,
            [
                ("abc".to_owned(), 4, false),
                ("def".to_owned(), 8, false),
                (String::new(), 9, false)
            ]
        );
        assert_eq!(f.pending(), 0);
        frame(&mut f, &[b"tail"]);
        assert_eq!(f.pending(), 4);
    }

    #[test]
    fn overlong_lines_keep_their_start_and_exact_end() {
        let mut f = LineFramer::new(4);
        let lines = frame(&mut f, &[b"123456", b"789\nok\n", b"abcdefgh\n"]);
        assert_eq!(
            lines,
            [
                ("1234".to_owned(), 10, true),
                ("ok".to_owned(), 13, false),
                ("abcd".to_owned(), 22, true)
            ]
        );
    }

    #[test]
    fn stopping_leaves_the_rest_untaken() {
        let mut f = LineFramer::new(100);
        let mut n = 0;
        let fed = f.feed(b"a\nb\nc\n", 10, &mut |_| {
            n += 1;
            if n == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(fed, Fed::StoppedAt(14));
        assert_eq!(f.pending(), 0);
    }
}
