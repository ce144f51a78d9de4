use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::Router;

use super::runner::Health;
use super::HealthStatus;

/// `/api/health`, `/api/health/live` and `/api/health/ready`.
pub(crate) fn routes(health: Arc<Health>) -> Router {
    Router::new()
        .route("/api/health", get(health_handler))
        .route("/api/health/live", get(live_handler))
        .route("/api/health/ready", get(ready_handler))
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
    Json(serde_json::json!({ "status": "alive" }))
}

async fn ready_handler(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let report = health.report();
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|(_, c)| {
            c.critical && !matches!(c.status, HealthStatus::Healthy | HealthStatus::Degraded)
        })
        .map(|(n, _)| n.as_str())
        .collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not_ready", "failing": failing })),
        )
    }
}
