//! Logs where they really are, end to end: the real agent binary reads a Docker data root laid
//! out as Docker lays it out, a `/var/log/pods` tree rotated and compressed as kubelet does,
//! and a syslog file, and pushes to the Loki stand-in. Each test counts what Loki stores
//! against what was written (every line once, none twice) through rotation and a restart of
//! the agent, and checks the streams' labels.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::logs::{seq_of, summary, tally, wait_all};
use common::Agent;
use livetranslate_agent::logs::labels::parse_rendered_labels;
use livetranslate_test_support::loki::{LokiStandIn, Received};
use livetranslate_test_support::TempDir;

const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &TempDir, loki: &str, inputs: &str, extra: &str) -> PathBuf {
    let path = dir.path().join("agent.yml");
    let text = format!(
        "logs:\n  loki_url: {loki}\n  positions_file: {pos}\n  inputs:\n{inputs}  loki:\n    batch_wait: 100ms\n    min_backoff: 50ms\n    max_backoff: 500ms\n    timeout: 2s\n  poll_interval: 20ms\n  discover_interval: 50ms\n  sync_period: 100ms\n  rotate_wait: 1s\n{extra}",
        pos = dir.path().join("positions.yml").display(),
    );
    fs::write(&path, text).expect("config");
    path
}

fn start(dir: &TempDir, config: &Path) -> Agent {
    Agent::spawn(
        dir.path(),
        &["--config", config.to_str().expect("utf-8")],
        "info",
    )
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("write");
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64
}

fn rfc3339(ns: i64) -> String {
    let mut s = String::new();
    livetranslate_telemetry::logging::write_rfc3339(
        &mut s,
        UNIX_EPOCH + Duration::from_nanos(ns as u64),
    );
    s
}

/// Stream labels by name.
fn labels(e: &Received) -> BTreeMap<String, String> {
    parse_rendered_labels(&e.labels).into_iter().collect()
}

/// The entry whose line holds `seq=<seq>`.
fn entry_of(entries: &[Received], seq: u64) -> &Received {
    entries
        .iter()
        .find(|e| seq_of(&e.line) == Some(seq))
        .unwrap_or_else(|| panic!("no entry for seq={seq}"))
}

/// Every line 0..n stored once, and Loki holds exactly n entries.
fn assert_all_once(loki: &LokiStandIn, n: u64, agent: &Agent) {
    let (missing, dups) = wait_all(loki, n, WAIT);
    assert!(missing.is_empty(), "{}\n{}", summary(&missing), agent.log());
    assert_eq!(dups, 0, "lines stored twice\n{}", agent.log());
    assert_eq!(loki.count() as u64, n, "entries stored != lines written");
}

// ---------------------------------------------------------------------------------------------
// Docker.

/// Writes `config.v2.json` as Docker does (a new file renamed over the old).
fn docker_config(dir: &Path, id: &str, name: &str, service: &str, team: &str) {
    fs::create_dir_all(dir).expect("container dir");
    let tmp = dir.join(".tmp-config.v2.json");
    fs::write(
        &tmp,
        format!(
            r#"{{"ID":"{id}","Name":"/{name}","Config":{{"Image":"livetranslate-examples:local","Labels":{{"com.docker.compose.service":"{service}","com.docker.compose.project":"shop","com.example.team":"{team}","com.example.build":"1234"}}}},"State":{{"Running":true,"Paused":false,"Restarting":false,"Dead":false,"ExitCode":0}}}}"#
        ),
    )
    .expect("config.v2.json");
    fs::rename(&tmp, dir.join("config.v2.json")).expect("rename config.v2.json");
}

/// Appends json-file lines `range` (each its own `time`, the stream alternating).
fn docker_lines(log: &Path, range: std::ops::Range<u64>) {
    let mut text = String::new();
    for seq in range {
        let stream = if seq % 2 == 0 { "stdout" } else { "stderr" };
        text.push_str(&format!(
            "{{\"log\":\"chunk seq={seq}\\n\",\"stream\":\"{stream}\",\"time\":\"{}\"}}\n",
            rfc3339(now_ns())
        ));
    }
    append(log, &text);
}

/// Docker's json-file rotation with `max-file`: `.1` → `.2`, the log → `.1`, a new log.
fn docker_rotate(dir: &Path, id: &str) {
    let log = dir.join(format!("{id}-json.log"));
    let one = dir.join(format!("{id}-json.log.1"));
    if one.exists() {
        fs::rename(&one, dir.join(format!("{id}-json.log.2"))).expect("rotate .1");
    }
    fs::rename(&log, &one).expect("rotate");
    append(&log, "");
}

