//! Entries grouped into streams by label set, flushed by size or age.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
use crate::logs::FileId;

/// One log entry on its way to Loki.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The stream's label set, rendered `{a="b",c="d"}` (sorted by name).
    pub labels: Arc<str>,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The line.
    pub line: String,
    /// Where it came from: acknowledging the entry lets the file's position advance to
    /// `end_offset`.
    pub source: Option<(FileId, u64)>,
}

impl LogEntry {
    /// Bytes this entry holds in memory (for the buffer cap and batch size).
    pub fn size(&self) -> usize {
        self.line.len() + self.labels.len() + 48
    }
}

/// A batch being assembled or sent.
#[derive(Debug, Default)]
pub struct Batch {
    streams: BTreeMap<Arc<str>, Vec<(i64, String)>>,
    /// For each file, the highest offset whose line is in this batch.
    acks: HashMap<FileId, u64>,
    bytes: usize,
    lines: usize,
    started: Option<Instant>,
}

impl Batch {
    /// Adds an entry.
    pub fn push(&mut self, entry: LogEntry) {
        self.started.get_or_insert_with(Instant::now);
        self.bytes += entry.size();
        self.lines += 1;
        if let Some((file, offset)) = entry.source {
            let slot = self.acks.entry(file).or_insert(0);
            *slot = (*slot).max(offset);
        }
        self.streams
            .entry(entry.labels)
            .or_default()
            .push((entry.timestamp_ns, entry.line));
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines held.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// When the first entry arrived.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The file offsets acknowledged by sending this batch.
    pub fn acks(&self) -> &HashMap<FileId, u64> {
        &self.acks
    }

    /// Consumes the batch into its push request and the file offsets it acknowledges,
    /// moving the lines (no copies).
    pub fn into_request(self) -> (PushRequest, HashMap<FileId, u64>) {
        let streams = self
            .streams
            .into_iter()
            .map(|(labels, mut entries)| {
                entries.sort_by_key(|(ts, _)| *ts);
                StreamAdapter {
                    labels: labels.to_string(),
                    entries: entries
                        .into_iter()
                        .map(|(ts, line)| EntryAdapter {
                            timestamp: Some(Timestamp::from_nanos(ts)),
                            line,
                            structured_metadata: Vec::new(),
                        })
                        .collect(),
                    hash: 0,
                }
            })
            .collect();
        (PushRequest { streams }, self.acks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(labels: &str, ts: i64, line: &str, src: Option<(u64, u64)>) -> LogEntry {
        LogEntry {
            labels: labels.into(),
            timestamp_ns: ts,
            line: line.into(),
            source: src.map(|(f, o)| (FileId(f), o)),
        }
    }

    #[test]
    fn groups_by_stream_and_orders_by_time() {
        let mut b = Batch::default();
        b.push(entry("{a=\"1\"}", 30, "c", Some((1, 100))));
        b.push(entry("{a=\"2\"}", 10, "x", Some((2, 50))));
        b.push(entry("{a=\"1\"}", 10, "a", Some((1, 40))));
        b.push(entry("{a=\"1\"}", 10, "b", Some((1, 60))));
        assert_eq!(b.acks()[&FileId(1)], 100);
        assert_eq!(b.acks()[&FileId(2)], 50);
        assert_eq!(b.lines(), 4);
        let (req, acks) = b.into_request();
        assert_eq!(acks.len(), 2);
        assert_eq!(req.streams.len(), 2);
        let lines: Vec<&str> = req.streams[0]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["a", "b", "c"]);
    }
}
