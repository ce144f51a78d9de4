//! The metrics pipeline: discover and relabel targets ([`discovery`], [`job`]), scrape them
//! ([`scrape`]) and parse what they serve as it streams in ([`exposition`]), keep what
//! Prometheus would keep of each sample and encode it for remote write ([`ingest`]), store the
//! encoded chunks in the write-ahead log ([`wal`]) or the memory queue ([`queue`]), and push
//! them with Prometheus remote write ([`remote_write`]).

pub mod discovery;
pub mod exposition;
pub mod ingest;
pub mod job;
pub mod queue;
pub mod remote_write;
pub mod scrape;
pub mod wal;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use remote_write::chunk::Chunk;

/// The value Prometheus uses to mark a series stale (a NaN with a special bit pattern).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (not merely any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The identity of a series: its labels, `__name__` included, sorted by name and without
/// empty values. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesLabels(Arc<[(String, String)]>);

impl SeriesLabels {
    /// Builds the label set from a name → value map, dropping empty values.
    pub fn from_map(map: BTreeMap<String, String>) -> Self {
        SeriesLabels(map.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }

    /// The labels, sorted by name.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), or `""`.
    pub fn metric_name(&self) -> &str {
        self.get("__name__").unwrap_or("")
    }
}

/// One sample ready to be shipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series.
    pub labels: SeriesLabels,
    /// The value (possibly a staleness marker).
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Where the encoded samples of a scrape go: the write-ahead log or memory queue of remote
/// write, stdout (dry run) or nowhere. `push` may block (disk writes): scrape loops call it
/// from a blocking task.
pub trait SampleSink: Send + Sync + 'static {
    /// Accepts the encoded samples of one scrape.
    fn push(&self, chunks: Vec<Chunk>);
}

/// Drops every sample (no remote write configured and not a dry run).
#[derive(Debug, Default)]
pub struct DiscardSink;

impl SampleSink for DiscardSink {
    fn push(&self, _chunks: Vec<Chunk>) {}
}

/// The samples of chunks, decoded (the dry run, tests).
pub fn decode_chunks(chunks: &[Chunk]) -> Vec<Sample> {
    let mut out = Vec::new();
    for c in chunks {
        let req = match c.decode() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot decode samples");
                continue;
            }
        };
        for ts in req.timeseries {
            let labels =
                SeriesLabels::from_map(ts.labels.into_iter().map(|l| (l.name, l.value)).collect());
            for s in ts.samples {
                out.push(Sample {
                    labels: labels.clone(),
                    value: s.value,
                    timestamp_ms: s.timestamp,
                });
            }
        }
    }
    out
}

/// Prints every sample as one JSON object per line:
/// `{"name":…,"labels":{…},"value":…,"timestamp_ms":…}`. Non-finite values are written as the
/// strings `"NaN"`, `"+Inf"` and `"-Inf"`, staleness markers as `"StaleNaN"`.
pub struct JsonLinesSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// A sink writing to stdout.
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    /// A sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonLinesSink {
            out: Mutex::new(out),
        }
    }
}

/// The JSON form of one sample (see [`JsonLinesSink`]).
pub fn sample_to_json(sample: &Sample) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = sample
        .labels
        .pairs()
        .iter()
        .filter(|(n, _)| n != "__name__")
        .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let value = if is_stale_nan(sample.value) {
        serde_json::Value::String("StaleNaN".into())
    } else if sample.value.is_finite() {
        serde_json::json!(sample.value)
    } else {
        serde_json::Value::String(exposition::format_value(sample.value))
    };
    serde_json::json!({
        "name": sample.labels.metric_name(),
        "labels": labels,
        "value": value,
        "timestamp_ms": sample.timestamp_ms,
    })
}

impl SampleSink for JsonLinesSink {
    fn push(&self, chunks: Vec<Chunk>) {
        let samples = decode_chunks(&chunks);
        let mut buf = String::new();
        for s in &samples {
            buf.push_str(&sample_to_json(s).to_string());
            buf.push('\n');
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(buf.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write dry-run samples");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_a_nan_but_not_every_nan_is_stale() {
        assert!(stale_nan().is_nan());
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }

    #[test]
    fn series_labels_sort_and_drop_empty() {
        let mut m = BTreeMap::new();
        m.insert("job".to_owned(), "a".to_owned());
        m.insert("__name__".to_owned(), "up".to_owned());
        m.insert("Zed".to_owned(), "z".to_owned());
        m.insert("empty".to_owned(), String::new());
        let l = SeriesLabels::from_map(m);
        let names: Vec<&str> = l.pairs().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Zed", "__name__", "job"]);
        assert_eq!(l.metric_name(), "up");
        assert_eq!(l.get("job"), Some("a"));
        assert_eq!(l.get("empty"), None);
    }

    #[test]
    fn json_line_shape() {
        let mut m = BTreeMap::new();
        m.insert("__name__".to_owned(), "x_total".to_owned());
        m.insert("job".to_owned(), "j".to_owned());
        let s = Sample {
            labels: SeriesLabels::from_map(m),
            value: f64::INFINITY,
            timestamp_ms: 5,
        };
        let v = sample_to_json(&s);
        assert_eq!(
            v,
            serde_json::json!({"name":"x_total","labels":{"job":"j"},"value":"+Inf","timestamp_ms":5})
        );
    }
}
