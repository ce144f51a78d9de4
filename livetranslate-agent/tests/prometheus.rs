//! End-to-end tests against a real Prometheus (`prometheus` must be on PATH): the agent scrapes
//! a test target and pushes with remote write; the tests read the result back with PromQL.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Agent, Target, NO_SCRAPES};
use livetranslate_test_support::{value_of, Prometheus, TempDir};

const EXPOSITION: &str = r#"# HELP lt_requests_total Requests handled.
# TYPE lt_requests_total counter
lt_requests_total{path="C:\\dir\\file",msg="say \"hi\"\nbye"} 1027
lt_requests_total{path="/plain",msg="ok"} 3
# HELP lt_queue_depth Jobs waiting.
# TYPE lt_queue_depth gauge
lt_queue_depth 4.5
# HELP lt_latency_seconds Latency.
# TYPE lt_latency_seconds histogram
lt_latency_seconds_bucket{le="0.1"} 2
lt_latency_seconds_bucket{le="1"} 5
lt_latency_seconds_bucket{le="+Inf"} 6
lt_latency_seconds_sum 3.25
lt_latency_seconds_count 6
# TYPE lt_info gauge
lt_info{service="inner"} 1
"#;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn write_config(dir: &TempDir, job: &str, target: &Target) -> String {
    let path = dir.path().join("agent.yml");
    let text = format!(
        "labels: {{service: svc, environment: test, cluster: local-1, version: \"9.9.9\"}}\n\
         scrape_configs:\n\
         \x20 - job_name: {job}\n\
         \x20   interval: 1s\n\
         \x20   static_configs:\n\
         \x20     - targets: [\"{}\"]\n\
         remote_write:\n\
         \x20 queue: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 2s}}\n",
        target.addr
    );
    std::fs::write(&path, text).expect("write agent config");
    path.display().to_string()
}

