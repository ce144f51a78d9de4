use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::runner::{Health, NotReady};
use super::HealthStatus;

/// `/api/health`, `/api/health/live`, `/api/health/ready` and `/api/health/{group}`.
pub(crate) fn routes(health: Arc<Health>) -> Router {
    Router::new()
        .route("/api/health", get(health_handler))
        .route("/api/health/live", get(live_handler))
        .route("/api/health/ready", get(ready_handler))
        .route("/api/health/{group}", get(group_handler))
        .with_state(health)
}

async fn health_handler(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let report = health.report();
    let code = if report.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report))
}

async fn live_handler() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

async fn ready_handler(State(health): State<Arc<Health>>) -> Response {
    let body = match health.readiness() {
        Ok(()) => return (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Err(NotReady::ShuttingDown) => json!({ "status": "not_ready", "reason": "shutting_down" }),
        Err(NotReady::Application) => json!({ "status": "not_ready", "reason": "application" }),
        Err(NotReady::FailingChecks(failing)) => {
            json!({ "status": "not_ready", "reason": "failing_checks", "failing": failing })
        }
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn group_handler(State(health): State<Arc<Health>>, Path(name): Path<String>) -> Response {
    match health.group(&name) {
        Some((group, status, checks)) => {
            let body = if group.show_details {
                json!({ "status": status, "group": group.name, "checks": checks })
            } else {
                json!({ "status": status })
            };
            (group.status_code(status), Json(body)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such health group", "group": name })),
        )
            .into_response(),
    }
}
