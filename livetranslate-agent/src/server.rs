//! The agent's HTTP server: `/metrics` (its own metrics), `/ready`, the status page on `/`
//! (also on `/targets`, where Promtail and Prometheus keep theirs), rendered by
//! [`crate::status`], and configuration reloads: `POST /-/reload` (as Prometheus and
//! Alertmanager take it; `PUT` too) and Promtail's `/reload` (`GET` or `POST`). A reload
//! answers 200 once the new configuration runs, 500 with the error when it was refused (the
//! previous one goes on).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use crate::internal_events::AgentMetrics;
use crate::logs::checkpointer::Checkpointer;
use crate::metrics::scrape::StatusBoard;
use crate::status::{self, PageSources, Refused, Snapshot};
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
    /// The rest of what the status page shows (replaced by a reload).
    pub page: Arc<std::sync::RwLock<PageSources>>,
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
        .route("/targets", get(status_page))
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

/// The snapshot the status page shows now.
pub fn snapshot(state: &ServerState) -> Snapshot {
    let page = state.page.read().unwrap_or_else(|e| e.into_inner());
    page.collect(
        &state.metrics,
        &state.status,
        state.logs.as_deref(),
        &state.destination,
    )
}

/// The text of the status page (its plain-text view).
pub fn render_status(state: &ServerState) -> String {
    status::text::render(&snapshot(state))
}

/// `/` and `/targets`: the view `?format=` or `Accept` asks for (see [`status::negotiate`]).
async fn status_page(
    State(s): State<ServerState>,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let view = match status::choose(uri.query(), accept) {
        Ok(view) => view,
        Err(refused) => {
            let code = match refused {
                Refused::UnknownFormat(_) => StatusCode::BAD_REQUEST,
                Refused::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            };
            return (
                code,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::VARY, "Accept"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                format!("{refused}\n"),
            );
        }
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, view.content_type()),
            (header::VARY, "Accept"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        status::render(view, &snapshot(&s)),
    )
}
