//! `promtool check metrics` reports nothing on real `/api/metrics` output of every example.

use livetranslate_test_support::binaries::start_example;
use livetranslate_test_support::{http_get, promtool_check_metrics};

#[test]
fn promtool_is_clean_on_every_example() {
    for (name, path) in [
        ("audio-service", "/api/audio/models"),
        ("translation-service", "/api/languages"),
        ("orchestration-service", "/api/upstreams"),
    ] {
        let (_svc, port) = start_example(name, &[("HEALTH_CHECK_INTERVAL", "0.2")]);
        http_get(&format!("http://127.0.0.1:{port}{path}")).expect("request");
        http_get(&format!("http://127.0.0.1:{port}/nope")).expect("request");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let (code, text) =
            http_get(&format!("http://127.0.0.1:{port}/api/metrics")).expect("metrics");
        assert_eq!(code, 200);
        assert!(
            text.contains("http_server_request_duration_seconds_bucket"),
            "{name}"
        );
        assert!(text.contains("livetranslate_health_check_status"), "{name}");
        let lint = promtool_check_metrics(&text);
        assert!(
            lint.trim().is_empty(),
            "{name}: promtool check metrics: {lint}"
        );
    }
}

#[test]
fn promtool_flags_a_broken_exposition() {
    // Guards the test above against a promtool that never complains.
    let lint = promtool_check_metrics("# TYPE requests counter\nrequests 1\n");
    assert!(lint.contains("_total"), "{lint}");
}
