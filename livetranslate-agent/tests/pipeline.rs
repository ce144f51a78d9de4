//! The agent against a scripted remote-write receiver: rejected and retried batches, queue
//! overflow, failing targets, target discovery and staleness, shutdown flush.

mod common;

use std::time::Duration;

use common::{Agent, Receiver, Target};
use livetranslate_agent::metrics::STALE_NAN_BITS;
use livetranslate_test_support::{eventually_async, http_client, TempDir};

const BODY: &str = "# TYPE lt_events_total counter\nlt_events_total{kind=\"a\"} 7\n\
                    # TYPE lt_depth gauge\nlt_depth 2\n";

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

fn name_of(labels: &[(String, String)]) -> &str {
    labels
        .iter()
        .find(|(n, _)| n == "__name__")
        .map_or("", |(_, v)| v.as_str())
}

fn label_of<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_batches_are_counted_and_never_retried() {
    let dir = TempDir::new("rejected");
    let target = Target::start(BODY).await;
    let receiver = Receiver::start(400, vec![]).await;
    let config = write(
        &dir,
        "agent.yml",
        "remote_write:\n  queue: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 100ms}\n",
    );
    // One scrape only (interval 1h): exactly one batch of 2 samples and the 5 report series
    // (up, scrape_duration_seconds, scrape_samples_scraped,
    // scrape_samples_post_metric_relabeling, scrape_series_added).
    let agent = Agent::start_scraping(
        dir.path(),
        &config,
        &target.url("/metrics"),
        "1h",
        &receiver.url(),
    )
    .await;
    let dropped = eventually_async(Duration::from_secs(15), || async {
        agent
            .metric(
                "livetranslate_agent_remote_write_samples_dropped_total",
                &[("reason", "rejected")],
            )
            .await
            == 7.0
    })
    .await;
    assert!(dropped, "rejected samples not counted:\n{}", agent.log());
    // Give a (wrong) retry ample time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.request_count(), 1, "a 400 must not be retried");
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_remote_write_samples_retried_total",
                &[]
            )
            .await,
        0.0
    );
    assert_eq!(
        agent
            .metric("livetranslate_agent_remote_write_samples_sent_total", &[])
            .await,
        0.0
    );
    assert!(
        agent.log().contains("test receiver says 400"),
        "the response body is not logged:\n{}",
        agent.log()
    );

    // The request itself follows remote write 1.0.
    let headers = receiver.headers.lock().expect("lock")[0].clone();
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(h("content-encoding"), "snappy");
    assert_eq!(h("content-type"), "application/x-protobuf");
    assert_eq!(h("x-prometheus-remote-write-version"), "0.1.0");
    assert!(
        h("user-agent").starts_with("livetranslate-agent/"),
        "{}",
        h("user-agent")
    );
    let samples = receiver.samples();
    assert_eq!(samples.len(), 7);
    for (labels, _, _) in &samples {
        let names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "labels not sorted by name");
        assert!(
            names.contains(&"__name__") && names.contains(&"job") && names.contains(&"instance")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_are_retried_until_delivered() {
    let dir = TempDir::new("retry");
    let target = Target::start(BODY).await;
    let receiver = Receiver::start(204, vec![(503, None), (429, Some("1".into()))]).await;
    let config = write(
        &dir,
        "agent.yml",
        "remote_write:\n  queue: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 100ms}\n",
    );
    let agent = Agent::start_scraping(
        dir.path(),
        &config,
        &target.url("/metrics"),
        "1h",
        &receiver.url(),
    )
    .await;
    let sent = eventually_async(Duration::from_secs(15), || async {
        agent
            .metric("livetranslate_agent_remote_write_samples_sent_total", &[])
            .await
            == 7.0
    })
    .await;
    assert!(sent, "batch not delivered after retries:\n{}", agent.log());
    assert_eq!(receiver.request_count(), 3, "503, 429, then success");
    let times = receiver.times.lock().expect("lock").clone();
    let waited = times[2] - times[1];
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After: 1 not honoured (retried after {waited:?})"
    );
    assert!(
        times[1] - times[0] < Duration::from_millis(900),
        "backoff too long"
    );
    let reqs = receiver.requests.lock().expect("lock").clone();
    assert!(
        reqs.windows(2).all(|w| w[0] == w[1]),
        "every attempt carries the same batch"
    );
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_remote_write_samples_retried_total",
                &[]
            )
            .await,
        14.0
    );
    assert!(
        agent
            .metric(
                "livetranslate_agent_remote_write_last_success_timestamp_seconds",
                &[]
            )
            .await
            > 1.0e9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_overflow_during_an_outage_drops_and_counts_samples() {
    let dir = TempDir::new("overflow");
    let target = Target::start(BODY).await;
    let receiver = Receiver::start(503, vec![]).await;
    let config = write(
        &dir,
        "agent.yml",
        "remote_write:\n  wal: {enabled: false}\n  queue: {capacity: 20, max_samples_per_send: 5, batch_send_deadline: 100ms, min_backoff: 100ms, max_backoff: 200ms}\n",
    );
    let mut agent = Agent::start_scraping(
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
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_remote_write_queue_capacity_samples",
                &[]
            )
            .await,
        20.0
    );
    assert!(
        agent
            .metric("livetranslate_agent_remote_write_queue_samples", &[])
            .await
            <= 20.0
    );
    assert!(agent.guard.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_exposition_marks_only_that_target_down() {
    let dir = TempDir::new("malformed");
    let good = Target::start(BODY).await;
    let bad = Target::start("fine_metric 1\nbroken_metric{x=\"1\" 2\nlater 3\n").await;
    let receiver = Receiver::start(204, vec![]).await;
    let config = write(
        &dir,
        "agent.yml",
        "remote_write:\n  queue: {batch_send_deadline: 200ms}\n",
    );
    let agent = Agent::start(
        dir.path(),
        &[
            "--config",
            &config,
            "--scrape-target",
            &good.url("/metrics"),
            "--scrape-target",
            &bad.url("/metrics"),
            "--scrape-interval",
            "500ms",
            "--remote-write-url",
            &receiver.url(),
        ],
    )
    .await;
    let good_i = good.addr.to_string();
    let bad_i = bad.addr.to_string();
    let settled = eventually_async(Duration::from_secs(15), || async {
        agent
            .metric(
                "livetranslate_agent_scrape_errors_total",
                &[("instance", &bad_i)],
            )
            .await
            >= 2.0
    })
    .await;
    assert!(settled, "bad target never failed:\n{}", agent.log());
    assert_eq!(
        agent
            .metric("livetranslate_agent_target_up", &[("instance", &bad_i)])
            .await,
        0.0
    );
    assert_eq!(
        agent
            .metric("livetranslate_agent_target_up", &[("instance", &good_i)])
            .await,
        1.0
    );
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_scrape_errors_total",
                &[("instance", &good_i)]
            )
            .await,
        0.0
    );
    assert!(
        agent
            .metric(
                "livetranslate_agent_scrape_samples_total",
                &[("instance", &good_i)]
            )
            .await
            >= 2.0
    );
    let log = agent.log();
    assert!(
        log.contains(&bad_i) && log.contains("line 2"),
        "the error must name the target and the bad line:\n{log}"
    );

    let delivered = eventually_async(Duration::from_secs(10), || async {
        let s = receiver.samples();
        let up = |inst: &str, v: f64| {
            s.iter().any(|(l, _, val)| {
                name_of(l) == "up" && label_of(l, "instance") == inst && *val == v
            })
        };
        up(&bad_i, 0.0) && up(&good_i, 1.0)
    })
    .await;
    assert!(delivered, "up samples not delivered");
    // Nothing of the bad target's body was shipped.
    assert!(!receiver
        .samples()
        .iter()
        .any(|(l, _, _)| name_of(l) == "fine_metric"));

    let page = http_client()
        .get(agent.url("/"))
        .send()
        .await
        .expect("status page");
    let page = page.text().await.unwrap_or_default();
    assert!(
        page.contains(&bad.url("/metrics")) && page.contains("DOWN"),
        "{page}"
    );
    assert!(page.contains("line 2"), "{page}");
    assert!(page.contains(&format!("instance={good_i}")), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_series_and_removed_targets_get_staleness_markers() {
    let dir = TempDir::new("stale");
    let a = Target::start(BODY).await;
    let b = Target::start(BODY).await;
    let receiver = Receiver::start(204, vec![]).await;
    write(
        &dir,
        "targets.json",
        &format!(r#"[{{"targets":["{}"],"labels":{{"team":"x"}}}}]"#, a.addr),
    );
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            "scrape_configs:\n  - job_name: sd\n    interval: 300ms\n    timeout: 300ms\n    \
             file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 500ms\n\
             remote_write:\n  queue: {{batch_send_deadline: 100ms}}\n",
            dir.path().join("*.json").display()
        ),
    );
    let agent = Agent::start(
        dir.path(),
        &["--config", &config, "--remote-write-url", &receiver.url()],
    )
    .await;
    let a_i = a.addr.to_string();
    let b_i = b.addr.to_string();
    let stale = |name: &str, inst: &str| {
        receiver.samples().iter().any(|(l, _, v)| {
            name_of(l) == name && label_of(l, "instance") == inst && v.to_bits() == STALE_NAN_BITS
        })
    };
    let seen = |name: &str, inst: &str| {
        receiver
            .samples()
            .iter()
            .any(|(l, _, _)| name_of(l) == name && label_of(l, "instance") == inst)
    };
    assert!(
        eventually_async(Duration::from_secs(10), || async { seen("lt_depth", &a_i) }).await,
        "target from the file_sd file not scraped:\n{}",
        agent.log()
    );
    assert!(receiver
        .samples()
        .iter()
        .any(|(l, _, _)| label_of(l, "team") == "x" && label_of(l, "job") == "sd"));

    // A series disappears from the target's output.
    a.set(
        "# TYPE lt_events_total counter\nlt_events_total{kind=\"a\"} 8\n",
        "text/plain",
    );
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            stale("lt_depth", &a_i)
        })
        .await,
        "no staleness marker for the vanished series"
    );
    assert!(!stale("lt_events_total", &a_i));

    // The file now lists another target: the old one's series go stale.
    write(
        &dir,
        "targets.json",
        &format!(r#"[{{"targets":["{}"]}}]"#, b.addr),
    );
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            stale("up", &a_i) && stale("lt_events_total", &a_i) && seen("lt_depth", &b_i)
        })
        .await,
        "removed target not marked stale or new target not scraped:\n{}",
        agent.log()
    );
    // After its staleness markers, the removed target sends nothing more.
    let last_a = |s: &[common::Received]| {
        s.iter()
            .filter(|(l, _, _)| label_of(l, "instance") == a_i && name_of(l) == "up")
            .map(|(_, t, v)| (*t, v.to_bits()))
            .max()
    };
    let before = last_a(&receiver.samples());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(last_a(&receiver.samples()), before);
    assert_eq!(before.map(|(_, bits)| bits), Some(STALE_NAN_BITS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_queue() {
    let dir = TempDir::new("flush");
    let target = Target::start(BODY).await;
    let receiver = Receiver::start(204, vec![]).await;
    // Batches would only go out after a minute: only the shutdown flush can deliver them.
    let config = write(
        &dir,
        "agent.yml",
        "remote_write:\n  queue: {batch_send_deadline: 60s}\nshutdown_timeout: 5s\n",
    );
    let mut agent = Agent::start_scraping(
        dir.path(),
        &config,
        &target.url("/metrics"),
        "1h",
        &receiver.url(),
    )
    .await;
    let queued = eventually_async(Duration::from_secs(10), || async {
        agent
            .metric("livetranslate_agent_remote_write_queue_samples", &[])
            .await
            == 7.0
    })
    .await;
    assert!(queued, "scrape not queued:\n{}", agent.log());
    assert_eq!(receiver.request_count(), 0);
    let started = std::time::Instant::now();
    agent.guard.terminate(Duration::from_secs(15));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took too long"
    );
    assert_eq!(
        receiver.samples().len(),
        7,
        "queue not flushed:\n{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_targets_and_authentication() {
    let dir = TempDir::new("om-auth");
    let om = Target::start("").await;
    // An explicit timestamp a minute old (Prometheus skips samples more than an hour old).
    let ts_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        - 60;
    om.set(
        &format!(
            "# TYPE om_requests counter\n# HELP om_requests Requests.\n\
             om_requests_total{{code=\"200\"}} 17.0 # {{trace_id=\"abc\"}} 1.0 1520879606.1\n\
             om_requests_created{{code=\"200\"}} 1520430000.123\n\
             # TYPE om_temp_celsius gauge\n# UNIT om_temp_celsius celsius\n\
             om_temp_celsius 21.5 {ts_s}.5\n# EOF\n"
        ),
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    );
    let text = Target::start(BODY).await;
    let receiver = Receiver::start(204, vec![]).await;
    let token = write(&dir, "token", "s3cret-token\n");
    let password = write(&dir, "password", "pass\n");
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            "scrape_configs:\n\
             \x20 - job_name: om\n    interval: 300ms\n    bearer_token_file: '{token}'\n\
             \x20   static_configs: [{{targets: ['{}']}}]\n\
             \x20 - job_name: basic\n    interval: 300ms\n    metrics_path: /custom/path\n\
             \x20   basic_auth: {{username: user, password_file: '{password}'}}\n\
             \x20   static_configs: [{{targets: ['{}'], labels: {{tier: backend}}}}]\n\
             remote_write:\n  queue: {{batch_send_deadline: 100ms}}\n",
            om.addr, text.addr
        ),
    );
    let agent = Agent::start(
        dir.path(),
        &["--config", &config, "--remote-write-url", &receiver.url()],
    )
    .await;
    let got = eventually_async(Duration::from_secs(10), || async {
        let s = receiver.samples();
        s.iter().any(|(l, _, _)| name_of(l) == "om_temp_celsius")
            && s.iter().any(|(l, _, _)| name_of(l) == "lt_depth")
    })
    .await;
    assert!(got, "samples missing:\n{}", agent.log());
    let samples = receiver.samples();
    let find = |name: &str| {
        samples
            .iter()
            .find(|(l, _, _)| name_of(l) == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not received"))
    };
    let (labels, _, v) = find("om_requests_total");
    assert_eq!(v, 17.0);
    assert_eq!(label_of(&labels, "code"), "200");
    assert_eq!(label_of(&labels, "job"), "om");
    let (_, ts, v) = find("om_temp_celsius");
    assert_eq!(
        (ts, v),
        (ts_s as i64 * 1000 + 500, 21.5),
        "OpenMetrics timestamps are seconds"
    );
    let (_, _, v) = find("om_requests_created");
    assert_eq!(
        v, 1520430000.123,
        "Prometheus 2.42 stores _created lines as samples"
    );
    let (labels, _, _) = find("lt_depth");
    assert_eq!(label_of(&labels, "tier"), "backend");
    assert_eq!(label_of(&labels, "job"), "basic");

    assert_eq!(
        om.header("authorization").as_deref(),
        Some("Bearer s3cret-token")
    );
    assert_eq!(
        text.header("authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz"),
        "user:pass"
    );
    assert_eq!(
        om.header("accept").as_deref(),
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    );
    assert!(om.header("x-prometheus-scrape-timeout-seconds").is_some());
    assert_eq!(*text.last_uri.lock().expect("lock"), "/custom/path");
    assert_eq!(*om.last_uri.lock().expect("lock"), "/metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_remote_write_the_agent_still_scrapes_and_serves_its_metrics() {
    let dir = TempDir::new("no-rw");
    let target = Target::start(BODY).await;
    let agent = Agent::start(
        dir.path(),
        &[
            "--scrape-target",
            &target.url("/metrics"),
            "--scrape-interval",
            "200ms",
        ],
    )
    .await;
    let scraped = eventually_async(Duration::from_secs(10), || async {
        agent
            .metric("livetranslate_agent_scrape_samples_total", &[])
            .await
            >= 4.0
    })
    .await;
    assert!(scraped, "not scraping:\n{}", agent.log());
    assert!(agent.log().contains("nothing is pushed"), "{}", agent.log());
    let resp = http_client()
        .get(agent.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = resp.text().await.unwrap_or_default();
    assert!(body.contains("livetranslate_agent_build_info{service=\"livetranslate-agent\""));
    let ready = http_client()
        .get(agent.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status().as_u16(), 200);
}
