//! What the agent keeps of one scrape, sample by sample as the parser hands them out, the way
//! Prometheus 2.42's scrape loop appends them: target labels attached ([`merge_target_labels`],
//! `honor_labels`), `metric_relabel_configs`, the label limits and `sample_limit`, the storage
//! rules (duplicates and out-of-order samples, also those that only collide once the target
//! labels are attached), staleness markers for series that disappeared, and the report series
//! `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added`.
//!
//! Samples are encoded for remote write as they come ([`ChunkEncoder`]); nothing holds the
//! body or a list of samples. What stays from one scrape to the next is [`SeriesMemory`]: the
//! encoded labels of every series the scrape stored (for staleness markers), in one arena.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use super::exposition::{Appender, KeyHasher, Outcome, SampleRef, Skip};
use super::job::ScrapeLimits;
use super::remote_write::chunk::{encode_labels, Chunk, ChunkEncoder, EncodedExemplar};
use super::{is_stale_nan, stale_nan, SeriesLabels};
use crate::relabel::{self, Labels, RelabelConfig};

/// Everything about a target that shapes its samples.
#[derive(Debug, Clone)]
pub struct TargetShape {
    /// Target labels (`job`, `instance`, the standard labels, the group's labels), sorted.
    pub labels: Arc<[(String, String)]>,
    /// Keep scraped labels that clash with target labels.
    pub honor_labels: bool,
    /// Use the timestamps the target gives.
    pub honor_timestamps: bool,
    /// Limits.
    pub limits: ScrapeLimits,
    /// `metric_relabel_configs`.
    pub metric_relabel: Arc<[RelabelConfig]>,
    /// Samples per chunk.
    pub chunk_samples: usize,
}

/// Why the samples of a scrape were not kept (the scrape failed after the body was read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// More samples than `sample_limit` after metric relabelling.
    #[error("sample limit exceeded")]
    SampleLimit,
    /// A series broke `label_limit`, `label_name_length_limit` or `label_value_length_limit`.
    #[error("{0}")]
    LabelLimit(String),
    /// Metric relabelling removed `__name__`.
    #[error("missing metric name (__name__ label)")]
    MissingName,
}

