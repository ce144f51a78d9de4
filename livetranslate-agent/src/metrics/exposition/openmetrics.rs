//! OpenMetrics 1.0 text, line by line, as Prometheus 2.42's lexer and parser read it
//! (`model/textparse/openmetricslex.l`, `openmetricsparse.go`):
//!
//! - Tokens are separated by exactly one space; no blanks lead or trail a line, none appear
//!   inside a label set, and there are no blank lines and no `\r`.
//! - The only comments are `# HELP name text`, `# TYPE name type`, `# UNIT name unit` and
//!   `# EOF`; each metadata line needs a space after the name (`# HELP name` fails, `# HELP name `
//!   is an empty text). Types: `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`,
//!   `info`, `stateset`, `unknown`. A non-empty unit must be a `_`-separated suffix of the name.
//!   HELP text must be valid UTF-8. Repeated or late metadata, and families that do not match
//!   their type, are not checked.
//! - A sample is `name[{labels}] value [timestamp] [# {labels} value [timestamp]]`. A label set
//!   is `name="value"` joined by single commas, with no trailing comma. The value is a Go float;
//!   the timestamp is a Go float in seconds, not NaN or infinite, turned into milliseconds by
//!   truncation. `_created` series are ordinary samples.
//! - An exemplar may only follow a metric whose name ends in `_total` or `_bucket`; its label
//!   values keep their escapes (Prometheus does not undo them for exemplars).
//! - `# EOF` must be the last line; only a single line break may follow it.

use super::lex::{
    is_label_start, is_name_start, label_name_end, metric_name_end, parse_float, scan_quoted,
    seconds_to_ms, show,
};
use super::line::{LabelSpan, Line, SampleParts};

/// The error for input that stops before `# EOF`.
pub const MISSING_EOF: &str = "data does not end with # EOF";

/// Parses one line (without its line break); `terminated` tells whether a line break followed
/// it (a metadata or sample line that ends the input is an error).
pub fn parse_line<'a>(
    line: &'a [u8],
    terminated: bool,
    parts: &mut SampleParts,
) -> Result<Line<'a>, String> {
    match line.first() {
        Some(b'#') => metadata(line, terminated),
        Some(&b) if is_name_start(b) => sample(line, terminated, parts),
        Some(_) => Err(format!(
            "expected a metric name or '#', found {}",
            show(line, 0)
        )),
        None => Err("blank line (OpenMetrics has none)".into()),
    }
}

