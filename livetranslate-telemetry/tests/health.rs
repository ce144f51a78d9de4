//! Health checks run in the background; the endpoints serve the latest results at once.

mod common;

use std::time::Duration;

use axum::Router;
use common::{builder, get};
use http::StatusCode;
use livetranslate_telemetry::health::{CheckOutcome, HealthCheck};
use livetranslate_test_support::exposition::value;
use serde_json::Value;

async fn health_json(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (res, body) = tokio::time::timeout(Duration::from_secs(2), get(app, uri))
        .await
        .expect("health endpoint must answer without waiting for checks");
    (
        res.status(),
        serde_json::from_str(&body).expect("JSON body"),
    )
}

/// Polls `/api/health` until `pred` holds (bounded), returning the last body.
async fn wait_for(app: &Router, pred: impl Fn(&Value) -> bool) -> (StatusCode, Value) {
    let mut last = health_json(app, "/api/health").await;
    for _ in 0..300 {
        if pred(&last.1) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = health_json(app, "/api/health").await;
    }
    panic!("condition never held; last report: {}", last.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_check_is_unhealthy_after_its_timeout_while_endpoint_answers() {
    let t = builder("orchestration", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(
            HealthCheck::new("hangs", || async {
                std::future::pending::<()>().await;
                CheckOutcome::healthy()
            })
            .timeout(Duration::from_millis(300)),
        )
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    // Answers immediately while the first run is still hanging.
    let (code, body) = health_json(&app, "/api/health").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["hangs"]["status"], "pending");
    let (code, body) = wait_for(&app, |b| b["checks"]["hangs"]["status"] == "unhealthy").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");
    let msg = body["checks"]["hangs"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("timed out"), "{msg}");
    let (code, _) = health_json(&app, "/api/health/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let (code, _) = health_json(&app, "/api/health/live").await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn panicking_check_is_reported_unhealthy() {
    let t = builder("audio", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(HealthCheck::new("explodes", || async {
            if std::hint::black_box(true) {
                panic!("model file vanished");
            }
            CheckOutcome::healthy()
        }))
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    let (code, body) = wait_for(&app, |b| b["checks"]["explodes"]["status"] == "unhealthy").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let msg = body["checks"]["explodes"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("panicked") && msg.contains("model file vanished"),
        "{msg}"
    );
}

#[tokio::test]
async fn critical_failure_is_503_non_critical_is_degraded() {
    let t = builder("audio", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(HealthCheck::new("db", || async { Ok::<(), String>(()) }))
        .health_check(
            HealthCheck::new("cache", || async { Err::<(), _>("connection refused") })
                .critical(false),
        )
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    let (code, body) = wait_for(&app, |b| {
        b["checks"]["db"]["status"] == "healthy" && b["checks"]["cache"]["status"] == "unhealthy"
    })
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["service"], "audio");
    assert_eq!(body["version"], "1.2.3");
    assert!(body["uptime_seconds"].as_f64().is_some());
    assert_eq!(body["checks"]["cache"]["critical"], false);
    assert_eq!(body["checks"]["cache"]["message"], "connection refused");
    assert!(body["checks"]["db"]["latency_ms"].as_f64().is_some());
    let (code, _) = health_json(&app, "/api/health/ready").await;
    assert_eq!(
        code,
        StatusCode::OK,
        "non-critical failures keep the service ready"
    );

    let text = t.render_metrics();
    assert_eq!(
        value(
            &text,
            "livetranslate_health_status",
            &["status=\"degraded\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "livetranslate_health_check_status",
            &["check=\"cache\"", "status=\"unhealthy\""]
        ),
        Some(1.0)
    );
    let failures = value(
        &text,
        "livetranslate_health_check_failures_total",
        &["check=\"cache\""],
    )
    .expect("failure counter");
    assert!(failures >= 1.0);
}

#[tokio::test]
async fn failing_critical_check_gives_503_and_recovers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let t = builder("orchestration", &[("HEALTH_CHECK_INTERVAL", "0.05")])
        .health_check(HealthCheck::new("upstream", move || {
            let ok = flag.load(Ordering::SeqCst);
            async move {
                if ok {
                    CheckOutcome::healthy()
                } else {
                    CheckOutcome::unhealthy("upstream down")
                }
            }
        }))
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    let (code, _) = wait_for(&app, |b| b["status"] == "unhealthy").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    up.store(true, Ordering::SeqCst);
    let (code, body) = wait_for(&app, |b| b["status"] == "healthy").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["checks"]["upstream"]["consecutive_failures"], 0);
}

#[test]
fn checks_need_a_runtime() {
    let err = builder("audio", &[])
        .health_check(HealthCheck::new("x", || async { Ok::<(), String>(()) }))
        .build()
        .expect_err("no runtime");
    assert!(err.to_string().contains("tokio runtime"));
}