/// Attaches the target labels to a sample's labels (`__name__` included) as Prometheus does:
/// with `honor_labels` a scraped label wins; otherwise the target label wins and the scraped
/// value is kept as `exported_<name>` (`exported_exported_<name>` if that is taken too, the
/// shortest names renamed first).
///
/// ```
/// use livetranslate_agent::metrics::ingest::merge_target_labels;
/// use livetranslate_agent::relabel::Labels;
/// let target = [("instance".to_owned(), "a:1".to_owned()), ("job".to_owned(), "api".to_owned())];
/// let mut l: Labels = [("__name__", "up"), ("job", "inner")].into_iter().collect();
/// merge_target_labels(&mut l, &target, false);
/// assert_eq!((l.get("job"), l.get("exported_job")), (Some("api"), Some("inner")));
/// ```
pub fn merge_target_labels(lset: &mut Labels, target: &[(String, String)], honor_labels: bool) {
    if honor_labels {
        for (n, v) in target {
            if lset.get(n).is_none() {
                lset.set_str(n, v);
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (n, _) in target {
        if let Some(existing) = lset.get(n) {
            conflicts.push((n.clone(), existing.to_owned()));
        }
    }
    let exposed = (!conflicts.is_empty()).then(|| lset.clone());
    for (n, v) in target {
        lset.set_str(n, v);
    }
    let Some(exposed) = exposed else {
        return;
    };
    conflicts.sort_by_key(|(n, _)| n.len());
    let taken = |name: &str, done: &[(String, String)]| {
        exposed.get(name).is_some()
            || target.iter().any(|(n, _)| n == name)
            || done.iter().any(|(n, _)| n == name)
    };
    for i in 0..conflicts.len() {
        let mut name = conflicts[i].0.clone();
        loop {
            name = format!("exported_{name}");
            if !taken(&name, &conflicts[..i]) {
                break;
            }
        }
        conflicts[i].0 = name;
    }
    for (n, v) in conflicts {
        lset.set(n, v);
    }
}

/// [`merge_target_labels`] for an owned sample: the series Prometheus stores (empty values
/// dropped).
///
/// ```
/// use std::collections::BTreeMap;
/// use livetranslate_agent::metrics::ingest::merge_labels;
/// let target = BTreeMap::from([("job".to_owned(), "j".to_owned())]);
/// let s = merge_labels("m", &[("job".into(), "x".into())], &target, false);
/// assert_eq!((s.get("job"), s.get("exported_job")), (Some("j"), Some("x")));
/// ```
pub fn merge_labels(
    name: &str,
    scraped: &[(String, String)],
    target: &std::collections::BTreeMap<String, String>,
    honor_labels: bool,
) -> SeriesLabels {
    let mut pairs = scraped.to_vec();
    pairs.push(("__name__".to_owned(), name.to_owned()));
    let mut l = Labels::from_pairs(pairs);
    let target: Vec<(String, String)> =
        target.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    merge_target_labels(&mut l, &target, honor_labels);
    SeriesLabels::from_map(l.into_vec().into_iter().collect())
}

/// Prometheus's `verifyLabelLimits`: the first broken limit, in Prometheus's words.
fn check_label_limits(l: &Labels, limits: &ScrapeLimits) -> Result<(), IngestError> {
    let metric: String = l.get("__name__").unwrap_or("").chars().take(50).collect();
    let short = |s: &str| s.chars().take(50).collect::<String>();
    if limits.label_limit > 0 && l.len() as u64 > limits.label_limit {
        return Err(IngestError::LabelLimit(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            l.len(),
            limits.label_limit
        )));
    }
    if limits.label_name_length_limit == 0 && limits.label_value_length_limit == 0 {
        return Ok(());
    }
    for (name, value) in l.iter() {
        if limits.label_name_length_limit > 0 && name.len() as u64 > limits.label_name_length_limit
        {
            return Err(IngestError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: {}, limit: {})",
                short(name),
                name.len(),
                limits.label_name_length_limit
            )));
        }
        if limits.label_value_length_limit > 0 {
            let chars = value.chars().count() as u64;
            if chars > limits.label_value_length_limit {
                return Err(IngestError::LabelLimit(format!(
                    "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: {:?}, length: {chars}, limit: {})",
                    short(name),
                    short(value),
                    limits.label_value_length_limit
                )));
            }
        }
    }
    Ok(())
}

/// Where a remembered series' encoded labels are in the arena; `len` 0 for a series that is
/// not tracked for staleness (it had an explicit timestamp).
#[derive(Debug, Clone, Copy)]
struct Slot {
    off: u32,
    len: u32,
    last_ts: i64,
}

/// The series of one scrape, by a 128-bit hash of their encoded labels, with the encoded
/// labels of those that get staleness markers when they disappear.
#[derive(Debug, Default)]
pub struct SeriesMemory {
    arena: Vec<u8>,
    index: HashMap<u128, Slot, BuildHasherDefault<KeyHasher>>,
}

impl SeriesMemory {
    /// Room for `series` series and `bytes` bytes of labels.
    fn with_capacity(series: usize, bytes: usize) -> SeriesMemory {
        SeriesMemory {
            arena: Vec::with_capacity(bytes),
            index: HashMap::with_capacity_and_hasher(series, Default::default()),
        }
    }

    /// Series remembered.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no series is remembered.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes held (arena and index, approximately).
    pub fn bytes(&self) -> usize {
        self.arena.capacity() + self.index.capacity() * (16 + std::mem::size_of::<Slot>() + 1)
    }

    fn remember(&mut self, key: u128, labels: &[u8], track: bool, ts: i64) {
        let (off, len) = if track && self.arena.len() + labels.len() <= u32::MAX as usize {
            let off = self.arena.len() as u32;
            self.arena.extend_from_slice(labels);
            (off, labels.len() as u32)
        } else {
            (0, 0)
        };
        self.index.insert(
            key,
            Slot {
                off,
                len,
                last_ts: ts,
            },
        );
    }

    fn labels(&self, slot: &Slot) -> &[u8] {
        &self.arena[slot.off as usize..(slot.off + slot.len) as usize]
    }

