//! The metric registry: lock-free primitives, labeled families, the [`Registry`] that renders
//! them in the Prometheus text format or OpenMetrics, the `metrics` crate facade recorder,
//! process metrics and the typed LiveTranslate domain metrics.
//!
//! (Named `registry`, not `metrics`, so that `use livetranslate_telemetry::*` or a `use` of
//! this module never shadows the `metrics` crate in a service that uses its macros.)
//!
//! The split follows metrics-rs: the facade (`metrics::counter!` and friends, from the
//! service or any dependency) and the typed handles ([`Counter`], [`Gauge`], [`Histogram`])
//! are what code updates; the [`Registry`] records them (the facade through
//! [`MetricsRecorder`]); the `/api/metrics` handler ([`exporter`]) is the only exporter.

mod domain;
pub mod encode;
pub mod exporter;
pub(crate) mod fxhash;
mod primitives;
pub(crate) mod process;
mod recorder;
pub(crate) mod sharded;

pub use domain::{
    ConnectionLimitReached, SessionGuard, Sessions, TranslationQuality, WebSocketGuard, WebSockets,
};
pub use primitives::{
    Counter, Gauge, Histogram, HistogramSnapshot, LATENCY_BUCKETS, SCORE_BUCKETS, SIZE_BUCKETS,
};
pub use recorder::{
    Matcher, MetricsRecorder, MetricsRecorderBuilder, RecorderError, DEFAULT_SERIES_LIMIT,
};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use self::encode::{Format, Sample};
use crate::labels::STANDARD_LABEL_NAMES;
use crate::names::{is_reserved_label_name, is_valid_label_name, is_valid_metric_name};

