//! The [`metrics`](https://docs.rs/metrics) facade recorder: `counter!`, `gauge!` and
//! `histogram!` from the service or any of its dependencies land in the library's
//! [`Registry`], with the standard labels, next to the typed metrics.
//!
//! [`Telemetry::builder`](crate::Telemetry::builder) installs it as the process's global
//! recorder (see [`TelemetryBuilder::install_recorder`](crate::TelemetryBuilder::install_recorder)
//! for what happens when another one is installed already).
//!
//! What the facade's names and labels become:
//!
//! - a metric name the Prometheus rules do not allow is sanitised (each bad character becomes
//!   `_`) and counted in `livetranslate_facade_names_sanitized_total{kind="metric"}`; an empty
//!   one is dropped;
//! - a counter whose name does not end in `_total` gets the suffix;
//! - label names are sanitised the same way (`kind="label"`); a label named like a standard
//!   label, `le`, `quantile` or starting with `__` is renamed `exported_<name>`, as Prometheus
//!   does with clashing target labels;
//! - a series that cannot be kept is dropped (its handle does nothing) and counted once per
//!   distinct key in `livetranslate_facade_series_dropped_total{reason}`: `invalid_name`,
//!   `duplicate_label`, `name_clash` (a typed metric of the library or the service has that
//!   name: the typed metric wins, untouched), `type_clash` (the name was registered through
//!   the facade as another kind), `series_limit` (the family has [`DEFAULT_SERIES_LIMIT`]
//!   series already; these keys are not remembered, so that unbounded label values cost no
//!   memory, and each refused registration is counted);
//! - `describe_*!` sets the `# HELP` text and the unit (`# UNIT` in OpenMetrics when the name
//!   ends in it, as OpenMetrics requires); undescribed families get a generic help text;
//! - histograms use [`LATENCY_BUCKETS`] unless buckets are configured for their name
//!   ([`Matcher`]).
//!
//! The hot path (a `counter!` with literal labels, called again) takes no lock: a per-thread
//! cache maps the key to its series.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ::metrics::{
    CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

use super::encode::{self, Format, Sample};
use super::fxhash::FxHasher;
use super::sharded::ShardedHistogram;
use super::{
    check_buckets, read, write, Collect, Counter, Family, MetricError, Registry, LATENCY_BUCKETS,
};
use crate::labels::STANDARD_LABEL_NAMES;
use crate::names::{is_reserved_label_name, sanitize_label_name, sanitize_metric_name};

/// The most series one facade family keeps (further label sets are dropped and counted).
///
/// ```
/// assert_eq!(livetranslate_telemetry::registry::DEFAULT_SERIES_LIMIT, 10_000);
/// ```
pub const DEFAULT_SERIES_LIMIT: usize = 10_000;

/// `# HELP` of a family nobody described.
const NO_DESCRIPTION: &str = "Recorded through the metrics facade (no description given).";

/// Which histograms a bucket list applies to, by their (sanitised) name; as in
/// metrics-exporter-prometheus, a full match wins over a prefix match, which wins over a
/// suffix match (the longest prefix or suffix wins among several).
///
/// ```
/// use livetranslate_telemetry::registry::Matcher;
/// let m = Matcher::Prefix("db_".into());
/// assert!(m.matches("db_query_duration_seconds"));
/// assert!(!Matcher::Full("db".into()).matches("db_query_duration_seconds"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Matcher {
    /// The whole name.
    Full(String),
    /// Names starting with this.
    Prefix(String),
    /// Names ending with this.
    Suffix(String),
}

