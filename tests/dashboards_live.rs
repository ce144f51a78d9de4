//! The monitoring stack against the running system: a real Prometheus scrapes the three
//! example services and the agent with the project's recording rules loaded; the key
//! dashboard panels return data, and every metric name the rules and dashboards use is
//! exported by this project's code (or by a named external exporter).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use livetranslate_test_support::binaries::{agent_binary, start_example};
use livetranslate_test_support::{
    eventually, free_port, http_get, http_post_json, wait_http, ChildGuard, Prometheus, TempDir,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn metric_names(exposition: &str) -> impl Iterator<Item = String> + '_ {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
}

#[test]
fn key_panels_have_data_and_every_used_metric_is_exported() {
    let dir = TempDir::new("stack-live");
    let env = [
        ("HEALTH_CHECK_INTERVAL", "1"),
        ("ENVIRONMENT", "production"),
    ];
    let (_audio, audio) = start_example("audio-service", &env);
    let (_tr, translation) = start_example("translation-service", &env);
    let audio_url = format!("http://127.0.0.1:{audio}");
    let translation_url = format!("http://127.0.0.1:{translation}");
    let (_orch, orch) = start_example(
        "orchestration-service",
        &[
            ("HEALTH_CHECK_INTERVAL", "1"),
            ("ENVIRONMENT", "production"),
            ("AUDIO_SERVICE_URL", &audio_url),
            ("TRANSLATION_SERVICE_URL", &translation_url),
        ],
    );

    // The project's own Prometheus configuration, pointed at this machine's processes and
    // sped up; the unreachable external exporters just stay down.
    let agent_port = free_port();
    let config = std::fs::read_to_string(format!("{ROOT}/monitoring/prometheus/prometheus.yml"))
        .expect("prometheus.yml")
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("rules/", &format!("{ROOT}/monitoring/prometheus/rules/"))
        .replace("orchestration-service:3000", &format!("127.0.0.1:{orch}"))
        .replace("audio-service:5001", &format!("127.0.0.1:{audio}"))
        .replace(
            "translation-service:5003",
            &format!("127.0.0.1:{translation}"),
        )
        .replace(
            "livetranslate-agent:9080",
            &format!("127.0.0.1:{agent_port}"),
        );
    let prometheus = Prometheus::start(dir.path(), &config);
    let prom = prometheus.port;

    // The agent (on the port the configuration scrapes): scraping the audio service and
    // writing to that Prometheus, tailing a log
    // file towards a Loki that is not there (so its log pipeline runs and retries).
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    std::fs::write(
        logs.join("app.log"),
        "{\"level\":\"info\",\"message\":\"hello\"}\n",
    )
    .expect("log");
    let dead = free_port();
    let _agent = ChildGuard::spawn(
        Command::new(agent_binary())
            .args(["--listen", &format!("127.0.0.1:{agent_port}")])
            .args([
                "--scrape-target",
                &format!("http://127.0.0.1:{audio}/api/metrics"),
            ])
            .args([
                "--remote-write-url",
                &format!("http://127.0.0.1:{prom}/api/v1/write"),
            ])
            .args(["--scrape-interval", "1s"])
            .args(["--wal-dir", &dir.path().join("wal").display().to_string()])
            .args(["--log-path", &format!("{}/*.log", logs.display())])
            .args(["--loki-url", &format!("http://127.0.0.1:{dead}")])
            .args([
                "--positions-file",
                &dir.path().join("positions.yml").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "agent",
    );
    wait_http(
        &format!("http://127.0.0.1:{agent_port}/ready"),
        Duration::from_secs(30),
    );

    // Traffic: pipeline calls, errors, a WebSocket session, unmatched paths.
    let pipeline = format!("http://127.0.0.1:{orch}/api/pipeline");
    for i in 0..30 {
        let target = if i % 10 == 9 { "xx" } else { "de" };
        let body =
            serde_json::json!({"speech": "hello world the meeting starts now", "target": target});
        http_post_json(&pipeline, &body).expect("pipeline");
        http_get(&format!("http://127.0.0.1:{orch}/nope/{i}")).expect("404");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let ws_url = format!("ws://127.0.0.1:{orch}/ws");
    let ws = rt.block_on(async {
        use futures_util::SinkExt;
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("websocket");
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"speech":"good morning","target":"es"}"#.into(),
        ))
        .await
        .expect("send");
        ws
    });

    // Wait until every job is up and the rules have evaluated a few times.
    let all_up = eventually(Duration::from_secs(60), || {
        let r = prometheus.query("count(up == 1)", None)?;
        let n = r.first()?["value"][1].as_str()?.parse::<u32>().ok()?;
        (n >= 4).then_some(n)
    });
    assert!(all_up.is_some(), "not every scrape target came up");
    std::thread::sleep(Duration::from_secs(6));

    let key_panels = [
        "Up",
        "Requests/s",
        "p95 latency",
        "Request rate by route",
        "In-flight requests",
        "WebSocket connections against the limit",
        "Breaker state (open=2, half-open=1, closed=0)",
        "Active sessions",
        "Mean translation quality",
        "Overall health",
        "Memory",
    ];
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/monitoring/grafana/dashboards/livetranslate-orchestration.json"
        ))
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut panels = Vec::new();
    let mut stack = vec![&dashboard["panels"]];
    while let Some(list) = stack.pop() {
        for p in list.as_array().into_iter().flatten() {
            panels.push(p);
            stack.push(&p["panels"]);
        }
    }
    let mut empty = Vec::new();
    for title in key_panels {
        let panel = panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?} in the orchestration dashboard"));
        let expr = panel["targets"][0]["expr"].as_str().expect("expr");
        let q = expr
            .replace("$environment", "production")
            .replace("$cluster", "livetranslate")
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "15s");
        let data = eventually(Duration::from_secs(20), || {
            prometheus.query(&q, None).filter(|r| !r.is_empty())
        });
        if data.is_none() {
            empty.push(format!("{title}: {q}"));
        }
    }
    drop(ws);
    assert!(
        empty.is_empty(),
        "key panels without data:\n{}",
        empty.join("\n")
    );

    // Every name the rules and dashboards use is exported by the running code.
    let mut names = BTreeSet::new();
    for url in [
        format!("http://127.0.0.1:{orch}/api/metrics"),
        format!("http://127.0.0.1:{audio}/api/metrics"),
        format!("http://127.0.0.1:{translation}/api/metrics"),
        format!("http://127.0.0.1:{agent_port}/metrics"),
    ] {
        let (_, text) = http_get(&url).expect("metrics");
        names.extend(metric_names(&text));
    }
    let scraped = dir.path().join("scraped.txt");
    std::fs::write(
        &scraped,
        names.iter().map(|n| format!("{n}\n")).collect::<String>(),
    )
    .expect("scraped");
    let out = Command::new("python3")
        .arg(format!("{ROOT}/scripts/check-metric-names.py"))
        .arg("--scraped")
        .arg(&scraped)
        .output()
        .expect("run check-metric-names.py");
    assert!(
        out.status.success(),
        "metric names used by rules/dashboards but not exported:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