/// An error in a metric definition or use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// The name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidName(String),
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*` or starts with `__`.
    #[error("metric {metric}: invalid label name {label:?}")]
    InvalidLabelName {
        /// The metric.
        metric: String,
        /// The offending label name.
        label: String,
    },
    /// The label is set by the library itself (standard labels, `le`, `quantile`).
    #[error(
        "metric {metric}: label {label:?} is reserved (standard labels are added automatically)"
    )]
    ReservedLabel {
        /// The metric.
        metric: String,
        /// The offending label name.
        label: String,
    },
    /// Counter names must end in `_total`.
    #[error("counter {0:?} must end in _total")]
    CounterSuffix(String),
    /// A metric of that name already exists with another type, help or label set.
    #[error("metric {0:?} is already registered with a different type, help text or labels")]
    Conflict(String),
    /// A value outside the metric's allowed range.
    #[error("metric {metric}: value {value} is out of range")]
    OutOfRange {
        /// The metric.
        metric: String,
        /// The rejected value.
        value: String,
    },
    /// A histogram's bucket bounds are empty, not finite or not strictly increasing.
    #[error("histogram buckets for {metric}: {reason}")]
    InvalidBuckets {
        /// The metric (or which histograms the buckets were for).
        metric: String,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// `with()` got a different number of label values than the family has label names.
    #[error("metric {metric}: expected {expected} label values, got {got}")]
    LabelCount {
        /// The metric.
        metric: String,
        /// Number of label names of the family.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
}

/// Checks histogram bucket bounds: at least one, all finite (`+Inf` is implied), strictly
/// increasing.
///
/// ```
/// use livetranslate_telemetry::registry::check_buckets;
/// assert!(check_buckets("d", &[0.1, 1.0]).is_ok());
/// assert!(check_buckets("d", &[]).is_err());
/// assert!(check_buckets("d", &[1.0, 1.0]).is_err());
/// assert!(check_buckets("d", &[0.1, f64::INFINITY]).is_err());
/// ```
pub fn check_buckets(metric: &str, bounds: &[f64]) -> Result<(), MetricError> {
    let reason = if bounds.is_empty() {
        Some("at least one bound is needed")
    } else if bounds.iter().any(|b| !b.is_finite()) {
        Some("bounds must be finite (+Inf is implied)")
    } else if bounds.windows(2).any(|w| w[0] >= w[1]) {
        Some("bounds must be strictly increasing")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(MetricError::InvalidBuckets {
            metric: metric.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Something that writes one or more metric families in the text format.
///
/// Implement it for values computed at scrape time; register it with
/// [`Registry::register_collector`].
///
/// ```
/// use livetranslate_telemetry::registry::{Collect, Registry};
/// struct Answer;
/// impl Collect for Answer {
///     fn encode(&self, const_labels: &str, out: &mut String) {
///         out.push_str("# HELP answer The answer.\n# TYPE answer gauge\n");
///         out.push_str(&format!("answer{{{const_labels}}} 42\n"));
///     }
/// }
/// let registry = Registry::new(&[("service", "demo")]);
/// registry.register_collector(&["answer"], Answer).unwrap();
/// assert!(registry.render().contains("answer{service=\"demo\"} 42"));
/// ```
pub trait Collect: Send + Sync + 'static {
    /// Appends this collector's families to `out`; `const_labels` is the rendered
    /// `name="value",...` list of standard labels (possibly empty) to put first on every series.
    fn encode(&self, const_labels: &str, out: &mut String);

    /// Appends this collector's families to `out` in `format`. The default writes the text
    /// format with [`encode`](Self::encode) and, for OpenMetrics, converts it
    /// ([`encode::text_to_openmetrics`]); override it to write units or exemplars.
    ///
    /// ```
    /// use livetranslate_telemetry::registry::{encode::Format, Collect};
    /// struct Up;
    /// impl Collect for Up {
    ///     fn encode(&self, labels: &str, out: &mut String) {
    ///         out.push_str(&format!("# TYPE up_total counter\nup_total{{{labels}}} 1\n"));
    ///     }
    /// }
    /// let mut out = String::new();
    /// Up.encode_as(Format::OpenMetrics, "", &mut out);
    /// assert_eq!(out, "# TYPE up counter\nup_total{} 1\n");
    /// ```
    fn encode_as(&self, format: Format, const_labels: &str, out: &mut String) {
        match format {
            Format::Text => self.encode(const_labels, out),
            Format::OpenMetrics => {
                let mut text = String::new();
                self.encode(const_labels, &mut text);
                encode::text_to_openmetrics(&text, out);
            }
        }
    }
}

/// A metric kind that can live in a [`Family`].
pub trait Metric: Clone + Send + Sync + 'static {
    /// The `# TYPE` of the family.
    const KIND: &'static str;
    /// Writes this series' sample line(s).
    fn encode_series(&self, name: &str, labels: &[&str], out: &mut String);
}

impl Metric for Counter {
    const KIND: &'static str = "counter";
    fn encode_series(&self, name: &str, labels: &[&str], out: &mut String) {
        encode::write_sample(out, name, "", labels, Sample::Int(self.get()));
    }
}

impl Metric for Gauge {
    const KIND: &'static str = "gauge";
    fn encode_series(&self, name: &str, labels: &[&str], out: &mut String) {
        encode::write_sample(out, name, "", labels, Sample::Float(self.get()));
    }
}

impl Metric for Histogram {
    const KIND: &'static str = "histogram";
    fn encode_series(&self, name: &str, labels: &[&str], out: &mut String) {
        encode::write_histogram(out, name, labels, &self.snapshot(), self.bounds());
    }
}

struct FamilyInner<M> {
    name: String,
    help: String,
    label_names: Vec<String>,
    factory: Box<dyn Fn() -> M + Send + Sync>,
    /// Keyed by the rendered `name="value"` list, which is also what the encoder writes.
    series: RwLock<BTreeMap<String, M>>,
}

/// A metric with a fixed set of label names and one series per set of label values.
///
/// Look a series up once with [`Family::with`] and keep the handle: updating a handle is a
/// single atomic operation, the lookup is not free.
///
/// ```
/// use livetranslate_telemetry::registry::Registry;
/// let registry = Registry::new(&[]);
/// let translations = registry
///     .counter("translations_total", "Translations done.", &["language_pair"])
///     .unwrap();
/// let en_de = translations.with(&["en-de"]).unwrap();
/// en_de.inc();
/// assert!(registry.render().contains("translations_total{language_pair=\"en-de\"} 1"));
/// ```
pub struct Family<M: Metric>(Arc<FamilyInner<M>>);

impl<M: Metric> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family(self.0.clone())
    }
}

impl<M: Metric> fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.0.name)
            .field("labels", &self.0.label_names)
            .finish()
    }
}

impl<M: Metric> Family<M> {
    /// The series for these label values (in the order of the family's label names),
    /// created on first use.
    pub fn with(&self, values: &[&str]) -> Result<M, MetricError> {
        let inner = &*self.0;
        if values.len() != inner.label_names.len() {
            return Err(MetricError::LabelCount {
                metric: inner.name.clone(),
                expected: inner.label_names.len(),
                got: values.len(),
            });
        }
        let key = encode::render_labels(
            inner
                .label_names
                .iter()
                .map(String::as_str)
                .zip(values.iter().copied()),
        );
        if let Some(m) = read(&inner.series).get(&key) {
            return Ok(m.clone());
        }
        let mut series = write(&inner.series);
        Ok(series
            .entry(key)
            .or_insert_with(|| (inner.factory)())
            .clone())
    }

