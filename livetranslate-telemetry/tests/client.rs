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
use livetranslate_telemetry::breaker::{BreakerConfig, BreakerState};
use livetranslate_telemetry::client::{ErrorKind, UpstreamError};
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

/// An upstream that accepts connections and never answers.
async fn silent_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (format!("http://{addr}/slow"), task)
}

#[tokio::test]
async fn cancelled_call_leaves_no_request_in_flight() {
    let (url, _server) = silent_upstream().await;
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let up = t
        .upstream("audio", BreakerConfig::default())
        .expect("upstream");
    let client = reqwest::Client::new();
    let active = || {
        value(
            &t.render_metrics(),
            "http_client_active_requests",
            &["upstream=\"audio\""],
        )
    };
    assert_eq!(active(), Some(0.0));

    // A caller-side timeout drops the `send` future while the call is in flight.
    let mut call = Box::pin(up.send(client.get(&url)));
    let timed_out = tokio::time::timeout(Duration::from_millis(200), call.as_mut()).await;
    assert!(timed_out.is_err(), "the silent upstream must not answer");
    assert_eq!(active(), Some(1.0), "counted while in flight");
    drop(call);
    assert_eq!(active(), Some(0.0), "a dropped call is no longer in flight");

    // An aborted task, the other way a handler's work is cancelled.
    let task = tokio::spawn({
        let (up, client, url) = (up.clone(), client.clone(), url.clone());
        async move { up.send(client.get(&url)).await.map(|_| ()) }
    });
    for _ in 0..100 {
        if active() == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(active(), Some(1.0));
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    assert_eq!(active(), Some(0.0));
    // The breaker saw neither a success nor a failure.
    assert_eq!(up.breaker().state(), BreakerState::Closed);
}

#[tokio::test]
async fn http_get_check_is_unhealthy_on_a_non_2xx_answer() {
    use livetranslate_telemetry::health::HealthCheck;
    let status = Arc::new(AtomicU16::new(503));
    let url = upstream(status.clone(), Arc::default()).await;
    let client = reqwest::Client::new();
    let t = builder("orchestration", &[("HEALTH_CHECK_INTERVAL", "0.1")])
        .health_check(HealthCheck::http_get("audio-service", &client, &url))
        .build()
        .expect("telemetry");
    let check = |t: &livetranslate_telemetry::Telemetry| t.health().checks["audio-service"].clone();
    let wait = |want: &'static str| {
        let t = t.clone();
        async move {
            for _ in 0..200 {
                if check(&t).status.as_str() == want {
                    return check(&t);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("never {want}: {:?}", check(&t));
        }
    };
    // The upstream answers, but 503: that is down.
    let report = wait("unhealthy").await;
    let message = report.message.unwrap_or_default();
    assert!(message.contains("503"), "{message}");
    status.store(200, Ordering::SeqCst);
    wait("healthy").await;
    status.store(404, Ordering::SeqCst);
    wait("unhealthy").await;
}
