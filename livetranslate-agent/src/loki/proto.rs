//! Loki's push messages: the shared implementation in `livetranslate-telemetry`.

pub use livetranslate_telemetry::loki::proto::*;
