//! Log set-up: one JSON object per line (or a pretty format for development) on stdout, plus
//! an optional JSON log file, every line carrying the standard labels and the fields of the
//! spans it was written in (such as the `request_id` of the request span).
//!
//! Writing is non-blocking: the calling thread formats the line and enqueues it; a background
//! thread does the I/O. The queue holds 128k lines; when it is full the caller waits rather
//! than losing lines.

use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::{Format, Full, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};
use crate::labels::{StandardLabels, STANDARD_LABEL_NAMES};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `LOG_FILE` could not be created or opened for appending.
    #[error("cannot open LOG_FILE={path}: {source}")]
    LogFile {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A global subscriber is already installed.
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Keeps the background log writers alive; dropping it flushes what is queued.
#[derive(Debug)]
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

/// Appends `s` to `out` as JSON string contents (without quotes).
pub(crate) fn escape_json(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    escape_json(out, s);
    out.push('"');
}

/// Writes `t` as RFC 3339 UTC with microseconds: `2026-11-24T01:02:03.123456Z`.
///
/// ```
/// let mut s = String::new();
/// livetranslate_telemetry::logging::write_rfc3339(&mut s, std::time::UNIX_EPOCH);
/// assert_eq!(s, "1970-01-01T00:00:00.000000Z");
/// ```
pub fn write_rfc3339(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::time::civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    );
}

/// One bit of a 64-bit filter for a key: equal keys set the same bit, so a key whose bit is
/// not set yet is new on the line without comparing it with any other.
fn filter_bit(key: &[u8]) -> u64 {
    let (first, last) = match key {
        [] => (0, 0),
        [one] => (*one, *one),
        [first, .., last] => (*first, *last),
    };
    let mid = key.get(key.len() / 2).copied().unwrap_or(0);
    let h =
        (key.len() as u32) ^ u32::from(first) << 8 ^ u32::from(last) << 16 ^ u32::from(mid) << 24;
    1u64 << (h.wrapping_mul(0x9E37_79B9) >> 26)
}

/// The keys every line starts with.
const FIXED_KEYS: [&str; 7] = [
    "timestamp",
    "level",
    STANDARD_LABEL_NAMES[0],
    STANDARD_LABEL_NAMES[1],
    STANDARD_LABEL_NAMES[2],
    STANDARD_LABEL_NAMES[3],
    "target",
];

/// The keys written on the line so far: the fixed ones, then the fields' as (start, length)
/// of their JSON string contents in the line, so that comparing one with a new key needs no
/// copy. A dozen or so keys per line fit the inline array: this allocates nothing.
struct Keys {
    filter: u64,
    inline: [(u32, u32); 24],
    len: usize,
    more: Vec<(u32, u32)>,
}

impl Keys {
    /// `fixed_filter`: the filter bits of [`FIXED_KEYS`].
    fn new(fixed_filter: u64) -> Self {
        Keys {
            filter: fixed_filter,
            inline: [(0, 0); 24],
            len: 0,
            more: Vec::new(),
        }
    }

    /// Whether `key` (JSON string contents, whose filter bit is `bit`) is already a key of
    /// `line`.
    fn contains(&self, line: &str, key: &str, bit: u64) -> bool {
        if self.filter & bit == 0 {
            return false;
        }
        let same = |&(start, len): &(u32, u32)| {
            len as usize == key.len()
                && line.as_bytes().get(start as usize..(start + len) as usize)
                    == Some(key.as_bytes())
        };
        FIXED_KEYS.contains(&key)
            || self.inline[..self.len].iter().any(same)
            || self.more.iter().any(same)
    }

    /// Records that `line[start..start + len]` is a key, whose filter bit is `bit`.
    fn add(&mut self, start: usize, len: usize, bit: u64) {
        self.filter |= bit;
        let entry = (start as u32, len as u32);
        if self.len < self.inline.len() {
            self.inline[self.len] = entry;
            self.len += 1;
        } else {
            self.more.push(entry);
        }
    }
}

/// Writes `,"key":` where `key` (JSON string contents) is new on the line. A key already
/// taken is written as `<prefix><key>` (`fields.` for the event's own fields, `span.` for
/// span fields), then `<prefix><key>.2`, `.3`, …: nothing is dropped, and no key repeats.
fn push_key(out: &mut String, keys: &mut Keys, prefix: &str, key: &str) {
    out.push_str(",\"");
    let start = out.len();
    let mut bit = filter_bit(key.as_bytes());
    if keys.contains(out, key, bit) {
        let mut renamed = format!("{prefix}{key}");
        let mut n = 1;
        loop {
            bit = filter_bit(renamed.as_bytes());
            if !keys.contains(out, &renamed, bit) {
                break;
            }
            n += 1;
            renamed = format!("{prefix}{key}.{n}");
        }
        out.push_str(&renamed);
    } else {
        out.push_str(key);
    }
    keys.add(start, out.len() - start, bit);
    out.push_str("\":");
}

/// The index of the quote that closes the JSON string whose contents start at `i`.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[j] == b'"' {
            return Some(j);
        }
        i = j + 2; // an escape: skip the escaped character
    }
}

