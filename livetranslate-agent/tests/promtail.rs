//! The agent run as Promtail is run: a promtail.yml with every pipeline stage, checked stage
//! by stage against what the Loki stand-in stores; switching from Promtail's positions file
//! mid-file; a glob that matches rotated files; reloads under load; bounded streams; the
//! problems an operator must see; and configuration errors that name file:line:column.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::logs::{seq_of, summary, tally, wait_all, write_lines, write_lines_to, Rotation};
use common::Agent;
use livetranslate_test_support::loki::{LokiStandIn, Received};
use livetranslate_test_support::TempDir;

/// A promtail.yml shipping to `loki` with fast timings, positions in `dir`, and these
/// `scrape_configs` (YAML, indented as list items at column 2).
fn promtail_yml(dir: &TempDir, loki: &str, scrape_configs: &str) -> PathBuf {
    let path = dir.path().join("promtail.yml");
    let text = format!(
        "server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: 0\n  grpc_listen_port: 0\npositions:\n  filename: {pos}\n  sync_period: 100ms\nclients:\n  - url: {loki}/loki/api/v1/push\n    batchwait: 100ms\n    batchsize: 262144\n    timeout: 2s\n    backoff_config: {{min_period: 50ms, max_period: 500ms}}\ntarget_config:\n  sync_period: 100ms\nscrape_configs:\n{scrape_configs}",
        pos = dir.path().join("positions.yaml").display(),
    );
    fs::write(&path, text).expect("promtail.yml");
    path
}

fn start(dir: &TempDir, config: &Path, extra: &[&str]) -> Agent {
    let config = format!("-config.file={}", config.display());
    let mut args = vec![config.as_str()];
    args.extend_from_slice(extra);
    Agent::spawn(dir.path(), &args, "info")
}

fn mkdir(dir: &TempDir, sub: &str) -> PathBuf {
    let p = dir.path().join(sub);
    fs::create_dir_all(&p).expect("dir");
    p
}

