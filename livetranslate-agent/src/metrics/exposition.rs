//! A parser for the Prometheus text exposition format (version 0.0.4) and the OpenMetrics 1.0
//! text format.
//!
//! The parser turns a scrape body into flat [`ParsedSample`]s (histograms and summaries are
//! their `_bucket` / `_sum` / `_count` / quantile series, as Prometheus stores them). It never
//! panics: any malformed input yields a [`ParseError`] naming the first bad line.
//!
//! Format notes:
//! - Text 0.0.4 timestamps are integer milliseconds; OpenMetrics timestamps are (possibly
//!   fractional) seconds. Both come out as milliseconds.
//! - OpenMetrics input must end with `# EOF`; nothing but blank lines may follow it.
//! - OpenMetrics exemplars (`… # {trace_id="…"} 1.0`) are skipped.
//! - OpenMetrics `_created` series of counters, histograms, summaries and gauge histograms are
//!   skipped: they describe the series rather than being samples of their own.

use std::collections::HashMap;

/// The wire format of a scrape body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
}

impl Format {
    /// The format announced by a response `Content-Type` header (text 0.0.4 unless it names
    /// OpenMetrics).
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type {
            Some(ct)
                if ct
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }
}

/// One sample line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// The metric name (including suffixes such as `_total` or `_bucket`).
    pub name: String,
    /// The labels in the order they appeared.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The explicit timestamp in milliseconds since the Unix epoch, if the line had one.
    pub timestamp_ms: Option<i64>,
}

/// A malformed exposition: the first bad line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The metric type declared by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    StateSet,
    Info,
    Untyped,
}

impl MetricType {
    fn parse(s: &str, format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) | ("unknown", Format::OpenMetrics) => MetricType::Untyped,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            ("info", Format::OpenMetrics) => MetricType::Info,
            _ => return None,
        })
    }

    /// Whether an OpenMetrics family of this type may have a `_created` series.
    fn has_created(self) -> bool {
        matches!(
            self,
            MetricType::Counter
                | MetricType::Histogram
                | MetricType::Summary
                | MetricType::GaugeHistogram
        )
    }
}

/// Parses a whole scrape body.
pub fn parse(input: &[u8], format: Format) -> Result<Vec<ParsedSample>, ParseError> {
    let mut parser = Parser {
        format,
        types: HashMap::new(),
        samples: Vec::new(),
    };
    let mut eof_seen = false;
    // A trailing newline does not start another line.
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return if format == Format::OpenMetrics {
            Err(ParseError {
                line: 1,
                message: "missing # EOF".into(),
            })
        } else {
            Ok(Vec::new())
        };
    }
    let mut line_no = 0;
    for raw in body.split(|&b| b == b'\n') {
        line_no += 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = std::str::from_utf8(raw).map_err(|_| err("invalid UTF-8".into()))?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if eof_seen {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err("content after # EOF".into()));
        }
        match parser.line(line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Eof) => eof_seen = true,
            Err(message) => return Err(err(message)),
        }
    }
    if format == Format::OpenMetrics && !eof_seen {
        return Err(ParseError {
            line: line_no,
            message: "missing # EOF".into(),
        });
    }
    Ok(parser.samples)
}

enum Flow {
    Continue,
    Eof,
}

struct Parser {
    format: Format,
    types: HashMap<String, MetricType>,
    samples: Vec<ParsedSample>,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Splits a metric name off the front of `s`.
fn take_metric_name(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return None,
    }
    let end = chars
        .find(|&(_, c)| !is_name_char(c))
        .map_or(s.len(), |(i, _)| i);
    Some(s.split_at(end))
}

/// Splits a label name off the front of `s`.
fn take_label_name(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return None,
    }
    let end = chars
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    Some(s.split_at(end))
}

/// Parses a sample value (`NaN`, `+Inf`, `-Inf` and Go-style floats).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => return Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => return Some(f64::INFINITY),
        "-Inf" | "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also accepts "infinity" and friends; Prometheus clients never write those, and the
    // checks above cover the spellings that matter. Refuse anything that is not a plain number.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Undoes the label-value escapes `\\`, `\"` and `\n`; returns the value and the rest after
