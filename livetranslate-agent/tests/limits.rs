//! Memory bounded in bytes, time bounded in time: Prometheus's per-scrape limits with
//! Prometheus's outcome (the scrape fails, `up` is 0, nothing of it is kept, the reason is
//! counted), a timeout that covers the body and its parsing, the memory queue bounded in bytes,
//! and a shutdown that keeps to `shutdown_timeout` while a scrape is being parsed and remote
//! write is down.

mod common;

use std::time::{Duration, Instant};

use common::{Agent, Receiver, Target};
use livetranslate_test_support::{eventually_async, TempDir};

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    if let Err(e) = std::fs::write(&path, text) {
        panic!("{name}: {e}");
    }
    path.display().to_string()
}

fn name_of(labels: &[(String, String)]) -> &str {
    labels
        .iter()
        .find(|(n, _)| n == "__name__")
        .map_or("", |(_, v)| v.as_str())
}

fn job_of(labels: &[(String, String)]) -> &str {
    labels
        .iter()
        .find(|(n, _)| n == "job")
        .map_or("", |(_, v)| v.as_str())
}

/// Incompressible text of `n` letters.
fn noise(n: usize) -> String {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_limits_fail_the_scrape_as_in_prometheus() {
    let dir = TempDir::new("limits");
    let many: String = (0..50).map(|i| format!("lt_series_{i} 1\n")).collect();
    let samples = Target::start(&many).await;
    let long_value = Target::start("lt_long{v=\"0123456789abcdef\"} 1\n").await;
    let big_body = Target::start(&format!("# {}\nlt_small 1\n", "x".repeat(20_000))).await;
    let within = Target::start("lt_fine{a=\"b\"} 1\n").await;
    let receiver = Receiver::start(204, vec![]).await;
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            "scrape_configs:
  - job_name: samples
    scrape_interval: 300ms
    sample_limit: 20
    static_configs: [{{targets: ['{}']}}]
  - job_name: value
    scrape_interval: 300ms
    label_value_length_limit: 10
    static_configs: [{{targets: ['{}']}}]
  - job_name: body
    scrape_interval: 300ms
    body_size_limit: 10KB
    static_configs: [{{targets: ['{}']}}]
  - job_name: within
    scrape_interval: 300ms
    sample_limit: 20
    label_limit: 5
    label_name_length_limit: 10
    # The target labels count too: instance is 127.0.0.1:<port>.
    label_value_length_limit: 16
    body_size_limit: 10KB
    static_configs: [{{targets: ['{}']}}]
remote_write:
  url: {}
  queue: {{batch_send_deadline: 100ms}}
",
            samples.addr,
            long_value.addr,
            big_body.addr,
            within.addr,
            receiver.url()
        ),
    );
    let agent = Agent::start(dir.path(), &["--config", &config]).await;
    let counted = eventually_async(Duration::from_secs(15), || async {
        let mut ok = true;
        for reason in ["sample_limit", "label_limit", "body_size_limit"] {
            ok &= agent
                .metric(
                    "livetranslate_agent_scrapes_failed_total",
                    &[("reason", reason)],
                )
                .await
                >= 2.0;
        }
        ok
    })
    .await;
    assert!(counted, "failures not counted by reason:\n{}", agent.log());
    for (job, up) in [
        ("samples", 0.0),
        ("value", 0.0),
        ("body", 0.0),
        ("within", 1.0),
    ] {
        assert_eq!(
            agent
                .metric("livetranslate_agent_target_up", &[("job", job)])
                .await,
            up,
            "job {job}"
        );
    }
    let got = receiver.samples();
    // Nothing of a failed scrape is kept but its report series.
    for (labels, _, _) in &got {
        let job = job_of(labels);
        let name = name_of(labels);
        if job != "within" {
            assert!(
                name == "up" || name.starts_with("scrape_"),
                "{name} of failed job {job} was shipped"
            );
        }
    }
    let report = |job: &str, name: &str| -> Vec<f64> {
        got.iter()
            .filter(|(l, _, _)| job_of(l) == job && name_of(l) == name)
            .map(|(_, _, v)| *v)
            .collect()
    };
    assert!(report("samples", "up").iter().all(|v| *v == 0.0));
    assert!(
        report("samples", "scrape_samples_scraped").contains(&50.0),
        "Prometheus reports every sample line of a scrape over the limit"
    );
    assert!(report("within", "up").iter().all(|v| *v == 1.0));
    assert!(!report("within", "lt_fine").is_empty());
    let status = livetranslate_test_support::http_get(&agent.url("/"))
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert!(status.contains("sample limit exceeded"), "{status}");
    assert!(
        status.contains("label_value_length_limit exceeded"),
        "{status}"
    );
    assert!(status.contains("body size limit exceeded"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_covers_the_body_and_its_parsing() {
    let dir = TempDir::new("timeout");
    // 40 MB of one series: more than a 200 ms timeout can read and parse here.
    let huge = Target::start(&"m 1\n".repeat(10_000_000)).await;
    let small = Target::start("lt_fine 1\n").await;
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            "scrape_configs:
  - job_name: huge
    scrape_interval: 1s
    scrape_timeout: 200ms
    body_size_limit: 0
    static_configs: [{{targets: ['{}']}}]
  - job_name: small
    scrape_interval: 1s
    static_configs: [{{targets: ['{}']}}]
",
            huge.addr, small.addr
        ),
    );
    let agent = Agent::start(dir.path(), &["--config", &config, "--dry-run"]).await;
    let timed_out = eventually_async(Duration::from_secs(20), || async {
        agent
            .metric(
                "livetranslate_agent_scrapes_failed_total",
                &[("job", "huge"), ("reason", "timeout")],
            )
            .await
            >= 1.0
    })
    .await;
    assert!(timed_out, "no timeout:\n{}", agent.log());
    assert_eq!(
        agent
            .metric("livetranslate_agent_target_up", &[("job", "huge")])
            .await,
        0.0
    );
    assert_eq!(
        agent
            .metric("livetranslate_agent_target_up", &[("job", "small")])
            .await,
        1.0,
        "the other target is not held up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_queue_is_bounded_in_bytes() {
    let dir = TempDir::new("queue-bytes");
    // One series with a 300 KB label value that does not compress: each scrape is ~300 KB.
    let target = Target::start(&format!("lt_big{{v=\"{}\"}} 1\n", noise(300_000))).await;
    let receiver = Receiver::start(503, vec![]).await;
    let config = write(
        &dir,
        "agent.yml",
        "remote_write:\n  wal: {enabled: false}\n  queue: {capacity: 100000, max_bytes: 1MB, batch_send_deadline: 100ms, min_backoff: 1s, max_backoff: 1s}\n",
    );
    let agent = Agent::start_scraping(
        dir.path(),
        &config,
        &target.url("/metrics"),
        "100ms",
        &receiver.url(),
    )
    .await;
    let dropped = eventually_async(Duration::from_secs(15), || async {
        agent
            .metric(
                "livetranslate_agent_remote_write_samples_dropped_total",
                &[("reason", "queue_full")],
            )
            .await
            > 0.0
    })
    .await;
    assert!(dropped, "no queue_full drops:\n{}", agent.log());
    for _ in 0..10 {
        let bytes = agent
            .metric("livetranslate_agent_remote_write_queue_bytes", &[])
            .await;
        // The bound, plus the one request being sent (kept until it is delivered).
        assert!(
            bytes <= (1 << 20) as f64 + 400_000.0,
            "queue holds {bytes} bytes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        agent
            .metric("livetranslate_agent_remote_write_queue_capacity_bytes", &[])
            .await,
        (1 << 20) as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_to_shutdown_timeout_while_parsing_and_remote_write_is_down() {
    let dir = TempDir::new("shutdown-bound");
    let huge = Target::start(&"m 1\n".repeat(10_000_000)).await;
    let receiver = Receiver::start(503, vec![]).await;
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            "shutdown_timeout: 2s
scrape_configs:
  - job_name: huge
    scrape_interval: 1s
    scrape_timeout: 1s
    body_size_limit: 0
    static_configs: [{{targets: ['{}']}}]
remote_write:
  url: {}
  queue: {{batch_send_deadline: 100ms, min_backoff: 1s, max_backoff: 1s}}
",
            huge.addr,
            receiver.url()
        ),
    );
    let mut agent = Agent::start(dir.path(), &["--config", &config]).await;
    // Wait until a scrape is under way and remote write has failed at least once.
    let busy = eventually_async(Duration::from_secs(15), || async {
        receiver.request_count() > 0
    })
    .await;
    assert!(busy, "{}", agent.log());
    let started = Instant::now();
    agent.sigterm();
    let took = started.elapsed();
    // 2 s of flushing plus the fixed grace of its HTTP server (the code before this bound
    // took 41-56 s: parsing held the runtime and the flush had no deadline).
    assert!(
        took < Duration::from_secs(10),
        "shutdown took {took:?} with shutdown_timeout 2s:\n{}",
        agent.log()
    );
}
