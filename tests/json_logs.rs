//! Every line the example services write (stdout and `LOG_FILE`, from start-up to a SIGTERM
//! shutdown, through requests, failing health checks and a WebSocket session) is one JSON
//! object that a strict parser accepts: no repeated keys.

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livetranslate_test_support::binaries::spawn_example;
use livetranslate_test_support::*;

struct Service {
    proc: ChildGuard,
    port: u16,
    files: [std::path::PathBuf; 2],
}

fn start(dir: &TempDir, name: &str, env: &[(&str, &str)]) -> Service {
    let out = dir.path().join(format!("{name}.out"));
    let log = dir.path().join(format!("{name}.log"));
    let log_str = log.display().to_string();
    let mut env = env.to_vec();
    env.extend([
        ("LOG_FILE", log_str.as_str()),
        ("LOG_FORMAT", "json"),
        ("HEALTH_CHECK_INTERVAL", "0.2"),
    ]);
    let stdout = std::fs::File::create(&out).expect("stdout file");
    let (proc, port) = spawn_example(name, &env, Stdio::from(stdout));
    wait_http(
        &format!("http://127.0.0.1:{port}/api/health/live"),
        Duration::from_secs(30),
    );
    Service {
        proc,
        port,
        files: [out, log],
    }
}

fn post(port: u16, path: &str, body: serde_json::Value) -> Option<u16> {
    http_post_json(&format!("http://127.0.0.1:{port}{path}"), &body)
}

#[test]
fn every_line_the_examples_write_is_json_with_unique_keys() {
    let dir = TempDir::new("json-logs");
    let audio = start(&dir, "audio-service", &[("AUDIO_FAULT_INJECTION", "1")]);
    let translation = start(&dir, "translation-service", &[]);
    let audio_url = format!("http://127.0.0.1:{}", audio.port);
    let dead_url = format!("http://127.0.0.1:{}", free_port());
    // The translation upstream is down: its health check fails, pipeline calls fail.
    let gateway = start(
        &dir,
        "orchestration-service",
        &[
            ("AUDIO_SERVICE_URL", &audio_url),
            ("TRANSLATION_SERVICE_URL", &dead_url),
        ],
    );

    // Requests of every kind: served, refused, unmatched, failing upstream.
    let a = audio.port;
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{a}/api/audio/models")).map(|r| r.0),
        Some(200)
    );
    assert_eq!(
        post(
            a,
            "/api/audio/transcribe",
            serde_json::json!({"speech": "hello world"})
        ),
        Some(200)
    );
    assert_eq!(
        post(
            a,
            "/api/audio/transcribe",
            serde_json::json!({"speech": ""})
        ),
        Some(400)
    );
    assert_eq!(
        post(
            a,
            "/api/audio/faults",
            serde_json::json!({"fail_for_ms": 100})
        ),
        Some(200)
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{a}/nope")).map(|r| r.0),
        Some(404)
    );
    let t = translation.port;
    assert_eq!(
        post(
            t,
            "/api/translate",
            serde_json::json!({"text": "hello world", "target": "de"})
        ),
        Some(200)
    );
    assert_eq!(
        post(
            t,
            "/api/translate",
            serde_json::json!({"text": "hello", "target": "xx"})
        ),
        Some(400)
    );
    let g = gateway.port;
    assert_eq!(
        post(g, "/api/pipeline", serde_json::json!({"speech": "hello"})),
        Some(502)
    );
    // A WebSocket session with one message.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{g}/ws"))
            .await
            .expect("websocket");
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"speech":"good morning"}"#.into(),
        ))
        .await
        .expect("send");
        let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("reply in time");
        assert!(matches!(reply, Some(Ok(_))), "{reply:?}");
        ws.close(None).await.expect("close");
    });
    // Let the failing health check be logged.
    let health = eventually(Duration::from_secs(10), || {
        http_get(&format!("http://127.0.0.1:{g}/api/health")).filter(|(code, _)| *code == 503)
    });
    assert!(
        health.is_some(),
        "the gateway's translation check never failed"
    );

    // A clean shutdown of each.
    let mut files = Vec::new();
    for mut svc in [gateway, audio, translation] {
        svc.proc.signal(libc::SIGTERM);
        let status = svc.proc.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "{} did not exit cleanly: {status:?}",
            svc.proc.name
        );
        files.extend(svc.files);
    }

    let mut messages = std::collections::BTreeSet::new();
    let mut total = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("log output");
        assert!(!text.is_empty(), "{} is empty", file.display());
        for line in text.lines() {
            let v = parse_json_strict(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line}", file.display()));
            assert!(v["service"].is_string(), "no service label: {line}");
            // The services' own lines never need the formatter's renaming of a clash.
            let renamed = v
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .find(|k| k.starts_with("fields.") || k.starts_with("span."));
            assert!(renamed.is_none(), "a field clashes with another: {line}");
            if let Some(m) = v["message"].as_str() {
                messages.insert(m.to_owned());
            }
            total += 1;
        }
    }
    // The lines that once repeated keys are among those checked.
    for expected in [
        "listening",
        "health check failing",
        "request completed",
        "session started",
        "session ended",
        "shut down",
    ] {
        assert!(
            messages.contains(expected),
            "no {expected:?} line among {messages:?}"
        );
    }
    println!(
        "{total} lines in {} files, all strict JSON with unique keys",
        files.len()
    );
}
