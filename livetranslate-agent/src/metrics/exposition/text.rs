//! The Prometheus text format 0.0.4, line by line, as Prometheus 2.42's lexer and parser read it
//! (`model/textparse/promlex.l`, `promparse.go`):
//!
//! - Blanks (spaces and tabs) may separate every token, lead a line and trail it.
//! - `#` starts a comment; `# HELP name text` and `# TYPE name type` (keyword and name separated
//!   by blanks) are checked: the name must be valid, the HELP text valid UTF-8, the type one of
//!   `counter`, `gauge`, `histogram`, `summary`, `untyped`. The text is everything after the
//!   first byte following the name, so `# TYPE m  counter` has the type `" counter"` and fails,
//!   and `# HELP m` has an empty text. Other comments are not looked at (any bytes).
//! - A sample is `name [{labels}] value [timestamp]`. Labels are `name="value"` separated by
//!   commas, which may be left out or trail; label values may contain raw line breaks and any
//!   escape (`\z` stays `\z`). The value is whatever runs up to the next blank or `{` and must
//!   be a Go float; it may even follow the name directly (`m-1` is `m` with value -1). The
//!   timestamp is ASCII digits (no sign) that fit an i64, in milliseconds.
//! - Blanks before a sample's name become part of the name (Prometheus takes the series text
//!   from the start of the line), which Prometheus then refuses as an invalid metric name.
//! - A NUL byte where a line (or a comment after `#`) starts ends the input.

use super::lex::{
    is_blank, is_label_start, is_name_start, label_name_end, metric_name_end, parse_digits,
    parse_float, scan_quoted, show, skip_blanks,
};
use super::line::{LabelSpan, Line, SampleParts};

/// Parses one line (without its line break; a line may hold line breaks inside label values).
pub fn parse_line<'a>(line: &'a [u8], parts: &mut SampleParts) -> Result<Line<'a>, String> {
    let start = skip_blanks(line, 0);
    match line.get(start) {
        None => Ok(Line::Blank),
        Some(0) => Ok(Line::Eof),
        Some(b'#') => comment(line, start + 1),
        Some(&b) if is_name_start(b) => sample(line, start, parts),
        Some(_) => Err(format!(
            "expected a metric name, a comment or a blank line, found {}",
            show(line, start)
        )),
    }
}

/// A line starting with `#` (`i` is the index after it).
fn comment(line: &[u8], i: usize) -> Result<Line<'_>, String> {
    match line.get(i) {
        Some(0) => return Ok(Line::Eof),
        Some(&b) if is_blank(b) => {}
        _ => return Ok(Line::Metadata),
    }
    let i = skip_blanks(line, i);
    let rest = line.get(i..).unwrap_or_default();
    let keyword = if rest.starts_with(b"HELP") {
        "HELP"
    } else if rest.starts_with(b"TYPE") {
        "TYPE"
    } else {
        return Ok(match rest.first() {
            Some(0) => Line::Eof,
            _ => Line::Metadata,
        });
    };
    if !line.get(i + 4).is_some_and(|&b| is_blank(b)) {
        return Ok(Line::Metadata);
    }
    let name_start = skip_blanks(line, i + 4);
    if !line.get(name_start).is_some_and(|&b| is_name_start(b)) {
        return Err(format!(
            "expected a metric name after # {keyword}, found {}",
            show(line, name_start)
        ));
    }
    let name_end = metric_name_end(line, name_start);
    let after = line.get(name_end..).unwrap_or_default();
    let text = if after.iter().all(|&b| is_blank(b)) {
        &[][..]
    } else {
        &after[1..]
    };
    if keyword == "TYPE" {
        if !matches!(
            text,
            b"counter" | b"gauge" | b"histogram" | b"summary" | b"untyped"
        ) {
            return Err(format!(
                "invalid metric type {:?}",
                String::from_utf8_lossy(text)
            ));
        }
    } else if std::str::from_utf8(text).is_err() {
        return Err("HELP text is not valid UTF-8".into());
    }
    Ok(Line::Metadata)
}

/// A sample line whose metric name starts at `start`.
fn sample<'a>(line: &'a [u8], start: usize, parts: &mut SampleParts) -> Result<Line<'a>, String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {} of a sample line", e.valid_up_to()))?;
    parts.clear();
    let name_end = metric_name_end(line, start);
    if start > 0 {
        return Err(format!(
            "invalid metric name {:?}: Prometheus keeps the blanks before a sample's name",
            text.get(..name_end).unwrap_or_default()
        ));
    }
    parts.name = (start, name_end);
    let mut i = skip_blanks(line, name_end);
    if line.get(i) == Some(&b'{') {
        i = labels(line, i + 1, &mut parts.labels)?;
        i = skip_blanks(line, i);
    }
    let value_start = i;
    while i < line.len() && !matches!(line[i], b' ' | b'\t' | b'{' | 0) {
        i += 1;
    }
    if i == value_start {
        return Err(format!(
            "expected a value after the metric, found {}",
            show(line, i)
        ));
    }
    let value = text.get(value_start..i).unwrap_or_default();
    parts.value = parse_float(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    i = skip_blanks(line, i);
    if i < line.len() {
        let ts_start = i;
        while i < line.len() && line[i].is_ascii_digit() {
            i += 1;
        }
        if i == ts_start {
            return Err(format!(
                "expected a timestamp or the end of the line, found {}",
                show(line, i)
            ));
        }
        let digits = &line[ts_start..i];
        parts.timestamp_ms = Some(parse_digits(digits).ok_or_else(|| {
            format!("timestamp {} out of range", String::from_utf8_lossy(digits))
        })?);
        i = skip_blanks(line, i);
        if i < line.len() {
            return Err(format!(
                "expected the end of the line after the timestamp, found {}",
                show(line, i)
            ));
        }
    }
    Ok(Line::Sample(text))
}

/// The label set after `{` (`i` is the index after it); returns the index after `}`.
fn labels(line: &[u8], mut i: usize, out: &mut Vec<LabelSpan>) -> Result<usize, String> {
    loop {
        i = skip_blanks(line, i);
        match line.get(i) {
            Some(b'}') => return Ok(i + 1),
            Some(&b) if is_label_start(b) => {}
            _ => {
                return Err(format!(
                    "expected a label name or '}}', found {}",
                    show(line, i)
                ))
            }
        }
        let name = (i, label_name_end(line, i));
        i = skip_blanks(line, name.1);
        if line.get(i) != Some(&b'=') {
            return Err(format!(
                "expected '=' after a label name, found {}",
                show(line, i)
            ));
        }
        i = skip_blanks(line, i + 1);
        if line.get(i) != Some(&b'"') {
            return Err(format!(
                "expected '\"' to open a label value, found {}",
                show(line, i)
            ));
        }
        let (close, escaped) = scan_quoted(line, i).map_err(|e| e.message().to_owned())?;
        out.push(LabelSpan {
            name,
            value: (i + 1, close),
            escaped,
        });
        i = skip_blanks(line, close + 1);
        if line.get(i) == Some(&b',') {
            i += 1;
        }
    }
}