/// the closing quote.
fn take_label_value(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => {
                    return Err(format!("invalid escape sequence \\{other} in label value"))
                }
                None => return Err("unterminated label value".into()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value".into())
}

/// Parses `{name="value",...}` (the opening brace already consumed).
/// Label pairs in order of appearance.
type LabelPairs = Vec<(String, String)>;

fn take_labels(mut s: &str, format: Format) -> Result<(LabelPairs, &str), String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    let lenient = format == Format::Text;
    loop {
        if lenient {
            s = s.trim_start_matches(is_blank);
        }
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (name, rest) = take_label_name(s).ok_or("expected a label name")?;
        s = rest;
        if lenient {
            s = s.trim_start_matches(is_blank);
        }
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label name {name:?}"))?;
        if lenient {
            s = s.trim_start_matches(is_blank);
        }
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {name:?}"))?;
        let (value, rest) = take_label_value(s)?;
        s = rest;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        labels.push((name.to_owned(), value));
        if lenient {
            s = s.trim_start_matches(is_blank);
        }
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label value".into());
        }
    }
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<Flow, String> {
        let trimmed = if self.format == Format::Text {
            line.trim_start_matches(is_blank)
        } else {
            line
        };
        if trimmed.trim_end_matches(is_blank).is_empty() {
            return if self.format == Format::OpenMetrics && !line.is_empty() {
                Err("blank line".into())
            } else {
                Ok(Flow::Continue)
            };
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            return self.comment(comment);
        }
        self.sample(trimmed)?;
        Ok(Flow::Continue)
    }

    fn comment(&mut self, comment: &str) -> Result<Flow, String> {
        // "# HELP name doc", "# TYPE name type", "# UNIT name unit", "# EOF"; anything else is
        // a free comment.
        let Some(body) = comment.strip_prefix([' ', '\t']) else {
            return Ok(Flow::Continue);
        };
        let body = body.trim_start_matches(is_blank);
        let (keyword, rest) = body.split_at(body.find(is_blank).unwrap_or(body.len()));
        if self.format == Format::OpenMetrics && keyword == "EOF" {
            if !rest.trim_matches(is_blank).is_empty() {
                return Err("unexpected text after # EOF".into());
            }
            return Ok(Flow::Eof);
        }
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
            return Ok(Flow::Continue);
        }
        if keyword == "UNIT" && self.format == Format::Text {
            return Ok(Flow::Continue);
        }
        let rest = rest.trim_start_matches(is_blank);
        let (name, rest) = take_metric_name(rest)
            .ok_or_else(|| format!("# {keyword} line without a valid metric name"))?;
        if !rest.is_empty() && !rest.starts_with(is_blank) {
            return Err(format!("invalid metric name in # {keyword} line"));
        }
        let rest = rest.trim_start_matches(is_blank);
        // HELP text (and UNIT) is not forwarded; any escapes in it are accepted.
        if keyword == "TYPE" {
            let kind = rest.trim_end_matches(is_blank);
            let kind = MetricType::parse(kind, self.format)
                .ok_or_else(|| format!("unknown metric type {kind:?}"))?;
            if self.types.insert(name.to_owned(), kind).is_some() {
                return Err(format!("second # TYPE line for {name}"));
            }
        }
        Ok(Flow::Continue)
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let (name, mut rest) = take_metric_name(line).ok_or("expected a metric name")?;
        let mut labels = Vec::new();
        // The text format allows blanks between the name and the label set.
        let brace = if self.format == Format::Text {
            rest.trim_start_matches(is_blank)
        } else {
            rest
        };
        if let Some(after) = brace.strip_prefix('{') {
            let (l, after) = take_labels(after, self.format)?;
            labels = l;
            rest = after;
        }
        // Value: at least one blank, then a token.
        if !rest.starts_with(is_blank) {
            return Err(format!("expected a blank and a value after {name}"));
        }
        let rest = rest.trim_start_matches(is_blank);
        let (value_str, rest) = rest.split_at(rest.find(is_blank).unwrap_or(rest.len()));
        let value =
            parse_value(value_str).ok_or_else(|| format!("invalid sample value {value_str:?}"))?;
        let rest = rest.trim_start_matches(is_blank);
        let mut timestamp_ms = None;
        let mut rest = rest;
        if !rest.is_empty() && !rest.starts_with('#') {
            let (ts_str, after) = rest.split_at(rest.find(is_blank).unwrap_or(rest.len()));
            timestamp_ms = Some(self.parse_timestamp(ts_str)?);
            rest = after.trim_start_matches(is_blank);
        }
        if !rest.is_empty() {
            match (self.format, rest.strip_prefix('#')) {
                (Format::OpenMetrics, Some(exemplar)) => check_exemplar(exemplar)?,
                _ => return Err(format!("unexpected text {rest:?} after the sample")),
            }
        }
        if self.format == Format::OpenMetrics {
            if let Some(family) = name.strip_suffix("_created") {
                if self.types.get(family).is_some_and(|t| t.has_created()) {
                    return Ok(());
                }
            }
        }
        self.samples.push(ParsedSample {
            name: name.to_owned(),
            labels,
            value,
            timestamp_ms,
        });
        Ok(())
    }

    fn parse_timestamp(&self, s: &str) -> Result<i64, String> {
        match self.format {
            Format::Text => s
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {s:?}")),
            Format::OpenMetrics => {
                let secs = parse_value(s)
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("invalid timestamp {s:?}"))?;
                let ms = (secs * 1000.0).round();
                if ms.abs() >= 9.0e18 {
                    return Err(format!("timestamp {s:?} out of range"));
                }
                // In range: the cast is exact for integral values of this size.
                Ok(ms as i64)
            }
        }
    }
}

