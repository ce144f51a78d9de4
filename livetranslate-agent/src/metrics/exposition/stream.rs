//! The incremental parser: bytes go in as they arrive, samples come out as borrowed
//! [`SampleRef`]s, and [`Parser::finish`] checks the end of the input.
//!
//! The parser cuts the input into lines (in the text format a quoted label value may hold line
//! breaks, so a "line" can span several), parses each complete line straight from the chunk it
//! arrived in, and keeps only an unfinished last line between chunks. After parsing, each sample
//! goes through the checks Prometheus applies before storing it, which fail the whole scrape:
//! a label with an empty value deletes every label of that name (so `m{__name__=""}` loses its
//! name), the metric name must be valid, and no label name may appear twice (`__name__`
//! included).
//!
//! Samples are handed out as soon as their line is parsed; a later line can still make the whole
//! input invalid, so a caller that stores samples keeps them until `finish` succeeds, as
//! Prometheus keeps its appender open until the end of the scrape.

use std::borrow::Cow;

use super::lex::{unescape, unescape_pieces};
use super::line::{LabelSpan, Line, SampleParts};
use super::openmetrics::{self, MISSING_EOF};
use super::text;
use super::{Exemplar, Format, ParseError, ParsedSample};

/// Where the text-format line splitter is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Before anything but blanks.
    LineStart,
    /// In a comment: the line ends at the next line break.
    Comment,
    /// In a sample line, outside quotes.
    Series,
    /// Inside a quoted label value: line breaks belong to the value.
    Quoted,
    /// Right after a backslash inside a quoted label value.
    Escape,
}

/// Whether more input is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading lines.
    Open,
    /// The input has ended (text: a NUL byte; OpenMetrics: `# EOF`). Text ignores whatever
    /// follows; OpenMetrics accepts nothing more after the line break that ended `# EOF`.
    Ended,
}

/// An incremental parser of one exposition body.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{Format, Parser};
///
/// let mut parser = Parser::new(Format::OpenMetrics);
/// let mut names = Vec::new();
/// for chunk in [&b"# TYPE jobs counter\njobs_to"[..], b"tal 3\n# EOF\n"] {
///     parser.feed(chunk, |s| names.push(s.name().to_owned())).unwrap();
/// }
/// parser.finish(|s| names.push(s.name().to_owned())).unwrap();
/// assert_eq!(names, ["jobs_total"]);
/// ```
#[derive(Debug)]
pub struct Parser {
    format: Format,
    /// The unfinished last line.
    carry: Vec<u8>,
    /// The text-format splitter's position within the unfinished line.
    split: Split,
    /// Line breaks inside the unfinished line (quoted label values).
    carry_breaks: usize,
    /// The line number (1-based) where the next line starts.
    line: usize,
    state: State,
    /// OpenMetrics: `# EOF` was followed by a line break, so nothing may follow.
    eof_terminated: bool,
    failed: Option<ParseError>,
    parts: SampleParts,
    /// Scratch for the duplicate-label check of samples with many labels.
    scratch: Vec<usize>,
}

