//! `Telemetry::serve` as a deployment meets it, on real example processes: where it listens
//! (`BIND_ADDRESS`, a separate `MANAGEMENT_PORT`), the header-read timeout, and the shutdown
//! lifecycle on a real SIGTERM (readiness 503 at once, serving on for the drain period, then
//! a clean exit).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use livetranslate_test_support::binaries::{example, spawn_example};
use livetranslate_test_support::*;

fn get(url: &str) -> Option<(u16, String)> {
    http_get(url)
}

fn status(url: &str) -> Option<u16> {
    get(url).map(|(code, _)| code)
}

/// Starts the audio example with `env`, its stdout captured; waits until `live_url_port`
/// (the main port unless given) answers `/api/health/live`.
fn start_audio(
    dir: &TempDir,
    env: &[(&str, &str)],
    live_port: Option<u16>,
) -> (ChildGuard, u16, std::path::PathBuf) {
    let out = dir.path().join("audio.out");
    let file = std::fs::File::create(&out).expect("stdout file");
    let (proc, port) = spawn_example("audio-service", env, Stdio::from(file));
    wait_http(
        &format!(
            "http://127.0.0.1:{}/api/health/live",
            live_port.unwrap_or(port)
        ),
        Duration::from_secs(30),
    );
    (proc, port, out)
}

#[test]
fn sigterm_answers_not_ready_at_once_serves_through_the_drain_then_exits_cleanly() {
    let dir = TempDir::new("drain");
    let drain = Duration::from_secs(4);
    let (mut proc, port, out) = start_audio(
        &dir,
        &[
            ("SHUTDOWN_DRAIN_PERIOD", "4"),
            ("HEALTH_CHECK_INTERVAL", "0.2"),
        ],
        None,
    );
    let base = format!("http://127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(10), || {
        (status(&format!("{base}/api/health/ready")) == Some(200)).then_some(())
    });
    assert!(ready.is_some(), "never ready");

    proc.signal(libc::SIGTERM);
    let sent = Instant::now();
    // Readiness flips at once ...
    let (code, body) = eventually(Duration::from_secs(3), || {
        get(&format!("{base}/api/health/ready")).filter(|(c, _)| *c == 503)
    })
    .expect("/api/health/ready never answered 503 after SIGTERM");
    assert_eq!(code, 503);
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["reason"], "shutting_down");
    // ... while the service keeps answering, on new connections too.
    assert!(sent.elapsed() < drain, "too slow to observe the drain");
    assert_eq!(status(&format!("{base}/api/audio/models")), Some(200));
    assert_eq!(status(&format!("{base}/api/health/live")), Some(200));
    assert_eq!(
        http_post_json(
            &format!("{base}/api/audio/transcribe"),
            &serde_json::json!({"speech": "still serving"})
        ),
        Some(200)
    );
    assert!(proc.running());

    let exit = proc
        .wait_exit(Duration::from_secs(30))
        .expect("the service did not exit after the drain");
    assert!(exit.success(), "{exit:?}");
    assert!(
        sent.elapsed() >= drain,
        "exited {:?} after SIGTERM, before the {drain:?} drain ended",
        sent.elapsed()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening"
    );
    let log = std::fs::read_to_string(out).expect("stdout");
    assert!(
        log.contains("serving on while load balancers drain"),
        "{log}"
    );
    assert!(log.contains("\"shut down\""), "{log}");
}

#[test]
fn a_second_signal_or_sigint_skips_the_drain() {
    for (first, second) in [(libc::SIGTERM, Some(libc::SIGTERM)), (libc::SIGINT, None)] {
        let dir = TempDir::new("drain-cut");
        let (mut proc, port, _) = start_audio(&dir, &[("SHUTDOWN_DRAIN_PERIOD", "600")], None);
        let sent = Instant::now();
        proc.signal(first);
        if let Some(second) = second {
            let drained = eventually(Duration::from_secs(5), || {
                (status(&format!("http://127.0.0.1:{port}/api/health/ready")) == Some(503))
                    .then_some(())
            });
            assert!(drained.is_some(), "not draining after SIGTERM");
            proc.signal(second);
        }
        let exit = proc.wait_exit(Duration::from_secs(60));
        assert!(
            exit.is_some_and(|e| e.success()),
            "signal {first} then {second:?}: no clean exit within a minute of a 600 s drain: {exit:?}"
        );
        assert!(sent.elapsed() < Duration::from_secs(600));
    }
}