/// Waits (bounded) until the stand-in holds `n` entries.
fn wait_entries(loki: &LokiStandIn, n: usize, limit: Duration) -> Vec<Received> {
    let start = Instant::now();
    loop {
        let e = loki.entries();
        if e.len() >= n || start.elapsed() > limit {
            return e;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn entry<'a>(entries: &'a [Received], line: &str) -> &'a Received {
    match entries.iter().find(|e| &*e.line == line) {
        Some(e) => e,
        None => panic!(
            "no entry {line:?} among {:#?}",
            entries
                .iter()
                .map(|e| (&*e.labels, &*e.line))
                .collect::<Vec<_>>()
        ),
    }
}

/// RFC 3339 → ns (the stand-in's timestamps).
fn ns(rfc3339: &str) -> i64 {
    match livetranslate_agent::logs::parse::parse_rfc3339(rfc3339) {
        Some(t) => t,
        None => panic!("{rfc3339}"),
    }
}

#[test]
fn a_promtail_yml_with_every_stage_is_run_stage_by_stage() {
    let dir = TempDir::new("every-stage");
    let loki = LokiStandIn::start();
    for sub in [
        "docker", "cri", "app", "java", "sampled", "limited", "allowed",
    ] {
        mkdir(&dir, sub);
    }
    let d = dir.path().display().to_string();
    // docker: two lines, the second split in two fragments by the runtime.
    fs::write(
        dir.path().join("docker/c1-json.log"),
        concat!(
            r#"{"log":"first line\n","stream":"stdout","time":"2023-11-14T22:13:20.000000001Z"}"#,
            "\n",
            r#"{"log":"part one, ","stream":"stderr","time":"2023-11-14T22:13:21Z"}"#,
            "\n",
            r#"{"log":"part two\n","stream":"stderr","time":"2023-11-14T22:13:21.5Z"}"#,
            "\n",
        ),
    )
    .expect("docker log");
    // cri: a whole line, then a partial (P) one completed by the next (F).
    fs::write(
        dir.path().join("cri/0.log"),
        "2023-11-14T22:13:20.000000002Z stdout F whole line\n2023-11-14T22:13:22Z stderr P split \n2023-11-14T22:13:22.1Z stderr F line\n",
    )
    .expect("cri log");
    // app: coloured JSON, a debug line (dropped), an audited DELETE, and plain text.
    fs::write(
        dir.path().join("app/app.log"),
        concat!(
            "\u{1b}[31m", r#"{"level":"INFO","msg":"took=12ms op=GET path=/a password=hunter2","time":"2023-11-14T22:13:20.123Z","ctx":{"user":"ann"}}"#, "\u{1b}[0m\n",
            r#"{"level":"DEBUG","msg":"op=GET noisy","time":"2023-11-14T22:13:20.200Z"}"#, "\n",
            r#"{"level":"WARN","msg":"took=3ms op=DELETE user=bob","time":"2023-11-14T22:13:21Z"}"#, "\n",
            "plain text line\n",
        ),
    )
    .expect("app log");
    // java: a stack trace joined to its first line.
    fs::write(
        dir.path().join("java/app.log"),
        "2023-11-14 22:13:20 ERROR boom\n  at a()\n  at b()\n2023-11-14 22:13:21 INFO next\n",
    )
    .expect("java log");
    let many: String = (0..2000).map(|i| format!("sampled line {i}\n")).collect();
    fs::write(dir.path().join("sampled/s.log"), many).expect("sampled log");
    let burst: String = (0..100).map(|i| format!("limited line {i}\n")).collect();
    fs::write(dir.path().join("limited/l.log"), burst).expect("limited log");
    fs::write(dir.path().join("allowed/a.log"), "allowed line\n").expect("allowed log");

    let scrape = format!(
        r#"  - job_name: docker
    static_configs: [{{targets: [localhost], labels: {{job: docker, __path__: "{d}/docker/*-json.log"}}}}]
    pipeline_stages:
      - docker: {{}}
  - job_name: cri
    static_configs: [{{targets: [localhost], labels: {{job: cri, __path__: "{d}/cri/*.log"}}}}]
    pipeline_stages:
      - cri: {{}}
  - job_name: app
    static_configs: [{{targets: [localhost], labels: {{job: app, __path__: "{d}/app/*.log"}}}}]
    pipeline_stages:
      - decolorize:
      - json:
          expressions: {{level: level, msg: msg, time: time, user: ctx.user}}
      - logfmt:
          source: msg
          mapping: {{took: , op: }}
      - regex:
          source: took
          expression: '^(?P<took_ms>\d+)ms$'
      - replace:
          source: msg
          expression: 'password=(\S+)'
          replace: '****'
      - template:
          source: level
          template: '{{{{ ToLower .Value }}}}'
      - labels: {{level: , op: , took_ms: , user: }}
      - static_labels: {{env: test}}
      - labeldrop: [filename]
      - match:
          selector: '{{op="DELETE"}}'
          stages:
            - static_labels: {{audit: "yes"}}
            - tenant: {{value: audit-team}}
      - timestamp: {{source: time, format: RFC3339Nano}}
      - output: {{source: msg}}
      - drop: {{source: level, value: debug}}
  - job_name: java
    static_configs: [{{targets: [localhost], labels: {{job: java, __path__: "{d}/java/*.log"}}}}]
    relabel_configs:
      - source_labels: [__path__]
        regex: '.*/(java)/.*'
        target_label: lang
    pipeline_stages:
      - multiline: {{firstline: '^\d{{4}}-', max_wait_time: 300ms}}
      - regex: {{expression: '^\S+ \S+ (?P<level>[A-Z]+)'}}
      - labels: {{level: }}
      - labeldrop: [filename]
  - job_name: sampled
    static_configs: [{{targets: [localhost], labels: {{job: sampled, __path__: "{d}/sampled/*.log"}}}}]
    pipeline_stages:
      - sampling: {{rate: 0.5}}
      - labeldrop: [filename]
  - job_name: limited
    static_configs: [{{targets: [localhost], labels: {{job: limited, __path__: "{d}/limited/*.log"}}}}]
    pipeline_stages:
      - limit: {{rate: 1, burst: 10, drop: true}}
      - labeldrop: [filename]
  - job_name: allowed
    static_configs: [{{targets: [localhost], labels: {{job: allowed, team: x, extra: y, __path__: "{d}/allowed/*.log"}}}}]
    pipeline_stages:
      - labelallow: [job, team]
"#
    );
    let config = promtail_yml(&dir, &loki.url(), &scrape);
    let agent = start(&dir, &config, &[]);
    // 3 docker + ... arrive; wait for the slow ones (multiline's wait) too.
    let start = Instant::now();
    let mut entries;
    loop {
        entries = loki.entries();
        let done = entries.iter().any(|e| e.line.contains("INFO next"))
            && entries.iter().any(|e| &*e.line == "allowed line")
            && entries
                .iter()
                .filter(|e| e.line.starts_with("sampled"))
                .count()
                > 0;
        if done || start.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    entries = loki.entries();
    let path = |p: &str| format!("{d}/{p}");

    // docker: unwrapped, stream label, the runtime's timestamp, fragments joined.
    let e = entry(&entries, "first line");
    assert_eq!(
        &*e.labels,
        format!(
            r#"{{filename="{}", job="docker", stream="stdout"}}"#,
            path("docker/c1-json.log")
        )
    );
    assert_eq!(e.timestamp_ns, ns("2023-11-14T22:13:20.000000001Z"));
    let e = entry(&entries, "part one, part two");
    assert!(e.labels.contains(r#"stream="stderr""#), "{}", e.labels);
    assert_eq!(e.timestamp_ns, ns("2023-11-14T22:13:21.5Z"));
    // cri: the same for containerd's format.
    let e = entry(&entries, "whole line");
    assert_eq!(
        &*e.labels,
        format!(
            r#"{{filename="{}", job="cri", stream="stdout"}}"#,
            path("cri/0.log")
        )
    );
    assert_eq!(e.timestamp_ns, ns("2023-11-14T22:13:20.000000002Z"));
    let e = entry(&entries, "split line");
    assert_eq!(e.timestamp_ns, ns("2023-11-14T22:13:22.1Z"));
    // app: decolorize → json → logfmt → regex → replace → template → labels → static_labels
    // → labeldrop → timestamp → output.
    let e = entry(&entries, "took=12ms op=GET path=/a password=****");
    assert_eq!(
        &*e.labels,
        r#"{env="test", job="app", level="info", op="GET", took_ms="12", user="ann"}"#
    );
    assert_eq!(e.timestamp_ns, ns("2023-11-14T22:13:20.123Z"));
    assert_eq!(e.tenant, None);
    // match (on a LogQL selector) with its nested stages: a label and a tenant.
    let e = entry(&entries, "took=3ms op=DELETE user=bob");
    assert_eq!(
        &*e.labels,
        r#"{audit="yes", env="test", job="app", level="warn", op="DELETE", took_ms="3"}"#
    );
    assert_eq!(e.tenant.as_deref(), Some("audit-team"));
    // Not JSON: every stage lets it through unchanged (no labels from the line).
    let e = entry(&entries, "plain text line");
    assert_eq!(&*e.labels, r#"{env="test", job="app"}"#);
    // drop: the debug line is not shipped, and counted by reason.
    assert!(!entries.iter().any(|e| e.line.contains("noisy")));
    assert_eq!(
        agent.metric_sum(
            "livetranslate_agent_log_dropped_lines_total",
            r#"reason="drop_stage""#
        ),
        1.0
    );
    // multiline + relabel_configs (a label from __path__) + regex + labels.
    let e = entry(
        &entries,
        "2023-11-14 22:13:20 ERROR boom\n  at a()\n  at b()",
    );
    assert_eq!(&*e.labels, r#"{job="java", lang="java", level="ERROR"}"#);
    let e = entry(&entries, "2023-11-14 22:13:21 INFO next");
    assert_eq!(&*e.labels, r#"{job="java", lang="java", level="INFO"}"#);
    // sampling: about half kept, the rest counted.
    let sampled = entries
        .iter()
        .filter(|e| e.line.starts_with("sampled"))
        .count();
    assert!((800..=1200).contains(&sampled), "{sampled} of 2000 sampled");
    let dropped = agent.metric_sum(
        "livetranslate_agent_log_dropped_lines_total",
        r#"reason="sampling_stage""#,
    );
    assert_eq!(sampled as f64 + dropped, 2000.0);
    // limit: the burst and little more.
    let limited = entries
        .iter()
        .filter(|e| e.line.starts_with("limited"))
        .count();
    assert!(
        (10..=20).contains(&limited),
        "{limited} of 100 passed the limit"
    );
    assert_eq!(
        limited as f64
            + agent.metric_sum(
                "livetranslate_agent_log_dropped_lines_total",
                r#"reason="ratelimit_drop_stage""#
            ),
        100.0
    );
    // labelallow: only the allowed labels (not even filename).
    let e = entry(&entries, "allowed line");
    assert_eq!(&*e.labels, r#"{job="allowed", team="x"}"#);
    assert_eq!(loki.duplicates().lines_in_several_streams, 0);
    // The agent's own metrics, with the new series (drops by stage reason, skipped paths,
    // caps, reloads), pass Prometheus' own lint.
    let promtool = livetranslate_test_support::require("promtool");
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    {
        use std::io::Write as _;
        let mut stdin = check.stdin.take().expect("stdin");
        stdin
            .write_all(agent.metrics_text().as_bytes())
            .expect("metrics to promtool");
    }
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "every stage: {} entries stored, {sampled} of 2000 sampled, {limited} of 100 past the limit",
        entries.len()
    );
}

/// The offset just past line `n` (0-based) of `path`.
fn offset_after_line(path: &Path, n: usize) -> u64 {
    let text = fs::read(path).expect("read");
    let mut seen = 0;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            if seen == n {
                return i as u64 + 1;
            }
            seen += 1;
        }
    }
    panic!("no line {n} in {}", path.display())
}

const JSON_JOB: &str = r#"    pipeline_stages:
      - json: {expressions: {level: level, service: service, timestamp: timestamp}}
      - labels: {level: , service: }
      - timestamp: {source: timestamp, format: RFC3339Nano}
"#;

#[test]
fn switching_from_promtails_positions_file_mid_file_neither_reships_nor_skips() {
    let dir = TempDir::new("takeover");
    let loki = LokiStandIn::start();
    let logs = mkdir(&dir, "logs");
    write_lines(&logs, 0..2000, 1_000_000, Rotation::None);
    let app = logs.join("app.log");
    // Promtail shipped lines 0..=1233 and saved its offset.
    let offset = offset_after_line(&app, 1233);
    fs::write(
        dir.path().join("positions.yaml"),
        format!("positions:\n  {}: \"{offset}\"\n", app.display()),
    )
    .expect("Promtail's positions");
    let scrape = format!(
        "  - job_name: app\n    static_configs: [{{targets: [localhost], labels: {{job: app, __path__: \"{}/*.log\"}}}}]\n{JSON_JOB}",
        logs.display()
    );
    let config = promtail_yml(&dir, &loki.url(), &scrape);
    let mut agent = start(&dir, &config, &[]);
    // More lines while it runs.
    write_lines(&logs, 2000..2500, 1_000_000, Rotation::None);
    let entries = wait_entries(&loki, 1266, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let seqs: Vec<u64> = loki
        .entries()
        .iter()
        .filter_map(|e| seq_of(&e.line))
        .collect();
    let below = seqs.iter().filter(|s| **s < 1234).count();
    let (missing, dups) = tally(&entries, 2500);
    let missing_after: Vec<u64> = missing.into_iter().filter(|s| *s >= 1234).collect();
    assert_eq!(below, 0, "lines Promtail had shipped were shipped again");
    assert!(
        missing_after.is_empty(),
        "skipped: {}",
        summary(&missing_after)
    );
    assert_eq!(dups, 0);
    assert_eq!(loki.count(), 1266);
    // The positions file is the agent's now, and a restart resumes from it.
    assert!(agent.sigterm().success());
    let saved = fs::read_to_string(dir.path().join("positions.yaml")).expect("positions");
    assert!(saved.contains("version: 1"), "{saved}");
    let received = loki.received();
    let _agent = start(&dir, &config, &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(loki.received(), received, "a restart re-sent lines");
    println!("takeover: Promtail at line 1234 of 2000 (+500 appended): 1266 entries, 0 below 1234, 0 missing, 0 duplicated");
}

/// The rotation case of the issue: a glob that also matches rotated files (`app.log*`), rename
/// and copytruncate alternating every 4,000 lines at 5,000 lines/s, 30,000 lines.
fn rotation_with_a_glob_matching_rotated_files(
    dir: &TempDir,
    loki: &LokiStandIn,
    agent_args: Vec<String>,
) {
    let logs = dir.path().join("logs");
    let args: Vec<&str> = agent_args.iter().map(String::as_str).collect();
    let mut agent = Agent::spawn(dir.path(), &args, "info");
    std::thread::sleep(Duration::from_millis(500));
    const N: u64 = 30_000;
    write_lines(&logs, 0..N, 5_000, Rotation::EveryLines(4_000));
    let (missing, dups) = wait_all(loki, N, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let d = loki.duplicates();
    let rotated = fs::read_dir(&logs).expect("dir").count() - 1;
    assert!(missing.is_empty(), "{}\n{}", summary(&missing), agent.log());
    assert_eq!(dups, 0, "lines stored twice");
    assert_eq!(loki.count() as u64, N, "entries = lines");
    assert_eq!(d.lines_in_several_streams, 0);
    assert_eq!(d.resent, 0, "rotated files were read again");
    assert!(rotated >= 7, "{rotated} rotated files");
    // A restart reads none of them again: their identities are in the positions file.
    assert!(agent.sigterm().success());
    let received = loki.received();
    let _agent = Agent::spawn(dir.path(), &args, "info");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        loki.received(),
        received,
        "a restart read rotated files again"
    );
    println!(
        "rotation, glob app.log*: {N} lines, {rotated} rotated files, {} entries, 0 lost, 0 duplicated, {} re-sent; restart: 0 re-read",
        loki.count(),
        d.resent
    );
}

#[test]
fn a_glob_matching_rotated_files_ships_every_line_once_promtail_yml() {
    let dir = TempDir::new("rot-glob-p");
    let loki = LokiStandIn::start();
    let logs = mkdir(&dir, "logs");
    // filename stays a stream label here (Promtail's default): a file read again under its
    // rotated name would be a second stream, stored twice.
    let scrape = format!(
        "  - job_name: app\n    static_configs: [{{targets: [localhost], labels: {{job: app, __path__: \"{}/app.log*\"}}}}]\n{JSON_JOB}",
        logs.display()
    );
    let config = promtail_yml(&dir, &loki.url(), &scrape);
    rotation_with_a_glob_matching_rotated_files(
        &dir,
        &loki,
        vec![format!("-config.file={}", config.display())],
    );
}

#[test]
fn a_glob_matching_rotated_files_ships_every_line_once_agent_yml() {
    let dir = TempDir::new("rot-glob-a");
    let loki = LokiStandIn::start();
    let logs = mkdir(&dir, "logs");
    let config = dir.path().join("agent.yml");
    fs::write(
        &config,
        format!(
            "logs:\n  loki_url: {}\n  positions_file: {}\n  inputs:\n    - paths: [\"{}/app.log*\"]\n      filename_label: true\n  loki: {{batch_wait: 100ms, min_backoff: 50ms, max_backoff: 500ms, timeout: 2s}}\n  poll_interval: 20ms\n  sync_period: 100ms\n  rotate_wait: 1s\n",
            loki.url(),
            dir.path().join("positions.yml").display(),
            logs.display()
        ),
    )
    .expect("agent.yml");
    rotation_with_a_glob_matching_rotated_files(
        &dir,
        &loki,
        vec!["--config".to_owned(), config.display().to_string()],
    );
}

fn native_config(dir: &TempDir, loki: &str, inputs: &[&str], extra: &str) -> String {
    let inputs: String = inputs
        .iter()
        .map(|i| format!("    - paths: [\"{i}\"]\n"))
        .collect();
    format!(
        "labels: {{environment: test, cluster: c1}}\nlogs:\n  loki_url: {loki}\n  positions_file: {}\n  inputs:\n{inputs}{extra}  loki: {{batch_wait: 100ms, min_backoff: 50ms, max_backoff: 500ms, timeout: 2s}}\n  poll_interval: 20ms\n  sync_period: 100ms\n",
        dir.path().join("positions.yml").display()
    )
}

#[test]
fn reloads_add_and_remove_inputs_under_load_without_loss_or_duplicates() {
    let dir = TempDir::new("reload");
    let loki = LokiStandIn::start();
    let logs = mkdir(&dir, "logs");
    let (a, b, c) = (logs.join("a.log"), logs.join("b.log"), logs.join("c.log"));
    let config = dir.path().join("agent.yml");
    let write = |inputs: &[&Path], extra: &str| {
        let globs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
        fs::write(&config, native_config(&dir, &loki.url(), &globs, extra)).expect("config");
    };
    write(&[&a, &b], "");
    let mut writers = Vec::new();
    for (path, base) in [(&a, 0u64), (&b, 100_000), (&c, 200_000)] {
        let path = path.clone();
        writers.push(std::thread::spawn(move || {
            write_lines_to(&path, base..base + 8_000, 1_000, Rotation::None)
        }));
    }
    let config_arg = config.display().to_string();
    let mut agent = Agent::spawn(dir.path(), &["--config", &config_arg], "info");
    std::thread::sleep(Duration::from_secs(2));
    // a removed, c added: by SIGHUP.
    write(&[&b, &c], "");
    agent.hup();
    std::thread::sleep(Duration::from_secs(2));
    // a back: by Prometheus' POST /-/reload.
    write(&[&a, &b, &c], "");
    let (status, body) = agent.reload_http("POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_secs(1));
    // A bad configuration (a regex that does not compile), by Promtail's /reload: refused,
    // logged, counted; the running one goes on.
    write(
        &[&a, &b, &c],
        "    - paths: [\"/x/*.log\"]\n      multiline: {first_line: \"([\"}\n",
    );
    let (status, body) = agent.reload_http("GET", "/reload");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("agent.yml:") && body.contains("first_line"),
        "{body}"
    );
    agent.hup();
    std::thread::sleep(Duration::from_millis(500));
    assert!(agent.guard.running(), "SIGHUP ended the agent");
    for w in writers {
        w.join().expect("writer");
    }
    let start = Instant::now();
    let mut entries;
    loop {
        entries = loki.entries();
        if entries.len() >= 24_000 || start.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    for e in &entries {
        if let Some(s) = seq_of(&e.line) {
            *seen.entry(s).or_default() += 1;
        }
    }
    for base in [0u64, 100_000, 200_000] {
        let missing: Vec<u64> = (base..base + 8_000)
            .filter(|s| !seen.contains_key(s))
            .collect();
        assert!(missing.is_empty(), "file {base}: {}", summary(&missing));
    }
    let dups: u32 = seen.values().map(|c| c - 1).sum();
    assert_eq!(dups, 0, "lines stored twice");
    assert_eq!(loki.duplicates().resent, 0, "lines read twice");
    assert_eq!(
        agent.metric_sum(
            "livetranslate_agent_config_reloads_total",
            r#"result="success""#
        ),
        2.0
    );
    assert_eq!(
        agent.metric_sum(
            "livetranslate_agent_config_reloads_total",
            r#"result="failure""#
        ),
        2.0
    );
    assert_eq!(
        agent.metric_sum("livetranslate_agent_config_last_reload_successful", ""),
        0.0
    );
    let log = agent.log();
    assert!(log.contains("configuration reload failed"), "{log}");
    assert!(agent.sigterm().success());
    println!("reload under load: 3 files × 8,000 lines at 1,000 lines/s each, inputs removed and added by SIGHUP and POST /-/reload, 2 bad reloads refused: 24,000 entries, 0 lost, 0 duplicated");
}

#[test]
fn streams_are_bounded_and_label_values_hold_no_control_characters() {
    let dir = TempDir::new("caps");
    let loki = LokiStandIn::start();
    let logs = mkdir(&dir, "logs");
    let mut text = String::new();
    for i in 0..5_000 {
        text.push_str(&format!(
            "{{\"level\":\"info\",\"service\":\"audio\",\"user\":\"u{i}\",\"message\":\"seq={i}\"}}\n"
        ));
    }
    text.push_str(
        "{\"level\":\"WA\\nRN\",\"service\":\"au\\u001b[1mdio\",\"message\":\"seq=5000\"}\n",
    );
    fs::write(logs.join("app.log"), text).expect("log");
    let config = dir.path().join("agent.yml");
    let glob = format!("{}/*.log", logs.display());
    fs::write(
        &config,
        native_config(&dir, &loki.url(), &[], "").replace(
            "  inputs:\n",
            &format!(
                "  inputs:\n    - paths: [\"{glob}\"]\n      promote: [level, service, user]\n"
            ),
        ),
    )
    .expect("config");
    let config_arg = config.display().to_string();
    let agent = Agent::spawn(dir.path(), &["--config", &config_arg], "info");
    let entries = wait_entries(&loki, 5_001, Duration::from_secs(30));
    assert_eq!(entries.len(), 5_001, "every line shipped");
    let streams = loki.per_stream();
    // 100 values of `user` (the default cap), then one overflow value.
    assert!(
        streams.len() <= 102,
        "{} streams: {:?}",
        streams.len(),
        streams
            .keys()
            .filter(|k| !k.contains("user=\"u"))
            .collect::<Vec<_>>()
    );
    assert!(streams.keys().any(|k| k.contains(r#"user="__overflow__""#)));
    let capped = agent.metric_sum(
        "livetranslate_agent_log_capped_entries_total",
        r#"cap="label_values""#,
    );
    assert_eq!(capped, 4_900.0);
    let odd = entry(
        &entries,
        r#"{"level":"WA\nRN","service":"au\u001b[1mdio","message":"seq=5000"}"#,
    );
    assert!(odd.labels.contains(r#"level="wa rn""#), "{}", odd.labels);
    assert!(
        odd.labels.contains(r#"service="au [1mdio""#),
        "{}",
        odd.labels
    );
    assert!(!odd.labels.chars().any(char::is_control));
    assert!(
        agent.log().matches("reached its cap").count() == 1,
        "one warning"
    );
    println!(
        "caps: 5,000 distinct values of a promoted field: {} streams, {capped} entries capped, 0 lost",
        streams.len()
    );
}

/// Runs the agent as `nobody` when the test runs as root (root reads any file, so a mode-000
/// file would not be unreadable to it).
fn unprivileged(args: &[&str], dir: &Path) -> Vec<String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut v: Vec<String> = Vec::new();
    if root {
        let ok = Command::new("setpriv").arg("--version").output().is_ok();
        assert!(
            ok,
            "this test runs the agent unprivileged with setpriv (util-linux)"
        );
        let _ = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(dir)
            .status();
        v.extend(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ]
            .map(str::to_owned),
        );
    }
    v.push(env!("CARGO_BIN_EXE_livetranslate-agent").to_owned());
    v.extend(args.iter().map(|a| (*a).to_owned()));
    v
}

#[test]
fn unreadable_files_fifos_directories_and_symlink_loops_are_visible_not_silent() {
    let dir = TempDir::new("visible");
    let loki = LokiStandIn::start();
    let logs = mkdir(&dir, "logs");
    fs::create_dir_all(logs.join("sub/deeper")).expect("dirs");
    fs::write(logs.join("ok.log"), "{\"message\":\"ok seq=1\"}\n").expect("w");
    fs::write(
        logs.join("sub/deeper/two.log"),
        "{\"message\":\"deep seq=2\"}\n",
    )
    .expect("w");
    fs::write(logs.join("secret.log"), "{\"message\":\"hidden\"}\n").expect("w");
    let _ = Command::new("chmod")
        .arg("000")
        .arg(logs.join("secret.log"))
        .status();
    fs::create_dir_all(logs.join("dir.log")).expect("a directory named like a log");
    let fifo = logs.join("pipe.log");
    let c = std::ffi::CString::new(fifo.display().to_string()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    // A loop: logs/sub/deeper/up -> logs.
    std::os::unix::fs::symlink(&logs, logs.join("sub/deeper/up")).expect("symlink");
    let config = dir.path().join("agent.yml");
    let glob = format!("{}/**/*.log", logs.display());
    fs::write(&config, native_config(&dir, &loki.url(), &[&glob], "")).expect("config");
    let config_arg = config.display().to_string();
    let argv = unprivileged(&["--config", &config_arg], dir.path());
    // Unreadable again after the directory was opened to all (the agent runs as nobody).
    let _ = Command::new("chmod")
        .arg("000")
        .arg(logs.join("secret.log"))
        .status();
    let port = livetranslate_test_support::free_port();
    let log_path = dir.path().join("agent.err");
    let mut guard = livetranslate_test_support::ChildGuard::spawn(
        Command::new(&argv[0])
            .args(&argv[1..])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("LOKI_URL")
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log_path).expect("log")),
        "agent",
    );
    let entries = wait_entries(&loki, 2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    let lines: HashSet<&str> = entries.iter().map(|e| &*e.line).collect();
    assert_eq!(
        lines,
        HashSet::from(["{\"message\":\"ok seq=1\"}", "{\"message\":\"deep seq=2\"}"]),
        "each file once, the loop not followed"
    );
    let metrics = livetranslate_test_support::http_get(&format!("http://127.0.0.1:{port}/metrics"))
        .map(|(_, b)| b)
        .unwrap_or_default();
    let value = |reason: &str| -> f64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("livetranslate_agent_log_skipped_paths{")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert_eq!(value("fifo"), 1.0, "{metrics}");
    assert_eq!(value("directory"), 1.0, "{metrics}");
    assert_eq!(value("unreadable"), 1.0, "{metrics}");
    let paths = metrics
        .lines()
        .filter(|l| l.starts_with("livetranslate_agent_log_read_lines_total{"))
        .count();
    assert_eq!(paths, 2, "one path series per file: {metrics}");
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    for name in ["pipe.log", "dir.log", "secret.log"] {
        let warnings = log
            .lines()
            .filter(|l| l.contains("cannot be tailed") && l.contains(name))
            .count();
        assert_eq!(
            warnings, 1,
            "{name}: one warning, after many discoveries\n{log}"
        );
    }
    guard.terminate(Duration::from_secs(10));
}

#[test]
fn bad_configurations_and_positions_files_exit_2_naming_file_line_and_column() {
    let dir = TempDir::new("bad");
    let check = |name: &str, text: &str, flag: &str, want: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).expect("write");
        let arg = format!("{flag}={}", path.display());
        let (code, out) = Agent::run(&[&arg, "-check-syntax"]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains(&format!("{}:{want}", path.display())),
            "{name}: want {want:?} in {out}"
        );
    };
    // The agent's own format: durations that would busy-loop or never answer.
    check(
        "zero-poll.yml",
        "logs:\n  loki_url: http://127.0.0.1:1\n  poll_interval: 0s\n",
        "--config",
        "3:3: logs.poll_interval: must be between",
    );
    check(
        "zero-timeout.yml",
        "logs:\n  loki_url: http://127.0.0.1:1\n  loki:\n    timeout: 0s\n",
        "--config",
        "4:5: logs.loki.timeout: must be between",
    );
    check(
        "zero-backoff.yml",
        "logs:\n  loki_url: http://127.0.0.1:1\n  loki:\n    min_backoff: 0s\n",
        "--config",
        "4:5: logs.loki.min_backoff:",
    );
    check("label.yml", "logs:\n  loki_url: http://127.0.0.1:1\n  inputs:\n    - paths: [/x]\n      labels: {team: \"a\\nb\"}\n", "--config", "5:16: logs.inputs[0].labels.team:");
    // promtail.yml: errors found while parsing and after it.
    let head = "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n";
    check(
        "p-batchwait.yml",
        &format!("{head}    batchwait: 0s\n"),
        "-config.file",
        "3:5: clients[0].batchwait: must be between",
    );
    check(
        "p-url.yml",
        "clients:\n  - url: not-a-url\n",
        "-config.file",
        "2:5: clients[0].url:",
    );
    check("p-stage.yml", &format!("{head}scrape_configs:\n  - job_name: a\n    static_configs: [{{labels: {{__path__: /x}}}}]\n    pipeline_stages:\n      - regex: {{expression: '('}}\n"), "-config.file", "7:9:");
    check("p-relabel.yml", &format!("{head}scrape_configs:\n  - job_name: a\n    static_configs: [{{labels: {{__path__: /x}}}}]\n    relabel_configs:\n      - {{action: hashmod, target_label: x}}\n"), "-config.file", "7:9:");
    check(
        "p-k8s.yml",
        &format!(
            "{head}scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: [{{role: pod}}]\n"
        ),
        "-config.file",
        "5:5: scrape_configs[0].kubernetes_sd_configs: not supported",
    );
    check("p-label.yml", &format!("{head}scrape_configs:\n  - job_name: a\n    static_configs: [{{labels: {{__path__: /x, 'bad-name': y}}}}]\n"), "-config.file", "5:46: scrape_configs[0].static_configs[0].labels.bad-name:");
    check(
        "p-mixed.yml",
        "server: {http_listen_port: 1}\nlogs: {paths: [/x]}\n",
        "-config.file",
        "1:1:",
    );
    // A corrupt positions file: exit 2 for a check and for a run.
    let positions = dir.path().join("positions.yaml");
    fs::write(&positions, "positions: [not, a, map\n").expect("w");
    let conf = dir.path().join("ok.yml");
    fs::write(
        &conf,
        format!("{head}positions: {{filename: {}}}\nscrape_configs:\n  - job_name: a\n    static_configs: [{{labels: {{__path__: /nonexistent/*.log}}}}]\n", positions.display()),
    )
    .expect("w");
    let arg = format!("-config.file={}", conf.display());
    let (code, out) = Agent::run(&[&arg, "-check-syntax"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("positions.yaml"), "{out}");
    let (code, out) = Agent::run(&[&arg, "-dry-run", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{out}");
    // Promtail's ignore_invalid_yaml starts over instead.
    let lenient = fs::read_to_string(&conf).expect("r").replace(
        "positions: {filename:",
        "positions: {ignore_invalid_yaml: true, filename:",
    );
    fs::write(&conf, lenient).expect("w");
    let (code, out) = Agent::run(&[&arg, "-check-syntax"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_dry_run_reads_saved_positions_and_never_writes_them() {
    let dir = TempDir::new("dry");
    let logs = mkdir(&dir, "logs");
    write_lines(&logs, 0..100, 1_000_000, Rotation::None);
    // A real run (to a stand-in) saves positions at the end of these 100 lines.
    let loki = LokiStandIn::start();
    let config = dir.path().join("agent.yml");
    let glob = format!("{}/*.log", logs.display());
    fs::write(&config, native_config(&dir, &loki.url(), &[&glob], "")).expect("config");
    let config_arg = config.display().to_string();
    let mut agent = Agent::spawn(dir.path(), &["--config", &config_arg], "info");
    wait_all(&loki, 100, Duration::from_secs(20));
    assert!(agent.sigterm().success());
    let before = fs::read(dir.path().join("positions.yml")).expect("positions saved");
    write_lines(&logs, 100..150, 1_000_000, Rotation::None);
    // The dry run prints the 50 new lines only, and leaves the file as it was.
    let port = livetranslate_test_support::free_port();
    let out = dir.path().join("dry.jsonl");
    let mut guard = livetranslate_test_support::ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_livetranslate-agent"))
            .args(["--config", &config_arg, "-dry-run", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("LOKI_URL")
            .stdout(fs::File::create(&out).expect("out"))
            .stderr(std::process::Stdio::null()),
        "agent",
    );
    let start = Instant::now();
    while fs::read_to_string(&out).unwrap_or_default().lines().count() < 50
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = guard.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()));
    let printed: Vec<u64> = fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .filter_map(seq_of)
        .collect();
    assert_eq!(printed, (100..150).collect::<Vec<_>>());
    let after = fs::read(dir.path().join("positions.yml")).expect("positions");
    assert_eq!(before, after, "the dry run wrote the positions file");
}

#[test]
fn the_projects_promtail_yml_and_agent_yml_pass_the_check_together() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let promtail = root.join("monitoring/loki/promtail.yml");
    let agent = root.join("monitoring/agent/agent.yml");
    let promtail_arg = format!("-config.file={}", promtail.display());
    let agent_arg = format!("--config={}", agent.display());
    // As compose runs it, and the promtail.yml alone (as Promtail would be run).
    let (code, out) = Agent::run(&[
        &agent_arg,
        &promtail_arg,
        "-config.expand-env=true",
        "-check-syntax",
    ]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "listen: 0.0.0.0:9080",
        "scrape jobs: 3",
        "Loki http://loki:3100/loki/api/v1/push",
        "job \"livetranslate-services\": raw /app/logs/*.log",
        "stages: json, template, labels, timestamp, labeldrop",
        "stages: docker",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let (code, out) = Agent::run(&[&promtail_arg, "-config.expand-env", "-check-syntax"]);
    assert_eq!(code, 0, "{out}");
    // Without -config.expand-env, Promtail would not expand ${LOKI_URL:-…} either.
    let (code, out) = Agent::run(&[&promtail_arg, "-check-syntax"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("promtail.yml:") && out.contains("clients[0].url"),
        "{out}"
    );
}
