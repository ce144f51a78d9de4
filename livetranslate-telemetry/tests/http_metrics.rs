//! The HTTP middleware and `/api/metrics`.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use common::{builder, get as get_req, send};
use http::{Method, Request, StatusCode};
use livetranslate_test_support::exposition::{samples, value};

fn app(telemetry: &livetranslate_telemetry::Telemetry) -> Router {
    telemetry.router(
        Router::new()
            .route("/api/users/{id}", get(|| async { "user" }))
            .route("/api/echo", post(|body: String| async move { body }))
            .route(
                "/api/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            ),
    )
}

#[tokio::test]
async fn metrics_endpoint_serves_text_format_with_standard_labels() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = app(&t);
    get_req(&app, "/api/users/42").await;
    let (res, body) = get_req(&app, "/api/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let line = samples(&body, "http_server_request_duration_seconds_count")
        .into_iter()
        .find(|l| l.contains("/api/users/{id}"))
        .expect("series for the route template");
    for label in [
        "service=\"audio\"",
        "environment=\"test\"",
        "version=\"1.2.3\"",
        "cluster=\"test-cluster\"",
        "http_request_method=\"GET\"",
        "http_route=\"/api/users/{id}\"",
        "http_response_status_code=\"200\"",
    ] {
        assert!(line.contains(label), "{label} missing in {line}");
    }
    assert!(
        !body.contains("/api/users/42"),
        "raw path leaked into labels"
    );
    // Every series the crate emits carries the standard labels.
    for l in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(l.contains("service=\"audio\""), "no service label: {l}");
        assert!(
            l.contains("cluster=\"test-cluster\""),
            "no cluster label: {l}"
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "livetranslate_build_info",
    ] {
        assert!(!samples(&body, name).is_empty(), "{name} missing");
    }
}

#[tokio::test]
async fn status_method_and_unmatched_routes_are_bounded_labels() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = app(&t);
    get_req(&app, "/api/fail").await;
    get_req(&app, "/no/such/path").await;
    get_req(&app, "/another/missing/path?x=1").await;
    let req = Request::builder()
        .method(Method::from_bytes(b"PROPFIND").expect("method"))
        .uri("/api/users/7")
        .body(Body::empty())
        .expect("request");
    send(&app, req).await;
    let text = t.render_metrics();
    let count = "http_server_request_duration_seconds_count";
    assert_eq!(
        value(&text, count, &["http_route=\"/api/fail\"", "code=\"500\""]),
        Some(1.0)
    );
    assert_eq!(
        value(&text, count, &["http_route=\"unmatched\"", "code=\"404\""]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            count,
            &["http_request_method=\"_OTHER\"", "code=\"405\""]
        ),
        Some(1.0)
    );
    assert!(!text.contains("/no/such/path"));
    assert!(!text.contains("PROPFIND"));
}

#[tokio::test]
async fn random_unmatched_paths_add_at_most_one_series() {
    let t = builder("translation", &[]).build().expect("telemetry");
    let app = app(&t);
    get_req(&app, "/api/users/1").await;
    let series = |t: &livetranslate_telemetry::Telemetry| {
        samples(
            &t.render_metrics(),
            "http_server_request_duration_seconds_count",
        )
        .len()
    };
    let before = series(&t);
    for i in 0..10_000u32 {
        let uri = format!(
            "/scan/{:08x}/wp-admin.php?x={i}",
            i.wrapping_mul(2_654_435_761)
        );
        get_req(&app, &uri).await;
    }
    let after = series(&t);
    assert!(
        after <= before + 1,
        "HTTP series grew from {before} to {after}"
    );
    let text = t.render_metrics();
    assert_eq!(
        value(
            &text,
            "http_server_request_duration_seconds_count",
            &["http_route=\"unmatched\""]
        ),
        Some(10_000.0)
    );
}

#[tokio::test]
async fn body_sizes_are_recorded() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = app(&t);
    let payload = "x".repeat(3000);
    let req = Request::post("/api/echo")
        .header("content-type", "text/plain")
        .body(Body::from(payload.clone()))
        .expect("request");
    let (_, echoed) = send(&app, req).await;
    assert_eq!(echoed.len(), 3000);
    // A streamed (chunked) request body of unknown length is counted as it is read.
    let chunks = futures_stream(vec!["ab".repeat(500), "cd".repeat(250)]);
    let req = Request::post("/api/echo")
        .body(Body::from_stream(chunks))
        .expect("request");
    send(&app, req).await;
    let text = t.render_metrics();
    let route = "http_route=\"/api/echo\"";
    assert_eq!(
        value(&text, "http_server_request_body_size_bytes_sum", &[route]),
        Some(4500.0)
    );
    assert_eq!(
        value(&text, "http_server_response_body_size_bytes_sum", &[route]),
        Some(4500.0)
    );
    assert_eq!(
        value(
            &text,
            "http_server_request_body_size_bytes_bucket",
            &[route, "le=\"1024\""]
        ),
        Some(0.0)
    );
}

