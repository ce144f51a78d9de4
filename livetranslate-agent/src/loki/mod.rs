//! Shipping to Loki: the push protobuf, batches grouped by stream, and the retrying client.

pub mod batch;
pub mod client;
pub mod proto;

pub use batch::{Batch, LogEntry};
pub use client::{LokiClient, LokiConfig, LokiError, PushOutcome};
