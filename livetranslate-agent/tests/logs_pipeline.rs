//! The log pipeline end to end: the real agent binary tails files written by a test writer
//! and pushes to the Loki stand-in; each scenario counts, line by line, what was written
//! against what arrived.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::logs::{seq_of, summary, tally, wait_all, write_lines, Rotation};
use common::Agent;
use livetranslate_test_support::loki::{decode_push, LokiStandIn, Mode};
use livetranslate_test_support::TempDir;

/// The directory the test's log files are written to.
fn logs(dir: &TempDir) -> PathBuf {
    let p = dir.path().join("logs");
    fs::create_dir_all(&p).expect("logs dir");
    p
}

/// Starts the agent on `config` without waiting for it (the tests watch Loki instead).
fn start_agent(dir: &TempDir, config: &Path) -> Agent {
    let config = config.to_str().expect("utf-8 path");
    Agent::spawn(dir.path(), &["--config", config], "warn")
}

fn metric_value(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn write_config(dir: &TempDir, loki: &str, extra: &str) -> PathBuf {
    let path = dir.path().join("agent.yml");
    let text = format!(
        "labels:\n  environment: test\n  cluster: test-cluster\nlogs:\n  loki_url: {loki}\n  positions_file: {pos}\n  inputs:\n    - paths: [\"{logs}/*.log\"]\n      format: json\n  loki:\n    batch_wait: 100ms\n    batch_size: 262144\n    min_backoff: 50ms\n    max_backoff: 500ms\n    timeout: 2s\n  poll_interval: 20ms\n  sync_period: 100ms\n  rotate_wait: 1s\n{extra}",
        pos = dir.path().join("positions.yml").display(),
        logs = logs(dir).display(),
    );
    fs::write(&path, text).expect("config");
    path
}

#[test]
fn standin_decodes_the_agents_encoding() {
    use livetranslate_agent::loki::proto::{
        encode, EntryAdapter, PushRequest, StreamAdapter, Timestamp,
    };
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: "{a=\"b\"}".into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp::from_nanos(1_700_000_000_000_000_007)),
                line: "hi".into(),
                structured_metadata: vec![],
            }],
            hash: 0,
        }],
    };
    let got = decode_push(&encode(&req).expect("encode")).expect("decode");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp_ns, 1_700_000_000_000_000_007);
    assert_eq!(&*got[0].line, "hi");
    assert!(decode_push(b"garbage").is_err());
}

#[test]
fn ships_lines_with_labels_and_their_own_timestamps() {
    let dir = TempDir::new("basic");
    let loki = LokiStandIn::start();
    let config = write_config(&dir, &loki.url(), "");
    write_lines(&logs(&dir), 0..1000, 100_000, Rotation::None);
    let _agent = start_agent(&dir, &config);
    let (missing, dups) = wait_all(&loki, 1000, Duration::from_secs(30));
    assert!(missing.is_empty(), "{}", summary(&missing));
    assert_eq!(dups, 0);
    let entries = loki.entries();
    let e = entries
        .iter()
        .find(|e| seq_of(&e.line) == Some(10))
        .expect("line 10");
    for label in [
        "level=\"error\"",
        "service=\"audio\"",
        "environment=\"test\"",
        "cluster=\"test-cluster\"",
    ] {
        assert!(e.labels.contains(label), "{label} not in {}", e.labels);
    }
    // As the library's direct shipping: no filename (the input does not ask for it).
    assert!(!e.labels.contains("filename="), "{}", e.labels);
    // The line's own timestamp is used, so a re-sent line is a duplicate Loki drops.
    let ts_field = e
        .line
        .split("\"timestamp\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("ts");
    let mut expected = String::new();
    livetranslate_telemetry::logging::write_rfc3339(
        &mut expected,
        UNIX_EPOCH + Duration::from_nanos(e.timestamp_ns as u64),
    );
    assert_eq!(ts_field, expected);
}

#[test]
fn kill9_and_restart_ten_times_loses_nothing() {
    const N: u64 = 200_000;
    let dir = TempDir::new("kill9");
    let loki = LokiStandIn::start();
    let config = write_config(&dir, &loki.url(), "");
    let logs = logs(&dir);
    let writer = std::thread::spawn(move || write_lines(&logs, 0..N, 25_000, Rotation::None));
    let mut agent = start_agent(&dir, &config);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(700));
        agent.kill9();
        agent = start_agent(&dir, &config);
    }
    writer.join().expect("writer");
    let (missing, dups) = wait_all(&loki, N, Duration::from_secs(90));
    assert!(missing.is_empty(), "{}", summary(&missing));
    // Re-sent lines carry their original timestamps and labels, so Loki stores each once: no
    // line is stored twice, and at most what was unacknowledged at each crash is re-sent.
    assert_eq!(
        dups, 0,
        "lines stored twice (re-sent with other labels or timestamps)"
    );
    let resent = loki.duplicates();
    assert_eq!(resent.lines_in_several_streams, 0);
    let bound = 10 * (8 * 1024 * 1024 / 150);
    assert!(
        resent.resent <= bound,
        "{} re-sent > {bound}",
        resent.resent
    );
    println!(
        "kill -9 x10: {N} lines, 0 lost, 0 stored twice, {} re-sent (identical, dropped by Loki)",
        resent.resent
    );
}