    /// Staleness markers at `ts` for every tracked series not in `now`.
    fn stale_markers(&self, now: Option<&SeriesMemory>, ts: i64, out: &mut ChunkEncoder) -> usize {
        let mut n = 0;
        for (key, slot) in &self.index {
            if slot.len == 0 || now.is_some_and(|m| m.index.contains_key(key)) {
                continue;
            }
            out.push_encoded(self.labels(slot), Some((stale_nan(), ts)), None);
            n += 1;
        }
        n
    }
}

/// The per-target hasher of encoded label sets: two independently keyed SipHashes, 128 bits.
#[derive(Debug, Clone)]
pub struct SeriesKeys {
    a: RandomState,
    b: RandomState,
}

impl Default for SeriesKeys {
    fn default() -> Self {
        SeriesKeys {
            a: RandomState::new(),
            b: RandomState::new(),
        }
    }
}

impl SeriesKeys {
    fn key(&self, bytes: &[u8]) -> u128 {
        let mut a = self.a.build_hasher();
        a.write(bytes);
        let mut b = self.b.build_hasher();
        b.write(bytes);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }
}

/// The counts of one scrape, as the report series give them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Sample lines in the body (`scrape_samples_scraped`).
    pub scraped: u64,
    /// Samples left after metric relabelling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: u64,
    /// Series not in the previous scrape (`scrape_series_added`).
    pub series_added: u64,
    /// Samples stored (and encoded).
    pub stored: u64,
    /// Staleness markers written.
    pub stale_markers: u64,
}

/// What one scrape produced.
#[derive(Debug)]
pub struct Ingested {
    /// The encoded samples: scraped, staleness markers and report series.
    pub chunks: Vec<Chunk>,
    /// The counts.
    pub counts: ScrapeCounts,
    /// Samples and exemplars skipped, by reason.
    pub skips: Vec<(Skip, u64)>,
}

/// One scrape in progress.
#[derive(Debug)]
pub struct Ingest<'a> {
    shape: &'a TargetShape,
    keys: &'a SeriesKeys,
    previous: &'a SeriesMemory,
    scrape_ts: i64,
    appender: Appender,
    encoder: ChunkEncoder,
    current: SeriesMemory,
    counts: ScrapeCounts,
    for_limit: u64,
    limit_exceeded: bool,
    error: Option<IngestError>,
    own_skips: [u64; Skip::ALL.len()],
    pairs: Vec<(String, String)>,
    labels: Vec<u8>,
    exemplar: Vec<u8>,
}

