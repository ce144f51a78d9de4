//! The entry type: one log entry on its way from a file to Loki, and its dry-run form.

use std::sync::Arc;
use std::time::Duration;

use super::labels::parse_rendered_labels;

/// Identifies one generation of one tailed file within a run of the agent (a truncated file
/// starts a new generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// One log entry on its way to Loki.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The stream's label set, rendered `{a="b", c="d"}` (sorted by name).
    pub labels: Arc<str>,
    /// The Loki tenant a `tenant` pipeline stage chose (`None`: the client's own).
    pub tenant: Option<Arc<str>>,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The line (several, for a joined multi-line entry).
    pub line: String,
    /// Where it came from: acknowledging the entry lets the file's position advance to the
    /// end offset.
    pub source: Option<(FileId, u64)>,
}

impl LogEntry {
    /// Bytes this entry holds in memory (for the buffer cap and batch size).
    pub fn size(&self) -> usize {
        self.line.len() + self.labels.len() + 48
    }

    /// The dry-run form, one JSON object and a newline:
    /// `{"labels":{…},"timestamp":"…","line":"…"}` (and `"tenant":"…"` when a `tenant` stage
    /// chose one).
    ///
    /// ```
    /// use livetranslate_agent::logs::entry::LogEntry;
    /// let e = LogEntry {
    ///     labels: r#"{level="info"}"#.into(),
    ///     tenant: None,
    ///     timestamp_ns: 0,
    ///     line: "hi".into(),
    ///     source: None,
    /// };
    /// assert_eq!(
    ///     e.to_json_line(),
    ///     "{\"labels\":{\"level\":\"info\"},\"timestamp\":\"1970-01-01T00:00:00.000000Z\",\"line\":\"hi\"}\n"
    /// );
    /// ```
    pub fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(self.line.len() + 128);
        out.push_str("{\"labels\":{");
        for (i, (k, v)) in parse_rendered_labels(&self.labels).iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::from(k.as_str()).to_string());
            out.push(':');
            out.push_str(&serde_json::Value::from(v.as_str()).to_string());
        }
        out.push_str("},\"timestamp\":\"");
        let at = std::time::UNIX_EPOCH + Duration::from_nanos(self.timestamp_ns.max(0) as u64);
        livetranslate_telemetry::logging::write_rfc3339(&mut out, at);
        out.push('"');
        if let Some(t) = &self.tenant {
            out.push_str(",\"tenant\":");
            out.push_str(&serde_json::Value::from(&**t).to_string());
        }
        out.push_str(",\"line\":");
        out.push_str(&serde_json::Value::from(self.line.as_str()).to_string());
        out.push_str("}\n");
        out
    }
}