#[test]
fn docker_containers_are_labelled_from_their_metadata_through_rotation_removal_creation_and_restart(
) {
    let dir = TempDir::new("docker-sources");
    let loki = LokiStandIn::start();
    let root = dir.path().join("docker");
    let containers = root.join("containers");
    let (a, b, c) = ("a1".repeat(32), "b2".repeat(32), "c3".repeat(32));
    let (da, db, dc) = (
        containers.join(&a),
        containers.join(&b),
        containers.join(&c),
    );
    let log = |d: &Path, id: &str| d.join(format!("{id}-json.log"));
    let inputs = format!(
        "    - paths: [\"{}/containers/*/*-json.log*\"]\n      format: docker\n      docker:\n        data_root: {}\n        label_allowlist: [com.example.team]\n",
        root.display(),
        root.display()
    );
    let cfg = config(&dir, &loki.url(), &inputs, "");

    // Container a runs before the agent starts; its log rotates while the agent runs.
    docker_config(&da, &a, "shop-web-1", "web", "payments");
    docker_lines(&log(&da, &a), 0..100);
    let mut agent = start(&dir, &cfg);
    assert_all_once(&loki, 100, &agent);
    docker_rotate(&da, &a);
    docker_lines(&log(&da, &a), 100..200);
    assert_all_once(&loki, 200, &agent);

    // Stopped: a writes on and rotates again; container b is created.
    assert!(agent.sigterm().success());
    docker_lines(&log(&da, &a), 200..250);
    docker_rotate(&da, &a);
    docker_lines(&log(&da, &a), 250..300);
    docker_config(&db, &b, "shop-worker-1", "worker", "search");
    docker_lines(&log(&db, &b), 300..350);
    let mut agent = start(&dir, &cfg);
    assert_all_once(&loki, 350, &agent);

    // Running: container c is created (its metadata first, as Docker does); b is renamed
    // (Docker rewrites config.v2.json); a writes its last lines and is removed at once.
    docker_config(&dc, &c, "shop-web-2", "web", "payments");
    docker_lines(&log(&dc, &c), 350..400);
    docker_config(&db, &b, "shop-worker-renamed", "worker", "search");
    std::thread::sleep(Duration::from_millis(2500));
    docker_lines(&log(&db, &b), 400..450);
    docker_lines(&log(&da, &a), 450..500);
    fs::remove_dir_all(&da).expect("docker rm a");
    assert_all_once(&loki, 500, &agent);
    assert!(agent.sigterm().success());

    let entries = loki.entries();
    let want = |seq: u64, container: &str, service: &str, team: &str| {
        let l = labels(entry_of(&entries, seq));
        assert_eq!(
            l.get("container").map(String::as_str),
            Some(container),
            "seq={seq}: {l:?}"
        );
        assert_eq!(
            l.get("compose_service").map(String::as_str),
            Some(service),
            "seq={seq}: {l:?}"
        );
        assert_eq!(
            l.get("compose_project").map(String::as_str),
            Some("shop"),
            "seq={seq}"
        );
        assert_eq!(
            l.get("image").map(String::as_str),
            Some("livetranslate-examples:local"),
            "seq={seq}"
        );
        // Only the allow-listed container label, sanitised.
        assert_eq!(
            l.get("com_example_team").map(String::as_str),
            Some(team),
            "seq={seq}"
        );
        assert!(!l.contains_key("com_example_build"), "seq={seq}: {l:?}");
        assert_eq!(
            l.get("stream").map(String::as_str),
            Some(if seq % 2 == 0 { "stdout" } else { "stderr" })
        );
    };
    for seq in (0..300).chain(450..500) {
        want(seq, "shop-web-1", "web", "payments");
    }
    for seq in 300..350 {
        want(seq, "shop-worker-1", "worker", "search");
    }
    for seq in 350..400 {
        want(seq, "shop-web-2", "web", "payments");
    }
    for seq in 400..450 {
        want(seq, "shop-worker-renamed", "worker", "search");
    }
    // The line is the unwrapped `log`, the timestamp Docker's `time`.
    let e = entry_of(&entries, 7);
    assert_eq!(&*e.line, "chunk seq=7");
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

const POD_DIR: &str = "prod_audio-7d9c5b6f4-x2x9k_0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77";

/// Appends CRI lines `range`; every fifth line is written by the runtime in two parts.
fn cri_lines(log: &Path, range: std::ops::Range<u64>) {
    let mut text = String::new();
    for seq in range {
        let ts = rfc3339(now_ns());
        if seq % 5 == 0 {
            text.push_str(&format!("{ts} stdout P chunk seq={seq} first half, \n"));
            text.push_str(&format!("{ts} stdout F second half\n"));
        } else {
            text.push_str(&format!("{ts} stderr F chunk seq={seq}\n"));
        }
    }
    append(log, &text);
}

/// kubelet's rotation: `0.log` → `0.log.<stamp>`, and the runtime reopens `0.log`.
fn kubelet_rotate(dir: &Path, stamp: &str) -> PathBuf {
    let rotated = dir.join(format!("0.log.{stamp}"));
    fs::rename(dir.join("0.log"), &rotated).expect("rotate");
    append(&dir.join("0.log"), "");
    rotated
}

/// kubelet's compression of a rotated file: `….gz.tmp` written, renamed to `….gz`, the
/// rotated file deleted. The content is written uncompressed, so a reader that read these
/// files would store every line a second time (under another `filename`).
fn kubelet_compress(rotated: &Path) {
    let content = fs::read(rotated).expect("rotated file");
    let gz = PathBuf::from(format!("{}.gz", rotated.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", rotated.display()));
    fs::write(&tmp, &content).expect("gz.tmp");
    std::thread::sleep(Duration::from_millis(300));
    fs::rename(&tmp, &gz).expect("gz");
    fs::remove_file(rotated).expect("remove rotated");
}

#[test]
fn kubernetes_pod_logs_are_labelled_from_their_path_through_kubelet_rotation_gzip_and_restart() {
    let dir = TempDir::new("k8s-sources");
    let loki = LokiStandIn::start();
    let pods = dir.path().join("pods");
    let cdir = pods.join(POD_DIR).join("audio");
    fs::create_dir_all(&cdir).expect("pod dir");
    let log = cdir.join("0.log");
    // A glob that also matches the rotated, compressed and temporary files.
    let inputs = format!(
        "    - paths: [\"{}/*/*/*.log*\"]\n      format: cri\n",
        pods.display()
    );
    let cfg = config(&dir, &loki.url(), &inputs, "");

    cri_lines(&log, 0..100);
    let mut agent = start(&dir, &cfg);
    assert_all_once(&loki, 100, &agent);
    let r1 = kubelet_rotate(&cdir, "20261130-070609");
    cri_lines(&log, 100..200);
    assert_all_once(&loki, 200, &agent);
    kubelet_compress(&r1);

    // Stopped: lines written before and after a rotation are read at the next start.
    assert!(agent.sigterm().success());
    cri_lines(&log, 200..250);
    let r2 = kubelet_rotate(&cdir, "20261130-071000");
    cri_lines(&log, 250..300);
    let mut agent = start(&dir, &cfg);
    assert_all_once(&loki, 300, &agent);
    kubelet_compress(&r2);
    cri_lines(&log, 300..350);
    assert_all_once(&loki, 350, &agent);

    // Another restart with only compressed files beside the log: nothing is read twice.
    agent.kill9();
    let agent = start(&dir, &cfg);
    cri_lines(&log, 350..400);
    assert_all_once(&loki, 400, &agent);
    std::thread::sleep(Duration::from_secs(2));
    let (_, dups) = tally(&loki.entries(), 400);
    assert_eq!(dups, 0, "a compressed file was read\n{}", agent.log());
    assert_eq!(loki.count(), 400);

    let entries = loki.entries();
    for e in &entries {
        let l = labels(e);
        assert_eq!(
            l.get("namespace").map(String::as_str),
            Some("prod"),
            "{l:?}"
        );
        assert_eq!(
            l.get("pod").map(String::as_str),
            Some("audio-7d9c5b6f4-x2x9k")
        );
        assert_eq!(l.get("container").map(String::as_str), Some("audio"));
        assert!(!l.contains_key("pod_uid"), "{l:?}");
    }
    // Partial lines joined into one entry.
    assert_eq!(
        &*entry_of(&entries, 10).line,
        "chunk seq=10 first half, second half"
    );
    assert_eq!(
        labels(entry_of(&entries, 11))
            .get("stream")
            .map(String::as_str),
        Some("stderr")
    );
}

// ---------------------------------------------------------------------------------------------
// Syslog.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Nov  3 07:06:09` of a UTC instant (seconds), as rsyslog writes it.
fn bsd_stamp(secs: i64) -> String {
    let (_, m, d) = livetranslate_telemetry::time::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{} {d:>2} {:02}:{:02}:{:02}",
        MONTHS[m as usize - 1],
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// Appends syslog lines `range`: RFC 3164 as rsyslog writes them (no priority) from five
/// hosts, and RFC 5424 with a priority. Returns each line's expected (timestamp, host, app,
/// level).
fn syslog_lines(
    path: &Path,
    range: std::ops::Range<u64>,
    expect: &mut BTreeMap<u64, (i64, String, String, Option<&'static str>)>,
) {
    let mut text = String::new();
    for seq in range {
        // Whole seconds in the past (RFC 3164 has no fraction here); a distinct instant each.
        let secs = now_ns() / 1_000_000_000 - 3600 + seq as i64;
        if seq % 2 == 0 {
            let host = format!("web-{}", seq % 5);
            text.push_str(&format!(
                "{} {host} sshd[{}]: Accepted publickey seq={seq}\n",
                bsd_stamp(secs),
                1000 + seq
            ));
            expect.insert(seq, (secs * 1_000_000_000, host, "sshd".into(), None));
        } else {
            // <11>: facility user, severity error; fractional seconds kept.
            let ns = secs * 1_000_000_000 + 250_000_000;
            text.push_str(&format!(
                "<11>1 {} db-1 postgres 77 ID47 [origin ip=\"10.0.0.1\"] query failed seq={seq}\n",
                rfc3339(ns)
            ));
            expect.insert(seq, (ns, "db-1".into(), "postgres".into(), Some("error")));
        }
    }
    append(path, &text);
}

#[test]
fn syslog_lines_get_their_timestamp_host_app_and_level_through_rotation_and_restart() {
    let dir = TempDir::new("syslog-source");
    let loki = LokiStandIn::start();
    let logs = dir.path().join("log");
    fs::create_dir_all(&logs).expect("log dir");
    let syslog = logs.join("syslog");
    let inputs = format!(
        "    - paths: [\"{}\"]\n      format: syslog\n      syslog: {{timezone: UTC}}\n      labels: {{job: syslog}}\n",
        syslog.display()
    );
    // host takes at most 4 values: the fifth host is shipped under __overflow__.
    let cfg = config(&dir, &loki.url(), &inputs, "  max_label_values: 4\n");
    let mut expect = BTreeMap::new();

    syslog_lines(&syslog, 0..100, &mut expect);
    let mut agent = start(&dir, &cfg);
    assert_all_once(&loki, 100, &agent);
    // logrotate: syslog → syslog.1, a new syslog (the glob names only the new one).
    fs::rename(&syslog, logs.join("syslog.1")).expect("rotate");
    syslog_lines(&logs.join("syslog.1"), 100..120, &mut expect);
    syslog_lines(&syslog, 120..200, &mut expect);
    assert_all_once(&loki, 200, &agent);
    assert!(agent.sigterm().success());
    syslog_lines(&syslog, 200..250, &mut expect);
    fs::rename(&syslog, logs.join("syslog.1")).expect("rotate");
    syslog_lines(&syslog, 250..300, &mut expect);
    let agent = start(&dir, &cfg);
    assert_all_once(&loki, 300, &agent);

    let entries = loki.entries();
    let mut hosts = std::collections::BTreeSet::new();
    for (seq, (ts, host, app, level)) in &expect {
        let e = entry_of(&entries, *seq);
        assert_eq!(e.timestamp_ns, *ts, "seq={seq}: the line's own timestamp");
        let l = labels(e);
        let got_host = l.get("host").cloned().unwrap_or_default();
        if host.as_str() != "db-1" {
            hosts.insert(got_host.clone());
        } else {
            assert_eq!(got_host, "db-1");
        }
        assert_eq!(l.get("app"), Some(app), "seq={seq}: {l:?}");
        assert_eq!(
            l.get("level").map(String::as_str),
            *level,
            "seq={seq}: {l:?}"
        );
        assert_eq!(l.get("job").map(String::as_str), Some("syslog"));
        // The line is shipped as written: pid and message in it.
        assert!(e.line.contains(&format!("seq={seq}")));
    }
    let rfc3164 = entry_of(&entries, 2);
    assert!(
        rfc3164
            .line
            .contains("sshd[1002]: Accepted publickey seq=2"),
        "{}",
        rfc3164.line
    );
    // Six host values in all, four admitted (db-1 among them): the rest are capped.
    assert!(hosts.contains("__overflow__"), "host is bounded: {hosts:?}");
    assert!(hosts.len() <= 4, "{hosts:?}");
}