/// A line starting with `#`.
fn metadata(line: &[u8], terminated: bool) -> Result<Line<'_>, String> {
    if line.get(1) != Some(&b' ') {
        return Err(format!(
            "expected a space after '#', found {}",
            show(line, 1)
        ));
    }
    let rest = line.get(2..).unwrap_or_default();
    if rest == b"EOF" {
        return Ok(Line::Eof);
    }
    let keyword = match rest.get(..5) {
        Some(b"HELP ") => "HELP",
        Some(b"TYPE ") => "TYPE",
        Some(b"UNIT ") => "UNIT",
        _ if rest.starts_with(b"EOF") => return Err("unexpected data after # EOF".into()),
        _ => {
            return Err(format!(
                "expected # HELP, # TYPE, # UNIT or # EOF (OpenMetrics has no other comments), found {}",
                show(line, 2)
            ))
        }
    };
    let name_start = 7;
    if !line.get(name_start).is_some_and(|&b| is_name_start(b)) {
        return Err(format!(
            "expected a metric name after # {keyword}, found {}",
            show(line, name_start)
        ));
    }
    let name_end = metric_name_end(line, name_start);
    if line.get(name_end) != Some(&b' ') || !terminated {
        return Err(format!(
            "expected a space and the text of # {keyword} after the metric name, found {}",
            show(line, name_end)
        ));
    }
    let name = &line[name_start..name_end];
    let text = &line[name_end + 1..];
    match keyword {
        "TYPE" => {
            if !matches!(
                text,
                b"counter"
                    | b"gauge"
                    | b"histogram"
                    | b"gaugehistogram"
                    | b"summary"
                    | b"info"
                    | b"stateset"
                    | b"unknown"
            ) {
                return Err(format!(
                    "invalid metric type {:?}",
                    String::from_utf8_lossy(text)
                ));
            }
        }
        "HELP" => {
            if std::str::from_utf8(text).is_err() {
                return Err("HELP text is not valid UTF-8".into());
            }
        }
        _ => {
            let is_suffix = name.len() > text.len()
                && name.ends_with(text)
                && name[name.len() - text.len() - 1] == b'_';
            if !text.is_empty() && !is_suffix {
                return Err(format!(
                    "unit {:?} is not a suffix of metric {:?}",
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
    Ok(Line::Metadata)
}

/// The token after a single space at `i`: its range, or `None` when there is no space at `i`
/// or no token after it.
fn token(line: &[u8], i: usize) -> Option<(usize, usize)> {
    if line.get(i) != Some(&b' ') {
        return None;
    }
    let start = i + 1;
    let end = line[start..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(line.len(), |p| start + p);
    (end > start).then_some((start, end))
}

/// The separator before an exemplar.
const EXEMPLAR: &[u8] = b" # {";

/// A sample line.
fn sample<'a>(
    line: &'a [u8],
    terminated: bool,
    parts: &mut SampleParts,
) -> Result<Line<'a>, String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {} of a sample line", e.valid_up_to()))?;
    parts.clear();
    let name_end = metric_name_end(line, 0);
    parts.name = (0, name_end);
    let mut i = name_end;
    if line.get(i) == Some(&b'{') {
        i = labels(line, i + 1, &mut parts.labels)?;
    }
    let (start, end) = token(line, i).ok_or_else(|| {
        format!(
            "expected a single space and a value after the metric, found {}",
            show(line, i)
        )
    })?;
    let value = text.get(start..end).unwrap_or_default();
    parts.value = parse_float(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    i = end;
    if i < line.len() && !line[i..].starts_with(EXEMPLAR) {
        let (start, end) = token(line, i).ok_or_else(|| {
            format!(
                "expected a single space and a timestamp or an exemplar, found {}",
                show(line, i)
            )
        })?;
        let timestamp = text.get(start..end).unwrap_or_default();
        let seconds = parse_float(timestamp)
            .filter(|s| s.is_finite())
            .ok_or_else(|| format!("invalid timestamp {timestamp:?}"))?;
        parts.timestamp_ms = Some(seconds_to_ms(seconds));
        i = end;
        if i < line.len() && !line[i..].starts_with(EXEMPLAR) {
            return Err(format!(
                "expected the end of the line or an exemplar after the timestamp, found {}",
                show(line, i)
            ));
        }
    }
    if i < line.len() {
        let name = &line[..name_end];
        if !(name.ends_with(b"_total") || name.ends_with(b"_bucket")) {
            return Err(format!(
                "metric name {:?} does not support exemplars (only _total and _bucket series do)",
                text.get(..name_end).unwrap_or_default()
            ));
        }
        exemplar(line, text, i + EXEMPLAR.len(), parts)?;
    }
    if !terminated {
        return Err(MISSING_EOF.into());
    }
    Ok(Line::Sample(text))
}

/// The exemplar whose label set starts at `i` (after `{`).
fn exemplar(line: &[u8], text: &str, i: usize, parts: &mut SampleParts) -> Result<(), String> {
    let i = labels(line, i, &mut parts.exemplar_labels)?;
    let (start, end) = token(line, i).ok_or_else(|| {
        format!(
            "expected a single space and a value after the exemplar labels, found {}",
            show(line, i)
        )
    })?;
    let value = text.get(start..end).unwrap_or_default();
    let value = parse_float(value).ok_or_else(|| format!("invalid exemplar value {value:?}"))?;
    let mut timestamp_ms = None;
    if end < line.len() {
        let (start, end) = token(line, end).ok_or_else(|| {
            format!(
                "expected a single space and a timestamp after the exemplar value, found {}",
                show(line, end)
            )
        })?;
        let timestamp = text.get(start..end).unwrap_or_default();
        let seconds = parse_float(timestamp)
            .filter(|s| s.is_finite())
            .ok_or_else(|| format!("invalid exemplar timestamp {timestamp:?}"))?;
        timestamp_ms = Some(seconds_to_ms(seconds));
        if end < line.len() {
            return Err(format!(
                "expected the end of the line after the exemplar timestamp, found {}",
                show(line, end)
            ));
        }
    }
    parts.exemplar = Some((value, timestamp_ms));
    Ok(())
}

/// The label set after `{` (`i` is the index after it); returns the index after `}`.
fn labels(line: &[u8], mut i: usize, out: &mut Vec<LabelSpan>) -> Result<usize, String> {
    let mut first = true;
    loop {
        match line.get(i) {
            Some(b'}') => return Ok(i + 1),
            Some(b',') if !first => {
                i += 1;
                if !line.get(i).is_some_and(|&b| is_label_start(b)) {
                    return Err(format!(
                        "expected a label name after ',', found {}",
                        show(line, i)
                    ));
                }
            }
            Some(&b) if is_label_start(b) && first => {}
            Some(&b) if is_label_start(b) => {
                return Err(format!(
                    "expected ',' between labels, found {}",
                    show(line, i)
                ))
            }
            _ => {
                return Err(format!(
                    "expected a label name or '}}', found {}",
                    show(line, i)
                ))
            }
        }
        first = false;
        let name = (i, label_name_end(line, i));
        i = name.1;
        if line.get(i) != Some(&b'=') {
            return Err(format!(
                "expected '=' after a label name, found {}",
                show(line, i)
            ));
        }
        if line.get(i + 1) != Some(&b'"') {
            return Err(format!(
                "expected '\"' to open a label value, found {}",
                show(line, i + 1)
            ));
        }
        let (close, escaped) = scan_quoted(line, i + 1).map_err(|e| e.message().to_owned())?;
        out.push(LabelSpan {
            name,
            value: (i + 2, close),
            escaped,
        });
        i = close + 1;
    }
}