impl<'a> Ingest<'a> {
    /// A scrape of the target `shape` at `scrape_ts` (Unix ms), after the one that left
    /// `previous`.
    pub fn new(
        shape: &'a TargetShape,
        keys: &'a SeriesKeys,
        previous: &'a SeriesMemory,
        scrape_ts: i64,
    ) -> Ingest<'a> {
        // Sized after the previous scrape: a target's series count changes little, and maps
        // and arenas grown by doubling end up to twice their size.
        let expect = previous.len() + previous.len() / 8;
        Ingest {
            shape,
            keys,
            previous,
            scrape_ts,
            appender: Appender::with_capacity(scrape_ts, expect),
            encoder: ChunkEncoder::new(
                shape.chunk_samples,
                super::remote_write::chunk::DEFAULT_MAX_RAW_BYTES,
            ),
            current: SeriesMemory::with_capacity(
                expect,
                previous.arena.len() + previous.arena.len() / 8,
            ),
            counts: ScrapeCounts::default(),
            for_limit: 0,
            limit_exceeded: false,
            error: None,
            own_skips: [0; Skip::ALL.len()],
            pairs: Vec::new(),
            labels: Vec::new(),
            exemplar: Vec::new(),
        }
    }

    /// Whether the scrape has already failed (a label limit or a missing name): the caller
    /// may stop reading.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Bytes held by this scrape so far (encoded chunks and the series index).
    pub fn held_bytes(&self) -> usize {
        self.encoder.finished_bytes() + self.current.bytes()
    }

    /// Takes one parsed sample.
    pub fn add(&mut self, s: &SampleRef<'_>) {
        if self.error.is_some() {
            return;
        }
        self.counts.scraped += 1;
        let explicit = if self.shape.honor_timestamps {
            s.timestamp_ms()
        } else {
            None
        };
        let outcome = self.appender.append_at(s, explicit);
        if self.shape.metric_relabel.is_empty() {
            if let Outcome::Skipped {
                reason: Skip::Duplicate | Skip::OutOfOrder,
                exemplar: false,
            } = outcome
            {
                // The same series was stored earlier in this scrape: its labels are those of
                // that sample, already checked. Only the counts change (no allocation: a body
                // of one series repeated costs nothing per line beyond the parse).
                self.count_kept(s.value());
                return;
            }
        }
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.clear();
        pairs.extend(s.labels().map(|(n, v)| (n.to_owned(), v.into_owned())));
        pairs.push(("__name__".to_owned(), s.name().to_owned()));
        let mut lset = Labels::from_pairs(pairs);
        merge_target_labels(&mut lset, &self.shape.labels, self.shape.honor_labels);
        let kept = self.shape.metric_relabel.is_empty()
            || relabel::apply_mut(&mut lset, &self.shape.metric_relabel);
        let result = if kept {
            self.keep(s, &lset, explicit, outcome)
        } else {
            Ok(())
        };
        self.pairs = lset.into_vec();
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// A sample survived metric relabelling: it counts for
    /// `scrape_samples_post_metric_relabeling` and (unless it is a staleness marker) for
    /// `sample_limit`.
    fn count_kept(&mut self, value: f64) {
        self.counts.post_relabel += 1;
        if !is_stale_nan(value) {
            self.for_limit += 1;
        }
        let limit = self.shape.limits.sample_limit;
        if limit > 0 && self.for_limit > limit {
            self.limit_exceeded = true;
        }
    }

    fn keep(
        &mut self,
        s: &SampleRef<'_>,
        lset: &Labels,
        explicit: Option<i64>,
        outcome: Outcome,
    ) -> Result<(), IngestError> {
        if lset.get("__name__").is_none() {
            return Err(IngestError::MissingName);
        }
        check_label_limits(lset, &self.shape.limits)?;
        self.count_kept(s.value());
        if self.limit_exceeded {
            return Ok(());
        }
        let ts = explicit.unwrap_or(self.scrape_ts);
        let (store_sample, store_exemplar) = match outcome {
            Outcome::Stored { exemplar } => (true, exemplar),
            Outcome::Skipped { exemplar, .. } => (false, exemplar),
        };
        if !store_sample && !store_exemplar {
            return Ok(());
        }
        self.labels.clear();
        encode_labels(&mut self.labels, lset.iter());
        let key = self.keys.key(&self.labels);
        let mut store_sample = store_sample;
        if store_sample {
            // Series that differ as scraped can still be one series once the target labels
            // are attached (`m{exported_job="a"}` and `m{job="a"}`): Prometheus's storage
            // rules apply to the stored series.
            if let Some(slot) = self.current.index.get(&key) {
                let reason = if ts == slot.last_ts {
                    Some(Skip::Duplicate)
                } else if ts < slot.last_ts {
                    Some(Skip::OutOfOrder)
                } else {
                    None
                };
                if let Some(r) = reason {
                    self.own_skips[r as usize] += 1;
                    store_sample = false;
                }
            }
        }
        let exemplar = match s.exemplar() {
            Some(e) if store_exemplar => {
                self.exemplar.clear();
                encode_labels(&mut self.exemplar, e.labels());
                Some(EncodedExemplar {
                    labels: &self.exemplar,
                    value: e.value(),
                    timestamp_ms: e.timestamp_ms().unwrap_or(ts),
                })
            }
            _ => None,
        };
        if !store_sample && exemplar.is_none() {
            return Ok(());
        }
        if store_sample {
            if !self.previous.index.contains_key(&key) && !self.current.index.contains_key(&key) {
                self.counts.series_added += 1;
            }
            let tracked = self
                .current
                .index
                .get(&key)
                .map_or(explicit.is_none(), |slot| {
                    slot.len > 0 || explicit.is_none()
                });
            if let Some(slot) = self.current.index.get_mut(&key) {
                slot.last_ts = ts;
            } else {
                self.current.remember(key, &self.labels, tracked, ts);
            }
            self.counts.stored += 1;
        }
        let sample = store_sample.then_some((s.value(), ts));
        self.encoder.push_encoded(&self.labels, sample, exemplar);
        Ok(())
    }

    /// Ends the scrape. `failure` is why the request or the parse failed, if it did; the
    /// scrape also fails when a limit was broken. A failed scrape keeps none of its samples
    /// (Prometheus rolls them back): only the report series (`up` 0) and staleness markers for
    /// every series of the previous scrape. Returns what to ship, the memory for the next
    /// scrape, and the error the scrape ended with.
    pub fn finish(
        self,
        failure: Option<String>,
        duration: Duration,
    ) -> (Ingested, SeriesMemory, Option<String>) {
        let Ingest {
            shape,
            keys,
            previous,
            scrape_ts,
            appender,
            mut encoder,
            mut current,
            mut counts,
            limit_exceeded,
            error,
            own_skips,
            mut labels,
            ..
        } = self;
        let error = failure
            .or_else(|| error.map(|e| e.to_string()))
            .or_else(|| limit_exceeded.then(|| IngestError::SampleLimit.to_string()));
        let (scraped, skipped) = appender.finish();
        let _ = scraped;
        if error.is_some() {
            encoder = ChunkEncoder::new(
                shape.chunk_samples,
                super::remote_write::chunk::DEFAULT_MAX_RAW_BYTES,
            );
            current = SeriesMemory::default();
            counts.stored = 0;
            if limit_exceeded {
                // Prometheus counts new series only while under the limit.
                counts.series_added = 0;
            }
        }
        let up = if error.is_none() { 1.0 } else { 0.0 };
        let report = [
            ("up", up),
            ("scrape_duration_seconds", duration.as_secs_f64()),
            ("scrape_samples_scraped", counts.scraped as f64),
            (
                "scrape_samples_post_metric_relabeling",
                counts.post_relabel as f64,
            ),
            ("scrape_series_added", counts.series_added as f64),
        ];
        // The report series are part of every scrape, failed or not: never stale here.
        let mut report_labels = Vec::with_capacity(report.len());
        for (name, value) in report {
            let mut lset: Labels = shape.labels.iter().cloned().collect::<Vec<_>>().into();
            lset.set("__name__", name);
            labels.clear();
            encode_labels(&mut labels, lset.iter());
            current.remember(keys.key(&labels), &labels, true, scrape_ts);
            report_labels.push((labels.clone(), value));
        }
        counts.stale_markers =
            previous.stale_markers(Some(&current), scrape_ts, &mut encoder) as u64;
        for (labels, value) in &report_labels {
            encoder.push_encoded(labels, Some((*value, scrape_ts)), None);
        }
        let mut skips: Vec<(Skip, u64)> = Vec::new();
        for r in Skip::ALL {
            let n = if error.is_some() {
                0
            } else {
                skipped.count(r) as u64 + own_skips[r as usize]
            };
            if n > 0 {
                skips.push((r, n));
            }
        }
        let ingested = Ingested {
            chunks: encoder.finish(),
            counts,
            skips,
        };
        (ingested, current, error)
    }
}