#[test]
fn rename_and_copytruncate_rotation_under_load_loses_nothing() {
    const N: u64 = 100_000;
    let dir = TempDir::new("rotate");
    let loki = LokiStandIn::start();
    let config = write_config(&dir, &loki.url(), "");
    let _agent = start_agent(&dir, &config);
    std::thread::sleep(Duration::from_millis(300));
    let logs = logs(&dir);
    write_lines(&logs, 0..N, 20_000, Rotation::Every(1024 * 1024));
    let (missing, dups) = wait_all(&loki, N, Duration::from_secs(60));
    assert!(missing.is_empty(), "{}", summary(&missing));
    let rotations = fs::read_dir(&logs).expect("dir").count() - 1;
    assert!(rotations >= 8, "only {rotations} rotations happened");
    println!(
        "rotation: {N} lines, {rotations} rotations, 0 lost, {dups} stored twice, {} re-sent",
        loki.duplicates().resent
    );
}

#[test]
fn loki_outage_then_429_and_500_loses_nothing_and_memory_stays_bounded() {
    const N: u64 = 40_000;
    let dir = TempDir::new("outage");
    let mut loki = LokiStandIn::start();
    let config = write_config(&dir, &loki.url(), "  max_buffer_bytes: 2097152\n");
    let agent = start_agent(&dir, &config);
    write_lines(&logs(&dir), 0..1000, 50_000, Rotation::None);
    let (missing, _) = wait_all(&loki, 1000, Duration::from_secs(20));
    assert!(missing.is_empty());
    loki.stop();
    let logs = logs(&dir);
    let writer = std::thread::spawn(move || write_lines(&logs, 1000..N, 2_000, Rotation::None));
    let mut peak = 0;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(30) {
        peak = peak.max(agent.rss_bytes().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(250));
    }
    loki.restart();
    loki.set_mode(Mode::Status(429));
    std::thread::sleep(Duration::from_secs(3));
    loki.set_mode(Mode::Status(500));
    std::thread::sleep(Duration::from_secs(3));
    loki.set_mode(Mode::Ok);
    writer.join().expect("writer");
    let (missing, dups) = wait_all(&loki, N, Duration::from_secs(60));
    assert!(missing.is_empty(), "{}", summary(&missing));
    let requests = loki.requests();
    assert!(
        requests.contains(&429) && requests.contains(&500),
        "{requests:?}"
    );
    let m = agent.metrics_text();
    assert!(metric_value(&m, "livetranslate_agent_loki_batches_retried_total", "") > 0.0);
    assert_eq!(
        metric_value(&m, "livetranslate_agent_loki_batches_failed_total", ""),
        0.0
    );
    assert!(
        peak < 64 * 1024 * 1024,
        "peak RSS {peak} bytes during the outage"
    );
    println!(
        "outage: {N} lines, 0 lost, {dups} stored twice, {} re-sent, peak RSS {} KiB",
        loki.duplicates().resent,
        peak / 1024
    );
}

