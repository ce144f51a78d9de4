//! No secret anywhere: the agent is given a credential in every place one can be given — URLs
//! of remote write, Loki, scrape targets and `file_sd` targets (`user:password@` and token
//! parameters), basic auth passwords and password files, bearer tokens and token files,
//! `authorization` credentials and files, request headers, proxy URLs, environment variables
//! — and every output channel is searched for them: stdout, stderr, the status page `/`,
//! `/metrics`, `--check-config`, and the error exits of bad flags and bad configurations.

mod common;

use std::time::Duration;

use common::{Agent, Target};
use livetranslate_test_support::{free_port, http_get, TempDir};

/// Every secret has this in it, so one search finds them all.
const MARK: &str = "S3CRET";

fn leaks(channel: &str, text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(MARK))
        .map(|l| format!("{channel}: {l}"))
        .collect()
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    if let Err(e) = std::fs::write(&path, text) {
        panic!("{name}: {e}");
    }
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output() {
    let dir = TempDir::new("secrets");
    let target = Target::start("lt_up 1\n").await;
    let t = target.addr.to_string();
    let dead = free_port();
    let token_file = write(&dir, "token", "file-token-S3CRET\n");
    let pass_file = write(&dir, "pass", "file-pass-S3CRET\n");
    let cred_file = write(&dir, "cred", "file-cred-S3CRET\n");
    let logs = dir.path().join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        panic!("{e}");
    }
    write(
        &dir,
        "logs/app.log",
        "{\"level\":\"info\",\"message\":\"hello\"}\n",
    );
    write(
        &dir,
        "sd.json",
        &format!(r#"[{{"targets":["sduser:sd-pw-S3CRET@{t}"],"labels":{{"from":"file_sd"}}}}]"#),
    );
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            r#"shutdown_timeout: 2s
logs:
  loki_url: http://lokiuser:loki-url-S3CRET@127.0.0.1:{dead}?token=loki-q-S3CRET
  positions_file: {pos}
  paths: ["{logs}/*.log"]
  loki:
    tenant_id: team-a
scrape_configs:
  - job_name: basic
    scrape_interval: 500ms
    basic_auth: {{username: u, password: basic-pw-S3CRET}}
    params: {{token: [param-S3CRET], api_key: [key-S3CRET], module: [plain]}}
    static_configs: [{{targets: ["{t}"]}}]
  - job_name: basic-file
    scrape_interval: 500ms
    basic_auth: {{username: u, password_file: {pass_file}}}
    static_configs: [{{targets: ["127.0.0.1:{dead}"]}}]
  - job_name: bearer
    scrape_interval: 500ms
    bearer_token: bearer-S3CRET
    static_configs: [{{targets: ["{t}"]}}]
  - job_name: bearer-file
    scrape_interval: 500ms
    bearer_token_file: {token_file}
    static_configs: [{{targets: ["{t}"]}}]
  - job_name: authorization
    scrape_interval: 500ms
    authorization: {{type: Token, credentials: authz-S3CRET}}
    static_configs: [{{targets: ["{t}"]}}]
  - job_name: authorization-file
    scrape_interval: 500ms
    authorization: {{credentials_file: {cred_file}}}
    static_configs: [{{targets: ["{t}"]}}]
  - job_name: userinfo
    scrape_interval: 500ms
    static_configs: [{{targets: ["tuser:target-pw-S3CRET@{t}", "tuser:dead-pw-S3CRET@127.0.0.1:{dead}"]}}]
  - job_name: proxied
    scrape_interval: 500ms
    proxy_url: http://puser:proxy-pw-S3CRET@127.0.0.1:{dead}
    static_configs: [{{targets: ["{t}"]}}]
  - job_name: discovered
    scrape_interval: 500ms
    file_sd_configs: [{{files: ["{sd}"], refresh_interval: 1s}}]
remote_write:
  url: http://rwuser:rw-url-S3CRET@127.0.0.1:{dead}/api/v1/write?api_key=rw-q-S3CRET
  headers: {{Authorization: Bearer header-S3CRET, X-Api-Key: header2-S3CRET}}
  queue: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 200ms}}