impl Matcher {
    /// Whether `name` matches.
    ///
    /// ```
    /// use livetranslate_telemetry::registry::Matcher;
    /// assert!(Matcher::Suffix("_bytes".into()).matches("payload_bytes"));
    /// ```
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Full(m) => name == m,
            Matcher::Prefix(m) => name.starts_with(m.as_str()),
            Matcher::Suffix(m) => name.ends_with(m.as_str()),
        }
    }

    /// Precedence among matchers that all match: higher wins.
    fn rank(&self) -> (u8, usize) {
        match self {
            Matcher::Full(m) => (2, m.len()),
            Matcher::Prefix(m) => (1, m.len()),
            Matcher::Suffix(m) => (0, m.len()),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Full(m) => write!(f, "{m:?}"),
            Matcher::Prefix(m) => write!(f, "{m:?}*"),
            Matcher::Suffix(m) => write!(f, "*{m:?}"),
        }
    }
}

/// What can go wrong setting up or installing the facade recorder.
///
/// ```
/// use livetranslate_telemetry::registry::{MetricsRecorder, RecorderError, Registry};
/// let err = MetricsRecorder::builder(&Registry::new(&[])).buckets(&[]).build().unwrap_err();
/// assert!(matches!(err, RecorderError::Metric(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecorderError {
    /// A bucket list is bad ([`MetricError::InvalidBuckets`]), or the recorder's own
    /// metric names are taken in the registry.
    #[error(transparent)]
    Metric(#[from] MetricError),
    /// Another `metrics` recorder is the global one already (only one can be per process).
    #[error(
        "another `metrics` recorder is installed globally already; build with \
         .install_recorder(false) to keep it (and combine it with Telemetry::recorder(), e.g. \
         through metrics-util's Fanout), or do not install the other one"
    )]
    AlreadyInstalled,
}

/// Configures a [`MetricsRecorder`]; start with [`MetricsRecorder::builder`].
///
/// ```
/// use livetranslate_telemetry::registry::{Matcher, MetricsRecorder, Registry};
/// let registry = Registry::new(&[("service", "demo")]);
/// let recorder = MetricsRecorder::builder(&registry)
///     .buckets_for(Matcher::Prefix("db_".into()), &[0.001, 0.01, 0.1])
///     .build()
///     .unwrap();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::histogram!("db_query_duration_seconds").record(0.004);
/// });
/// assert!(registry.render().contains("db_query_duration_seconds_bucket{service=\"demo\",le=\"0.01\"} 1"));
/// ```
#[derive(Debug, Clone)]
pub struct MetricsRecorderBuilder {
    registry: Registry,
    default_buckets: Vec<f64>,
    rules: Vec<(Matcher, Vec<f64>)>,
    series_limit: usize,
}

