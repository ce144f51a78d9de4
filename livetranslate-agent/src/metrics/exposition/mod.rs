//! Parsing scrape bodies exactly as Prometheus 2.42 parses them: the text exposition format
//! 0.0.4 and OpenMetrics 1.0 text.
//!
//! "Exactly" means the same decision to accept or reject a body and the same samples stored,
//! checked case by case against a real Prometheus 2.42 by the `exposition_parity` test. Where
//! Prometheus fails a scrape the parse fails ([`ParseError`], naming the first bad line); where
//! it keeps the scrape but drops a sample, the [`Appender`] skips that sample and says why
//! ([`Skip`]).
//!
//! - [`Parser`] is incremental: feed it the body in chunks as they arrive, take each sample as a
//!   borrowed [`SampleRef`] (no allocation per sample), and call [`Parser::finish`] at the end.
//! - [`Appender`] applies Prometheus's per-scrape storage rules: duplicate and out-of-order
//!   timestamps, timestamps out of the TSDB's bounds, and which exemplars are kept.
//! - [`parse`] and [`parse_scrape`] do both for a body held in memory.
//! - [`Format::from_content_type`] picks the parser as Prometheus does.
//!
//! Details of each format are in the `text` and `openmetrics` modules; the main differences
//! from a naive reading of the formats: the text format is lenient about blanks and label
//! commas, keeps unknown escapes (`\z`) as they are and allows repeated `# TYPE` lines, but
//! refuses `\r` line ends, negative timestamps and values that overflow an f64 (`1e309`);
//! OpenMetrics allows exactly one space between tokens, no blank lines, no comments other than
//! metadata, exemplars only on `_total` and `_bucket` series, and nothing after `# EOF`; its
//! `_created` series are ordinary samples (Prometheus 2.42 stores them).

mod append;
mod content_type;
mod lex;
mod line;
mod openmetrics;
mod stream;
mod text;

#[cfg(test)]
mod tests;

pub use append::{
    Appender, KeyHasher, Outcome, Skip, Skipped, Skips, EXEMPLAR_MAX_LABEL_CHARS, MAX_AHEAD_MS,
    MAX_BEHIND_MS,
};
pub use stream::{ExemplarRef, Labels, Parser, SampleRef};

/// The wire format of a scrape body.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse, Format};
///
/// // The same line is a sample in one format and an error in the other.
/// assert!(parse(b"up 1\n", Format::Text).is_ok());
/// assert!(parse(b"up 1\n", Format::OpenMetrics).is_err()); // no `# EOF`
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
}

/// One sample of an exposition, owned.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse, Format};
///
/// let body = b"rpc_seconds_count{method=\"get\",empty=\"\"} 12 1700000000000\n";
/// let s = &parse(body, Format::Text).unwrap()[0];
/// assert_eq!(s.name, "rpc_seconds_count");
/// assert_eq!(s.labels, [("method".to_owned(), "get".to_owned())]);
/// assert_eq!((s.value, s.timestamp_ms), (12.0, Some(1_700_000_000_000)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// The metric name (including suffixes such as `_total`, `_bucket` or `_created`).
    pub name: String,
    /// The labels as Prometheus stores them, in the order they appeared: escapes undone, labels
    /// with an empty value left out.
    pub labels: Vec<(String, String)>,
    /// The value (every NaN is Prometheus's NaN).
    pub value: f64,
    /// The explicit timestamp in milliseconds since the Unix epoch, if the line had one.
    pub timestamp_ms: Option<i64>,
    /// The exemplar (OpenMetrics), if the line had one (and, from [`parse_scrape`], if
    /// Prometheus stores it).
    pub exemplar: Option<Box<Exemplar>>,
}

/// An OpenMetrics exemplar: `# {trace_id="…"} 0.67 1520879606.1` after a sample.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse, Format};
///
/// let body = b"hits_total 17 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879606.1\n# EOF\n";
/// let samples = parse(body, Format::OpenMetrics).unwrap();
/// let e = samples[0].exemplar.as_deref().unwrap();
/// assert_eq!(e.labels, [("trace_id".to_owned(), "KOO5S4vxi0o".to_owned())]);
/// assert_eq!((e.value, e.timestamp_ms), (0.67, Some(1_520_879_606_100)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The labels as Prometheus stores them: values as written (escapes are not undone),
    /// labels with an empty value left out.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The explicit timestamp in milliseconds; without one it is the sample's.
    pub timestamp_ms: Option<i64>,
}