"#,
            pos = dir.path().join("pos.yml").display(),
            logs = logs.display(),
            sd = dir.path().join("sd.json").display(),
        ),
    );
    let mut found = Vec::new();

    // --check-config, from the file and from environment variables.
    let check = Agent::output(
        &["--config", &config, "--check-config"],
        &[(
            "AGENT_WAL_DIR",
            &dir.path().join("wal-check").display().to_string(),
        )],
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    found.extend(leaks(
        "--check-config stdout",
        &String::from_utf8_lossy(&check.stdout),
    ));
    found.extend(leaks(
        "--check-config stderr",
        &String::from_utf8_lossy(&check.stderr),
    ));
    let env_check = Agent::output(
        &["--check-config", "--wal-dir", &dir.path().join("wal-env").display().to_string()],
        &[
            (
                "PROMETHEUS_REMOTE_WRITE_URL",
                &format!("http://envuser:env-rw-S3CRET@127.0.0.1:{dead}/api/v1/write?access_token=env-q-S3CRET"),
            ),
            (
                "SCRAPE_TARGETS",
                &format!("http://envuser:env-target-S3CRET@{t}/metrics?token=env-tq-S3CRET"),
            ),
            ("LOKI_URL", &format!("http://envuser:env-loki-S3CRET@127.0.0.1:{dead}")),
            ("LOG_PATHS", &format!("{}/*.log", logs.display())),
        ],
    );
    assert_eq!(
        env_check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&env_check.stderr)
    );
    found.extend(leaks(
        "env --check-config",
        &String::from_utf8_lossy(&env_check.stdout),
    ));

    // The running agent: its logs, status page and metrics after a few failing and
    // succeeding scrapes and failing pushes.
    let mut running = Agent::start(
        dir.path(),
        &[
            "--config",
            &config,
            "--scrape-target",
            &format!("http://flaguser:flag-target-S3CRET@{t}/metrics?token=flag-q-S3CRET"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = http_get(&running.url("/"))
        .map(|(_, b)| b)
        .unwrap_or_default();
    let metrics = running.metrics_text();
    assert!(status.contains("job=userinfo"), "status page:\n{status}");
    assert!(
        status.contains("token=xxxxx"),
        "the parameters are shown, redacted:\n{status}"
    );
    assert!(
        metrics.contains("livetranslate_agent_target_up"),
        "{metrics}"
    );
    found.extend(leaks("status page", &status));
    found.extend(leaks("/metrics", &metrics));
    running.sigterm();
    found.extend(leaks("stderr (logs)", &running.log()));
    // The userinfo of a target is its basic authentication: the target saw it.
    assert!(
        target.header("authorization").is_some(),
        "targets were not scraped with credentials"
    );

    // Error exits: bad flags and bad configuration values carrying secrets.
    let bad_config = write(
        &dir,
        "bad.yml",
        "scrape_configs:\n  - job_name: p\n    proxy_url: ftp://u:bad-proxy-S3CRET@x\n",
    );
    let bad_target = write(
        &dir,
        "bad-target.yml",
        "scrape_configs:\n  - job_name: p\n    static_configs: [{targets: ['http://u:bad-static-S3CRET@x:1']}]\n",
    );
    for (what, args) in [
        (
            "bad --remote-write-url",
            vec!["--remote-write-url", "http://u:bad-flag-S3CRET@[::bad"],
        ),
        (
            "bad --remote-write-url scheme",
            vec!["--remote-write-url", "ftp://u:bad-scheme-S3CRET@x/w"],
        ),
        (
            "bad --scrape-target",
            vec!["--scrape-target", "http://u:bad-tgt-S3CRET@bad host/x"],
        ),
        (
            "bad --scrape-target scheme",
            vec![
                "--scrape-target",
                "ftp://u:bad-tgt2-S3CRET@x/x?token=q-S3CRET",
            ],
        ),
        (
            "bad --loki-url",
            vec!["--loki-url", "http//u:bad-loki-S3CRET@x"],
        ),
        ("bad proxy_url", vec!["--config", &bad_config]),
        ("bad static target", vec!["--config", &bad_target]),
    ] {
        let out = Agent::output(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{what} accepted");
        found.extend(leaks(what, &String::from_utf8_lossy(&out.stdout)));
        found.extend(leaks(what, &String::from_utf8_lossy(&out.stderr)));
    }
    let env_bad = Agent::output(
        &[],
        &[(
            "PROMETHEUS_REMOTE_WRITE_URL",
            "http://u:bad-env-S3CRET@[::bad",
        )],
    );
    assert_eq!(env_bad.status.code(), Some(2));
    found.extend(leaks(
        "bad env URL",
        &String::from_utf8_lossy(&env_bad.stderr),
    ));

    assert!(found.is_empty(), "secrets shown:\n{}", found.join("\n"));
}