impl MetricsRecorderBuilder {
    /// The buckets of every facade histogram no [`buckets_for`](Self::buckets_for) rule
    /// matches (default [`LATENCY_BUCKETS`]).
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{MetricsRecorder, Registry};
    /// let recorder = MetricsRecorder::builder(&Registry::new(&[])).buckets(&[0.1, 1.0]).build().unwrap();
    /// ```
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.default_buckets = bounds.to_vec();
        self
    }

    /// The buckets of the facade histograms whose name `matcher` matches.
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{Matcher, MetricsRecorder, Registry};
    /// let recorder = MetricsRecorder::builder(&Registry::new(&[]))
    ///     .buckets_for(Matcher::Full("payload_bytes".into()), &[1e3, 1e6])
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn buckets_for(mut self, matcher: Matcher, bounds: &[f64]) -> Self {
        self.rules.push((matcher, bounds.to_vec()));
        self
    }

    /// The most series one facade family keeps (default [`DEFAULT_SERIES_LIMIT`]).
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{MetricsRecorder, Registry};
    /// let recorder = MetricsRecorder::builder(&Registry::new(&[])).series_limit(500).build().unwrap();
    /// ```
    pub fn series_limit(mut self, limit: usize) -> Self {
        self.series_limit = limit;
        self
    }

    /// The recorder; a bad bucket list is a [`MetricError::InvalidBuckets`] naming it.
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{MetricsRecorder, Registry};
    /// assert!(MetricsRecorder::builder(&Registry::new(&[])).buckets(&[2.0, 1.0]).build().is_err());
    /// ```
    pub fn build(self) -> Result<MetricsRecorder, RecorderError> {
        check_buckets("facade histograms (default)", &self.default_buckets)?;
        for (m, b) in &self.rules {
            check_buckets(&format!("facade histograms matching {m}"), b)?;
        }
        let leak = |b: Vec<f64>| -> &'static [f64] { Box::leak(b.into_boxed_slice()) };
        let mut rules: Vec<(Matcher, &'static [f64])> =
            self.rules.into_iter().map(|(m, b)| (m, leak(b))).collect();
        // Highest precedence first.
        rules.sort_by_key(|r| std::cmp::Reverse(r.0.rank()));
        let registry = self.registry;
        let sanitized = registry
            .counter(
                "livetranslate_facade_names_sanitized_total",
                "Series recorded through the metrics facade whose metric or label name had to be corrected.",
                &["kind"],
            )
            ?;
        let dropped = registry.counter(
            "livetranslate_facade_series_dropped_total",
            "Series recorded through the metrics facade that were dropped, by reason.",
            &["reason"],
        )?;
        let sanitized_metric = sanitized.with(&["metric"])?;
        let sanitized_label = sanitized.with(&["label"])?;
        Ok(MetricsRecorder(Arc::new(Store {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            default_buckets: if self.default_buckets.as_slice() == LATENCY_BUCKETS {
                LATENCY_BUCKETS
            } else {
                leak(self.default_buckets)
            },
            rules,
            series_limit: self.series_limit,
            registry,
            sanitized_metric,
            sanitized_label,
            dropped,
            state: RwLock::new(State::default()),
        })))
    }
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

/// The `metrics` facade recorder of one [`Registry`]: a cheap handle (clone it freely).
///
/// Use it where the global one cannot be: in a test through
/// [`metrics::with_local_recorder`], or next to another recorder in a fan-out.
///
/// ```
/// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).install_recorder(false).build().unwrap();
/// let recorder = telemetry.recorder();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("doc_jobs_total", "kind" => "transcribe").increment(2);
/// });
/// assert!(telemetry.render_metrics().contains(r#"doc_jobs_total{service="doc","#));
/// ```
#[derive(Clone)]
pub struct MetricsRecorder(Arc<Store>);

impl fmt::Debug for MetricsRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("id", &self.0.id)
            .finish_non_exhaustive()
    }
}

impl MetricsRecorder {
    /// Starts configuring a recorder that records into `registry`.
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{MetricsRecorder, Registry};
    /// let recorder = MetricsRecorder::builder(&Registry::new(&[])).build().unwrap();
    /// ```
    pub fn builder(registry: &Registry) -> MetricsRecorderBuilder {
        MetricsRecorderBuilder {
            registry: registry.clone(),
            default_buckets: LATENCY_BUCKETS.to_vec(),
            rules: Vec::new(),
            series_limit: DEFAULT_SERIES_LIMIT,
        }
    }

    /// Makes this the process's global `metrics` recorder.
    ///
    /// The global slot of the `metrics` crate can be set once per process. The first call
    /// fills it with a forwarder owned by this library; every call (this one and later ones,
    /// from any `Telemetry` built with the recorder installed) points the forwarder at its
    /// recorder, so the facade feeds the most recently built one. If something else filled
    /// the slot first, this fails with [`RecorderError::AlreadyInstalled`] and changes nothing.
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{MetricsRecorder, Registry};
    /// let registry = Registry::new(&[("service", "doc")]);
    /// let recorder = MetricsRecorder::builder(&registry).build().unwrap();
    /// recorder.install().unwrap();
    /// metrics::counter!("doc_events_total").increment(1);
    /// assert!(registry.render().contains("doc_events_total{service=\"doc\"} 1"));
    /// ```
    pub fn install(&self) -> Result<(), RecorderError> {
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if !*installed {
            ::metrics::set_global_recorder(Forwarder)
                .map_err(|_| RecorderError::AlreadyInstalled)?;
            *installed = true;
        }
        // Leaked on purpose: a thread may still be reading the previous one.
        let ptr = Arc::into_raw(self.0.clone()) as *mut Store;
        ACTIVE.store(ptr, Ordering::Release);
        Ok(())
    }