#[test]
fn a_400_is_not_retried_and_counted_as_dropped() {
    let dir = TempDir::new("reject");
    let loki = LokiStandIn::start();
    loki.set_mode(Mode::Status(400));
    let config = write_config(&dir, &loki.url(), "");
    write_lines(&logs(&dir), 0..100, 100_000, Rotation::None);
    let agent = start_agent(&dir, &config);
    let start = Instant::now();
    while loki.requests().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        loki.requests(),
        vec![400],
        "a refused batch must not be retried"
    );
    let m = agent.metrics_text();
    assert_eq!(
        metric_value(
            &m,
            "livetranslate_agent_log_dropped_lines_total",
            "reason=\"rejected\""
        ),
        100.0
    );
    assert_eq!(
        metric_value(&m, "livetranslate_agent_loki_batches_failed_total", ""),
        1.0
    );
}

#[test]
fn sigterm_flushes_and_saves_positions_so_a_restart_resends_nothing() {
    let dir = TempDir::new("sigterm");
    let loki = LokiStandIn::start();
    let config = write_config(&dir, &loki.url(), "");
    // A long batch_wait: only the shutdown flush can deliver these lines in time.
    let text = fs::read_to_string(&config)
        .expect("config")
        .replace("batch_wait: 100ms", "batch_wait: 30s");
    fs::write(&config, text).expect("config");
    write_lines(&logs(&dir), 0..500, 100_000, Rotation::None);
    let mut agent = start_agent(&dir, &config);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        loki.entries().is_empty(),
        "the batch should still be waiting"
    );
    let status = agent.sigterm();
    assert!(status.success(), "{status:?}");
    let (missing, _) = tally(&loki.entries(), 500);
    assert!(
        missing.is_empty(),
        "shutdown did not flush: {}",
        summary(&missing)
    );
    let positions = fs::read_to_string(dir.path().join("positions.yml")).expect("positions saved");
    assert!(positions.contains("app.log"), "{positions}");
    let _agent = start_agent(&dir, &config);
    std::thread::sleep(Duration::from_secs(2));
    let (_, dups) = tally(&loki.entries(), 500);
    assert_eq!(dups, 0, "a line stored twice");
    assert_eq!(
        loki.duplicates().resent,
        0,
        "a clean restart must not re-send"
    );
}

#[test]
fn bad_input_is_shipped_or_counted_never_a_crash() {
    let dir = TempDir::new("badinput");
    let loki = LokiStandIn::start();
    let config = write_config(&dir, &loki.url(), "  max_line_bytes: 1000\n");
    let mut f = File::create(logs(&dir).join("bad.log")).expect("file");
    f.write_all(b"{\"level\":\"info\",\"message\":\"ok seq=1\"}\n")
        .expect("w");
    f.write_all(b"not json at all seq=2\n").expect("w");
    f.write_all(b"\xff\xfe invalid utf8 seq=3\n").expect("w");
    f.write_all(&[0u8, 1, 2, 3, 0xc3, 0x28, b'\n']).expect("w");
    f.write_all(format!("{{\"message\":\"long seq=4 {}\"}}\n", "y".repeat(5000)).as_bytes())
        .expect("w");
    f.write_all(b"{\"message\":\"after the long one seq=5\"}\n")
        .expect("w");
    drop(f);
    let agent = start_agent(&dir, &config);
    let start = Instant::now();
    while loki.entries().len() < 6 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let entries = loki.entries();
    assert_eq!(entries.len(), 6, "{entries:?}");
    let seqs: Vec<Option<u64>> = entries.iter().map(|e| seq_of(&e.line)).collect();
    assert_eq!(
        seqs,
        vec![Some(1), Some(2), Some(3), None, Some(4), Some(5)]
    );
    assert!(entries[2].line.contains('\u{fffd}'));
    assert_eq!(entries[4].line.len(), 1000);
    let m = agent.metrics_text();
    for reason in ["invalid_utf8", "malformed", "truncated"] {
        let v = metric_value(
            &m,
            "livetranslate_agent_log_dropped_lines_total",
            &format!("reason=\"{reason}\""),
        );
        assert!(v >= 1.0, "{reason}: {v}\n{m}");
    }
}