/// Checks an exemplar: ` {labels} value [timestamp]`.
fn check_exemplar(s: &str) -> Result<(), String> {
    let s = s.trim_start_matches(is_blank);
    let s = s
        .strip_prefix('{')
        .ok_or("expected '{' to open the exemplar labels")?;
    let (_, rest) = take_labels(s, Format::OpenMetrics)?;
    let rest = rest.trim_start_matches(is_blank);
    let mut tokens = rest.split(is_blank).filter(|t| !t.is_empty());
    let value = tokens.next().ok_or("exemplar without a value")?;
    parse_value(value).ok_or_else(|| format!("invalid exemplar value {value:?}"))?;
    if let Some(ts) = tokens.next() {
        parse_value(ts).ok_or_else(|| format!("invalid exemplar timestamp {ts:?}"))?;
    }
    if tokens.next().is_some() {
        return Err("unexpected text after the exemplar".into());
    }
    Ok(())
}

/// Writes a label value with the exposition escapes (the inverse of the parser).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Vec<ParsedSample> {
        match parse(s.as_bytes(), Format::Text) {
            Ok(v) => v,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn om(s: &str) -> Vec<ParsedSample> {
        match parse(s.as_bytes(), Format::OpenMetrics) {
            Ok(v) => v,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn err_line(s: &str, format: Format) -> usize {
        match parse(s.as_bytes(), format) {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.line,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn counter_with_help_and_type() {
        let s = text(
            "# HELP http_requests_total The total.\n# TYPE http_requests_total counter\n\
             http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
             http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "http_requests_total");
        assert_eq!(s[0].labels, labels(&[("method", "post"), ("code", "200")]));
        assert_eq!(s[0].value, 1027.0);
        assert_eq!(s[0].timestamp_ms, Some(1395066363000));
        assert_eq!(s[1].value, 3.0);
    }

    #[test]
    fn gauge_without_labels_or_timestamp() {
        let s = text("# TYPE queue_depth gauge\nqueue_depth 4.5\n");
        assert_eq!(s[0].labels, vec![]);
        assert_eq!(s[0].value, 4.5);
        assert_eq!(s[0].timestamp_ms, None);
    }

    #[test]
    fn untyped_and_comments() {
        let s = text("# just a comment\n#no space comment\n\nmetric_without_type 12.47\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "metric_without_type");
    }

    #[test]
    fn special_values() {
        let s = text("a NaN\nb +Inf\nc -Inf\nd 1e-3\ne -0.5\nf Inf\n");
        assert!(s[0].value.is_nan());
        assert_eq!(s[1].value, f64::INFINITY);
        assert_eq!(s[2].value, f64::NEG_INFINITY);
        assert_eq!(s[3].value, 0.001);
        assert_eq!(s[4].value, -0.5);
        assert_eq!(s[5].value, f64::INFINITY);
    }

    #[test]
    fn negative_timestamp() {
        let s = text("something_weird{problem=\"division by zero\"} +Inf -3982045\n");
        assert_eq!(s[0].timestamp_ms, Some(-3982045));
    }

    #[test]
    fn label_value_escapes() {
        let s = text(
            "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n",
        );
        assert_eq!(
            s[0].labels,
            labels(&[
                ("path", "C:\\DIR\\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ])
        );
        assert_eq!(s[0].value, 1.458255915e9);
    }

    #[test]
    fn unicode_label_values_and_braces_inside() {
        let s = text("m{a=\"héllo } , = {\"} 1\n");
        assert_eq!(s[0].labels, labels(&[("a", "héllo } , = {")]));
    }

    #[test]
    fn trailing_comma_and_spaces_in_labels() {
        let s = text("m{ a = \"1\" , b=\"2\", } 1\n");
        assert_eq!(s[0].labels, labels(&[("a", "1"), ("b", "2")]));
        let s = text("m{} 1\n");
        assert!(s[0].labels.is_empty());
    }

    #[test]
    fn histogram() {
        let s = text(
            "# HELP http_request_duration_seconds A histogram.\n\
             # TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n\
             http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n\
             http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n\
             http_request_duration_seconds_sum 53423\n\
             http_request_duration_seconds_count 144320\n",
        );
        assert_eq!(s.len(), 5);
        assert_eq!(s[2].labels, labels(&[("le", "+Inf")]));
        assert_eq!(s[4].name, "http_request_duration_seconds_count");
        assert_eq!(s[4].value, 144320.0);
    }

    #[test]
    fn summary() {
        let s = text(
            "# TYPE rpc_duration_seconds summary\n\
             rpc_duration_seconds{quantile=\"0.01\"} 3102\n\
             rpc_duration_seconds{quantile=\"0.99\"} NaN\n\
             rpc_duration_seconds_sum 1.7560473e+07\n\
             rpc_duration_seconds_count 2693\n",
        );
        assert_eq!(s.len(), 4);
        assert!(s[1].value.is_nan());
        assert_eq!(s[2].value, 1.7560473e7);
    }

    #[test]
    fn crlf_line_endings_and_missing_final_newline() {
        let s = text("a 1\r\nb 2");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].value, 2.0);
    }

    #[test]
    fn help_escapes_are_accepted() {
        text("# HELP m a \\\\ backslash and a \\n newline\nm 1\n");
    }

    #[test]
    fn errors_name_the_first_bad_line() {
        assert_eq!(err_line("a 1\nb\nc 3\n", Format::Text), 2);
        assert_eq!(err_line("a 1\nb{x=\"1\" 2\n", Format::Text), 2);
        assert_eq!(err_line("a{x=\"\\q\"} 1\n", Format::Text), 1);
        assert_eq!(err_line("a{x=\"1\",x=\"2\"} 1\n", Format::Text), 1);
        assert_eq!(err_line("a 1\n\n9bad 1\n", Format::Text), 3);
        assert_eq!(err_line("a abc\n", Format::Text), 1);
        assert_eq!(err_line("a 1 1.5\n", Format::Text), 1);
        assert_eq!(err_line("a 1 2 3\n", Format::Text), 1);
        assert_eq!(err_line("# TYPE a nonsense\n", Format::Text), 1);
        assert_eq!(
            err_line("# TYPE a gauge\n# TYPE a gauge\n", Format::Text),
            2
        );
        assert_eq!(err_line("a{x=\"1\n", Format::Text), 1);
        assert_eq!(err_line("a 1 # {a=\"b\"} 1\n", Format::Text), 1);
        assert_eq!(err_line("a infinity\n", Format::Text), 1);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let e = parse(b"a 1\nb{x=\"\xff\"} 1\n", Format::Text);
        assert_eq!(e.map_err(|e| e.line), Err(2));
    }

    #[test]
    fn empty_text_is_fine() {
        assert!(text("").is_empty());
        assert!(text("\n\n").is_empty());
    }

    #[test]
    fn openmetrics_counter_created_exemplar_and_eof() {
        let s = om("# TYPE foo counter\n# HELP foo Foos.\n# UNIT foo seconds\n\
             foo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879606.1\n\
             foo_created{a=\"b\"} 1520430000.123\n# EOF\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "foo_total");
        assert_eq!(s[0].value, 17.0);
        assert_eq!(s[0].timestamp_ms, Some(1520879607789));
    }

    #[test]
    fn openmetrics_histogram_with_exemplars() {
        let s = om("# TYPE h histogram\n\
             h_bucket{le=\"0.1\"} 8 # {id=\"1\"} 0.05\n\
             h_bucket{le=\"+Inf\"} 17\nh_count 17\nh_sum 324789.3\nh_created 1520430000.123\n# EOF\n");
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].labels, labels(&[("le", "0.1")]));
    }

    #[test]
    fn openmetrics_created_of_gauge_is_a_sample() {
        let s = om("# TYPE x_created gauge\nx_created 5\n# EOF\n");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn openmetrics_requires_eof_and_nothing_after() {
        assert_eq!(err_line("a 1\n", Format::OpenMetrics), 1);
        assert_eq!(err_line("", Format::OpenMetrics), 1);
        assert_eq!(err_line("a 1\n# EOF\nb 2\n", Format::OpenMetrics), 3);
        assert_eq!(
            err_line("# TYPE a untyped\n# EOF\n", Format::OpenMetrics),
            1
        );
        assert_eq!(
            err_line("a 1 # {x=\"1\"} notanumber\n# EOF\n", Format::OpenMetrics),
            1
        );
    }

    #[test]
    fn content_type_detection() {
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::from_content_type(None), Format::Text);
    }

    #[test]
    fn format_value_spellings() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1e300).parse::<f64>(), Ok(1e300));
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn metric_name() -> impl Strategy<Value = String> {
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}"
        }

        fn label_name() -> impl Strategy<Value = String> {
            "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
        }

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
            ]
        }

        fn sample() -> impl Strategy<Value = ParsedSample> {
            (
                metric_name(),
                proptest::collection::btree_map(label_name(), any::<String>(), 0..4),
                value(),
                proptest::option::of(any::<i64>()),
            )
                .prop_map(|(name, labels, value, timestamp_ms)| ParsedSample {
                    name,
                    labels: labels.into_iter().collect(),
                    value,
                    timestamp_ms,
                })
        }

        fn render(samples: &[ParsedSample], with_types: bool) -> String {
            let mut out = String::new();
            for (i, s) in samples.iter().enumerate() {
                if with_types && i % 2 == 0 {
                    out.push_str(&format!("# HELP {} some help \\\\ text\n", s.name));
                }
                out.push_str(&s.name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (j, (n, v)) in s.labels.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        out.push_str(n);
                        out.push_str("=\"");
                        escape_label_value(&mut out, v);
                        out.push('"');
                    }
                    out.push('}');
                }
                out.push(' ');
                out.push_str(&format_value(s.value));
                if let Some(ts) = s.timestamp_ms {
                    out.push_str(&format!(" {ts}"));
                }
                out.push('\n');
            }
            out
        }

        fn same(a: &ParsedSample, b: &ParsedSample) -> bool {
            a.name == b.name
                && a.labels == b.labels
                && a.timestamp_ms == b.timestamp_ms
                && (a.value == b.value || (a.value.is_nan() && b.value.is_nan()))
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse(&input, Format::Text);
                let _ = parse(&input, Format::OpenMetrics);
            }

            #[test]
            fn arbitrary_text_never_panics(input in "[ -~\t\n{}\"\\\\#=,é]{0,300}") {
                let _ = parse(input.as_bytes(), Format::Text);
                let _ = parse(input.as_bytes(), Format::OpenMetrics);
            }

            #[test]
            fn exposition_round_trips(samples in proptest::collection::vec(sample(), 0..20), with_types in any::<bool>()) {
                let body = render(&samples, with_types);
                let parsed = parse(body.as_bytes(), Format::Text);
                prop_assert!(parsed.is_ok(), "{:?} for {:?}", parsed, body);
                let parsed = parsed.unwrap_or_default();
                prop_assert_eq!(parsed.len(), samples.len());
                for (a, b) in parsed.iter().zip(samples.iter()) {
                    prop_assert!(same(a, b), "{:?} != {:?}", a, b);
                }
            }
        }
    }
}
