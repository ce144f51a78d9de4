//! What Prometheus 2.42 stores of a scrape that parsed: the append rules of its scrape loop
//! and TSDB head, applied to one scrape. These skip single samples (and exemplars) without
//! failing the scrape:
//!
//! - **Out of bounds**: a timestamp more than 10 minutes ahead of the scrape (the scrape loop's
//!   limit), or more than an hour behind it (half the head's 2 h block: older samples would
//!   land in a block that is already being persisted). Prometheus takes the lower bound from
//!   its newest sample, which in steady state is the current scrape.
//! - **Duplicate** / **out of order**: within the scrape a series keeps a sample only if its
//!   timestamp is later than the series' previous sample (a series written twice without
//!   timestamps keeps the first value). Series are identified by their stored labels, so
//!   `m{a="1",b="2"}` and `m{b="2",a="1"}`, or `m{a=""}` and `m`, are the same series.
//! - **Exemplars**: stored only for a series the scrape has already stored a sample of (an
//!   exemplar on a skipped sample survives if an earlier line stored the series); dropped when
//!   its label names and values exceed 128 characters together, when it equals the previous
//!   exemplar of the series (same labels and value, and the same timestamp when either has an
//!   explicit one), or when its timestamp is not after the previous one's. Without a timestamp an
//!   exemplar takes its sample's.

use std::collections::hash_map::{DefaultHasher, Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use super::stream::{ExemplarRef, SampleRef};

/// How far ahead of the scrape a timestamp may be (Prometheus's `maxAheadTime`).
pub const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// How far behind the scrape a timestamp may be: half the TSDB head's 2 h block range.
pub const MAX_BEHIND_MS: i64 = 60 * 60 * 1000;

/// The most characters an exemplar's label names and values may have together.
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

/// Why a sample or an exemplar is not stored.
///
/// ```
/// use livetranslate_agent::metrics::exposition::Skip;
///
/// assert_eq!(Skip::OutOfBounds.as_str(), "out_of_bounds");
/// assert!(Skip::ExemplarDuplicate.is_exemplar());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// The sample's timestamp is too far ahead of or behind the scrape.
    OutOfBounds,
    /// The series already has a sample with this timestamp in the scrape.
    Duplicate,
    /// The series already has a later sample in the scrape.
    OutOfOrder,
    /// The exemplar belongs to a sample that was not stored, of a series not stored before.
    ExemplarWithoutSeries,
    /// The exemplar's labels are longer than [`EXEMPLAR_MAX_LABEL_CHARS`].
    ExemplarLabelsTooLong,
    /// The exemplar repeats the previous exemplar of the series.
    ExemplarDuplicate,
    /// The exemplar is not later than the previous exemplar of the series.
    ExemplarOutOfOrder,
}

impl Skip {
    /// Every reason, in order.
    pub const ALL: [Skip; 7] = [
        Skip::OutOfBounds,
        Skip::Duplicate,
        Skip::OutOfOrder,
        Skip::ExemplarWithoutSeries,
        Skip::ExemplarLabelsTooLong,
        Skip::ExemplarDuplicate,
        Skip::ExemplarOutOfOrder,
    ];

    /// A short name, e.g. for a `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::OutOfBounds => "out_of_bounds",
            Skip::Duplicate => "duplicate",
            Skip::OutOfOrder => "out_of_order",
            Skip::ExemplarWithoutSeries => "exemplar_without_series",
            Skip::ExemplarLabelsTooLong => "exemplar_labels_too_long",
            Skip::ExemplarDuplicate => "exemplar_duplicate",
            Skip::ExemplarOutOfOrder => "exemplar_out_of_order",
        }
    }

    /// Whether the reason concerns an exemplar (the sample itself may be stored).
    pub fn is_exemplar(self) -> bool {
        !matches!(self, Skip::OutOfBounds | Skip::Duplicate | Skip::OutOfOrder)
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One skipped sample or exemplar, for logs.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse_scrape, Format, Skip};
///
/// let scraped = parse_scrape(b"a 1\na 2\n", Format::Text, 1_700_000_000_000).unwrap();
/// let first = &scraped.skips.examples()[0];
/// assert_eq!((first.line, first.name.as_str(), first.reason), (2, "a", Skip::Duplicate));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The 1-based line of the sample.
    pub line: usize,
    /// The metric name of the sample.
    pub name: String,
    /// Why it was skipped.
    pub reason: Skip,
}

/// What a scrape skipped: a count per reason and the first few occurrences.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{parse_scrape, Format, Skip};
///
/// let body = b"a 1\na 2\na 3\nb 1 1\n";
/// let skips = parse_scrape(body, Format::Text, 1_700_000_000_000).unwrap().skips;
/// let counts: Vec<(Skip, usize)> = skips.iter().collect();
/// assert_eq!(counts, [(Skip::OutOfBounds, 1), (Skip::Duplicate, 2)]);
/// assert_eq!((skips.samples(), skips.total()), (3, 3));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skips {
    counts: [usize; Skip::ALL.len()],
    examples: Vec<Skipped>,
}