/// A body Prometheus would refuse: the first bad line (1-based) and what is wrong with it.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse, Format};
///
/// let e = parse(b"ok 1\nbad 1\r\n", Format::Text).unwrap_err();
/// assert_eq!(e.line, 2);
/// assert_eq!(e.to_string(), "line 2: invalid value \"1\\r\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What Prometheus stores of one scrape.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse_scrape, Format, Skip};
///
/// // The second `jobs` is a duplicate; `old` is more than an hour older than the scrape.
/// let scraped = parse_scrape(b"jobs 1\njobs 2\nold 1 5\n", Format::Text, 1_700_000_000_000)
///     .unwrap();
/// assert_eq!(scraped.samples.len(), 1);
/// assert_eq!(scraped.total, 3);
/// assert_eq!(scraped.skips.count(Skip::Duplicate), 1);
/// assert_eq!(scraped.skips.count(Skip::OutOfBounds), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scraped {
    /// The samples stored, in the order they appeared; `exemplar` is set when Prometheus stores
    /// the line's exemplar.
    pub samples: Vec<ParsedSample>,
    /// Sample lines whose sample was skipped but whose exemplar is stored (its series was
    /// stored by an earlier line): forward the exemplar, not the value.
    pub exemplars_only: Vec<ParsedSample>,
    /// Sample lines in the body (Prometheus's `scrape_samples_scraped`).
    pub total: usize,
    /// What was skipped, and why.
    pub skips: Skips,
}

/// Parses a whole body: every sample line, in order, with no storage rules applied (see
/// [`parse_scrape`] for those).
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse, Format};
///
/// let samples = parse(b"# TYPE up gauge\nup{job=\"a\\\\b\"} 1\n", Format::Text).unwrap();
/// assert_eq!(samples[0].labels, [("job".to_owned(), "a\\b".to_owned())]);
/// assert!(parse(b"up 1\r\n", Format::Text).is_err());
/// ```
pub fn parse(body: &[u8], format: Format) -> Result<Vec<ParsedSample>, ParseError> {
    let mut samples = Vec::new();
    let mut parser = Parser::new(format);
    parser.feed(body, |s| samples.push(s.to_parsed()))?;
    parser.finish(|s| samples.push(s.to_parsed()))?;
    Ok(samples)
}

/// Parses a whole body scraped at `scrape_ts_ms` and keeps what Prometheus would store of it
/// (see [`Appender`]).
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse_scrape, Format, Skip};
///
/// let body = b"# TYPE jobs counter\njobs_total 1 # {trace_id=\"x\"} 1\njobs_total 2\n# EOF\n";
/// let scraped = parse_scrape(body, Format::OpenMetrics, 1_700_000_000_000).unwrap();
/// assert_eq!(scraped.samples.len(), 1);
/// assert!(scraped.samples[0].exemplar.is_some());
/// assert_eq!(scraped.skips.count(Skip::Duplicate), 1);
/// assert_eq!(scraped.total, 2);
/// ```
pub fn parse_scrape(body: &[u8], format: Format, scrape_ts_ms: i64) -> Result<Scraped, ParseError> {
    let mut appender = Appender::new(scrape_ts_ms);
    let mut samples = Vec::new();
    let mut exemplars_only = Vec::new();
    let mut keep = |s: SampleRef<'_>| {
        let (with_exemplar, list) = match appender.append(&s) {
            Outcome::Stored { exemplar } => (exemplar, &mut samples),
            Outcome::Skipped { exemplar: true, .. } => (true, &mut exemplars_only),
            Outcome::Skipped { .. } => return,
        };
        let mut parsed = s.to_parsed();
        if !with_exemplar {
            parsed.exemplar = None;
        }
        list.push(parsed);
    };
    let mut parser = Parser::new(format);
    parser.feed(body, &mut keep)?;
    parser.finish(&mut keep)?;
    let (total, skips) = appender.finish();
    Ok(Scraped {
        samples,
        exemplars_only,
        total,
        skips,
    })
}

/// Writes a label value with the exposition escapes (the inverse of the parser).
///
/// ```
/// use livetranslate_agent::metrics::exposition::escape_label_value;
///
/// let mut out = String::new();
/// escape_label_value(&mut out, "C:\\dir \"x\"\n");
/// assert_eq!(out, r#"C:\\dir \"x\"\n"#);
/// ```
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Formats a sample value the way Prometheus writes it (`NaN`, `+Inf`, `-Inf`, shortest
/// round-tripping decimal otherwise).
///
/// ```
/// use livetranslate_agent::metrics::exposition::format_value;
///
/// assert_eq!(format_value(f64::INFINITY), "+Inf");
/// assert_eq!(format_value(0.1), "0.1");
/// ```
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}