    /// Removes the series for these label values, if present (it disappears from the output).
    pub fn remove(&self, values: &[&str]) {
        let inner = &*self.0;
        let key = encode::render_labels(
            inner
                .label_names
                .iter()
                .map(String::as_str)
                .zip(values.iter().copied()),
        );
        write(&inner.series).remove(&key);
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl<M: Metric> Collect for Family<M> {
    fn encode(&self, const_labels: &str, out: &mut String) {
        self.encode_as(Format::Text, const_labels, out);
    }

    fn encode_as(&self, format: Format, const_labels: &str, out: &mut String) {
        let inner = &*self.0;
        let series = read(&inner.series);
        // A labeled family with no series yet still announces itself (HELP and TYPE).
        encode::write_family_header(out, format, &inner.name, &inner.help, M::KIND, None);
        for (labels, metric) in series.iter() {
            metric.encode_series(&inner.name, &[const_labels, labels], out);
        }
    }
}

/// Acquires a read lock, recovering from poisoning (the data are plain atomics and maps that a
/// panicking writer cannot leave half-updated in a way that matters for rendering).
pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// Acquires a write lock, recovering from poisoning.
pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    signature: String,
    collector: Arc<dyn Collect>,
    /// The `Family<M>` itself for registrations made through the typed methods, so that an
    /// identical second registration returns the same family.
    family: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

struct RegistryInner {
    const_labels: String,
    entries: RwLock<BTreeMap<String, Entry>>,
    last_len: AtomicUsize,
}

/// Holds every metric of a process and renders them in the Prometheus text format.
///
/// The standard labels given to [`Registry::new`] are put first on every series, including
/// those of custom collectors.
///
/// ```
/// use livetranslate_telemetry::registry::Registry;
/// let registry = Registry::new(&[("service", "audio"), ("cluster", "eu-1")]);
/// let g = registry.gauge("queue_depth", "Jobs waiting.", &[]).unwrap();
/// g.with(&[]).unwrap().set(3.0);
/// assert!(registry.render().contains("queue_depth{service=\"audio\",cluster=\"eu-1\"} 3"));
/// ```
#[derive(Clone)]
pub struct Registry(Arc<RegistryInner>);

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("const_labels", &self.0.const_labels)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry whose series all carry `const_labels`.
    pub fn new(const_labels: &[(&str, &str)]) -> Self {
        Registry(Arc::new(RegistryInner {
            const_labels: encode::render_labels(const_labels.iter().copied()),
            entries: RwLock::new(BTreeMap::new()),
            last_len: AtomicUsize::new(4096),
        }))
    }

    /// The rendered standard labels (`service="…",environment="…",…`).
    pub fn const_labels(&self) -> &str {
        &self.0.const_labels
    }

    fn family<M: Metric>(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        extra_signature: &str,
        factory: Box<dyn Fn() -> M + Send + Sync>,
    ) -> Result<Family<M>, MetricError> {
        if !is_valid_metric_name(name) {
            return Err(MetricError::InvalidName(name.to_owned()));
        }
        for label in label_names {
            if !is_valid_label_name(label) || is_reserved_label_name(label) {
                return Err(MetricError::InvalidLabelName {
                    metric: name.to_owned(),
                    label: (*label).to_owned(),
                });
            }
            if STANDARD_LABEL_NAMES.contains(label) || *label == "le" || *label == "quantile" {
                return Err(MetricError::ReservedLabel {
                    metric: name.to_owned(),
                    label: (*label).to_owned(),
                });
            }
        }
        let signature = format!(
            "{}|{}|{}|{}",
            M::KIND,
            help,
            label_names.join(","),
            extra_signature
        );
        let mut entries = write(&self.0.entries);
        if let Some(existing) = entries.get(name) {
            if existing.signature != signature {
                return Err(MetricError::Conflict(name.to_owned()));
            }
            // Same definition: hand out the existing family.
            return existing
                .family
                .as_ref()
                .and_then(|any| any.downcast_ref::<Family<M>>())
                .cloned()
                .ok_or_else(|| MetricError::Conflict(name.to_owned()));
        }
        if openmetrics_clash(&entries, name, M::KIND) {
            return Err(MetricError::Conflict(name.to_owned()));
        }
        let family = Family(Arc::new(FamilyInner {
            name: name.to_owned(),
            help: help.to_owned(),
            label_names: label_names.iter().map(|s| (*s).to_owned()).collect(),
            factory,
            series: RwLock::new(BTreeMap::new()),
        }));
        entries.insert(
            name.to_owned(),
            Entry {
                signature,
                collector: Arc::new(family.clone()),
                family: Some(Arc::new(family.clone())),
            },
        );
        Ok(family)
    }

    /// Registers (or returns the identical existing) counter family. The name must end in
    /// `_total`.
    pub fn counter(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<Family<Counter>, MetricError> {
        if !name.ends_with("_total") {
            return Err(MetricError::CounterSuffix(name.to_owned()));
        }
        self.family(name, help, label_names, "", Box::new(Counter::default))
    }

    /// Registers (or returns the identical existing) gauge family.
    pub fn gauge(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
    ) -> Result<Family<Gauge>, MetricError> {
        self.family(name, help, label_names, "", Box::new(Gauge::default))
    }

    /// Registers (or returns the identical existing) histogram family with these bucket
    /// upper bounds (see [`LATENCY_BUCKETS`](super::LATENCY_BUCKETS) and friends).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        buckets: &[f64],
    ) -> Result<Family<Histogram>, MetricError> {
        let proto = Histogram::new(buckets);
        let bounds: Arc<[f64]> = proto.bounds().into();
        let signature = format!("{:?}", bounds);
        self.family(
            name,
            help,
            label_names,
            &signature,
            Box::new(move || Histogram::with_bounds(bounds.clone())),
        )
    }

    /// Registers a custom collector that writes the families named in `names` (used to detect
    /// clashes with other registrations).
    pub fn register_collector(
        &self,
        names: &[&str],
        collector: impl Collect,
    ) -> Result<(), MetricError> {
        let mut entries = write(&self.0.entries);
        for name in names {
            if !is_valid_metric_name(name) {
                return Err(MetricError::InvalidName((*name).to_owned()));
            }
            if entries.contains_key(*name) {
                return Err(MetricError::Conflict((*name).to_owned()));
            }
        }
        let collector: Arc<dyn Collect> = Arc::new(collector);
        for (i, name) in names.iter().enumerate() {
            // Only the first name renders; the others reserve their names.
            let c: Arc<dyn Collect> = if i == 0 {
                collector.clone()
            } else {
                Arc::new(Nothing)
            };
            entries.insert(
                (*name).to_owned(),
                Entry {
                    signature: format!("collector|{}", names[0]),
                    collector: c,
                    family: None,
                },
            );
        }
        Ok(())
    }

    /// Registers a family whose series are created at run time (the `metrics` facade's)
    /// under `name`, a family of `kind` written by `collector`. Another registration of the
    /// same name, or one OpenMetrics would confuse with it (`x` next to counter `x_total`), is
    /// a [`MetricError::Conflict`].
    pub(crate) fn register_dynamic(
        &self,
        name: &str,
        kind: &str,
        signature: String,
        collector: Arc<dyn Collect>,
    ) -> Result<(), MetricError> {
        let mut entries = write(&self.0.entries);
        if entries.contains_key(name) || openmetrics_clash(&entries, name, kind) {
            return Err(MetricError::Conflict(name.to_owned()));
        }
        entries.insert(
            name.to_owned(),
            Entry {
                signature,
                collector,
                family: None,
            },
        );
        Ok(())
    }

    /// Renders every family in the text exposition format.
    pub fn render(&self) -> String {
        self.render_as(Format::Text)
    }

    /// Renders every family in `format` (OpenMetrics ends with `# EOF`).
    ///
    /// ```
    /// use livetranslate_telemetry::registry::{encode::Format, Registry};
    /// let registry = Registry::new(&[("service", "demo")]);
    /// registry.counter("jobs_total", "Jobs.", &[]).unwrap().with(&[]).unwrap().inc();
    /// let om = registry.render_as(Format::OpenMetrics);
    /// assert!(om.contains("# TYPE jobs counter\njobs_total{service=\"demo\"} 1\n"));
    /// assert!(om.ends_with("# EOF\n"));
    /// ```
    pub fn render_as(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.0.last_len.load(Ordering::Relaxed) + 1024);
        self.render_into_as(format, &mut out);
        self.0.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// Appends every family to `out` in the text format.
    pub fn render_into(&self, out: &mut String) {
        self.render_into_as(Format::Text, out);
    }

    /// Appends every family to `out` in `format`, with the format's ending.
    ///
    /// ```
    /// use livetranslate_telemetry::registry::{encode::Format, Registry};
    /// let mut out = String::new();
    /// Registry::new(&[]).render_into_as(Format::OpenMetrics, &mut out);
    /// assert_eq!(out, "# EOF\n");
    /// ```
    pub fn render_into_as(&self, format: Format, out: &mut String) {
        let entries = read(&self.0.entries);
        for entry in entries.values() {
            entry.collector.encode_as(format, &self.0.const_labels, out);
        }
        encode::write_end(out, format);
    }
}

/// Whether a new family `name` of `kind` would share its OpenMetrics family name with an
/// existing one: counter `x_total` is family `x` there, so it cannot sit next to a gauge `x`.
fn openmetrics_clash(entries: &BTreeMap<String, Entry>, name: &str, kind: &str) -> bool {
    if kind == "counter" {
        name.strip_suffix("_total")
            .is_some_and(|family| entries.contains_key(family))
    } else {
        entries
            .get(&format!("{name}_total"))
            .is_some_and(|e| e.signature.starts_with("counter|") || e.signature == "facade|counter")
    }
}

struct Nothing;
impl Collect for Nothing {
    fn encode(&self, _: &str, _: &mut String) {}
}