/// The end (exclusive) of the array or object that opens at `i`.
fn nested_end(bytes: &[u8], i: usize) -> usize {
    let (mut depth, mut in_str, mut j) = (0usize, false, i);
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if in_str => j += 1,
            b'"' => in_str = !in_str,
            b'{' | b'[' if !in_str => depth += 1,
            b'}' | b']' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    bytes.len()
}

/// The top-level members of a JSON object's contents (the text between its braces, as
/// serde_json writes it): `(key contents, value text)` pairs.
fn json_members(inner: &str) -> impl Iterator<Item = (&str, &str)> {
    let bytes = inner.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        let open = pos + memchr::memchr(b'"', bytes.get(pos..)?)?;
        let close = string_end(bytes, open + 1)?;
        let colon = close + 1 + memchr::memchr(b':', bytes.get(close + 1..)?)?;
        let mut value_start = colon + 1;
        while bytes.get(value_start).is_some_and(u8::is_ascii_whitespace) {
            value_start += 1;
        }
        let value_end = match bytes.get(value_start)? {
            b'"' => string_end(bytes, value_start + 1)? + 1,
            b'{' | b'[' => nested_end(bytes, value_start),
            _ => {
                memchr::memchr(b',', &bytes[value_start..]).map_or(bytes.len(), |n| value_start + n)
            }
        };
        pos = value_end;
        Some((
            &inner[open + 1..close],
            inner.get(value_start..value_end)?.trim_end(),
        ))
    })
}

struct JsonVisitor<'a> {
    out: &'a mut String,
    keys: &'a mut Keys,
}

impl JsonVisitor<'_> {
    fn key(&mut self, field: &Field) {
        let name = field.name();
        if name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            push_key(self.out, self.keys, "fields.", name);
        } else {
            let mut escaped = String::new();
            escape_json(&mut escaped, name);
            push_key(self.out, self.keys, "fields.", &escaped);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            push_json_str(self.out, &value.to_string());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.out, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        push_json_str(self.out, &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        push_json_str(self.out, &format!("{value:?}"));
    }
}

/// The JSON event format: `timestamp`, `level`, the standard labels, `target`, the event's
/// fields (`message` among them), then the fields of every enclosing span, innermost first.
///
/// Every key appears once per line, so strict JSON parsers accept every line. The first
/// writer of a key keeps it, in the order above; a later field with a taken name is kept
/// under `fields.<name>` (an event field) or `span.<name>` (a span field), with `.2`, `.3`, …
/// appended if that is taken too.
#[derive(Clone, Debug)]
pub struct JsonFormat {
    labels: String,
    /// The filter bits of [`FIXED_KEYS`].
    fixed_filter: u64,
}

impl JsonFormat {
    /// A format that writes these labels on every line.
    pub fn new(labels: &StandardLabels) -> Self {
        let mut out = String::new();
        for (k, v) in labels.pairs() {
            out.push(',');
            push_json_str(&mut out, k);
            out.push(':');
            push_json_str(&mut out, v);
        }
        JsonFormat {
            labels: out,
            fixed_filter: FIXED_KEYS
                .iter()
                .fold(0, |f, k| f | filter_bit(k.as_bytes())),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut out = String::with_capacity(320);
        out.push_str("{\"timestamp\":\"");
        write_rfc3339(&mut out, SystemTime::now());
        out.push_str("\",\"level\":\"");
        out.push_str(meta.level().as_str());
        out.push('"');
        out.push_str(&self.labels);
        out.push_str(",\"target\":");
        push_json_str(&mut out, meta.target());
        let mut keys = Keys::new(self.fixed_filter);
        event.record(&mut JsonVisitor {
            out: &mut out,
            keys: &mut keys,
        });
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    let s = fields.fields.trim();
                    if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        for (key, value) in json_members(inner) {
                            push_key(&mut out, &mut keys, "span.", key);
                            out.push_str(value);
                        }
                    }
                }
            }
        }
        out.push_str("}\n");
        writer.write_str(&out)
    }
}

/// The pretty format, prefixed with the standard labels.
struct PrettyFormat {
    prefix: String,
    inner: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for PrettyFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(&self.prefix)?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// A `tracing-subscriber` layer writing JSON lines with the standard labels to `writer`.
///
/// ```
/// use livetranslate_telemetry::{logging::json_layer, StandardLabels};
/// use tracing_subscriber::layer::SubscriberExt;
/// let labels = StandardLabels::new("audio", "test", "1.0.0", "local").unwrap();
/// let subscriber = tracing_subscriber::registry().with(json_layer(&labels, std::io::sink));
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// ```
pub fn json_layer<S, W>(labels: &StandardLabels, writer: W) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonFormat::new(labels))
        .with_writer(writer)
}

fn open_log_file(path: &Path) -> Result<std::fs::File, LoggingError> {
    let err = |source| LoggingError::LogFile {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)
}

/// Stands in for the Loki writer when the `loki` feature is off.
#[cfg(not(feature = "loki"))]
pub(crate) type NoLoki = fn() -> std::io::Sink;

