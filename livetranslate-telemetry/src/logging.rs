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
use crate::labels::StandardLabels;

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

struct JsonVisitor<'a> {
    out: &'a mut String,
}

impl JsonVisitor<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(',');
        push_json_str(self.out, field.name());
        self.out.push(':');
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
/// fields (`message` among them), then the fields of every enclosing span, outermost first.
#[derive(Clone, Debug)]
pub struct JsonFormat {
    labels: String,
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
        JsonFormat { labels: out }
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
        event.record(&mut JsonVisitor { out: &mut out });
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    let s = fields.fields.trim();
                    if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        if !inner.is_empty() {
                            out.push(',');
                            out.push_str(inner);
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

    #[test]
    fn escapes_control_characters() {
        let mut s = String::new();
        escape_json(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\u0001");
    }
}
