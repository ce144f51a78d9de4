//! Exposition writing helpers: the Prometheus text format (version 0.0.4) and OpenMetrics 1.0.
//!
//! The two differ only in a few places, all handled here: OpenMetrics names a counter family
//! without its `_total` suffix (the samples keep it), calls `untyped` `unknown`, has `# UNIT`
//! lines, exemplars after bucket samples, and ends with `# EOF`.

use std::fmt::Write;

/// The `Content-Type` of a text exposition response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of an OpenMetrics 1.0 response.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
///
/// ```
/// use livetranslate_telemetry::registry::encode::Format;
/// assert!(Format::OpenMetrics.content_type().starts_with("application/openmetrics-text"));
/// assert_eq!(Format::default(), Format::Text);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4 (the default).
    #[default]
    Text,
    /// OpenMetrics 1.0 text: units, exemplars, `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value of a response in this format.
    ///
    /// ```
    /// use livetranslate_telemetry::registry::encode::Format;
    /// assert_eq!(Format::Text.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

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

/// Writes the `# HELP` and `# TYPE` lines of a family in the text format.
pub fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    write_family_header(out, Format::Text, name, help, kind, None);
}

/// The family name OpenMetrics uses for a metric: counters lose their `_total` suffix.
///
/// ```
/// use livetranslate_telemetry::registry::encode::openmetrics_family_name;
/// assert_eq!(openmetrics_family_name("jobs_total", "counter"), "jobs");
/// assert_eq!(openmetrics_family_name("jobs_total", "gauge"), "jobs_total");
/// ```
pub fn openmetrics_family_name<'a>(name: &'a str, kind: &str) -> &'a str {
    if kind == "counter" {
        name.strip_suffix("_total").unwrap_or(name)
    } else {
        name
    }
}

/// Writes the metadata lines of a family: `# HELP` and `# TYPE`, and in OpenMetrics `# UNIT`
/// when `unit` is given and the family name ends in `_<unit>` (OpenMetrics allows nothing
/// else). `name` is the sample name (a counter's with `_total`).
///
/// ```
/// use livetranslate_telemetry::registry::encode::{write_family_header, Format};
/// let mut out = String::new();
/// write_family_header(&mut out, Format::OpenMetrics, "jobs_seconds_total", "Job time.", "counter", Some("seconds"));
/// assert_eq!(out, "# HELP jobs_seconds Job time.\n# TYPE jobs_seconds counter\n# UNIT jobs_seconds seconds\n");
/// ```
pub fn write_family_header(
    out: &mut String,
    format: Format,
    name: &str,
    help: &str,
    kind: &str,
    unit: Option<&str>,
) {
    let (family, kind) = match format {
        Format::Text => (name, kind),
        Format::OpenMetrics => (
            openmetrics_family_name(name, kind),
            if kind == "untyped" { "unknown" } else { kind },
        ),
    };
    out.push_str("# HELP ");
    out.push_str(family);
    out.push(' ');
    escape_help(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(family);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
    if let (Format::OpenMetrics, Some(unit)) = (format, unit) {
        let carries_unit = family
            .strip_suffix(unit)
            .is_some_and(|rest| rest.ends_with('_') && rest.len() > 1);
        if !unit.is_empty() && carries_unit {
            out.push_str("# UNIT ");
            out.push_str(family);
            out.push(' ');
            out.push_str(unit);
            out.push('\n');
        }
    }
}

/// Writes the end of an exposition (`# EOF` in OpenMetrics, nothing in the text format).
///
/// ```
/// use livetranslate_telemetry::registry::encode::{write_end, Format};
/// let mut out = String::new();
/// write_end(&mut out, Format::Text);
/// write_end(&mut out, Format::OpenMetrics);
/// assert_eq!(out, "# EOF\n");
/// ```
pub fn write_end(out: &mut String, format: Format) {
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
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

/// An exemplar: one observation of a histogram bucket, with the trace it belongs to.
///
/// ```
/// use livetranslate_telemetry::registry::encode::Exemplar;
/// let e = Exemplar { trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736, value: 0.012, timestamp: 1.7e9 };
/// assert_eq!(e.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The W3C trace id (128 bits).
    pub trace_id: u128,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in seconds since the Unix epoch.
    pub timestamp: f64,
}

impl Exemplar {
    /// The trace id as 32 lowercase hex digits, as in a `traceparent` header.
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::encode::Exemplar;
    /// let e = Exemplar { trace_id: 1, value: 0.5, timestamp: 0.0 };
    /// assert_eq!(e.trace_id_hex(), "00000000000000000000000000000001");
    /// ```
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    fn write(&self, out: &mut String) {
        let _ = write!(out, " # {{trace_id=\"{:032x}\"}} ", self.trace_id);
        write_value(out, self.value);
        let _ = write!(out, " {:.3}", self.timestamp);
    }
}

/// Writes the `_bucket`, `_sum` and `_count` lines of one histogram series (text format).
pub fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &[&str],
    snap: &super::HistogramSnapshot,
    bounds: &[f64],
) {
    write_histogram_with_exemplars(out, name, labels, snap, bounds, &[]);
}