#[test]
fn bad_configs_are_clear_errors_with_exit_code_2() {
    let dir = TempDir::new("badcfg");
    let unknown = dir.path().join("unknown.yml");
    fs::write(&unknown, "logs:\n  loki_url: http://127.0.0.1:1\n  inputs:\n    - paths: [\"/x/*.log\"]\n      formt: json\n").expect("w");
    let (code, out) = Agent::run(&[
        "--config",
        unknown.to_str().expect("utf8"),
        "--check-config",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("unknown.yml:5:"),
        "no file:line:column in {out}"
    );
    let (code, out) = Agent::run(&["--loki-url", "not a url", "--check-config"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = Agent::run(&["--config", "/definitely/missing.yml"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing.yml"), "{out}");
    let bad_format = dir.path().join("format.yml");
    fs::write(
        &bad_format,
        "logs:\n  inputs:\n    - paths: [\"/x/*.log\"]\n      format: xml\n",
    )
    .expect("w");
    let (code, out) = Agent::run(&[
        "--config",
        bad_format.to_str().expect("utf8"),
        "--check-config",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("format.yml:4:"), "{out}");
    let bad_regex = dir.path().join("regex.yml");
    fs::write(&bad_regex, "logs:\n  inputs:\n    - paths: [\"/x/*.log\"]\n      multiline:\n        first_line: \"([\"\n").expect("w");
    let (code, out) = Agent::run(&[
        "--config",
        bad_regex.to_str().expect("utf8"),
        "--check-config",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("regex"), "{out}");
}

#[test]
fn tenant_and_basic_auth_reach_loki_but_never_the_metrics_or_logs() {
    let dir = TempDir::new("auth");
    let loki = LokiStandIn::start();
    let url = loki.url().replace("http://", "http://shipper:s3cr3t-pw@");
    let config = write_config(&dir, &url, "");
    let text = fs::read_to_string(&config)
        .expect("c")
        .replace("  loki:\n", "  loki:\n    tenant_id: team-a\n");
    fs::write(&config, text).expect("c");
    write_lines(&logs(&dir), 0..10, 100_000, Rotation::None);
    let agent = start_agent(&dir, &config);
    let (missing, _) = wait_all(&loki, 10, Duration::from_secs(20));
    assert!(missing.is_empty());
    assert_eq!(loki.tenants()[0].as_deref(), Some("team-a"));
    assert_eq!(
        loki.auths()[0].as_deref(),
        Some("Basic c2hpcHBlcjpzM2NyM3QtcHc=")
    );
    let page = livetranslate_test_support::http_get(&agent.url("/"))
        .map(|(_, body)| body)
        .unwrap_or_default();
    let metrics = agent.metrics_text();
    let log = agent.log();
    for text in [&page, &metrics, &log] {
        assert!(!text.contains("s3cr3t-pw"), "credential leaked");
    }
}

#[test]
fn a_deleted_file_is_drained_from_its_open_handle() {
    const N: u64 = 5_000;
    let dir = TempDir::new("deleted");
    let loki = LokiStandIn::start();
    // Nothing is acknowledged, and the small buffer stops the reader part-way through.
    loki.set_mode(Mode::Status(429));
    let config = write_config(&dir, &loki.url(), "  max_buffer_bytes: 65536\n");
    write_lines(&logs(&dir), 0..N, 1_000_000, Rotation::None);
    let _agent = start_agent(&dir, &config);
    // The first push was refused: the reader is now held by the 64 KiB cap, about 280 of
    // the 5,000 lines (1.1 MB) into the file.
    let start = Instant::now();
    while loki.requests().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!loki.requests().is_empty(), "the agent never pushed");
    std::thread::sleep(Duration::from_millis(300));
    fs::remove_file(logs(&dir).join("app.log")).expect("delete");
    loki.set_mode(Mode::Ok);
    let (missing, _) = wait_all(&loki, N, Duration::from_secs(60));
    assert!(missing.is_empty(), "{}", summary(&missing));
}