impl Parser {
    /// A parser for a body in `format`.
    pub fn new(format: Format) -> Parser {
        Parser {
            format,
            carry: Vec::new(),
            split: Split::LineStart,
            carry_breaks: 0,
            line: 1,
            state: State::Open,
            eof_terminated: false,
            failed: None,
            parts: SampleParts::default(),
            scratch: Vec::new(),
        }
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Parses the complete lines `chunk` finishes and calls `on_sample` for every sample in
    /// them. After an error every further call returns the same error.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_sample: F) -> Result<(), ParseError>
    where
        F: FnMut(SampleRef<'_>),
    {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.feed_lines(chunk, &mut on_sample);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Parses what remains and checks that the input may end here (OpenMetrics needs `# EOF`).
    pub fn finish<F>(mut self, mut on_sample: F) -> Result<(), ParseError>
    where
        F: FnMut(SampleRef<'_>),
    {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.state == State::Open && !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            // Prometheus appends a line break to a text body; OpenMetrics gets none.
            let terminated = self.format == Format::Text;
            self.line_end(&carry, terminated, self.carry_breaks, &mut on_sample)?;
        }
        if self.format == Format::OpenMetrics && self.state == State::Open {
            return Err(ParseError {
                line: self.line.saturating_sub(1).max(1),
                message: MISSING_EOF.into(),
            });
        }
        Ok(())
    }

    fn feed_lines(
        &mut self,
        mut chunk: &[u8],
        on_sample: &mut dyn FnMut(SampleRef<'_>),
    ) -> Result<(), ParseError> {
        if self.state == State::Ended {
            return self.after_end(chunk);
        }
        if !self.carry.is_empty() {
            let Some(end) = self.find_line_end(chunk) else {
                self.carry.extend_from_slice(chunk);
                return Ok(());
            };
            self.carry.extend_from_slice(&chunk[..end]);
            chunk = &chunk[end + 1..];
            let carry = std::mem::take(&mut self.carry);
            let breaks = std::mem::take(&mut self.carry_breaks);
            let result = self.line_end(&carry, true, breaks, on_sample);
            self.carry = carry;
            self.carry.clear();
            result?;
            if self.state == State::Ended {
                return self.after_end(chunk);
            }
        }
        while !chunk.is_empty() {
            let Some(end) = self.find_line_end(chunk) else {
                self.carry.extend_from_slice(chunk);
                return Ok(());
            };
            let line = &chunk[..end];
            chunk = &chunk[end + 1..];
            let breaks = std::mem::take(&mut self.carry_breaks);
            self.line_end(line, true, breaks, on_sample)?;
            if self.state == State::Ended {
                return self.after_end(chunk);
            }
        }
        Ok(())
    }

    /// Input after the end: ignored by the text format, an error in OpenMetrics once `# EOF`
    /// had its line break.
    fn after_end(&mut self, rest: &[u8]) -> Result<(), ParseError> {
        if self.format == Format::OpenMetrics && self.eof_terminated && !rest.is_empty() {
            return Err(ParseError {
                line: self.line,
                message: "unexpected data after # EOF".into(),
            });
        }
        Ok(())
    }

    /// The index of the line break ending the line that continues at the start of `data`, or
    /// `None` when `data` ends first (the splitter remembers where it is).
    fn find_line_end(&mut self, data: &[u8]) -> Option<usize> {
        if self.format == Format::OpenMetrics {
            return data.iter().position(|&b| b == b'\n');
        }
        let mut i = 0;
        while i < data.len() {
            match self.split {
                Split::LineStart => match data[i] {
                    b' ' | b'\t' => i += 1,
                    b'\n' => return Some(self.line_found(i)),
                    b'#' => self.split = Split::Comment,
                    _ => self.split = Split::Series,
                },
                Split::Comment => {
                    return data[i..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|p| self.line_found(i + p));
                }
                Split::Series => match data[i..].iter().position(|&b| b == b'\n' || b == b'"') {
                    Some(p) if data[i + p] == b'\n' => return Some(self.line_found(i + p)),
                    Some(p) => {
                        self.split = Split::Quoted;
                        i += p + 1;
                    }
                    None => return None,
                },
                Split::Quoted => {
                    match data[i..]
                        .iter()
                        .position(|&b| matches!(b, b'"' | b'\\' | b'\n'))
                    {
                        Some(p) => {
                            match data[i + p] {
                                b'"' => self.split = Split::Series,
                                b'\\' => self.split = Split::Escape,
                                _ => self.carry_breaks += 1,
                            }
                            i += p + 1;
                        }
                        None => return None,
                    }
                }
                Split::Escape => {
                    match data[i] {
                        0 => {}
                        b'\n' => {
                            self.carry_breaks += 1;
                            self.split = Split::Quoted;
                        }
                        _ => self.split = Split::Quoted,
                    }
                    i += 1;
                }
            }
        }
        None
    }

    fn line_found(&mut self, at: usize) -> usize {
        self.split = Split::LineStart;
        at
    }

    /// Parses one complete line starting at `self.line` and holding `breaks` line breaks.
    fn line_end(
        &mut self,
        line: &[u8],
        terminated: bool,
        breaks: usize,
        on_sample: &mut dyn FnMut(SampleRef<'_>),
    ) -> Result<(), ParseError> {
        let line_no = self.line;
        self.line += 1 + breaks;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let parsed = match self.format {
            Format::Text => text::parse_line(line, &mut self.parts),
            Format::OpenMetrics => openmetrics::parse_line(line, terminated, &mut self.parts),
        }
        .map_err(err)?;
        match parsed {
            Line::Blank | Line::Metadata => Ok(()),
            Line::Eof => {
                self.state = State::Ended;
                self.eof_terminated = terminated;
                Ok(())
            }
            Line::Sample(text) => {
                check_labels(text, &mut self.parts, &mut self.scratch).map_err(err)?;
                on_sample(SampleRef::new(text, line_no, &self.parts));
                Ok(())
            }
        }
    }
}

/// The checks Prometheus makes on a parsed sample before storing it (any failure fails the
/// scrape), leaving only the labels it stores.
fn check_labels(
    line: &str,
    parts: &mut SampleParts,
    scratch: &mut Vec<usize>,
) -> Result<(), String> {
    // An empty value deletes every label of that name.
    if parts.labels.iter().any(LabelSpan::value_is_empty) {
        let emptied: Vec<&str> = parts
            .labels
            .iter()
            .filter(|l| l.value_is_empty())
            .map(|l| l.name(line))
            .collect();
        if emptied.contains(&"__name__") {
            return Err(
                "missing metric name: a __name__ label with an empty value removes it".into(),
            );
        }
        parts.labels.retain(|l| !emptied.contains(&l.name(line)));
    }
    if parts.labels.iter().any(|l| l.name(line) == "__name__") {
        return Err("label name \"__name__\" is not unique".into());
    }
    if let Some(name) = duplicate_name(line, &parts.labels, scratch) {
        return Err(format!("label name {name:?} is not unique"));
    }
    // Exemplars only lose their empty labels.
    parts.exemplar_labels.retain(|l| !l.value_is_empty());
    Ok(())
}

/// A label name that appears twice, if any.
fn duplicate_name<'a>(
    line: &'a str,
    labels: &[LabelSpan],
    scratch: &mut Vec<usize>,
) -> Option<&'a str> {
    if labels.len() <= 16 {
        for (i, a) in labels.iter().enumerate() {
            let name = a.name(line);
            if labels[..i].iter().any(|b| b.name(line) == name) {
                return Some(name);
            }
        }
        return None;
    }
    scratch.clear();
    scratch.extend(0..labels.len());
    scratch.sort_unstable_by_key(|&i| labels[i].name(line));
    scratch
        .windows(2)
        .find(|w| labels[w[0]].name(line) == labels[w[1]].name(line))
        .map(|w| labels[w[0]].name(line))
}

/// A parsed sample, borrowed from the parser and the input: valid only during the callback.
/// [`SampleRef::to_parsed`] makes an owned copy.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{Format, Parser};
///
/// let mut parser = Parser::new(Format::Text);
/// let mut total = 0.0;
/// parser
///     .feed(b"bytes{dir=\"in\"} 10\nbytes{dir=\"out\"} 5 1700000000000\n", |s| {
///         assert_eq!(s.name(), "bytes");
///         assert_eq!(s.label_count(), 1);
///         total += s.value();
///     })
///     .unwrap();
/// parser.finish(|_| {}).unwrap();
/// assert_eq!(total, 15.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    line: &'a str,
    line_no: usize,
    name: (usize, usize),
    labels: &'a [LabelSpan],
    value: f64,
    timestamp_ms: Option<i64>,
    exemplar: Option<ExemplarRef<'a>>,
}

impl<'a> SampleRef<'a> {
    fn new(line: &'a str, line_no: usize, parts: &'a SampleParts) -> SampleRef<'a> {
        SampleRef {
            line,
            line_no,
            name: parts.name,
            labels: &parts.labels,
            value: parts.value,
            timestamp_ms: parts.timestamp_ms,
            exemplar: parts.exemplar.map(|(value, timestamp_ms)| ExemplarRef {
                line,
                labels: &parts.exemplar_labels,
                value,
                timestamp_ms,
            }),
        }
    }

    /// The metric name (with any suffix such as `_total`, `_bucket` or `_created`).
    pub fn name(&self) -> &'a str {
        self.line.get(self.name.0..self.name.1).unwrap_or_default()
    }