#[test]
fn management_port_serves_metrics_and_health_apart_from_the_application() {
    let dir = TempDir::new("management");
    let management = free_port();
    let m = management.to_string();
    let (_proc, port, out) = start_audio(
        &dir,
        &[("MANAGEMENT_PORT", &m), ("BIND_ADDRESS", "127.0.0.1")],
        Some(management),
    );
    let main = format!("http://127.0.0.1:{port}");
    let mgmt = format!("http://127.0.0.1:{management}");
    // The application on the main port, and nothing of the telemetry endpoints.
    assert_eq!(status(&format!("{main}/api/audio/models")), Some(200));
    for path in [
        "/api/metrics",
        "/api/health",
        "/api/health/live",
        "/api/health/ready",
    ] {
        assert_eq!(
            status(&format!("{main}{path}")),
            Some(404),
            "{path} on the main port"
        );
    }
    // The telemetry endpoints on the management port, and not the application.
    let (code, metrics) = get(&format!("{mgmt}/api/metrics")).expect("metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("http_server_request_duration_seconds_bucket{service=\"audio\""),
        "the application's requests are measured and served on the management port"
    );
    assert!(metrics.contains("http_route=\"/api/audio/models\""));
    for path in ["/api/health", "/api/health/live", "/api/health/ready"] {
        assert_eq!(status(&format!("{mgmt}{path}")), Some(200), "{path}");
    }
    assert_eq!(status(&format!("{mgmt}/api/audio/models")), Some(404));
    let log = std::fs::read_to_string(out).expect("stdout");
    assert!(
        log.contains(&format!(
            "\"addr\":\"127.0.0.1:{management}\",\"listener\":\"management\""
        )),
        "{log}"
    );
}

#[test]
fn bind_address_decides_which_interface_accepts_connections() {
    let dir = TempDir::new("bind");
    // Linux routes all of 127.0.0.0/8 to loopback: bound to 127.0.0.2, 127.0.0.1 is refused.
    let (proc, port) = spawn_example(
        "audio-service",
        &[("BIND_ADDRESS", "127.0.0.2")],
        Stdio::null(),
    );
    wait_http(
        &format!("http://127.0.0.2:{port}/api/health/live"),
        Duration::from_secs(30),
    );
    assert_eq!(
        status(&format!("http://127.0.0.2:{port}/api/audio/models")),
        Some(200)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "127.0.0.1 accepted: the service listens on more than BIND_ADDRESS"
    );
    drop(proc);
    drop(dir);
    // A host name is refused with an error naming the variable.
    let output = std::process::Command::new(example("audio-service"))
        .env("BIND_ADDRESS", "localhost")
        .env("PORT", free_port().to_string())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("BIND_ADDRESS"), "{text}");
}

/// Reads until the server closes the connection: true when it did within `limit`.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn connections_that_send_no_headers_are_closed_on_both_listeners() {
    let dir = TempDir::new("header-timeout");
    let management = free_port();
    let m = management.to_string();
    let (_proc, port, _) = start_audio(
        &dir,
        &[("MANAGEMENT_PORT", &m), ("HTTP_HEADER_READ_TIMEOUT", "1")],
        Some(management),
    );
    let mut idle = Vec::new();
    for p in [port, management] {
        for _ in 0..25 {
            idle.push(TcpStream::connect(("127.0.0.1", p)).expect("connect"));
        }
        // Half a request: headers started, never finished.
        let mut slow = TcpStream::connect(("127.0.0.1", p)).expect("connect");
        slow.write_all(b"GET /api/metrics HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        idle.push(slow);
    }
    let start = Instant::now();
    for (i, stream) in idle.iter_mut().enumerate() {
        let left = Duration::from_secs(30).saturating_sub(start.elapsed());
        assert!(
            closed_by_server(stream, left.max(Duration::from_millis(100))),
            "connection {i} still open 30 s after opening, with a 1 s header-read timeout"
        );
    }
    // Well-behaved clients are served as before.
    assert_eq!(
        status(&format!("http://127.0.0.1:{port}/api/audio/models")),
        Some(200)
    );
    assert_eq!(
        status(&format!("http://127.0.0.1:{management}/api/metrics")),
        Some(200)
    );
}

#[test]
fn a_request_in_progress_at_sigterm_is_answered_before_exit() {
    let dir = TempDir::new("graceful");
    let (mut proc, port, _) = start_audio(&dir, &[], None);
    // 500 words: the handler takes about half a second.
    let speech = vec!["word"; 500].join(" ");
    let url = format!("http://127.0.0.1:{port}/api/audio/transcribe");
    let call =
        std::thread::spawn(move || http_post_json(&url, &serde_json::json!({ "speech": speech })));
    let in_flight = eventually(Duration::from_secs(10), || {
        let (_, text) = get(&format!("http://127.0.0.1:{port}/api/metrics"))?;
        text.lines()
            .any(|l| {
                l.starts_with("http_server_active_requests{")
                    && l.contains("http_request_method=\"POST\"")
                    && l.ends_with(" 1")
            })
            .then_some(())
    });
    assert!(in_flight.is_some(), "the slow request never started");
    proc.signal(libc::SIGTERM);
    assert_eq!(
        call.join().expect("caller thread"),
        Some(200),
        "the request in progress at SIGTERM was not answered"
    );
    let exit = proc.wait_exit(Duration::from_secs(30));
    assert!(exit.is_some_and(|e| e.success()), "{exit:?}");
}
