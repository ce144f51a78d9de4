//! Entries grouped into streams by label set, flushed by size or age. Each entry may carry
//! an acknowledgement token `(K, offset)`: sending the batch acknowledges, for every `K`, the
//! highest offset it holds (the log pipeline uses its file ids; this module knows nothing of
//! files).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use super::proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};

/// A batch being assembled or sent.
#[derive(Debug)]
pub struct Batch<K> {
    streams: BTreeMap<Arc<str>, Vec<(i64, String)>>,
    /// For each source, the highest offset whose line is in this batch.
    acks: HashMap<K, u64>,
    bytes: usize,
    lines: usize,
    started: Option<Instant>,
}

impl<K> Default for Batch<K> {
    fn default() -> Self {
        Batch {
            streams: BTreeMap::new(),
            acks: HashMap::new(),
            bytes: 0,
            lines: 0,
            started: None,
        }
    }
}

impl<K: Hash + Eq> Batch<K> {
    /// Adds a line of the stream `labels` (rendered `{a="b", c="d"}`, sorted by name) at
    /// `timestamp_ns`; `size` counts towards [`Batch::bytes`]; `ack` is the token the line
    /// acknowledges once the batch is sent.
    pub fn push(
        &mut self,
        labels: Arc<str>,
        timestamp_ns: i64,
        line: String,
        size: usize,
        ack: Option<(K, u64)>,
    ) {
        self.started.get_or_insert_with(Instant::now);
        self.bytes += size;
        self.lines += 1;
        if let Some((source, offset)) = ack {
            let slot = self.acks.entry(source).or_insert(0);
            *slot = (*slot).max(offset);
        }
        self.streams
            .entry(labels)
            .or_default()
            .push((timestamp_ns, line));
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
    pub fn acks(&self) -> &HashMap<K, u64> {
        &self.acks
    }

    /// Consumes the batch into its push request and the file offsets it acknowledges,
    /// moving the lines (no copies).
    pub fn into_request(self) -> (PushRequest, HashMap<K, u64>) {
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

    fn push(b: &mut Batch<u64>, labels: &str, ts: i64, line: &str, src: Option<(u64, u64)>) {
        b.push(labels.into(), ts, line.into(), line.len(), src);
    }

    #[test]
    fn groups_by_stream_and_orders_by_time() {
        let mut b = Batch::default();
        push(&mut b, "{a=\"1\"}", 30, "c", Some((1, 100)));
        push(&mut b, "{a=\"2\"}", 10, "x", Some((2, 50)));
        push(&mut b, "{a=\"1\"}", 10, "a", Some((1, 40)));
        push(&mut b, "{a=\"1\"}", 10, "b", Some((1, 60)));
        assert_eq!(b.acks()[&1], 100);
        assert_eq!(b.acks()[&2], 50);
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
