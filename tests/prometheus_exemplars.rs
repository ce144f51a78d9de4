//! A real Prometheus with exemplar storage scrapes an example service over OpenMetrics and
//! keeps exemplars whose `trace_id` is the one of a request this test sent; the same
//! exposition in the text format is promtool-clean.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livetranslate_test_support::binaries::start_example;
use livetranslate_test_support::{
    eventually, http_get, http_get_with, promtool_check_metrics, urlencode, Prometheus, TempDir,
};
use serde_json::Value;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The trace ids of the exemplars Prometheus holds for `query` over the last ten minutes.
fn exemplar_trace_ids(prom: &Prometheus, query: &str) -> Option<Vec<String>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let url = format!(
        "{}/api/v1/query_exemplars?query={}&start={}&end={}",
        prom.url(),
        urlencode(query),
        now - 600,
        now + 60
    );
    let (code, body) = http_get(&url)?;
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    let ids: Vec<String> = v["data"]
        .as_array()?
        .iter()
        .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
        .collect();
    (!ids.is_empty()).then_some(ids)
}

#[test]
fn prometheus_stores_exemplars_with_the_requests_trace_id() {
    let (_svc, port) = start_example("audio-service", &[]);
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    for _ in 0..5 {
        let (code, _) = http_get_with(
            &format!("http://127.0.0.1:{port}/api/audio/models"),
            &[("traceparent", &traceparent)],
        )
        .expect("request");
        assert_eq!(code, 200);
    }

    // The text format (the default) is promtool-clean.
    let (_, text) = http_get(&format!("http://127.0.0.1:{port}/api/metrics")).expect("metrics");
    assert!(!text.contains("# EOF"));
    let lint = promtool_check_metrics(&text);
    assert!(lint.trim().is_empty(), "promtool check metrics: {lint}");

    let dir = TempDir::new("prom-exemplars");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: audio\n    metrics_path: /api/metrics\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let prom = Prometheus::start_with(dir.path(), &config, &["--enable-feature=exemplar-storage"]);
    let prom = &prom;

    // Prometheus asks for OpenMetrics by default and parses it with its own parser: the
    // target is healthy only if every scrape parsed.
    let health = eventually(Duration::from_secs(60), || {
        let (_, body) = http_get(&format!("{}/api/v1/targets", prom.url()))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let t = v["data"]["activeTargets"].as_array()?.first()?.clone();
        (t["health"] == "up").then_some(t)
    })
    .expect("the target never came up");
    assert_eq!(health["lastError"], "", "{health}");

    let ids = eventually(Duration::from_secs(60), || {
        exemplar_trace_ids(
            prom,
            "http_server_request_duration_seconds_bucket{http_route=\"/api/audio/models\"}",
        )
    })
    .expect("no exemplars in Prometheus");
    assert!(ids.iter().all(|id| id == TRACE), "{ids:?}");

    // The series are the same as over the text format: one per label set, with `le` as in
    // the text format, so switching formats does not split a series.
    let count = eventually(Duration::from_secs(30), || {
        let r = prom.query(
            "http_server_request_duration_seconds_count{http_route=\"/api/audio/models\"}",
            None,
        )?;
        (r.len() == 1).then(|| r[0]["value"][1].as_str().map(str::to_owned))?
    });
    assert_eq!(count.as_deref(), Some("5"));
    let buckets = prom.query("http_server_request_duration_seconds_bucket{http_route=\"/api/audio/models\",le=\"1\"}", None)
    .expect("query");
    assert_eq!(buckets.len(), 1, "{buckets:?}");
    // Counters arrive under their full names.
    let opened = prom
        .query("livetranslate_websocket_connections_opened_total", None)
        .expect("query");
    assert_eq!(opened.len(), 1, "{opened:?}");
}