fn label<'a>(series: &'a serde_json::Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_samples_arrive_in_prometheus_with_labels_and_values() {
    let dir = TempDir::new("prom-e2e");
    let prom = Prometheus::start_async(dir.path(), NO_SCRAPES).await;
    let target = Target::start(EXPOSITION).await;
    let config = write_config(&dir, "itest", &target);
    let agent = Agent::start(
        dir.path(),
        &["--config", &config, "--remote-write-url", &prom.write_url()],
    )
    .await;

    let counters = prom
        .wait_for_async("lt_requests_total{job=\"itest\"}", Duration::from_secs(30))
        .await;
    assert_eq!(
        counters.len(),
        2,
        "{counters:?}\nagent log:\n{}",
        agent.log()
    );
    let escaped = counters
        .iter()
        .find(|s| label(s, "path") == "C:\\dir\\file")
        .unwrap_or_else(|| panic!("escaped series missing: {counters:?}"));
    assert_eq!(label(escaped, "msg"), "say \"hi\"\nbye");
    assert_eq!(value_of(escaped), 1027.0);
    assert_eq!(label(escaped, "instance"), target.addr.to_string());
    assert_eq!(label(escaped, "job"), "itest");
    assert_eq!(label(escaped, "service"), "svc");
    assert_eq!(label(escaped, "environment"), "test");
    assert_eq!(label(escaped, "cluster"), "local-1");
    assert_eq!(label(escaped, "version"), "9.9.9");
    let plain = counters
        .iter()
        .find(|s| label(s, "path") == "/plain")
        .unwrap_or_else(|| panic!("plain series missing: {counters:?}"));
    assert_eq!(value_of(plain), 3.0);

    let gauge = prom
        .query_async("lt_queue_depth{job=\"itest\"}", None)
        .await;
    assert_eq!(gauge.first().map(value_of), Some(4.5), "{gauge:?}");
    let inf = prom
        .query_async("lt_latency_seconds_bucket{job=\"itest\",le=\"+Inf\"}", None)
        .await;
    assert_eq!(inf.first().map(value_of), Some(6.0), "{inf:?}");
    let count = prom
        .query_async("lt_latency_seconds_count{job=\"itest\"}", None)
        .await;
    assert_eq!(count.first().map(value_of), Some(6.0), "{count:?}");
    let quantile = prom
        .query_async(
            "histogram_quantile(0.5, lt_latency_seconds_bucket{job=\"itest\"})",
            None,
        )
        .await;
    assert!(
        quantile
            .first()
            .map(value_of)
            .is_some_and(|q| q > 0.1 && q <= 1.0),
        "{quantile:?}"
    );

    // A scraped label that clashes with a target label is kept as exported_<name>.
    let info = prom.query_async("lt_info{job=\"itest\"}", None).await;
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(label(&info[0], "service"), "svc");
    assert_eq!(label(&info[0], "exported_service"), "inner");

    let up = prom.query_async("up{job=\"itest\"}", None).await;
    assert_eq!(up.first().map(value_of), Some(1.0), "{up:?}");
    assert_eq!(label(&up[0], "environment"), "test");
    let samples = prom
        .query_async("scrape_samples_scraped{job=\"itest\"}", None)
        .await;
    assert_eq!(samples.first().map(value_of), Some(9.0), "{samples:?}");
    let duration = prom
        .query_async("scrape_duration_seconds{job=\"itest\"}", None)
        .await;
    assert!(duration
        .first()
        .map(value_of)
        .is_some_and(|d| (0.0..1.0).contains(&d)));

    // 9 scraped + 3 synthetic samples per scrape.
    let sent = agent
        .metric("livetranslate_agent_remote_write_samples_sent_total", &[])
        .await;
    assert!(sent >= 12.0, "sent {sent}");
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_target_up",
                &[("job", "itest"), ("instance", &target.addr.to_string())]
            )
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_scraped_during_a_prometheus_outage_are_delivered_after_restart() {
    let dir = TempDir::new("prom-outage");
    let mut prom = Prometheus::start_async(dir.path(), NO_SCRAPES).await;
    let target = Target::start(EXPOSITION).await;
    let config = write_config(&dir, "outage", &target);
    let mut agent = Agent::start(
        dir.path(),
        &["--config", &config, "--remote-write-url", &prom.write_url()],
    )
    .await;
    let first = prom
        .wait_for_async("up{job=\"outage\"}", Duration::from_secs(30))
        .await;
    assert!(
        !first.is_empty(),
        "nothing arrived before the outage:\n{}",
        agent.log()
    );

    prom.stop();
    let down_at = now_secs();
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        agent.guard.running(),
        "agent died during the outage:\n{}",
        agent.log()
    );
    let retried = agent
        .metric(
            "livetranslate_agent_remote_write_samples_retried_total",
            &[],
        )
        .await;
    assert!(retried > 0.0, "no retries during the outage");
    let queued = agent
        .metric("livetranslate_agent_remote_write_queue_samples", &[])
        .await;
    assert!(queued > 0.0, "nothing queued during the outage");
    let restart_at = now_secs();
    assert!(outage.elapsed() >= Duration::from_secs(20));
    prom.restart_async().await;

    // The latest `up` sample at or before the end of the outage must lie inside the outage.
    let probe = restart_at - 1.0;
    let mut last_ts;
    let deadline = Instant::now() + Duration::from_secs(40);
    let delivered = loop {
        let r = prom
            .query_async("timestamp(up{job=\"outage\"})", Some(probe))
            .await;
        last_ts = r.first().map(value_of).unwrap_or(0.0);
        if last_ts > down_at + 1.0 {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        delivered,
        "no sample from inside the outage ({down_at:.3}..{restart_at:.3}) arrived; latest \
         before its end is at {last_ts:.3}\nagent log:\n{}",
        agent.log()
    );
    let in_window = prom
        .query_async(
            &format!(
                "count_over_time(up{{job=\"outage\"}}[{}s])",
                (restart_at - down_at).floor() as u64 - 1
            ),
            Some(probe),
        )
        .await;
    let n = in_window.first().map(value_of).unwrap_or(0.0);
    assert!(n >= 10.0, "only {n} up samples inside the outage window");
    let counter = prom
        .query_async(
            "lt_requests_total{job=\"outage\",path=\"/plain\"}",
            Some(probe),
        )
        .await;
    assert_eq!(counter.first().map(value_of), Some(3.0), "{counter:?}");
    assert!(agent.guard.running());
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_remote_write_samples_dropped_total",
                &[("reason", "queue_full")]
            )
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_are_forwarded_in_remote_write() {
    let dir = TempDir::new("prom-exemplars");
    let prom = Prometheus::start_with_async(
        dir.path(),
        NO_SCRAPES,
        &["--enable-feature=exemplar-storage"],
    )
    .await;
    let target = Target::start("").await;
    let ts = now_secs() - 1.0;
    target.set(
        &format!(
            "# TYPE lt_jobs counter\n\
             lt_jobs_total{{kind=\"a\"}} 17 # {{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"}} 0.5 {ts:.3}\n\
             # TYPE lt_wait_seconds histogram\n\
             lt_wait_seconds_bucket{{le=\"1\"}} 3 # {{trace_id=\"00f067aa0ba902b7\"}} 0.25\n\
             lt_wait_seconds_bucket{{le=\"+Inf\"}} 4\n\
             lt_wait_seconds_sum 2\n\
             lt_wait_seconds_count 4\n\
             # EOF\n"
        ),
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    );
    let config = write_config(&dir, "exemplars", &target);
    let agent = Agent::start(
        dir.path(),
        &["--config", &config, "--remote-write-url", &prom.write_url()],
    )
    .await;
    let start = format!("{:.3}", now_secs() - 600.0);
    let found = livetranslate_test_support::eventually_async(Duration::from_secs(20), || async {
        let end = format!("{:.3}", now_secs() + 60.0);
        let data = prom
            .api_async(
                "query_exemplars",
                &[
                    ("query", "{job=\"exemplars\"}".to_owned()),
                    ("start", start.clone()),
                    ("end", end),
                ],
            )
            .await;
        let text = data.to_string();
        text.contains("4bf92f3577b34da6a3ce929d0e0e4736") && text.contains("00f067aa0ba902b7")
    })
    .await;
    assert!(
        found,
        "exemplars not stored by the receiver:\n{}",
        agent.log()
    );
    assert!(
        agent
            .metric("livetranslate_agent_remote_write_exemplars_sent_total", &[])
            .await
            >= 2.0
    );
}