/// Staleness markers for every tracked series of `memory` (the target went away).
pub fn all_stale(memory: &SeriesMemory, ts: i64, chunk_samples: usize) -> (Vec<Chunk>, usize) {
    let mut enc = ChunkEncoder::new(
        chunk_samples,
        super::remote_write::chunk::DEFAULT_MAX_RAW_BYTES,
    );
    let n = memory.stale_markers(None, ts, &mut enc);
    (enc.finish(), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::{Format, Parser};
    use crate::metrics::remote_write::proto::WriteRequest;

    fn shape(limits: ScrapeLimits, relabel: &str) -> TargetShape {
        let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(relabel).unwrap_or_default();
        TargetShape {
            labels: vec![
                ("instance".to_owned(), "t:1".to_owned()),
                ("job".to_owned(), "j".to_owned()),
            ]
            .into(),
            honor_labels: false,
            honor_timestamps: true,
            limits,
            metric_relabel: rules.into(),
            chunk_samples: 3,
        }
    }

    type Seen = Vec<(String, Vec<(String, String)>, i64, u64)>;

    fn scrape(
        shape: &TargetShape,
        keys: &SeriesKeys,
        prev: &SeriesMemory,
        body: &str,
        ts: i64,
    ) -> (
        Seen,
        ScrapeCounts,
        SeriesMemory,
        Option<String>,
        Vec<(Skip, u64)>,
    ) {
        let mut ingest = Ingest::new(shape, keys, prev, ts);
        let mut parser = Parser::new(Format::Text);
        let failure = parser
            .feed(body.as_bytes(), |s| ingest.add(&s))
            .and_then(|()| parser.finish(|s| ingest.add(&s)))
            .err()
            .map(|e| e.to_string());
        let (out, memory, error) = ingest.finish(failure, Duration::from_millis(5));
        let mut seen = Vec::new();
        for c in &out.chunks {
            let req: WriteRequest = c.decode().unwrap_or_default();
            for t in req.timeseries {
                let labels: Vec<(String, String)> = t
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                let name = labels
                    .iter()
                    .find(|(n, _)| n == "__name__")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                for s in t.samples {
                    seen.push((name.clone(), labels.clone(), s.timestamp, s.value.to_bits()));
                }
            }
        }
        (seen, out.counts, memory, error, out.skips)
    }

    fn value(seen: &Seen, name: &str) -> Option<f64> {
        seen.iter()
            .find(|s| s.0 == name)
            .map(|s| f64::from_bits(s.3))
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn report_series_and_counts_as_prometheus_defines_them() {
        let sh = shape(
            ScrapeLimits::default(),
            "[{source_labels: [__name__], regex: dropme, action: drop}]",
        );
        let keys = SeriesKeys::default();
        let (seen, counts, memory, error, skips) = scrape(
            &sh,
            &keys,
            &SeriesMemory::default(),
            "a 1\na 2\nb{x=\"1\"} 3\ndropme 4\n",
            NOW,
        );
        assert_eq!(error, None);
        assert_eq!(
            counts,
            ScrapeCounts {
                scraped: 4,
                post_relabel: 3,
                series_added: 2,
                stored: 2,
                stale_markers: 0,
            }
        );
        assert_eq!(skips, [(Skip::Duplicate, 1)]);
        assert_eq!(
            value(&seen, "a"),
            Some(1.0),
            "the first of a duplicate series is kept"
        );
        assert_eq!(value(&seen, "up"), Some(1.0));
        assert_eq!(value(&seen, "scrape_samples_scraped"), Some(4.0));
        assert_eq!(
            value(&seen, "scrape_samples_post_metric_relabeling"),
            Some(3.0)
        );
        assert_eq!(value(&seen, "scrape_series_added"), Some(2.0));
        assert!(value(&seen, "dropme").is_none());
        let up = seen
            .iter()
            .find(|s| s.0 == "up")
            .map(|s| s.1.clone())
            .unwrap_or_default();
        assert!(up.contains(&("job".to_owned(), "j".to_owned())));

        // b disappears: one staleness marker; a is not new.
        let (seen, counts, _, _, _) = scrape(&sh, &keys, &memory, "a 5\n", NOW + 1000);
        assert_eq!((counts.series_added, counts.stale_markers), (0, 1));
        let b = seen.iter().find(|s| s.0 == "b").map(|s| (s.2, s.3));
        assert_eq!(b, Some((NOW + 1000, crate::metrics::STALE_NAN_BITS)));
    }

    #[test]
    fn series_that_collide_after_target_labels_keep_their_first_sample() {
        let sh = shape(ScrapeLimits::default(), "[]");
        let keys = SeriesKeys::default();
        let (seen, counts, _, _, skips) = scrape(
            &sh,
            &keys,
            &SeriesMemory::default(),
            "m{exported_job=\"x\"} 1\nm{job=\"x\"} 2\n",
            NOW,
        );
        let m: Vec<f64> = seen
            .iter()
            .filter(|s| s.0 == "m")
            .map(|s| f64::from_bits(s.3))
            .collect();
        assert_eq!(m, [1.0]);
        assert_eq!(
            (counts.scraped, counts.post_relabel, counts.stored),
            (2, 2, 1)
        );
        assert_eq!(skips, [(Skip::Duplicate, 1)]);
    }

    #[test]
    fn limits_fail_the_scrape_and_keep_nothing_but_the_report() {
        let keys = SeriesKeys::default();
        let sh = shape(
            ScrapeLimits {
                sample_limit: 2,
                ..ScrapeLimits::default()
            },
            "[]",
        );
        let (_, _, memory, _, _) = scrape(&sh, &keys, &SeriesMemory::default(), "old 1\n", NOW);
        let (seen, counts, _, error, _) =
            scrape(&sh, &keys, &memory, "a 1\nb 2\nc 3\nd 4\n", NOW + 1);
        assert_eq!(error.as_deref(), Some("sample limit exceeded"));
        assert_eq!(value(&seen, "up"), Some(0.0));
        assert_eq!(value(&seen, "scrape_samples_scraped"), Some(4.0));
        assert!(value(&seen, "a").is_none());
        assert_eq!(
            counts.stale_markers, 1,
            "the previous scrape's series go stale"
        );
        assert!(seen
            .iter()
            .any(|s| s.0 == "old" && s.3 == crate::metrics::STALE_NAN_BITS));

        let sh = shape(
            ScrapeLimits {
                label_value_length_limit: 3,
                ..ScrapeLimits::default()
            },
            "[]",
        );
        let (seen, _, _, error, _) = scrape(
            &sh,
            &keys,
            &SeriesMemory::default(),
            "a{v=\"long\"} 1\n",
            NOW,
        );
        assert!(error.is_some_and(
            |e| e.starts_with("label_value_length_limit exceeded (metric: a, label name: v")
        ));
        assert_eq!(value(&seen, "up"), Some(0.0));
        let sh = shape(
            ScrapeLimits {
                label_limit: 3,
                ..ScrapeLimits::default()
            },
            "[]",
        );
        let (_, _, _, error, _) =
            scrape(&sh, &keys, &SeriesMemory::default(), "a{x=\"1\"} 1\n", NOW);
        assert!(error.is_some_and(|e| e.starts_with("label_limit exceeded")));
        let sh = shape(
            ScrapeLimits::default(),
            "[{action: labeldrop, regex: __name__}]",
        );
        let (_, _, _, error, _) = scrape(&sh, &keys, &SeriesMemory::default(), "a 1\n", NOW);
        assert_eq!(
            error.as_deref(),
            Some("missing metric name (__name__ label)")
        );
    }

    #[test]
    fn honor_timestamps_false_ignores_the_targets_times() {
        let mut sh = shape(ScrapeLimits::default(), "[]");
        let keys = SeriesKeys::default();
        let body = format!("a 1 {}\n", NOW - 5000);
        let (seen, ..) = scrape(&sh, &keys, &SeriesMemory::default(), &body, NOW);
        assert_eq!(
            seen.iter().find(|s| s.0 == "a").map(|s| s.2),
            Some(NOW - 5000)
        );
        sh.honor_timestamps = false;
        let (seen, ..) = scrape(&sh, &keys, &SeriesMemory::default(), &body, NOW);
        assert_eq!(seen.iter().find(|s| s.0 == "a").map(|s| s.2), Some(NOW));
    }

    #[test]
    fn conflicting_labels_are_exported_as_prometheus_does() {
        let target = [
            ("exported_job".to_owned(), "t".to_owned()),
            ("job".to_owned(), "outer".to_owned()),
        ];
        let mut l: Labels = [("__name__", "m"), ("job", "inner")].into_iter().collect();
        merge_target_labels(&mut l, &target, false);
        assert_eq!(l.get("exported_exported_job"), Some("inner"));
        assert_eq!(l.get("exported_job"), Some("t"));
        let mut l: Labels = [("__name__", "m"), ("job", "inner")].into_iter().collect();
        merge_target_labels(&mut l, &target, true);
        assert_eq!(l.get("job"), Some("inner"));
    }
}
