//! Outbound instrumentation against a real upstream on loopback that fails and recovers.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use common::{builder, send};
use http::Request;
use livetranslate_telemetry::client::{ErrorKind, UpstreamError};
use livetranslate_telemetry::metrics::{BreakerConfig, BreakerState};
use livetranslate_test_support::exposition::value;

/// An upstream answering the status in `status`, recording the headers it received.
async fn upstream(status: Arc<AtomicU16>, seen: Arc<Mutex<Vec<HeaderMap>>>) -> String {
    let app = Router::new().route(
        "/work",
        get(move |headers: HeaderMap| {
            let (status, seen) = (status.clone(), seen.clone());
            async move {
                seen.lock().expect("lock").push(headers);
                StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/work")
}

#[tokio::test]
async fn breaker_opens_rejects_half_opens_and_closes_with_metrics_at_each_step() {
    let status = Arc::new(AtomicU16::new(500));
    let url = upstream(status.clone(), Arc::default()).await;
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let audio = t
        .upstream(
            "audio",
            BreakerConfig {
                failure_threshold: 3,
                open_for: Duration::from_millis(300),
                ..Default::default()
            },
        )
        .expect("upstream");
    let client = reqwest::Client::new();
    let state = |s: &str| {
        value(
            &t.render_metrics(),
            "livetranslate_circuit_breaker_state",
            &["upstream=\"audio\"", &format!("state=\"{s}\"")],
        )
    };

    // 1. Three 500s open the breaker.
    for _ in 0..3 {
        let res = audio.send(client.get(&url)).await.expect("a response");
        assert_eq!(res.status(), 500);
    }
    assert_eq!(audio.breaker().state(), BreakerState::Open);
    assert_eq!(state("open"), Some(1.0));
    let text = t.render_metrics();
    assert_eq!(
        value(
            &text,
            "http_client_request_duration_seconds_count",
            &[
                "upstream=\"audio\"",
                "http_response_status_code=\"500\"",
                "http_request_method=\"GET\""
            ]
        ),
        Some(3.0)
    );

    // 2. While open, calls are rejected without reaching the upstream, and counted.
    status.store(200, Ordering::SeqCst);
    let err = audio.send(client.get(&url)).await.expect_err("open");
    assert!(matches!(err, UpstreamError::Open(_)), "{err}");
    assert_eq!(
        value(
            &t.render_metrics(),
            "livetranslate_circuit_breaker_rejected_calls_total",
            &["upstream=\"audio\""]
        ),
        Some(1.0)
    );

    // 3. After the open interval a probe goes through (half-open) and its success closes it.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(audio.breaker().state(), BreakerState::HalfOpen);
    let res = audio.send(client.get(&url)).await.expect("probe");
    assert_eq!(res.status(), 200);
    assert_eq!(audio.breaker().state(), BreakerState::Closed);
    assert_eq!(state("closed"), Some(1.0));
    let text = t.render_metrics();
    for (from, to) in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ] {
        assert_eq!(
            value(
                &text,
                "livetranslate_circuit_breaker_transitions_total",
                &[
                    "upstream=\"audio\"",
                    &format!("from=\"{from}\""),
                    &format!("to=\"{to}\"")
                ]
            ),
            Some(1.0),
            "{from} -> {to}"
        );
    }
    assert_eq!(
        value(
            &text,
            "http_client_active_requests",
            &["upstream=\"audio\""]
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn connection_errors_are_labelled_and_count_as_failures() {
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let up = t
        .upstream(
            "translation",
            BreakerConfig {
                failure_threshold: 2,
                ..Default::default()
            },
        )
        .expect("upstream");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let client = reqwest::Client::new();
    for _ in 0..2 {
        match up
            .send(client.get(format!("http://127.0.0.1:{port}/x")))
            .await
        {
            Err(UpstreamError::Request { kind, .. }) => assert_eq!(kind, ErrorKind::Connect),
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
    assert_eq!(up.breaker().state(), BreakerState::Open);
    assert_eq!(
        value(
            &t.render_metrics(),
            "http_client_request_duration_seconds_count",
            &["upstream=\"translation\"", "error_type=\"connect\""]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn failure_rate_trips_without_consecutive_failures() {
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let b = t
        .circuit_breaker(
            "flaky",
            BreakerConfig {
                failure_threshold: 100,
                failure_rate: Some(0.5),
                window: 10,
                min_calls: 10,
                ..Default::default()
            },
        )
        .expect("breaker");
    for i in 0..10 {
        let p = b.try_acquire().expect("closed");
        if i % 2 == 0 {
            p.failure();
        } else {
            p.success();
        }
    }
    assert_eq!(b.state(), BreakerState::Open, "5 of 10 failed");
}

#[tokio::test]
async fn request_id_and_traceparent_follow_the_request_to_the_upstream() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = upstream(Arc::new(AtomicU16::new(200)), seen.clone()).await;
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let up = t
        .upstream("audio", BreakerConfig::default())
        .expect("upstream");
    let client = reqwest::Client::new();
    let app = t.router(Router::new().route(
        "/api/pipeline",
        get(move || {
            let (up, client, url) = (up.clone(), client.clone(), url.clone());
            async move {
                up.send(client.get(&url))
                    .await
                    .map(|r| r.status().as_u16().to_string())
                    .unwrap_or_default()
            }
        }),
    ));
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let req = Request::get("/api/pipeline")
        .header("x-request-id", "trace-me-42")
        .header("traceparent", traceparent)
        .body(Body::empty())
        .expect("request");
    let (_, body) = send(&app, req).await;
    assert_eq!(body, "200");
    let headers = seen
        .lock()
        .expect("lock")
        .pop()
        .expect("upstream was called");
    assert_eq!(headers["x-request-id"], "trace-me-42");
    assert_eq!(headers["traceparent"], traceparent);
}