    /// The labels as Prometheus stores them, in the order they appeared: escapes undone,
    /// labels with an empty value left out.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            line: self.line,
            spans: self.labels.iter(),
        }
    }

    /// How many labels [`SampleRef::labels`] yields.
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// The value (every NaN is Prometheus's NaN).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The explicit timestamp in milliseconds, if the line has one.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp_ms
    }

    /// The 1-based line number of the sample.
    pub fn line_number(&self) -> usize {
        self.line_no
    }

    /// The exemplar (OpenMetrics only).
    pub fn exemplar(&self) -> Option<ExemplarRef<'a>> {
        self.exemplar
    }

    /// Writes the series to `write`: the name, then every label sorted by name with its value's
    /// escapes undone, so that the same stored labels give the same bytes whatever their order
    /// or escaping. `order` and `unescaped` are scratch space reused between calls.
    pub(super) fn write_series(
        &self,
        order: &mut Vec<usize>,
        unescaped: &mut String,
        mut write: impl FnMut(&[u8]),
    ) {
        write(self.name().as_bytes());
        let line = self.line;
        order.clear();
        order.extend(0..self.labels.len());
        order.sort_unstable_by(|&a, &b| self.labels[a].name(line).cmp(self.labels[b].name(line)));
        for &i in order.iter() {
            let span = &self.labels[i];
            write(&[0xff]);
            write(span.name(line).as_bytes());
            write(&[0xfe]);
            let raw = span.raw_value(line);
            if span.escaped {
                unescaped.clear();
                unescape_pieces(raw, |p| unescaped.push_str(p));
                write(unescaped.as_bytes());
            } else {
                write(raw.as_bytes());
            }
        }
    }

    /// An owned copy, exemplar included.
    pub fn to_parsed(&self) -> ParsedSample {
        ParsedSample {
            name: self.name().to_owned(),
            labels: self
                .labels()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            exemplar: self.exemplar.map(|e| Box::new(e.to_exemplar())),
        }
    }
}

