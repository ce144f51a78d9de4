//! Metrics: lock-free primitives, labeled families, the [`Registry`] that renders them in the
//! Prometheus text format, process metrics and the typed LiveTranslate domain metrics.
//!
//! The split follows metrics-rs: handles ([`Counter`], [`Gauge`], [`Histogram`]) are what code
//! updates; the [`Registry`] records them; the `/api/metrics` handler (see
//! [`Telemetry::router`](crate::Telemetry)) is the only exporter, and callers never touch it.

mod domain;
pub mod encode;
mod primitives;
pub(crate) mod process;
mod registry;
pub(crate) mod sharded;

pub use domain::{
    ConnectionLimitReached, SessionGuard, Sessions, TranslationQuality, WebSocketGuard, WebSockets,
};
pub use primitives::{
    Counter, Gauge, Histogram, HistogramSnapshot, LATENCY_BUCKETS, SCORE_BUCKETS, SIZE_BUCKETS,
};
pub(crate) use registry::{read, write};
pub use registry::{Collect, Family, Metric, MetricError, Registry};
