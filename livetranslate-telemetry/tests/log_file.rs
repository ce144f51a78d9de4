//! `LOG_FILE`: parent directories are created and JSON lines appended, whatever `LOG_FORMAT`
//! says for stdout. (Installs the global subscriber, so it is its own test binary.)

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use livetranslate_telemetry::Telemetry;
use tower::ServiceExt;

#[tokio::test]
async fn log_file_gets_json_lines_with_labels() {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("lt-logfile-{}-{nonce}", std::process::id()));
    let path = dir.join("nested/deeper/audio.log");
    std::fs::create_dir_all(&dir).expect("tmp");
    std::fs::write(dir.join("marker"), b"").expect("tmp");
    // An existing line must be kept: the file is appended to.
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(&path, b"{\"existing\":true}\n").expect("seed line");
    let log_file = path.to_string_lossy().into_owned();
    let t = Telemetry::builder("audio")
        .version("9.9.9")
        .env_lookup(move |k| match k {
            "LOG_FILE" => Some(log_file.clone()),
            "LOG_FORMAT" => Some("pretty".to_owned()),
            "ENVIRONMENT" => Some("ci".to_owned()),
            "RUST_LOG" => Some("info,noisy=warn".to_owned()),
            _ => None,
        })
        .build()
        .expect("telemetry");
    let app = t.router(Router::new().route("/api/ping", get(|| async { "pong" })));
    let req = Request::get("/api/ping")
        .header("x-request-id", "file-req-1")
        .body(Body::empty())
        .expect("request");
    app.oneshot(req).await.expect("response");
    tracing::info!(target: "noisy", "filtered out by RUST_LOG");
    tracing::warn!(target: "noisy", "kept by RUST_LOG");
    t.flush_logs();

    let text = std::fs::read_to_string(&path).expect("log file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines[0]["existing"], true);
    let access = lines
        .iter()
        .find(|l| l["target"] == "access")
        .expect("access line in file");
    assert_eq!(access["request_id"], "file-req-1");
    assert_eq!(access["service"], "audio");
    assert_eq!(access["environment"], "ci");
    assert_eq!(access["version"], "9.9.9");
    assert_eq!(access["route"], "/api/ping");
    let noisy: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "noisy").collect();
    assert_eq!(noisy.len(), 1, "{noisy:?}");
    assert_eq!(noisy[0]["message"], "kept by RUST_LOG");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_log_file_is_a_clear_error() {
    let err = Telemetry::builder("audio")
        .install_logging(true)
        .env_lookup(|k| (k == "LOG_FILE").then(|| "/proc/definitely/not/writable.log".to_owned()))
        .build()
        .expect_err("cannot create");
    assert!(err.to_string().contains("LOG_FILE"), "{err}");
}