fn futures_stream(
    parts: Vec<String>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    tokio_stream_iter(parts.into_iter().map(|p| Ok(bytes::Bytes::from(p))))
}

/// A minimal iterator-backed stream (avoids pulling in a stream utility crate).
fn tokio_stream_iter<I>(iter: I) -> IterStream<I> {
    IterStream(iter)
}

struct IterStream<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for IterStream<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test]
async fn active_requests_gauge_tracks_in_flight_requests() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let app = t.router(Router::new().route(
        "/slow",
        get(move || {
            let rx = rx.clone();
            async move {
                if let Some(rx) = rx.lock().await.take() {
                    let _ = rx.await;
                }
                "done"
            }
        }),
    ));
    let a = app.clone();
    let pending = tokio::spawn(async move { get_req(&a, "/slow").await });
    let active = |t: &livetranslate_telemetry::Telemetry| {
        value(
            &t.render_metrics(),
            "http_server_active_requests",
            &["http_request_method=\"GET\""],
        )
    };
    let mut seen = None;
    for _ in 0..200 {
        seen = active(&t);
        if seen == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, Some(1.0));
    tx.send(()).expect("handler waiting");
    pending.await.expect("request task");
    assert_eq!(active(&t), Some(0.0));
}

#[tokio::test]
async fn disabled_metrics_serve_404_and_record_nothing() {
    let t = builder("audio", &[("PROMETHEUS_METRICS_ENABLED", "false")])
        .build()
        .expect("telemetry");
    let app = app(&t);
    get_req(&app, "/api/users/1").await;
    let (res, _) = get_req(&app, "/api/metrics").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let text = t.render_metrics();
    assert!(samples(&text, "http_server_request_duration_seconds_count").is_empty());
    assert!(samples(&text, "http_server_active_requests").is_empty());
    // Request ids still work without metrics.
    let (res, _) = get_req(&app, "/api/users/1").await;
    assert!(res.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = app(&t);
    let req = Request::get("/api/users/1")
        .header("x-request-id", "req-abc-123")
        .body(Body::empty())
        .expect("request");
    let (res, _) = send(&app, req).await;
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");
    let (a, _) = get_req(&app, "/api/users/1").await;
    let (b, _) = get_req(&app, "/api/users/1").await;
    let (a, b) = (&a.headers()["x-request-id"], &b.headers()["x-request-id"]);
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    // A malformed incoming id is replaced.
    let req = Request::get("/api/users/1")
        .header("x-request-id", "bad id with spaces")
        .body(Body::empty())
        .expect("request");
    let (res, _) = send(&app, req).await;
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces");
}

#[test]
fn bad_env_values_are_startup_errors_naming_the_variable() {
    for (var, value) in [
        ("HEALTH_CHECK_INTERVAL", "banana"),
        ("HEALTH_CHECK_INTERVAL", "1e-12"),
        ("BIND_ADDRESS", "localhost"),
        ("MANAGEMENT_PORT", "http"),
        ("HTTP_HEADER_READ_TIMEOUT", "0"),
        ("SHUTDOWN_DRAIN_PERIOD", "forever"),
        ("PROMETHEUS_METRICS_ENABLED", "perhaps"),
        ("LOG_FORMAT", "yaml"),
        ("ENVIRONMENT", "bad\u{7}value"),
        ("WEBSOCKET_MAX_CONNECTIONS", "-3"),
    ] {
        let err = builder("audio", &[(var, value)])
            .build()
            .expect_err(var)
            .to_string();
        assert!(err.contains(var), "error {err:?} does not name {var}");
    }
}

#[tokio::test]
async fn a_management_port_equal_to_the_main_port_is_refused() {
    let t = builder("audio", &[])
        .management_port(45_999)
        .build()
        .expect("telemetry");
    let err = t
        .serve(Router::new(), 45_999)
        .await
        .expect_err("one port for both listeners")
        .to_string();
    assert!(
        err.contains("MANAGEMENT_PORT") && err.contains("differ"),
        "{err}"
    );
}

/// The `http_route` values that have a request-duration series in `text`.
fn counted_routes(text: &str) -> Vec<String> {
    let mut routes: Vec<String> = samples(text, "http_server_request_duration_seconds_count")
        .iter()
        .filter_map(|l| l.split("http_route=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

#[tokio::test]
async fn own_endpoints_are_not_counted_unless_asked() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = app(&t);
    for uri in [
        "/api/health",
        "/api/health/live",
        "/api/health/ready",
        "/api/metrics",
    ] {
        get_req(&app, uri).await;
    }
    get_req(&app, "/api/users/1").await;
    let (_, body) = get_req(&app, "/api/metrics").await;
    assert_eq!(counted_routes(&body), ["/api/users/{id}"]);
    // Not counted at all: nothing in flight either while a scrape is answered.
    assert_eq!(
        value(&body, "http_server_active_requests", &["GET"]),
        Some(0.0)
    );

    let t = builder("audio", &[]).build().expect("telemetry");
    let app = Router::new()
        .route("/api/users/{id}", get(|| async { "user" }))
        .merge(t.routes())
        .layer(t.http_layer().count_own_endpoints(true));
    for uri in ["/api/health", "/api/health/live", "/api/metrics"] {
        get_req(&app, uri).await;
    }
    let (_, body) = get_req(&app, "/api/metrics").await;
    assert_eq!(
        counted_routes(&body),
        ["/api/health", "/api/health/live", "/api/metrics"]
    );
}

#[tokio::test]
async fn excluded_routes_are_left_out_of_the_metrics_only() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = Router::new()
        .route("/internal/stats", get(|| async { "stats" }))
        .route("/internal/cache/{key}", get(|| async { "cache" }))
        .route("/favicon.ico", get(|| async { "icon" }))
        .route("/favicon.ico.bak", get(|| async { "bak" }))
        .route("/api/users/{id}", get(|| async { "user" }))
        .layer(
            t.http_layer()
                .exclude_route("/internal/*")
                .exclude_route("/favicon.ico"),
        );
    for uri in [
        "/internal/stats",
        "/internal/cache/a",
        "/favicon.ico",
        "/favicon.ico.bak",
        "/api/users/7",
    ] {
        let (res, _) = get_req(&app, uri).await;
        // Request ids still apply to excluded routes.
        assert!(res.headers().contains_key("x-request-id"), "{uri}");
    }
    assert_eq!(
        counted_routes(&t.render_metrics()),
        ["/api/users/{id}", "/favicon.ico.bak"]
    );
}

#[tokio::test]
async fn route_groups_share_one_series() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let app = Router::new()
        .route("/api/v1/users/{id}", get(|| async { "u" }))
        .route("/api/v1/orders/{id}", get(|| async { "o" }))
        .route("/api/v2/users/{id}", get(|| async { "u2" }))
        .layer(t.http_layer().group_routes(|template| {
            if template.starts_with("/api/v1/") {
                "/api/v1/*".to_owned()
            } else {
                template.to_owned()
            }
        }));
    for uri in ["/api/v1/users/1", "/api/v1/orders/2", "/api/v2/users/3"] {
        get_req(&app, uri).await;
    }
    let text = t.render_metrics();
    assert_eq!(counted_routes(&text), ["/api/v1/*", "/api/v2/users/{id}"]);
    assert_eq!(
        value(
            &text,
            "http_server_request_duration_seconds_count",
            &["http_route=\"/api/v1/*\""]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn request_duration_buckets_can_be_set() {
    let t = builder("audio", &[])
        .http_duration_buckets(&[0.05, 0.5, 5.0])
        .build()
        .expect("telemetry");
    let app = app(&t);
    get_req(&app, "/api/users/1").await;
    let text = t.render_metrics();
    let les: Vec<&str> = samples(&text, "http_server_request_duration_seconds_bucket")
        .iter()
        .filter_map(|l| l.split("le=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(les, ["0.05", "0.5", "5", "+Inf"]);
    // The size histograms keep their own buckets.
    assert!(samples(&text, "http_server_request_body_size_bytes_bucket").len() > 4);

    for bad in [&[][..], &[1.0, 0.5][..], &[0.1, f64::NAN][..]] {
        let err = builder("audio", &[])
            .http_duration_buckets(bad)
            .build()
            .expect_err("bad buckets")
            .to_string();
        assert!(
            err.contains("http_server_request_duration_seconds"),
            "{err}"
        );
    }
}
