//! Entries grouped into streams by tenant and label set, flushed by size or age. Each entry
//! may carry an acknowledgement token `(K, offset)`: sending the batch acknowledges, for every
//! `K`, the highest offset it holds (the log pipeline uses its file ids; this module knows
//! nothing of files). A batch holding several tenants is one push per tenant, acknowledged
//! once all of them are sent.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use super::proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};

/// The Loki tenant of a stream (`None`: the client's own).
pub type Tenant = Option<Arc<str>>;

/// A stream's key: its tenant and rendered labels.
type StreamKey = (Tenant, Arc<str>);

/// A batch being assembled or sent.
#[derive(Debug)]
pub struct Batch<K> {
    /// (tenant, stream labels) → entries.
    streams: BTreeMap<StreamKey, Vec<(i64, String)>>,
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
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        tenant: Option<Arc<str>>,
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
            self.ack(source, offset);
        }
        self.streams
            .entry((tenant, labels))
            .or_default()
            .push((timestamp_ns, line));
    }

    /// Records an acknowledgement without a line (a line a pipeline stage dropped): it is
    /// acknowledged with the batch's lines, after them.
    pub fn ack(&mut self, source: K, offset: u64) {
        let slot = self.acks.entry(source).or_insert(0);
        *slot = (*slot).max(offset);
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines held.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Takes the acknowledgements of a batch without lines.
    pub fn take_acks(&mut self) -> HashMap<K, u64> {
        std::mem::take(&mut self.acks)
    }

    /// When the first entry arrived.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The file offsets acknowledged by sending this batch.
    pub fn acks(&self) -> &HashMap<K, u64> {
        &self.acks
    }

    /// Consumes the batch into one push request per tenant (`None`: the client's own) and
    /// the offsets it acknowledges, moving the lines (no copies).
    pub fn into_requests(self) -> (Vec<(Tenant, PushRequest)>, HashMap<K, u64>) {
        let mut out: Vec<(Tenant, PushRequest)> = Vec::new();
        for ((tenant, labels), mut entries) in self.streams {
            entries.sort_by_key(|(ts, _)| *ts);
            let stream = StreamAdapter {
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
            };
            match out.last_mut() {
                Some((t, req)) if *t == tenant => req.streams.push(stream),
                _ => out.push((
                    tenant,
                    PushRequest {
                        streams: vec![stream],
                    },
                )),
            }
        }
        (out, self.acks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut Batch<u64>, labels: &str, ts: i64, line: &str, src: Option<(u64, u64)>) {
        b.push(None, labels.into(), ts, line.into(), line.len(), src);
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
        b.ack(2, 70);
        let (reqs, acks) = b.into_requests();
        assert_eq!(acks.len(), 2);
        assert_eq!(acks[&2], 70);
        assert_eq!(reqs.len(), 1);
        let req = &reqs[0].1;
        assert_eq!(req.streams.len(), 2);
        let lines: Vec<&str> = req.streams[0]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["a", "b", "c"]);
    }

    #[test]
    fn one_request_per_tenant() {
        let mut b: Batch<u64> = Batch::default();
        b.push(
            Some("b".into()),
            "{a=\"1\"}".into(),
            1,
            "x".into(),
            1,
            Some((1, 10)),
        );
        b.push(None, "{a=\"1\"}".into(), 2, "y".into(), 1, Some((1, 20)));
        b.push(
            Some("b".into()),
            "{a=\"2\"}".into(),
            3,
            "z".into(),
            1,
            Some((1, 30)),
        );
        let (reqs, acks) = b.into_requests();
        let tenants: Vec<(Option<&str>, usize)> = reqs
            .iter()
            .map(|(t, r)| (t.as_deref(), r.streams.len()))
            .collect();
        assert_eq!(tenants, [(None, 1), (Some("b"), 2)]);
        assert_eq!(acks[&1], 30);
    }
}