impl Skips {
    /// How many occurrences are kept as examples.
    pub const EXAMPLES: usize = 10;

    /// How often `reason` occurred.
    pub fn count(&self, reason: Skip) -> usize {
        self.counts[reason as usize]
    }

    /// All skips of samples (exemplar skips not included).
    pub fn samples(&self) -> usize {
        Skip::ALL
            .iter()
            .filter(|r| !r.is_exemplar())
            .map(|&r| self.count(r))
            .sum()
    }

    /// All skips, samples and exemplars.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The reasons that occurred, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Skip, usize)> + '_ {
        Skip::ALL
            .iter()
            .map(|&r| (r, self.count(r)))
            .filter(|(_, n)| *n > 0)
    }

    /// The first [`Skips::EXAMPLES`] occurrences.
    pub fn examples(&self) -> &[Skipped] {
        &self.examples
    }

    fn record(&mut self, reason: Skip, sample: &SampleRef<'_>) {
        self.counts[reason as usize] += 1;
        if self.examples.len() < Self::EXAMPLES {
            self.examples.push(Skipped {
                line: sample.line_number(),
                name: sample.name().to_owned(),
                reason,
            });
        }
    }
}

/// What happens to one sample line (see [`Appender`] for an example).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The sample is stored; `exemplar` tells whether its exemplar (if any) is stored too.
    Stored {
        /// The exemplar is stored.
        exemplar: bool,
    },
    /// The sample is skipped; `exemplar` tells whether its exemplar is stored nevertheless.
    Skipped {
        /// Why.
        reason: Skip,
        /// The exemplar is stored.
        exemplar: bool,
    },
}

/// The previous exemplar of a series.
#[derive(Debug, Clone, Copy)]
struct LastExemplar {
    labels: u64,
    value: f64,
    timestamp_ms: i64,
    explicit: bool,
}

/// Applies Prometheus's append rules to the samples of one scrape.
///
/// ```
/// use livetranslate_agent::metrics::exposition::{Appender, Format, Outcome, Parser, Skip};
///
/// let mut appender = Appender::new(1_700_000_000_000);
/// let mut outcomes = Vec::new();
/// let mut parser = Parser::new(Format::Text);
/// parser.feed(b"a 1\na 2\nb 3 1000\n", |s| outcomes.push(appender.append(&s))).unwrap();
/// parser.finish(|s| outcomes.push(appender.append(&s))).unwrap();
/// assert_eq!(outcomes[0], Outcome::Stored { exemplar: false });
/// assert_eq!(outcomes[1], Outcome::Skipped { reason: Skip::Duplicate, exemplar: false });
/// assert_eq!(outcomes[2], Outcome::Skipped { reason: Skip::OutOfBounds, exemplar: false });
/// ```
#[derive(Debug)]
pub struct Appender {
    scrape_ts_ms: i64,
    min_ts_ms: i64,
    max_ts_ms: i64,
    hash: RandomState,
    seed: u64,
    /// Series stored in this scrape → timestamp of their latest stored sample.
    series: HashMap<u128, i64, BuildHasherDefault<KeyHasher>>,
    exemplars: HashMap<u128, LastExemplar, BuildHasherDefault<KeyHasher>>,
    order: Vec<usize>,
    unescaped: String,
    total: usize,
    skips: Skips,
}

impl Appender {
    /// Rules for a scrape at `scrape_ts_ms` (the timestamp of samples without one), with
    /// Prometheus's bounds ([`MAX_AHEAD_MS`], [`MAX_BEHIND_MS`]).
    pub fn new(scrape_ts_ms: i64) -> Appender {
        Appender::with_capacity(scrape_ts_ms, 0)
    }

    /// [`Appender::new`] with room for `series` series (a scrape loop knows how many the
    /// previous scrape had; growing a big map by doubling costs twice its size at the end).
    ///
    /// ```
    /// use livetranslate_agent::metrics::exposition::Appender;
    /// let appender = Appender::with_capacity(1_700_000_000_000, 500_000);
    /// assert_eq!(appender.scrape_ts_ms(), 1_700_000_000_000);
    /// ```
    pub fn with_capacity(scrape_ts_ms: i64, series: usize) -> Appender {
        Appender {
            scrape_ts_ms,
            min_ts_ms: scrape_ts_ms.saturating_sub(MAX_BEHIND_MS),
            max_ts_ms: scrape_ts_ms.saturating_add(MAX_AHEAD_MS),
            hash: RandomState::new(),
            seed: RandomState::new().hash_one(0u8),
            series: HashMap::with_capacity_and_hasher(series, Default::default()),
            exemplars: HashMap::default(),
            order: Vec::new(),
            unescaped: String::new(),
            total: 0,
            skips: Skips::default(),
        }
    }

    /// The timestamp samples without one get.
    pub fn scrape_ts_ms(&self) -> i64 {
        self.scrape_ts_ms
    }

    /// Decides what Prometheus stores of `sample` (and records skips).
    pub fn append(&mut self, sample: &SampleRef<'_>) -> Outcome {
        self.append_at(sample, sample.timestamp_ms())
    }

