//! The command line: configuration errors, `--check-config`, environment variables, dry run.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, Target};
use livetranslate_test_support::{free_port, ChildGuard, TempDir};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn unknown_key_exits_2_naming_file_line_and_column() {
    let dir = TempDir::new("cfg-unknown");
    let path = dir.path().join("agent.yml");
    std::fs::write(
        &path,
        "listen: 127.0.0.1:0\nscrape_configs:\n  - job_name: a\n    bogus_key: 1\n",
    )
    .expect("write");
    let out = Agent::output(
        &["--config", &path.display().to_string(), "--check-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:5", path.display())),
        "stderr lacks file:line:column: {err}"
    );
    assert!(err.contains("bogus_key"), "{err}");
}

#[test]
fn undefined_variable_exits_2_with_its_position() {
    let dir = TempDir::new("cfg-env");
    let path = dir.path().join("agent.yml");
    std::fs::write(&path, "remote_write:\n  url: ${LT_AGENT_TEST_UNSET_VAR}\n").expect("write");
    let out = Agent::output(
        &["--config", &path.display().to_string(), "--check-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:2:8", path.display())), "{err}");
    assert!(err.contains("LT_AGENT_TEST_UNSET_VAR"), "{err}");
}

#[test]
fn variables_expand_with_defaults() {
    let dir = TempDir::new("cfg-expand");
    let path = dir.path().join("agent.yml");
    std::fs::write(
        &path,
        "remote_write:\n  url: http://${LT_AGENT_TEST_HOST}:${LT_AGENT_TEST_PORT:-9090}/api/v1/write\n",
    )
    .expect("write");
    let out = Agent::output(
        &["--config", &path.display().to_string(), "--check-config"],
        &[("LT_AGENT_TEST_HOST", "127.0.0.1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("remote write: http://127.0.0.1:9090/api/v1/write"));
}

#[test]
fn bad_urls_exit_2() {
    for args in [
        &["--remote-write-url", "not a url"][..],
        &["--remote-write-url", "ftp://127.0.0.1/write"][..],
        &["--scrape-target", "127.0.0.1:3000/metrics"][..],
        &["--loki-url", "http//broken"][..],
    ] {
        let out = Agent::output(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
        assert!(
            text(&out.stderr).contains("invalid configuration"),
            "{args:?}"
        );
    }
}

#[test]
fn bad_flag_values_exit_2() {
    assert_eq!(
        Agent::output(&["--scrape-interval", "soon"], &[])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        Agent::output(&["--listen", "nowhere"], &[]).status.code(),
        Some(2)
    );
    assert_eq!(
        Agent::output(&["--no-such-flag"], &[]).status.code(),
        Some(2)
    );
}

#[test]
fn check_config_prints_a_summary_and_exits_0() {
    let out = Agent::output(
        &[
            "--check-config",
            "--scrape-target",
            "http://127.0.0.1:3000/api/metrics",
            "--scrape-interval",
            "500ms",
            "--remote-write-url",
            "http://127.0.0.1:9090/api/v1/write",
            "--log-path",
            "/var/log/lt/*.log",
            "--loki-url",
            "http://127.0.0.1:3100",
            "--positions-file",
            "positions.yml",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("configuration OK"), "{s}");
    assert!(s.contains("listen: 0.0.0.0:9080"), "{s}");
    assert!(s.contains("every 500ms"), "{s}");
    assert!(s.contains("127.0.0.1:3000"), "{s}");
    assert!(s.contains("/api/metrics"), "{s}");
    assert!(
        s.contains("remote write: http://127.0.0.1:9090/api/v1/write"),
        "{s}"
    );
    assert!(s.contains("logs: dry run"), "{s}");
    assert!(s.contains("positions in positions.yml"), "{s}");
    assert!(s.contains("json /var/log/lt/*.log"), "{s}");
}

#[test]
fn flags_come_from_environment_variables() {
    let out = Agent::output(
        &["--check-config"],
        &[
            (
                "SCRAPE_TARGETS",
                "http://127.0.0.1:3001/metrics,http://127.0.0.1:3002/metrics",
            ),
            (
                "PROMETHEUS_REMOTE_WRITE_URL",
                "http://127.0.0.1:9090/api/v1/write",
            ),
            ("SCRAPE_INTERVAL", "1m"),
            ("AGENT_LISTEN", "127.0.0.1:9999"),
            ("AGENT_DRY_RUN", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("scrape jobs: 2"), "{s}");
    assert!(s.contains("every 60s"), "{s}");
    assert!(s.contains("listen: 127.0.0.1:9999"), "{s}");
    assert!(
        s.contains("remote write: http://127.0.0.1:9090/api/v1/write"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_scraped_samples_as_json_lines() {
    let target =
        Target::start("# TYPE lt_x_total counter\nlt_x_total{a=\"q\\\"uote\"} 5\nlt_nan NaN\n")
            .await;
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_livetranslate-agent"))
        .args([
            "--dry-run",
            "--scrape-target",
            &target.url("/metrics"),
            "--scrape-interval",
            "200ms",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("PROMETHEUS_REMOTE_WRITE_URL")
        .env_remove("AGENT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start agent");
    let mut guard = ChildGuard::new(child, "agent");
    let stdout = guard
        .child
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut found_counter = None;
    let mut found_nan = false;
    while Instant::now() < deadline && (found_counter.is_none() || !found_nan) {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        match v["name"].as_str() {
            Some("lt_x_total") => found_counter = Some(v),
            Some("lt_nan") => found_nan = v["value"] == "NaN",
            _ => {}
        }
    }
    guard.terminate(Duration::from_secs(10));
    let v = found_counter.expect("no lt_x_total line on stdout");
    assert_eq!(v["value"], 5.0);
    assert_eq!(v["labels"]["a"], "q\"uote");
    assert_eq!(v["labels"]["job"], "agent");
    assert_eq!(v["labels"]["instance"], target.addr.to_string());
    assert_eq!(*target.last_uri.lock().expect("lock"), "/metrics");
    assert!(v["timestamp_ms"]
        .as_i64()
        .is_some_and(|t| t > 1_600_000_000_000));
    assert!(found_nan, "NaN sample not printed as \"NaN\"");
}

#[test]
fn a_full_configuration_file_is_accepted_and_flags_override_it() {
    let dir = TempDir::new("cfg-full");
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").expect("write");
    std::fs::write(
        dir.path().join("targets.yml"),
        "- targets: ['127.0.0.1:7001']\n  labels: {service: audio}\n",
    )
    .expect("write");
    let path = dir.path().join("agent.yml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:9100\n\
             labels: {{environment: ${{LT_AGENT_TEST_ENV:-staging}}, cluster: eu-1}}\n\
             scrape: {{interval: 30s, timeout: 5s, job_name: sidecar}}\n\
             scrape_configs:\n\
             \x20 - job_name: agent-audio\n\
             \x20   interval: 5s\n\
             \x20   timeout: 2s\n\
             \x20   scheme: https\n\
             \x20   metrics_path: /api/metrics\n\
             \x20   honor_labels: true\n\
             \x20   bearer_token_file: {}\n\
             \x20   tls: {{insecure_skip_verify: true}}\n\
             \x20   static_configs:\n\
             \x20     - targets: ['127.0.0.1:7000']\n\
             \x20       labels: {{service: audio}}\n\
             \x20   file_sd_configs:\n\
             \x20     - files: ['{}']\n\
             \x20       refresh_interval: 10s\n\
             remote_write:\n\
             \x20 url: http://127.0.0.1:1/api/v1/write\n\
             \x20 timeout: 10s\n\
             \x20 headers: {{X-Scope-OrgID: tenant-1}}\n\
             \x20 queue: {{capacity: 5000, max_samples_per_send: 500, batch_send_deadline: 2s}}\n\
             logs:\n\
             \x20 paths: ['/var/log/lt/*.log']\n\
             \x20 loki_url: http://127.0.0.1:3100\n\
             shutdown_timeout: 3s\n",
            token.display(),
            dir.path().join("*.yml").display()
        ),
    )
    .expect("write");
    let p = path.display().to_string();
    let out = Agent::output(&["--config", &p, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("listen: 127.0.0.1:9100"), "{s}");
    assert!(
        s.contains("labels: cluster=eu-1, environment=staging"),
        "{s}"
    );
    assert!(
        s.contains("job \"agent-audio\": every 5s, timeout 2s, https://"),
        "{s}"
    );
    assert!(s.contains("honor_labels"), "{s}");
    assert!(s.contains("file_sd:"), "{s}");
    assert!(
        s.contains("(write-ahead log in /var/lib/livetranslate-agent/wal (up to 512MiB, 14400s); batches of 500 or every 2s)"),
        "{s}"
    );

    // Flags win over the file.
    let out = Agent::output(
        &[
            "--config",
            &p,
            "--check-config",
            "--listen",
            "127.0.0.1:9200",
            "--remote-write-url",
            "http://127.0.0.1:2/api/v1/write",
        ],
        &[("LT_AGENT_TEST_ENV", "production")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("listen: 127.0.0.1:9200"), "{s}");
    assert!(
        s.contains("remote write: http://127.0.0.1:2/api/v1/write"),
        "{s}"
    );
    assert!(s.contains("environment=production"), "{s}");

    // A missing secret file is an error naming it.
    std::fs::remove_file(&token).expect("remove");
    let out = Agent::output(&["--config", &p, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&token.display().to_string()));
}

#[test]
fn a_taken_listen_address_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = TempDir::new("taken");
    let err_path = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_livetranslate-agent"))
        .args(["--listen", &addr])
        .env_remove("SCRAPE_TARGETS")
        .env_remove("PROMETHEUS_REMOTE_WRITE_URL")
        .env_remove("AGENT_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start agent");
    let mut guard = ChildGuard::new(child, "agent");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut code = None;
    while Instant::now() < deadline {
        if let Some(Ok(Some(status))) = guard.child.as_mut().map(|c| c.try_wait()) {
            code = Some(status.code());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert_eq!(code, Some(Some(1)), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}