/// The labels of a [`SampleRef`]: `(name, value)` with the value's escapes undone.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{Format, Parser};
///
/// let mut parser = Parser::new(Format::Text);
/// let mut labels = Vec::new();
/// parser
///     .feed(b"m{path=\"C:\\\\x\",b=\"y\"} 1\n", |s| {
///         labels = s.labels().map(|(n, v)| format!("{n}={v}")).collect();
///     })
///     .unwrap();
/// assert_eq!(labels, ["path=C:\\x", "b=y"]);
/// ```
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    line: &'a str,
    spans: std::slice::Iter<'a, LabelSpan>,
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let span = self.spans.next()?;
        Some((
            span.name(self.line),
            unescape(span.raw_value(self.line), span.escaped),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Labels<'_> {}

/// The exemplar of a sample line, borrowed like [`SampleRef`].
///
/// ```
/// use livetranslate_agent::metrics::exposition::{Format, Parser};
///
/// let mut parser = Parser::new(Format::OpenMetrics);
/// let mut seen = None;
/// parser
///     .feed(b"req_total 3 # {trace_id=\"abc\"} 1.5\n# EOF\n", |s| {
///         let e = s.exemplar().unwrap();
///         let labels: Vec<_> = e.labels().collect();
///         seen = Some((labels == [("trace_id", "abc")], e.value(), e.timestamp_ms()));
///     })
///     .unwrap();
/// assert_eq!(seen, Some((true, 1.5, None)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ExemplarRef<'a> {
    line: &'a str,
    labels: &'a [LabelSpan],
    value: f64,
    timestamp_ms: Option<i64>,
}

impl<'a> ExemplarRef<'a> {
    /// The labels as Prometheus stores them: values as written (Prometheus does not undo
    /// escapes in exemplars), labels with an empty value left out.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let line = self.line;
        self.labels
            .iter()
            .map(move |l| (l.name(line), l.raw_value(line)))
    }

    /// The value.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The explicit timestamp in milliseconds; without one Prometheus uses the sample's.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp_ms
    }

    /// An owned copy.
    pub fn to_exemplar(&self) -> Exemplar {
        Exemplar {
            labels: self
                .labels()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}
