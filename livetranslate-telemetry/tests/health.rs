//! Health checks run in the background; the endpoints serve the latest results at once.

mod common;

use std::time::Duration;

use axum::Router;
use common::{builder, get};
use http::StatusCode;
use livetranslate_telemetry::health::{CheckOutcome, HealthCheck, HealthGroup, HealthStatus};
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
        .health_check(HealthCheck::new("db", || async { Ok(()) }))
        .health_check(
            HealthCheck::new("cache", || async { Err("connection refused".into()) })
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
    let t = builder("orchestration", &[("HEALTH_CHECK_INTERVAL", "0.1")])
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
        .health_check(HealthCheck::new("x", || async { Ok(()) }))
        .build()
        .expect_err("no runtime");
    assert!(err.to_string().contains("tokio runtime"));
}

#[tokio::test]
async fn check_closures_need_no_error_type_annotation() {
    // `Ok(())` alone, `?` on any error, a message with `.into()`: no turbofish anywhere.
    let t = builder("audio", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(HealthCheck::new("plain", || async { Ok(()) }))
        .health_check(HealthCheck::new("parse", || async {
            let _n: u16 = "70000".parse()?;
            Ok(())
        }))
        .health_check(
            HealthCheck::new("message", || async { Err("queue full".into()) }).critical(false),
        )
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    let (_, body) = wait_for(&app, |b| {
        b["checks"]
            .as_object()
            .is_some_and(|c| c.values().all(|c| c["status"] != "pending"))
    })
    .await;
    assert_eq!(body["checks"]["plain"]["status"], "healthy");
    assert_eq!(body["checks"]["parse"]["status"], "unhealthy");
    assert_eq!(
        body["checks"]["parse"]["message"],
        "number too large to fit in target type"
    );
    assert_eq!(body["checks"]["message"]["message"], "queue full");
}

#[tokio::test]
async fn set_ready_false_takes_the_service_out_of_rotation_until_set_back() {
    let t = builder("audio", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(HealthCheck::new("db", || async { Ok(()) }))
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    wait_for(&app, |b| b["status"] == "healthy").await;
    assert!(t.is_ready());
    let (code, body) = health_json(&app, "/api/health/ready").await;
    assert_eq!((code, &body["status"]), (StatusCode::OK, &"ready".into()));

    t.set_ready(false); // warming up
    assert!(!t.is_ready());
    let (code, body) = health_json(&app, "/api/health/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["reason"], "application");
    // Liveness and the health report are not readiness.
    assert_eq!(
        health_json(&app, "/api/health/live").await.0,
        StatusCode::OK
    );
    assert_eq!(health_json(&app, "/api/health").await.0, StatusCode::OK);

    t.set_ready(true);
    assert_eq!(
        health_json(&app, "/api/health/ready").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_groups_aggregate_their_members_with_their_own_http_mapping() {
    let t = builder("orchestration", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(HealthCheck::new("postgres", || async { Ok(()) }))
        .health_check(
            HealthCheck::new("redis", || async { Err("connection refused".into()) })
                .critical(false),
        )
        .health_check(HealthCheck::new("audio-service", || async {
            Err("503 from audio".into())
        }))
        .health_group(
            HealthGroup::new("storage")
                .include("postgres")
                .include("redis"),
        )
        .health_group(
            HealthGroup::new("storage-strict")
                .include("postgres")
                .include("redis")
                .http_status(HealthStatus::Degraded, StatusCode::SERVICE_UNAVAILABLE),
        )
        .health_group(HealthGroup::new("database").include("postgres"))
        .health_group(HealthGroup::new("upstreams").include("audio-service"))
        .health_group(
            HealthGroup::new("public")
                .include("*")
                .exclude("audio-service")
                .show_details(false),
        )
        .build()
        .expect("telemetry");
    let app = t.router(Router::new());
    wait_for(&app, |b| {
        b["checks"]["redis"]["status"] == "unhealthy"
            && b["checks"]["audio-service"]["status"] == "unhealthy"
            && b["checks"]["postgres"]["status"] == "healthy"
    })
    .await;

    // The whole service is down (a critical check fails) ...
    assert_eq!(
        health_json(&app, "/api/health").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // ... but each group reports on its own members only.
    let (code, body) = health_json(&app, "/api/health/storage").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["group"], "storage");
    let members: Vec<&String> = body["checks"].as_object().expect("checks").keys().collect();
    assert_eq!(members, ["postgres", "redis"]);
    assert_eq!(body["checks"]["redis"]["message"], "connection refused");

    let (code, body) = health_json(&app, "/api/health/storage-strict").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "mapped: {body}");
    assert_eq!(body["status"], "degraded");

    let (code, body) = health_json(&app, "/api/health/database").await;
    assert_eq!((code, &body["status"]), (StatusCode::OK, &"healthy".into()));

    let (code, body) = health_json(&app, "/api/health/upstreams").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");

    let (code, body) = health_json(&app, "/api/health/public").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({ "status": "degraded" }),
        "no details"
    );

    let (code, body) = health_json(&app, "/api/health/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["group"], "nope");
    // The fixed endpoints keep their meaning.
    assert_eq!(
        health_json(&app, "/api/health/live").await.0,
        StatusCode::OK
    );
    assert_eq!(
        health_json(&app, "/api/health/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_group_naming_a_missing_check_is_a_build_error() {
    let err = builder("audio", &[])
        .health_check(HealthCheck::new("db", || async { Ok(()) }))
        .health_group(HealthGroup::new("storage").include("db").include("dbb"))
        .build()
        .expect_err("typo in a member")
        .to_string();
    assert!(err.contains("storage") && err.contains("\"dbb\""), "{err}");
    let err = builder("audio", &[])
        .health_check(HealthCheck::new("db", || async { Ok(()) }))
        .health_group(HealthGroup::new("ready").include("db"))
        .build()
        .expect_err("reserved name")
        .to_string();
    assert!(err.contains("fixed endpoint"), "{err}");
    let err = builder("audio", &[])
        .health_check(HealthCheck::new("db", || async { Ok(()) }))
        .health_group(HealthGroup::new("g").include("db"))
        .health_group(HealthGroup::new("g").include("*"))
        .build()
        .expect_err("two groups of one name")
        .to_string();
    assert!(err.contains("two groups"), "{err}");
}
