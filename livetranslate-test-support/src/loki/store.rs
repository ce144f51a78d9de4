//! What Loki keeps: one entry per distinct (stream labels, timestamp, line) — a push of an
//! entry already stored is accepted and dropped, as Loki's ingester does — with counts per
//! stream, and the duplicates that tell a test whether anything was sent twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::wire::Received;

/// How many of what arrived were duplicates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// Entries pushed again with the same labels, timestamp and line (Loki stores them once;
    /// the count shows how much was re-sent).
    pub resent: usize,
    /// Lines stored in more than one stream (Loki keeps every copy: a real duplicate).
    pub lines_in_several_streams: usize,
}

/// The entries Loki would hold.
#[derive(Debug, Default)]
pub struct Store {
    /// Distinct entries, in order of first arrival.
    entries: Vec<Received>,
    seen: HashSet<Received>,
    per_stream: BTreeMap<Arc<str>, usize>,
    /// For each line, the first stream it was stored in.
    first_stream: HashMap<Arc<str>, Arc<str>>,
    received: usize,
    dups: Duplicates,
}

impl Store {
    /// Stores one entry; whether it was new.
    pub fn add(&mut self, e: Received) -> bool {
        self.received += 1;
        if !self.seen.insert(e.clone()) {
            self.dups.resent += 1;
            return false;
        }
        *self.per_stream.entry(e.labels.clone()).or_default() += 1;
        match self.first_stream.get(&e.line) {
            Some(first) if *first != e.labels => self.dups.lines_in_several_streams += 1,
            Some(_) => {}
            None => {
                self.first_stream.insert(e.line.clone(), e.labels.clone());
            }
        }
        self.entries.push(e);
        true
    }

    /// The distinct entries, in order of first arrival.
    pub fn entries(&self) -> &[Received] {
        &self.entries
    }

    /// Distinct entries stored.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Entries received, duplicates included.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Distinct entries per stream.
    pub fn per_stream(&self) -> BTreeMap<String, usize> {
        self.per_stream
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    /// The duplicates seen.
    pub fn duplicates(&self) -> Duplicates {
        self.dups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(labels: &str, ts: i64, line: &str) -> Received {
        Received {
            labels: labels.into(),
            timestamp_ns: ts,
            line: line.into(),
        }
    }

    #[test]
    fn counts_as_loki_stores() {
        let mut s = Store::default();
        assert!(s.add(r("{a=\"1\"}", 1, "x")));
        assert!(!s.add(r("{a=\"1\"}", 1, "x")), "same entry again");
        assert!(
            s.add(r("{a=\"1\"}", 2, "x")),
            "another timestamp is another entry"
        );
        assert!(
            s.add(r("{a=\"2\"}", 1, "x")),
            "another stream is another entry"
        );
        assert_eq!(s.count(), 3);
        assert_eq!(s.received(), 4);
        assert_eq!(
            s.duplicates(),
            Duplicates {
                resent: 1,
                lines_in_several_streams: 1
            }
        );
        assert_eq!(s.per_stream().get("{a=\"1\"}"), Some(&2));
    }
}
