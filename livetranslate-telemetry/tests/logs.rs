//! JSON log lines: standard labels, request id on every line of a request, one access line.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{builder, send};
use http::Request;
use livetranslate_telemetry::logging::json_layer;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

#[tokio::test]
async fn every_line_of_a_request_carries_labels_and_request_id() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber =
        tracing_subscriber::registry().with(json_layer(t.labels(), move || writer.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = t.router(Router::new().route(
        "/api/audio/{id}",
        get(|| async {
            tracing::info!(chunk = 7, "transcribing \"quoted\"\nchunk");
            "ok"
        }),
    ));
    let req = Request::get("/api/audio/99?token=secret")
        .header("x-request-id", "req-777")
        .body(Body::empty())
        .expect("request");
    send(&app, req).await;
    tracing::info!("outside any request");

    let lines = buf.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for l in &lines {
        assert_eq!(l["service"], "audio");
        assert_eq!(l["environment"], "test");
        assert_eq!(l["version"], "1.2.3");
        assert_eq!(l["cluster"], "test-cluster");
        assert_eq!(l["level"], "INFO");
        assert!(l["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let handler = &lines[0];
    assert_eq!(handler["message"], "transcribing \"quoted\"\nchunk");
    assert_eq!(handler["chunk"], 7);
    assert_eq!(handler["request_id"], "req-777");

    let access = &lines[1];
    assert_eq!(access["target"], "access");
    assert_eq!(access["request_id"], "req-777");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/api/audio/{id}");
    assert_eq!(
        access["path"], "/api/audio/99",
        "query strings stay out of logs"
    );
    assert_eq!(access["status"], 200);
    assert!(access["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(access["response_bytes"], 2);

    assert!(lines[2].get("request_id").is_none());
}

#[tokio::test]
async fn access_log_can_be_turned_off() {
    let t = builder("audio", &[]).build().expect("telemetry");
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber =
        tracing_subscriber::registry().with(json_layer(t.labels(), move || writer.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(t.http_layer().access_log(false));
    send(
        &app,
        Request::get("/x").body(Body::empty()).expect("request"),
    )
    .await;
    assert!(buf.lines().is_empty());
}