    /// Whether this recorder is the one the global facade forwards to now.
    ///
    /// ```
    /// # use livetranslate_telemetry::registry::{MetricsRecorder, Registry};
    /// let recorder = MetricsRecorder::builder(&Registry::new(&[])).build().unwrap();
    /// assert!(!recorder.is_installed());
    /// ```
    pub fn is_installed(&self) -> bool {
        std::ptr::eq(ACTIVE.load(Ordering::Acquire), Arc::as_ptr(&self.0))
    }
}

impl Recorder for MetricsRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0
            .describe(Kind::Counter, key.as_str(), unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0
            .describe(Kind::Gauge, key.as_str(), unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0
            .describe(Kind::Histogram, key.as_str(), unit, &description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Counter {
        self.0.counter(key)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Gauge {
        self.0.gauge(key)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Histogram {
        self.0.histogram(key)
    }
}

/// Whether the forwarder is the global recorder.
static INSTALLED: Mutex<bool> = Mutex::new(false);
/// The store the global forwarder records into (a leaked `Arc`), or null.
static ACTIVE: AtomicPtr<Store> = AtomicPtr::new(std::ptr::null_mut());

/// The global recorder: forwards to the most recently installed [`MetricsRecorder`].
struct Forwarder;

impl Forwarder {
    #[inline]
    fn store() -> Option<&'static Store> {
        let p = ACTIVE.load(Ordering::Acquire);
        // SAFETY: non-null pointers stored in ACTIVE come from `Arc::into_raw` and are never
        // released, so they stay valid for the rest of the process.
        unsafe { p.as_ref() }
    }
}

impl Recorder for Forwarder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(s) = Self::store() {
            s.describe(Kind::Counter, key.as_str(), unit, &description);
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(s) = Self::store() {
            s.describe(Kind::Gauge, key.as_str(), unit, &description);
        }
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if let Some(s) = Self::store() {
            s.describe(Kind::Histogram, key.as_str(), unit, &description);
        }
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Counter {
        Self::store().map_or_else(::metrics::Counter::noop, |s| s.counter(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Gauge {
        Self::store().map_or_else(::metrics::Gauge::noop, |s| s.gauge(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> ::metrics::Histogram {
        Self::store().map_or_else(::metrics::Histogram::noop, |s| s.histogram(key))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A facade counter's value.
#[derive(Debug, Default)]
struct CounterCell(AtomicU64);

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// A facade gauge's value (f64 bits).
#[derive(Debug, Default)]
struct GaugeCell(AtomicU64);

impl GaugeCell {
    fn add(&self, delta: f64) {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + delta).to_bits();
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }

    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A facade histogram: per-thread shards, so recording takes no lock-prefixed instruction.
#[derive(Debug)]
struct HistogramCell(ShardedHistogram);

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }

    fn record_many(&self, value: f64, count: usize) {
        self.0.observe_n(value, count as u64);
    }
}

/// A series, or the decision to drop it.
#[derive(Clone, Debug)]
enum Slot {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCell>),
    Dropped,
}

/// Why a series was dropped (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropReason {
    InvalidName,
    DuplicateLabel,
    NameClash,
    TypeClash,
    SeriesLimit,
}

impl DropReason {
    fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidName => "invalid_name",
            DropReason::DuplicateLabel => "duplicate_label",
            DropReason::NameClash => "name_clash",
            DropReason::TypeClash => "type_clash",
            DropReason::SeriesLimit => "series_limit",
        }
    }
}

/// What to log once the registration lock is released.
enum Note {
    Dropped(String, DropReason),
    LimitReached(String),
}

/// A `Hasher` for [`Key`]s, whose `Hash` writes their precomputed hash only.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut fx = FxHasher::default();
        fx.write_u64(self.0);
        fx.write(bytes);
        self.0 = fx.finish();
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;
type CacheMap = HashMap<(u64, u64, u8), (Key, Slot), BuildHasherDefault<FxHasher>>;

thread_local! {
    /// (store id, key hash, kind) → the key and its series: the lock-free common path.
    static CACHE: RefCell<CacheMap> =
        const { RefCell::new(HashMap::with_hasher(BuildHasherDefault::new())) };
}

/// `cached == key`, without comparing bytes when both share their strings (a key written
/// with literals, as most are, and its cached clone do).
#[inline]
fn same_key(cached: &Key, key: &Key) -> bool {
    if cached.get_hash() != key.get_hash() {
        return false;
    }
    let (name_a, name_b) = (cached.name(), key.name());
    let (labels_a, labels_b) = (cached.labels().as_slice(), key.labels().as_slice());
    if std::ptr::eq(name_a, name_b) && std::ptr::eq(labels_a, labels_b) {
        return true;
    }
    cached == key
}

#[derive(Default)]
struct State {
    /// Per kind (a counter and a gauge may share a key: they are different families).
    series: [KeyMap<Slot>; 3],
    families: HashMap<String, Arc<FacadeFamily>>,
    /// Descriptions given before their family exists, by family (sample) name.
    descriptions: HashMap<String, Description>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Description {
    help: String,
    unit: Option<Unit>,
}

struct Store {
    id: u64,
    default_buckets: &'static [f64],
    rules: Vec<(Matcher, &'static [f64])>,
    series_limit: usize,
    registry: Registry,
    sanitized_metric: Counter,
    sanitized_label: Counter,
    dropped: Family<Counter>,
    state: RwLock<State>,
}

impl Store {
    #[inline]
    fn lookup<T>(&self, key: &Key, kind: Kind, make: impl Fn(&Slot) -> T) -> T {
        let k = (self.id, key.get_hash(), kind as u8);
        let hit = CACHE.with(|c| {
            let c = c.borrow();
            match c.get(&k) {
                Some((cached, slot)) if same_key(cached, key) => Some(make(slot)),
                _ => None,
            }
        });
        if let Some(h) = hit {
            return h;
        }
        let (slot, cacheable) = self.register_slow(key, kind);
        let handle = make(&slot);
        if cacheable {
            CACHE.with(|c| c.borrow_mut().insert(k, (key.clone(), slot)));
        }
        handle
    }

    fn counter(&self, key: &Key) -> ::metrics::Counter {
        self.lookup(key, Kind::Counter, |s| match s {
            Slot::Counter(c) => ::metrics::Counter::from_arc(c.clone()),
            _ => ::metrics::Counter::noop(),
        })
    }

    fn gauge(&self, key: &Key) -> ::metrics::Gauge {
        self.lookup(key, Kind::Gauge, |s| match s {
            Slot::Gauge(g) => ::metrics::Gauge::from_arc(g.clone()),
            _ => ::metrics::Gauge::noop(),
        })
    }

    fn histogram(&self, key: &Key) -> ::metrics::Histogram {
        self.lookup(key, Kind::Histogram, |s| match s {
            Slot::Histogram(h) => ::metrics::Histogram::from_arc(h.clone()),
            _ => ::metrics::Histogram::noop(),
        })
    }

    /// The family (sample) name of a facade metric name: sanitised, counters with `_total`.
    fn family_name(raw: &str, kind: Kind) -> (String, bool) {
        let clean = sanitize_metric_name(raw);
        let changed = clean != raw;
        let mut name = clean.into_owned();
        if kind == Kind::Counter && !name.ends_with("_total") {
            name.push_str("_total");
        }
        (name, changed)
    }

    fn buckets_for(&self, name: &str) -> &'static [f64] {
        self.rules
            .iter()
            .find(|(m, _)| m.matches(name))
            .map_or(self.default_buckets, |(_, b)| *b)
    }

    /// Counts a dropped series and remembers the decision for its key, except past the
    /// series limit: those keys are not kept (they are the unbounded ones), so each attempt
    /// is counted.
    fn drop_series(
        &self,
        state: &mut State,
        key: &Key,
        kind: Kind,
        reason: DropReason,
    ) -> (Slot, bool) {
        if let Ok(c) = self.dropped.with(&[reason.as_str()]) {
            c.inc();
        }
        if reason == DropReason::SeriesLimit {
            return (Slot::Dropped, false);
        }
        state.series[kind as usize].insert(key.clone(), Slot::Dropped);
        (Slot::Dropped, true)
    }

    /// The series of a key the per-thread cache does not know, and whether the cache may
    /// keep it.
    #[cold]
    fn register_slow(&self, key: &Key, kind: Kind) -> (Slot, bool) {
        if let Some(slot) = read(&self.state).series[kind as usize].get(key) {
            return (slot.clone(), true);
        }
        let mut note = None;
        let outcome = {
            let mut state = write(&self.state);
            self.register_locked(&mut state, key, kind, &mut note)
        };
        // Logged with no lock held: a log layer may itself record through the facade.
        match note {
            Some(Note::Dropped(name, reason)) => tracing::warn!(
                metric = name.as_str(),
                reason = reason.as_str(),
                "metrics facade: series dropped"
            ),
            Some(Note::LimitReached(name)) => tracing::warn!(
                metric = name.as_str(),
                limit = self.series_limit,
                "metrics facade: series limit reached, new label sets dropped"
            ),
            None => {}
        }
        outcome
    }

    fn register_locked(
        &self,
        state: &mut State,
        key: &Key,
        kind: Kind,
        note: &mut Option<Note>,
    ) -> (Slot, bool) {
        if let Some(slot) = state.series[kind as usize].get(key) {
            return (slot.clone(), true);
        }
        let mut drop_series = |state: &mut State, name: &str, reason: DropReason| {
            *note = Some(Note::Dropped(name.to_owned(), reason));
            self.drop_series(state, key, kind, reason)
        };
        if key.name().is_empty() {
            return drop_series(state, "", DropReason::InvalidName);
        }
        let (name, name_changed) = Self::family_name(key.name(), kind);
        // Labels: sanitised, reserved names renamed, duplicates refused.
        let mut label_changed = false;
        let mut names: Vec<String> = Vec::with_capacity(key.labels().len());
        let mut values: Vec<&str> = Vec::with_capacity(key.labels().len());
        for label in key.labels() {
            let clean = sanitize_label_name(label.key());
            if clean.is_empty() {
                return drop_series(state, &name, DropReason::InvalidName);
            }
            let mut n = clean.into_owned();
            if n != label.key() {
                label_changed = true;
            }
            if STANDARD_LABEL_NAMES.contains(&n.as_str())
                || n == "le"
                || n == "quantile"
                || is_reserved_label_name(&n)
            {
                n.insert_str(0, "exported_");
                label_changed = true;
            }
            if names.contains(&n) {
                return drop_series(state, &name, DropReason::DuplicateLabel);
            }
            names.push(n);
            values.push(label.value());
        }
        let family = match state.families.get(&name) {
            Some(f) if f.kind != kind => return drop_series(state, &name, DropReason::TypeClash),
            Some(f) => f.clone(),
            None => {
                let description = state.descriptions.remove(&name).unwrap_or_default();
                let family = Arc::new(FacadeFamily {
                    name: name.clone(),
                    kind,
                    bounds: if kind == Kind::Histogram {
                        self.buckets_for(&name)
                    } else {
                        &[]
                    },
                    description: RwLock::new(description),
                    series: RwLock::new(BTreeMap::new()),
                    limit_warned: AtomicBool::new(false),
                });
                let signature = format!("facade|{}", kind.as_str());
                if self
                    .registry
                    .register_dynamic(&name, kind.as_str(), signature, family.clone())
                    .is_err()
                {
                    return drop_series(state, &name, DropReason::NameClash);
                }
                state.families.insert(name.clone(), family.clone());
                family
            }
        };
        let labels = encode::render_labels(names.iter().map(String::as_str).zip(values));
        let slot = {
            let mut series = write(&family.series);
            match series.get(&labels) {
                // Another key that reads the same once sanitised: one series.
                Some(existing) => existing.clone(),
                None if series.len() >= self.series_limit => {
                    drop(series);
                    let first = !family.limit_warned.swap(true, Ordering::Relaxed);
                    let dropped = drop_series(state, &name, DropReason::SeriesLimit);
                    *note = first.then(|| Note::LimitReached(name.clone()));
                    return dropped;
                }
                None => {
                    let slot = match kind {
                        Kind::Counter => Slot::Counter(Arc::default()),
                        Kind::Gauge => Slot::Gauge(Arc::default()),
                        Kind::Histogram => Slot::Histogram(Arc::new(HistogramCell(
                            ShardedHistogram::new(family.bounds),
                        ))),
                    };
                    series.insert(labels, slot.clone());
                    slot
                }
            }
        };
        if name_changed {
            self.sanitized_metric.inc();
        }
        if label_changed {
            self.sanitized_label.inc();
        }
        state.series[kind as usize].insert(key.clone(), slot.clone());
        (slot, true)
    }

    fn describe(&self, kind: Kind, raw: &str, unit: Option<Unit>, help: &str) {
        let (name, _) = Self::family_name(raw, kind);
        let description = Description {
            help: help.to_owned(),
            unit,
        };
        // `counter!(description: ..)` describes on every call: skip the write lock when
        // nothing changes.
        {
            let state = read(&self.state);
            if let Some(f) = state.families.get(&name) {
                if f.kind == kind && *read(&f.description) == description {
                    return;
                }
            } else if state.descriptions.get(&name) == Some(&description) {
                return;
            }
        }
        let mut state = write(&self.state);
        match state.families.get(&name) {
            Some(f) if f.kind == kind => *write(&f.description) = description,
            Some(_) => {}
            None => {
                state.descriptions.insert(name, description);
            }
        }
    }
}

/// One family of facade series, rendered by the registry like any other.
struct FacadeFamily {
    name: String,
    kind: Kind,
    bounds: &'static [f64],
    description: RwLock<Description>,
    series: RwLock<BTreeMap<String, Slot>>,
    limit_warned: AtomicBool,
}

impl Collect for FacadeFamily {
    fn encode(&self, const_labels: &str, out: &mut String) {
        self.encode_as(Format::Text, const_labels, out);
    }

    fn encode_as(&self, format: Format, const_labels: &str, out: &mut String) {
        let description = read(&self.description).clone();
        let help = if description.help.is_empty() {
            NO_DESCRIPTION
        } else {
            description.help.as_str()
        };
        let unit = description
            .unit
            .filter(|u| *u != Unit::Count)
            .map(|u| u.as_str());
        encode::write_family_header(out, format, &self.name, help, self.kind.as_str(), unit);
        let series = read(&self.series);
        for (labels, slot) in series.iter() {
            let parts = [const_labels, labels.as_str()];
            match slot {
                Slot::Counter(c) => encode::write_sample(
                    out,
                    &self.name,
                    "",
                    &parts,
                    Sample::Int(c.0.load(Ordering::Relaxed)),
                ),
                Slot::Gauge(g) => encode::write_sample(
                    out,
                    &self.name,
                    "",
                    &parts,
                    Sample::Float(f64::from_bits(g.0.load(Ordering::Relaxed))),
                ),
                Slot::Histogram(h) => {
                    encode::write_histogram(out, &self.name, &parts, &h.0.snapshot(), self.bounds)
                }
                Slot::Dropped => {}
            }
        }
    }
}
