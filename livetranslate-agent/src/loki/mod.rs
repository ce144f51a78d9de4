//! Shipping to Loki: the push protobuf ([`proto`]), batches grouped by stream ([`batch`]), the
//! client ([`client`], over the shared `livetranslate-push` client: Loki only adds its
//! encoding) and its configuration ([`config`]).

pub mod batch;
pub mod client;
pub mod config;
pub mod proto;

pub use batch::Batch;
pub use client::{LokiClient, LokiError, PushOutcome};
pub use config::{LokiConfig, LokiFile};
