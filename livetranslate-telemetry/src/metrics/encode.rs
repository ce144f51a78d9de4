//! Prometheus text exposition format (version 0.0.4) writing helpers.

use std::fmt::Write;

/// The `Content-Type` of a text exposition response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends `value` to `out` escaped for use inside a double-quoted label value.
pub fn escape_label_value(out: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `text` escaped for a `# HELP` line.
fn escape_help(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders `name="value",...` pairs (no braces) with escaped values.
pub fn render_labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(&mut out, value);
        out.push('"');
    }
    out
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Writes a float the way Prometheus parses it (`+Inf`, `-Inf`, `NaN`, plain decimals).
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes one sample line: `name{labels,extra} value`. Label parts that are empty are left out.
pub fn write_sample(out: &mut String, name: &str, suffix: &str, labels: &[&str], value: Sample) {
    out.push_str(name);
    out.push_str(suffix);
    let mut first = true;
    for part in labels.iter().filter(|p| !p.is_empty()) {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(part);
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    match value {
        Sample::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Sample::Float(f) => write_value(out, f),
    }
    out.push('\n');
}

/// A sample value.
#[derive(Clone, Copy, Debug)]
pub enum Sample {
    /// An exact integer (counts).
    Int(u64),
    /// Any float.
    Float(f64),
}

/// Writes the `_bucket`, `_sum` and `_count` lines of one histogram series.
pub fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &[&str],
    snap: &super::HistogramSnapshot,
    bounds: &[f64],
) {
    let mut prefix = String::with_capacity(64);
    for part in labels.iter().filter(|p| !p.is_empty()) {
        prefix.push_str(part);
        prefix.push(',');
    }
    let buckets = bounds
        .iter()
        .map(|b| Some(*b))
        .zip(snap.cumulative.iter().copied())
        .chain(std::iter::once((None, snap.count)));
    for (bound, cum) in buckets {
        out.push_str(name);
        out.push_str("_bucket{");
        out.push_str(&prefix);
        out.push_str("le=\"");
        match bound {
            Some(b) => write_value(out, b),
            None => out.push_str("+Inf"),
        }
        let _ = writeln!(out, "\"}} {cum}");
    }
    write_sample(out, name, "_sum", labels, Sample::Float(snap.sum));
    write_sample(out, name, "_count", labels, Sample::Int(snap.count));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(
            render_labels([("a", "x\"y\\z\nw"), ("b", "ok")]),
            r#"a="x\"y\\z\nw",b="ok""#
        );
    }

    #[test]
    fn special_floats() {
        let mut s = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.25, 1.0] {
            write_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "NaN +Inf -Inf 0.25 1 ");
    }

    #[test]
    fn sample_without_labels_has_no_braces() {
        let mut s = String::new();
        write_sample(&mut s, "up", "", &["", ""], Sample::Int(1));
        assert_eq!(s, "up 1\n");
    }
}
