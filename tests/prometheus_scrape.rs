//! A real Prometheus scrapes a real example service: `up == 1` and the HTTP series arrive
//! with all four standard labels.

use std::time::Duration;

use livetranslate_test_support::binaries::start_example;
use livetranslate_test_support::{eventually, http_get, Prometheus, TempDir};

#[test]
fn prometheus_scrapes_an_example_service() {
    let (_svc, port) = start_example(
        "audio-service",
        &[
            ("ENVIRONMENT", "it"),
            ("CLUSTER", "it-cluster"),
            ("SERVICE_VERSION", "7.7.7"),
        ],
    );
    for _ in 0..10 {
        http_get(&format!("http://127.0.0.1:{port}/api/audio/models")).expect("request");
    }
    let dir = TempDir::new("prom");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: audio\n    metrics_path: /api/metrics\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let prometheus = Prometheus::start(dir.path(), &config);

    let up = eventually(Duration::from_secs(60), || {
        let r = prometheus.query("up{job=\"audio\"}", None)?;
        let v = r.first()?["value"][1].as_str()?.to_owned();
        (v == "1").then_some(v)
    });
    assert_eq!(
        up.as_deref(),
        Some("1"),
        "up{{job=\"audio\"}} never became 1"
    );

    let series = eventually(Duration::from_secs(30), || {
        let r = prometheus.query(
            "http_server_request_duration_seconds_count{http_route=\"/api/audio/models\"}",
            None,
        )?;
        r.first().cloned()
    })
    .expect("HTTP series never arrived in Prometheus");
    let labels = &series["metric"];
    assert_eq!(labels["service"], "audio");
    assert_eq!(labels["environment"], "it");
    assert_eq!(labels["version"], "7.7.7");
    assert_eq!(labels["cluster"], "it-cluster");
    assert_eq!(labels["http_request_method"], "GET");
    assert_eq!(labels["http_response_status_code"], "200");
    assert_eq!(series["value"][1], "10");
}
