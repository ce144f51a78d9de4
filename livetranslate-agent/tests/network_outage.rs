//! Loki unreachable because the network silently drops everything, not because it refuses
//! connections: the stand-in listens inside a network namespace of the test's own, the agent
//! outside; the namespace's link goes down for 60 s (packets vanish, requests hang until their
//! timeout) while lines keep being written, then comes back. Nothing may be lost.
//!
//! Needs root and iproute2's `ip netns` (as CI runs the tests); without them the test fails
//! saying so.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::logs::{summary, wait_all, write_lines, Rotation};
use common::Agent;
use livetranslate_test_support::loki::LokiStandIn;
use livetranslate_test_support::netns::NetNs;
use livetranslate_test_support::TempDir;

#[test]
fn loki_behind_a_network_that_drops_everything_for_60s_loses_nothing() {
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(e) => panic!("cannot build the network outage: {e}"),
    };
    let listener = match ns.listener() {
        Ok(l) => l,
        Err(e) => panic!("cannot listen inside the namespace: {e}"),
    };
    let loki = LokiStandIn::start_on(listener);
    assert_eq!(loki.addr.ip(), std::net::IpAddr::V4(ns.addr()));
    let dir = TempDir::new("netns-outage");
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    let config = dir.path().join("agent.yml");
    fs::write(
        &config,
        format!(
            "labels: {{environment: test, cluster: c1}}\nlogs:\n  loki_url: {}\n  positions_file: {}\n  paths: [\"{}/*.log\"]\n  loki: {{batch_wait: 100ms, timeout: 2s, min_backoff: 100ms, max_backoff: 1s}}\n  max_buffer_bytes: 1048576\n  poll_interval: 20ms\n  sync_period: 100ms\n",
            loki.url(),
            dir.path().join("positions.yml").display(),
            logs.display()
        ),
    )
    .expect("config");
    let config_arg = config.display().to_string();
    let agent = Agent::spawn(dir.path(), &["--config", &config_arg], "info");
    write_lines(&logs, 0..2_000, 100_000, Rotation::None);
    let (missing, _) = wait_all(&loki, 2_000, Duration::from_secs(30));
    assert!(
        missing.is_empty(),
        "before the outage: {}",
        summary(&missing)
    );
    let before = loki.requests().len();

    // 60 s without a network: lines keep coming at 1,000/s.
    if let Err(e) = ns.cut() {
        panic!("cannot cut the link: {e}");
    }
    let cut_at = Instant::now();
    let logs2 = logs.clone();
    let writer =
        std::thread::spawn(move || write_lines(&logs2, 2_000..62_000, 1_000, Rotation::None));
    while cut_at.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let during = loki.requests().len() - before;
    let retried = agent.metric_sum("livetranslate_agent_loki_batches_retried_total", "");
    if let Err(e) = ns.restore() {
        panic!("cannot restore the link: {e}");
    }
    writer.join().expect("writer");
    const N: u64 = 62_000;
    let (missing, dups) = wait_all(&loki, N, Duration::from_secs(90));
    let log = agent.log();
    assert!(missing.is_empty(), "{}\n{log}", summary(&missing));
    assert_eq!(dups, 0, "lines stored twice");
    assert_eq!(loki.duplicates().lines_in_several_streams, 0);
    assert_eq!(during, 0, "a request reached Loki while the link was down");
    assert!(retried > 0.0, "no push was retried during the outage");
    // Silence, not refusal: the pushes timed out.
    assert!(
        log.contains("timed out") || log.contains("timeout"),
        "the outage should show as timeouts:\n{log}"
    );
    assert!(!log.contains("onnection refused"), "{log}");
    println!(
        "network dropped for 60 s: {N} lines, 0 lost, 0 stored twice, {} re-sent (identical, dropped by Loki), {retried} push attempts retried",
        loki.duplicates().resent
    );
}
