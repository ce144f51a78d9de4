//! The agent's HTTP server: `/metrics` (its own metrics), `/ready`, `/` (a plain-text status
//! page listing the scrape targets), and configuration reloads: `POST /-/reload` (as
//! Prometheus and Alertmanager take it; `PUT` too) and Promtail's `/reload` (`GET` or
//! `POST`). A reload answers 200 once the new configuration runs, 500 with the error when it
//! was refused (the previous one goes on).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use crate::internal_events::AgentMetrics;
use crate::logs::checkpointer::Checkpointer;
use crate::metrics::scrape::StatusBoard;
use crate::validate::{KeyPath, ValidationError};

/// Default `--listen` address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9080";

/// The server's address: `--listen`, else the file's `listen:`, else [`DEFAULT_LISTEN`].
///
/// ```
/// use livetranslate_agent::server::listen_address;
/// assert_eq!(listen_address(None, None).unwrap().to_string(), "0.0.0.0:9080");
/// assert_eq!(listen_address(Some("127.0.0.1:1"), Some("x")).unwrap().port(), 1);
/// assert!(listen_address(None, Some("nowhere")).unwrap_err().to_string().starts_with("listen: "));
/// ```
pub fn listen_address(
    flag: Option<&str>,
    file: Option<&str>,
) -> Result<SocketAddr, ValidationError> {
    let (text, from_flag) = match (flag, file) {
        (Some(f), _) => (f, true),
        (None, Some(f)) => (f, false),
        (None, None) => (DEFAULT_LISTEN, true),
    };
    text.trim().parse().map_err(|_| {
        let message = format!("{text:?} is not an IP:port address");
        if from_flag {
            ValidationError::flag("--listen", message)
        } else {
            ValidationError::at(KeyPath::root().key("listen"), message)
        }
    })
}

/// Content type of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handlers read.
#[derive(Clone)]
pub struct ServerState {
    /// Agent metrics.
    pub metrics: AgentMetrics,
    /// Scrape target status.
    pub status: StatusBoard,
    /// Set once the configuration is loaded and the pipelines started.
    pub ready: Arc<AtomicBool>,
    /// One line describing where samples go.
    pub destination: String,
    /// Progress of the tailed log files, when logs are shipped.
    pub logs: Option<Arc<Checkpointer>>,
    /// Where reload requests go (none: reloading is not available).
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
}

/// A request to reload the configuration; the outcome goes back on `reply`.
#[derive(Debug)]
pub struct ReloadRequest {
    /// Where the outcome goes (the error message of a refused configuration).
    pub reply: Option<oneshot::Sender<Result<(), String>>>,
}

/// The router.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .route("/-/reload", axum::routing::post(reload).put(reload))
        .route("/reload", get(reload).post(reload))
        .with_state(state)
}

async fn metrics(State(s): State<ServerState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        s.metrics.registry().render(),
    )
}

async fn reload(State(s): State<ServerState>) -> impl IntoResponse {
    let Some(tx) = s.reload else {
        return (
            StatusCode::NOT_IMPLEMENTED,
            "reloading is not available\n".to_owned(),
        );
    };
    let (reply, answer) = oneshot::channel();
    if tx.send(ReloadRequest { reply: Some(reply) }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".to_owned());
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, "configuration reloaded\n".to_owned()),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".to_owned()),
    }
}

async fn ready(State(s): State<ServerState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

fn format_ms(ms: i64) -> String {
    let mut out = String::with_capacity(32);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    livetranslate_telemetry::logging::write_rfc3339(&mut out, at);
    out
}

/// The text of the status page.
pub fn render_status(state: &ServerState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "livetranslate-agent {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "metrics: {}", state.destination);
    let _ = writeln!(out);
    let board = state.status.lock().map(|b| b.clone()).unwrap_or_default();
    let _ = writeln!(out, "targets: {}", board.len());
    for t in board.values() {
        let up = match t.up {
            Some(true) => "up",
            Some(false) => "DOWN",
            None => "pending",
        };
        let last = t
            .last_scrape_ms
            .map_or_else(|| "never".to_owned(), format_ms);
        let took = t
            .last_duration
            .map_or_else(String::new, |d| format!(" in {:.3}s", d.as_secs_f64()));
        let _ = writeln!(
            out,
            "  [{up}] job={} instance={} url={}\n        last scrape {last}{took}, {} samples{}",
            t.job,
            t.instance,
            t.url,
            t.samples,
            t.last_error
                .as_ref()
                .map_or_else(String::new, |e| format!(", error: {e}"))
        );
    }
    if let Some(tracker) = &state.logs {
        let files = tracker.files();
        let _ = writeln!(out);
        let _ = writeln!(out, "log files: {}", files.len());
        for f in files {
            let _ = writeln!(
                out,
                "  {}{}\n        size {} B, read {} B, acknowledged {} B, lag {} B",
                f.path,
                if f.closed { " (rotated, draining)" } else { "" },
                f.size,
                f.read,
                f.acked,
                f.lag()
            );
        }
    }
    out
}

async fn status_page(State(s): State<ServerState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        render_status(&s),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123000Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000000Z");
    }
}
