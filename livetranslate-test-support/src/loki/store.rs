//! What Loki keeps: one entry per distinct (stream labels, timestamp, line) — a push of an
//! entry already stored is accepted and dropped, as Loki's ingester does — with counts per
//! stream, and the duplicates that tell a test whether anything was sent twice.
//!
//! A line is known by a 128-bit digest (two independent 64-bit hashes: a collision among
//! 10^9 lines has a chance near 10^-21), with the (stream, timestamp) pairs it was stored
//! at: cheap enough to keep up with the agent's throughput benchmark.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::wire::Received;

/// A fast non-cryptographic hasher (FxHash's multiply-rotate rounds, murmur3's finaliser).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits poorly mixed: finish with murmur3's avalanche.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxBuild = BuildHasherDefault<Fx>;

/// How many of what arrived were duplicates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// Entries pushed again with the same labels, timestamp and line (Loki stores them once;
    /// the count shows how much was re-sent).
    pub resent: usize,
    /// Lines stored in more than one stream (Loki keeps every copy: a real duplicate).
    pub lines_in_several_streams: usize,
}

/// Where a line was stored: its first (stream, timestamp), and any others.
#[derive(Debug)]
struct Occurrences {
    first: (u64, i64),
    more: Vec<(u64, i64)>,
}

/// The entries Loki would hold.
#[derive(Debug, Default)]
pub struct Store {
    /// Distinct entries, in order of first arrival.
    entries: Vec<Received>,
    /// Line digest → where that line is stored.
    lines: HashMap<u128, Occurrences, FxBuild>,
    /// Distinct entries per stream, and the stream's hash.
    streams: Vec<(Arc<str>, u64, usize)>,
    /// The stream of the previous entry (entries arrive grouped by stream).
    last_stream: Option<usize>,
    received: usize,
    dups: Duplicates,
}

/// A 128-bit digest of `bytes` (two independent 64-bit hashes).
fn digest(bytes: &[u8]) -> u128 {
    let mut a = Fx(0x243f_6a88_85a3_08d3);
    let mut b = Fx(0x1319_8a2e_0370_7344);
    a.write(bytes);
    b.write(bytes);
    b.write_u64(bytes.len() as u64);
    (u128::from(a.finish()) << 64) | u128::from(b.finish().rotate_left(29))
}

impl Store {
    /// The index of `labels` in `streams`.
    fn stream(&mut self, labels: &Arc<str>) -> usize {
        if let Some(i) = self.last_stream {
            if Arc::ptr_eq(&self.streams[i].0, labels) || *self.streams[i].0 == **labels {
                return i;
            }
        }
        let i = match self.streams.iter().position(|(l, _, _)| **l == **labels) {
            Some(i) => i,
            None => {
                let mut h = Fx(0x4528_21e6_38d0_1377);
                h.write(labels.as_bytes());
                self.streams.push((labels.clone(), h.finish(), 0));
                self.streams.len() - 1
            }
        };
        self.last_stream = Some(i);
        i
    }

    /// Stores one entry; whether it was new. Streams of different tenants are different
    /// streams (Loki keeps tenants apart): they count under `<tenant>:{…}`.
    pub fn add(&mut self, e: Received) -> bool {
        self.received += 1;
        let key: Arc<str> = match &e.tenant {
            None => e.labels.clone(),
            Some(t) => format!("{t}:{}", e.labels).into(),
        };
        let s = self.stream(&key);
        let here = (self.streams[s].1, e.timestamp_ns);
        match self.lines.entry(digest(e.line.as_bytes())) {
            Entry::Vacant(v) => {
                v.insert(Occurrences {
                    first: here,
                    more: Vec::new(),
                });
            }
            Entry::Occupied(mut o) => {
                let occ = o.get_mut();
                if occ.first == here || occ.more.contains(&here) {
                    self.dups.resent += 1;
                    return false;
                }
                if occ.first.0 != here.0 || occ.more.iter().any(|m| m.0 != here.0) {
                    self.dups.lines_in_several_streams += 1;
                }
                occ.more.push(here);
            }
        }
        self.streams[s].2 += 1;
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
        self.streams
            .iter()
            .map(|(k, _, n)| (k.to_string(), *n))
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
            tenant: None,
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
