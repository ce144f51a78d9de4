//! The gateway example never shows the credentials of its upstream URLs: `/api/upstreams`,
//! `/api/health` (whose failing check names the URL), its log output, and the error exit of a
//! bad URL show them without `user:password@` (the one redaction function of
//! `livetranslate-push`).

use std::process::{Command, Stdio};
use std::time::Duration;

use livetranslate_test_support::binaries::{example, spawn_example, start_example};
use livetranslate_test_support::*;

const MARK: &str = "S3CRET";

#[test]
fn upstream_credentials_are_never_shown() {
    let dir = TempDir::new("gateway-secrets");
    let dead = free_port();
    let (_audio, audio) = start_example("audio-service", &[]);
    let audio_url = format!("http://audio:audio-pw-S3CRET@127.0.0.1:{audio}");
    let translation_url = format!("http://tr:translation-pw-S3CRET@127.0.0.1:{dead}");
    let out = dir.path().join("gateway.out");
    let file = std::fs::File::create(&out).unwrap_or_else(|e| panic!("{e}"));
    let (mut gateway, port) = spawn_example(
        "orchestration-service",
        &[
            ("AUDIO_SERVICE_URL", audio_url.as_str()),
            ("TRANSLATION_SERVICE_URL", translation_url.as_str()),
            ("HEALTH_CHECK_INTERVAL", "0.2"),
        ],
        Stdio::from(file),
    );
    wait_http(
        &format!("http://127.0.0.1:{port}/api/health/live"),
        Duration::from_secs(30),
    );
    // Let the health checks run (the translation one fails: connection refused).
    let health = eventually(Duration::from_secs(10), || {
        http_get(&format!("http://127.0.0.1:{port}/api/health"))
            .filter(|(_, body)| body.contains("translation-service") && body.contains("GET "))
            .map(|(_, body)| body)
    })
    .unwrap_or_default();
    let (code, upstreams) =
        http_get(&format!("http://127.0.0.1:{port}/api/upstreams")).unwrap_or_default();
    assert_eq!(code, 200);
    assert!(
        upstreams.contains(&format!("http://127.0.0.1:{audio}")),
        "the URL is still shown, without its credentials: {upstreams}"
    );
    assert!(
        health.contains(&format!("127.0.0.1:{dead}")),
        "the failing check names its URL: {health}"
    );
    gateway.terminate(Duration::from_secs(10));
    let log = std::fs::read_to_string(&out).unwrap_or_default();

    let bad = Command::new(example("orchestration-service"))
        .env("PORT", free_port().to_string())
        .env("AUDIO_SERVICE_URL", "ftp://u:bad-url-S3CRET@127.0.0.1:1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!bad.status.success(), "a bad URL must stop the gateway");
    let bad_out = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(bad_out.contains("AUDIO_SERVICE_URL"), "{bad_out}");

    let mut found = Vec::new();
    for (channel, text) in [
        ("/api/upstreams", upstreams.as_str()),
        ("/api/health", health.as_str()),
        ("stdout", log.as_str()),
        ("bad URL exit", bad_out.as_str()),
    ] {
        found.extend(
            text.lines()
                .filter(|l| l.contains(MARK))
                .map(|l| format!("{channel}: {l}")),
        );
    }
    assert!(found.is_empty(), "credentials shown:\n{}", found.join("\n"));
}
