//! A real Prometheus scrapes a real example service: `up == 1` and the HTTP series arrive
//! with all four standard labels.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

fn query(prom: u16, q: &str) -> Option<Vec<Value>> {
    let url = format!(
        "http://127.0.0.1:{prom}/api/v1/query?query={}",
        urlencode(q)
    );
    let (code, body) = http_get(&url)?;
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"].as_array().cloned()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_scrapes_an_example_service() {
    let prometheus = require("prometheus");
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
    let prom_port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: audio\n    metrics_path: /api/metrics\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
    let child = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prom = Proc {
        child,
        name: "prometheus".into(),
    };
    wait_http(
        &format!("http://127.0.0.1:{prom_port}/-/ready"),
        Duration::from_secs(60),
    );

    let up = eventually(Duration::from_secs(60), || {
        let r = query(prom_port, "up{job=\"audio\"}")?;
        let v = r.first()?["value"][1].as_str()?.to_owned();
        (v == "1").then_some(v)
    });
    assert_eq!(
        up.as_deref(),
        Some("1"),
        "up{{job=\"audio\"}} never became 1"
    );

    let series = eventually(Duration::from_secs(30), || {
        let r = query(
            prom_port,
            "http_server_request_duration_seconds_count{http_route=\"/api/audio/models\"}",
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
