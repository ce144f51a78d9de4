//! One HTTP push client for every path that POSTs encoded batches somewhere and must retry:
//! the library's direct Loki shipping, the agent's Loki client and the agent's Prometheus
//! remote write. Each path keeps only its encoding (protobuf + snappy of its own messages);
//! everything about HTTP lives here, written once:
//!
//! - [`HttpClientSettings`] → [`HttpClientConfig`]: basic or bearer authentication (inline or
//!   read from files), TLS (extra CA, client certificate, `insecure_skip_verify`), in the shape
//!   Prometheus' and Promtail's `basic_auth` / `bearer_token_file` / `tls_config` use.
//! - [`PushClient`]: one endpoint, its fixed headers (content type, a Loki tenant validated
//!   once), one [`Attempt`] classified as sent / retry (with the server's `Retry-After`) /
//!   rejected (with the server's reason), and [`PushClient::push`]: the retry loop with
//!   exponential [`backoff`] and jitter, bounded retries and cancellation.
//! - [`redact_url`]: the one function that makes a URL safe to print.
//! - [`loki`]: Loki's push URL from a base URL, and the `X-Scope-OrgID` check.
//!
//! ```no_run
//! # async fn demo() -> Result<(), livetranslate_push::ClientError> {
//! use std::time::Duration;
//! use livetranslate_push::{PushClient, PushOutcome, RetryPolicy};
//!
//! let client = PushClient::builder("http://127.0.0.1:9090/api/v1/write")
//!     .header("content-encoding", "snappy")?
//!     .timeout(Duration::from_secs(30))
//!     .build()?;
//! let policy = RetryPolicy::default();
//! let body = bytes::Bytes::from_static(b"...");
//! match client.push(body, &policy, std::future::pending::<()>(), |_event| {}).await {
//!     PushOutcome::Sent => {}
//!     other => eprintln!("not delivered: {other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! This crate depends on none of the project's other crates.

pub mod backoff;
mod client;
mod http_client;
pub mod loki;
mod redact;
mod response;
mod settings;

pub use backoff::{backoff, RetryPolicy};
pub use client::{PushClient, PushClientBuilder, PushEvent, PushOutcome};
pub use http_client::{ClientError, HttpClientConfig, TlsConfig};
pub use redact::{redact_url, REDACTED};
pub use response::{parse_retry_after, Attempt};
pub use settings::{
    AuthorizationSettings, BasicAuthSettings, HttpClientSettings, SettingsError, TlsSettings,
};