/// Writes the `_bucket`, `_sum` and `_count` lines of one histogram series, with an exemplar
/// after each bucket that has one (`exemplars[i]` belongs to bucket `i`, the last to `+Inf`;
/// pass `&[]` for none). Exemplars are OpenMetrics only: leave them out for the text format.
///
/// ```
/// use livetranslate_telemetry::registry::{encode::{write_histogram_with_exemplars, Exemplar}, Histogram};
/// let h = Histogram::new(&[1.0]);
/// h.observe(0.5);
/// let e = Exemplar { trace_id: 0xab, value: 0.5, timestamp: 1.0 };
/// let mut out = String::new();
/// write_histogram_with_exemplars(&mut out, "d", &[], &h.snapshot(), h.bounds(), &[Some(e), None]);
/// assert!(out.starts_with("d_bucket{le=\"1\"} 1 # {trace_id=\"000000000000000000000000000000ab\"} 0.5 1.000\n"));
/// ```
pub fn write_histogram_with_exemplars(
    out: &mut String,
    name: &str,
    labels: &[&str],
    snap: &super::HistogramSnapshot,
    bounds: &[f64],
    exemplars: &[Option<Exemplar>],
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
    for (i, (bound, cum)) in buckets.enumerate() {
        out.push_str(name);
        out.push_str("_bucket{");
        out.push_str(&prefix);
        out.push_str("le=\"");
        match bound {
            Some(b) => write_value(out, b),
            None => out.push_str("+Inf"),
        }
        let _ = write!(out, "\"}} {cum}");
        if let Some(Some(e)) = exemplars.get(i) {
            e.write(out);
        }
        out.push('\n');
    }
    write_sample(out, name, "_sum", labels, Sample::Float(snap.sum));
    write_sample(out, name, "_count", labels, Sample::Int(snap.count));
}

/// Converts text-format output (what a [`Collect::encode`](super::Collect::encode) writes)
/// to OpenMetrics, appending to `out`: counter families are renamed without `_total` in
/// their metadata, counter samples get `_total` when they lack it, `untyped` becomes
/// `unknown`. Lines are otherwise kept as they are.
///
/// ```
/// use livetranslate_telemetry::registry::encode::text_to_openmetrics;
/// let mut out = String::new();
/// text_to_openmetrics("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# TYPE b counter\nb{x=\"y\"} 2\n", &mut out);
/// assert_eq!(out, "# HELP a A.\n# TYPE a counter\na_total 1\n# TYPE b counter\nb_total{x=\"y\"} 2\n");
/// ```
pub fn text_to_openmetrics(text: &str, out: &mut String) {
    // A family's HELP comes before its TYPE: hold it until the TYPE says what it is.
    let mut pending_help: Option<(&str, &str)> = None;
    // The current counter family whose samples lack `_total`.
    let mut bare_counter: Option<&str> = None;
    let flush_help = |out: &mut String, help: Option<(&str, &str)>, rename: Option<&str>| {
        if let Some((name, rest)) = help {
            out.push_str("# HELP ");
            out.push_str(rename.unwrap_or(name));
            out.push_str(rest);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(out, pending_help.take(), None);
            let (name, tail) = rest.split_at(rest.find(' ').unwrap_or(rest.len()));
            pending_help = Some((name, tail));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.splitn(2, ' ');
            let name = parts.next().unwrap_or("");
            let kind = parts.next().unwrap_or("").trim();
            let family = openmetrics_family_name(name, kind);
            bare_counter = (kind == "counter" && family == name).then_some(name);
            let help = pending_help.take();
            let help_renamed = help.filter(|(n, _)| *n == name).map(|_| family);
            flush_help(out, help, help_renamed);
            let kind = if kind == "untyped" { "unknown" } else { kind };
            out.push_str("# TYPE ");
            out.push_str(family);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
            continue;
        }
        flush_help(out, pending_help.take(), None);
        if line.starts_with("# EOF") {
            continue;
        }
        if let Some(counter) = bare_counter {
            if let Some(rest) = line.strip_prefix(counter) {
                if rest.starts_with('{') || rest.starts_with(' ') {
                    out.push_str(counter);
                    out.push_str("_total");
                    out.push_str(rest);
                    out.push('\n');
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    flush_help(out, pending_help.take(), None);
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

    #[test]
    fn unit_only_when_the_name_carries_it() {
        let mut s = String::new();
        write_family_header(
            &mut s,
            Format::OpenMetrics,
            "wait",
            "W.",
            "gauge",
            Some("seconds"),
        );
        assert!(!s.contains("# UNIT"), "{s}");
        s.clear();
        write_family_header(
            &mut s,
            Format::OpenMetrics,
            "seconds",
            "W.",
            "gauge",
            Some("seconds"),
        );
        assert!(!s.contains("# UNIT"), "{s}");
        s.clear();
        write_family_header(
            &mut s,
            Format::Text,
            "wait_seconds",
            "W.",
            "gauge",
            Some("seconds"),
        );
        assert!(!s.contains("# UNIT"), "text format has no units: {s}");
        s.clear();
        write_family_header(&mut s, Format::OpenMetrics, "x", "X.", "untyped", None);
        assert_eq!(s, "# HELP x X.\n# TYPE x unknown\n");
    }

    #[test]
    fn exemplar_follows_its_bucket() {
        let snap = crate::registry::HistogramSnapshot {
            cumulative: vec![1, 2],
            count: 2,
            sum: 0.6,
        };
        let e = Exemplar {
            trace_id: 0xab,
            value: 0.5,
            timestamp: 1_700_000_000.25,
        };
        let mut s = String::new();
        write_histogram_with_exemplars(
            &mut s,
            "d",
            &["a=\"b\""],
            &snap,
            &[0.1, 1.0],
            &[None, Some(e), None],
        );
        assert_eq!(
            s,
            "d_bucket{a=\"b\",le=\"0.1\"} 1\n\
             d_bucket{a=\"b\",le=\"1\"} 2 # {trace_id=\"000000000000000000000000000000ab\"} 0.5 1700000000.250\n\
             d_bucket{a=\"b\",le=\"+Inf\"} 2\n\
             d_sum{a=\"b\"} 0.6\n\
             d_count{a=\"b\"} 2\n"
        );
    }
}