    /// [`Appender::append`] with the sample's timestamp replaced by `timestamp_ms` (`None`:
    /// the scrape's), as with `honor_timestamps: false`.
    ///
    /// ```
    /// use livetranslate_agent::metrics::exposition::{Appender, Format, Outcome, Parser};
    ///
    /// let mut appender = Appender::new(1_700_000_000_000);
    /// let mut outcomes = Vec::new();
    /// let mut parser = Parser::new(Format::Text);
    /// // An hour-old timestamp is out of bounds unless it is ignored.
    /// parser.feed(b"a 1 1699996000000\n", |s| outcomes.push(appender.append_at(&s, None))).unwrap();
    /// assert_eq!(outcomes[0], Outcome::Stored { exemplar: false });
    /// ```
    pub fn append_at(&mut self, sample: &SampleRef<'_>, timestamp_ms: Option<i64>) -> Outcome {
        self.total += 1;
        let ts = timestamp_ms.unwrap_or(self.scrape_ts_ms);
        let key = {
            let mut h = SeriesHasher {
                sip: self.hash.build_hasher(),
                mix: self.seed,
            };
            sample.write_series(&mut self.order, &mut self.unescaped, |b| h.write(b));
            h.finish()
        };
        let skipped = if ts > self.max_ts_ms || ts < self.min_ts_ms {
            Some(Skip::OutOfBounds)
        } else {
            match self.series.entry(key) {
                Entry::Vacant(v) => {
                    v.insert(ts);
                    None
                }
                Entry::Occupied(mut o) => {
                    let last = *o.get();
                    if ts > last {
                        o.insert(ts);
                        None
                    } else if ts == last {
                        Some(Skip::Duplicate)
                    } else {
                        Some(Skip::OutOfOrder)
                    }
                }
            }
        };
        if let Some(reason) = skipped {
            self.skips.record(reason, sample);
        }
        let exemplar = match sample.exemplar() {
            Some(e) => match self.exemplar(key, ts, &e) {
                Ok(()) => true,
                Err(reason) => {
                    self.skips.record(reason, sample);
                    false
                }
            },
            None => false,
        };
        match skipped {
            None => Outcome::Stored { exemplar },
            Some(reason) => Outcome::Skipped { reason, exemplar },
        }
    }

    /// Sample lines seen (Prometheus's `scrape_samples_scraped`) and what was skipped.
    pub fn finish(self) -> (usize, Skips) {
        (self.total, self.skips)
    }

    fn exemplar(&mut self, key: u128, sample_ts: i64, e: &ExemplarRef<'_>) -> Result<(), Skip> {
        if !self.series.contains_key(&key) {
            return Err(Skip::ExemplarWithoutSeries);
        }
        let mut chars = 0;
        for (name, value) in e.labels() {
            chars += name.chars().count() + value.chars().count();
            if chars > EXEMPLAR_MAX_LABEL_CHARS {
                return Err(Skip::ExemplarLabelsTooLong);
            }
        }
        let labels = e.labels().fold(0u64, |acc, (name, value)| {
            let mut h = self.hash.build_hasher();
            h.write(name.as_bytes());
            h.write_u8(0xff);
            h.write(value.as_bytes());
            acc.wrapping_add(h.finish())
        });
        let next = LastExemplar {
            labels,
            value: e.value(),
            timestamp_ms: e.timestamp_ms().unwrap_or(sample_ts),
            explicit: e.timestamp_ms().is_some(),
        };
        if let Some(last) = self.exemplars.get(&key) {
            let same_time =
                !(last.explicit || next.explicit) || last.timestamp_ms == next.timestamp_ms;
            if last.labels == next.labels && last.value == next.value && same_time {
                return Err(Skip::ExemplarDuplicate);
            }
            if next.timestamp_ms <= last.timestamp_ms {
                return Err(Skip::ExemplarOutOfOrder);
            }
        }
        self.exemplars.insert(key, next);
        Ok(())
    }
}

/// A 128-bit identity of a series from the bytes [`SampleRef::write_series`] gives: a keyed
/// SipHash and, independently, a keyed multiply-rotate mix of the same bytes. Two series are
/// taken for one only if both 64-bit halves collide.
struct SeriesHasher {
    sip: DefaultHasher,
    mix: u64,
}

impl SeriesHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn write(&mut self, bytes: &[u8]) {
        self.sip.write(bytes);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix = (self.mix.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(Self::K);
        }
        let mut w = [0u8; 8];
        let rest = words.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.mix = (self.mix.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(Self::K);
        self.mix = (self.mix.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(Self::K);
    }

    fn finish(&self) -> u128 {
        // Spread the mix's bits (the map's buckets come from these low 64 bits).
        let mut m = self.mix;
        m ^= m >> 33;
        m = m.wrapping_mul(0xff51_afd7_ed55_8ccd);
        m ^= m >> 33;
        (u128::from(self.sip.finish()) << 64) | u128::from(m)
    }
}

/// Hashes the already random 128-bit series keys by taking their low half (for maps keyed
/// by such keys: the scrape cache too).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(SeriesHasher::K);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}
