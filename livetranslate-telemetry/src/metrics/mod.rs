//! Metrics: lock-free primitives, labeled families, the [`Registry`] that renders them in the
//! Prometheus text format or OpenMetrics, the `metrics` crate facade recorder, process
//! metrics and the typed LiveTranslate domain metrics.
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
mod registry;
pub(crate) mod sharded;

pub(crate) use domain::BreakerMetrics;
pub use domain::{
    BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, CallError, CircuitBreaker,
    ConnectionLimitReached, SessionGuard, Sessions, TranslationQuality, WebSocketGuard, WebSockets,
};
pub use primitives::{
    Counter, Gauge, Histogram, HistogramSnapshot, LATENCY_BUCKETS, SCORE_BUCKETS, SIZE_BUCKETS,
};
pub use recorder::{
    Matcher, MetricsRecorder, MetricsRecorderBuilder, RecorderError, DEFAULT_SERIES_LIMIT,
};
pub use registry::{check_buckets, Collect, Family, Metric, MetricError, Registry};
pub(crate) use registry::{read, write};