#[cfg(feature = "loki")]
type LokiWriter = crate::loki::LokiWriter;
#[cfg(not(feature = "loki"))]
type LokiWriter = NoLoki;

/// Installs the global subscriber described by `config` (and the Loki layer, if any).
pub(crate) fn install(config: &Config, loki: Option<LokiWriter>) -> Result<LogGuard, LoggingError> {
    let mut guards = Vec::new();
    let (stdout, g) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    guards.push(g);
    let file = match &config.log_file {
        Some(path) => {
            let (file, g) = NonBlockingBuilder::default()
                .lossy(false)
                .finish(open_log_file(path)?);
            guards.push(g);
            Some(file)
        }
        None => None,
    };
    // The filter was validated when the config was resolved.
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let mut layers: Vec<Boxed> = Vec::new();
    match (config.log_format, file) {
        (LogFormat::Json, Some(file)) => {
            use tracing_subscriber::fmt::writer::MakeWriterExt;
            layers.push(Box::new(json_layer(&config.labels, stdout.and(file))));
        }
        (LogFormat::Json, None) => layers.push(Box::new(json_layer(&config.labels, stdout))),
        (LogFormat::Pretty, file) => {
            let l = &config.labels;
            let prefix = format!(
                "[{} {} {} {}] ",
                l.service, l.environment, l.version, l.cluster
            );
            layers.push(Box::new(
                tracing_subscriber::fmt::layer()
                    .event_format(PrettyFormat {
                        prefix,
                        inner: Format::default(),
                    })
                    .with_writer(stdout),
            ));
            if let Some(file) = file {
                layers.push(Box::new(json_layer(&config.labels, file)));
            }
        }
    }
    if let Some(writer) = loki {
        layers.push(Box::new(json_layer(&config.labels, writer)));
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))?;
    Ok(LogGuard { _guards: guards })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        let mut s = String::new();
        write_rfc3339(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456),
        );
        assert_eq!(s, "2023-11-14T22:13:20.123456Z");
        s.clear();
        write_rfc3339(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_secs(951_782_400),
        ); // leap day
        assert_eq!(s, "2000-02-29T00:00:00.000000Z");
    }

    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line's top-level keys and values, checked to be valid JSON.
    fn members(line: &str) -> Vec<(String, serde_json::Value)> {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        let inner = &line.trim()[1..line.trim().len() - 1];
        let out: Vec<(String, serde_json::Value)> = json_members(inner)
            .map(|(k, v)| (k.to_owned(), serde_json::from_str(v).expect("value")))
            .collect();
        assert_eq!(
            out.len(),
            parsed.as_object().map_or(0, |o| o.len()),
            "{line}"
        );
        out
    }

    #[test]
    fn every_key_is_written_once_and_no_field_is_lost() {
        let labels = StandardLabels::new("audio", "test", "1.0.0", "local").expect("labels");
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber =
            tracing_subscriber::registry().with(json_layer(&labels, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("request", request_id = "outer", route = "/a,b");
            let _o = outer.enter();
            let inner = tracing::info_span!("session", request_id = "inner", n = 3);
            let _i = inner.enter();
            tracing::warn!(
                message = "explicit",
                service = "imposter",
                request_id = "event",
                level = 7,
                "formatted"
            );
        });
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        let line = text.lines().next().expect("one line");
        let m = members(line);
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "duplicate keys in {line}");
        let get = |k: &str| {
            m.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {k} in {line}"))
        };
        assert_eq!(get("service"), "audio");
        assert_eq!(get("fields.service"), "imposter");
        assert_eq!(get("level"), "WARN");
        assert_eq!(get("fields.level"), 7);
        let messages = [get("message"), get("fields.message")];
        assert!(messages.contains(&"explicit".into()) && messages.contains(&"formatted".into()));
        assert_eq!(get("request_id"), "event", "the event's own field wins");
        assert_eq!(get("span.request_id"), "inner", "then the innermost span");
        assert_eq!(get("span.request_id.2"), "outer");
        assert_eq!(get("route"), "/a,b");
        assert_eq!(get("n"), 3);
    }

    #[test]
    fn json_members_splits_at_top_level_commas_only() {
        let inner = r#""a":"x,\"y\"","b\"c":12,"d":[1,{"e":","}],"f":true,"g":null,"h":-1.5e3"#;
        let m: Vec<(&str, &str)> = json_members(inner).collect();
        assert_eq!(
            m,
            [
                ("a", r#""x,\"y\"""#),
                ("b\\\"c", "12"),
                ("d", r#"[1,{"e":","}]"#),
                ("f", "true"),
                ("g", "null"),
                ("h", "-1.5e3"),
            ]
        );
        assert_eq!(json_members("").count(), 0);
        let spaced: Vec<_> = json_members(r#" "a" : 1 , "b" : "x" "#).collect();
        assert_eq!(spaced, [("a", "1"), ("b", r#""x""#)]);
    }

    #[test]
    fn escapes_control_characters() {
        let mut s = String::new();
        escape_json(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\u0001");
    }
}
