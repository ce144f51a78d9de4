//! A job block copied from `prometheus.yml` works in the agent: the project's own
//! `monitoring/prometheus/prometheus.yml` jobs are accepted as they are; a job using every
//! supported Prometheus key is accepted by `promtool check config` and by the agent; and the
//! agent scraping with that block (relabelling, parameters, metric relabelling, label clashes)
//! stores exactly the series a real Prometheus 2.42 stores with it. A Prometheus key the agent
//! does not implement is an error naming the file, line, column and key.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{Agent, Target, NO_SCRAPES};
use livetranslate_test_support::{eventually_async, require, Prometheus, TempDir};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    if let Err(e) = std::fs::write(&path, body) {
        panic!("{name}: {e}");
    }
    path.display().to_string()
}

/// The `scrape_configs` of a Prometheus configuration, as YAML text.
fn scrape_configs_of(prometheus_yml: &str) -> String {
    let v: serde_yaml_ng::Value = match serde_yaml_ng::from_str(prometheus_yml) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let jobs = v["scrape_configs"].clone();
    let mut doc = serde_yaml_ng::Mapping::new();
    doc.insert("scrape_configs".into(), jobs);
    match serde_yaml_ng::to_string(&doc) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_projects_prometheus_jobs_are_accepted_as_they_are() {
    let dir = TempDir::new("prom-jobs");
    let yml = match std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../monitoring/prometheus/prometheus.yml"
    )) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let config = write(&dir, "agent.yml", &scrape_configs_of(&yml));
    let out = Agent::output(&["--config", &config, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("scrape jobs: 9"), "{s}");
    assert!(
        s.contains(
            "job \"orchestration\": every 15s, timeout 10s, http://…/api/metrics, honor_labels"
        ),
        "{s}"
    );
    assert!(s.contains("targets: orchestration-service:3000"), "{s}");
}

/// A job with every Prometheus key the agent implements, around a placeholder target.
fn full_job(target: &str, dir: &TempDir) -> String {
    let pass = write(dir, "pass", "hunter2\n");
    let cred = write(dir, "cred", "t0ken\n");
    let sd = write(dir, "sd.json", "[]");
    format!(
        r#"  - job_name: copied
    scrape_interval: 1s
    scrape_timeout: 900ms
    metrics_path: /probe
    scheme: http
    params:
      module: [http_2xx]
      target: [a, b]
    honor_labels: false
    honor_timestamps: true
    sample_limit: 1000
    label_limit: 30
    label_name_length_limit: 200
    label_value_length_limit: 200
    body_size_limit: 10MB
    basic_auth:
      username: u
      password_file: {pass}
    follow_redirects: true
    enable_http2: true
    static_configs:
      - targets: ["{target}"]
        labels:
          team: speech
          __meta_zone: eu-1
    file_sd_configs:
      - files: ["{sd}"]
        refresh_interval: 30s
    relabel_configs:
      - source_labels: [__meta_zone]
        target_label: zone
      - source_labels: [__address__]
        regex: '(.*):\d+'
        target_label: host
      - source_labels: [team]
        regex: speech
        target_label: __param_extra
        replacement: "yes"
      - regex: team
        action: labeldrop
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
      - source_labels: [path]
        regex: '/api/v1/users/\d+'
        target_label: path
        replacement: '/api/v1/users/:id'
      - regex: pod_hash
        action: labeldrop
  - job_name: bearer
    authorization:
      type: Bearer
      credentials_file: {cred}
    tls_config:
      insecure_skip_verify: true
    proxy_url: http://127.0.0.1:3128
    static_configs:
      - targets: ["{target}"]
"#
    )
}

#[test]
fn promtool_and_the_agent_accept_the_same_job_block() {
    let dir = TempDir::new("prom-full");
    let jobs = full_job("127.0.0.1:9100", &dir);
    let prometheus_yml = write(
        &dir,
        "prometheus.yml",
        &format!("global: {{scrape_interval: 15s}}\nscrape_configs:\n{jobs}"),
    );
    let check = Command::new(require("promtool"))
        .args(["check", "config", &prometheus_yml])
        .output();
    let check = match check {
        Ok(o) => o,
        Err(e) => panic!("promtool: {e}"),
    };
    assert!(
        check.status.success(),
        "promtool refuses the block: {}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let config = write(&dir, "agent.yml", &format!("scrape_configs:\n{jobs}"));
    let out = Agent::output(&["--config", &config, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("job \"copied\": every 1s, timeout 900ms, http://…/probe?module=http_2xx&target=a&target=b, sample_limit 1000, label_limit 30, label_name_length_limit 200, label_value_length_limit 200, body_size_limit 10MiB, 4 relabel_configs, 3 metric_relabel_configs, authenticated"),
        "{s}"
    );

    // What the agent does not implement is named, with its place in the file.
    let unsupported = write(
        &dir,
        "unsupported.yml",
        "scrape_configs:\n  - job_name: k8s\n    kubernetes_sd_configs:\n      - role: pod\n",
    );
    let out = Agent::output(&["--config", &unsupported, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.contains("unsupported.yml:3:5: scrape_configs[0].kubernetes_sd_configs: \"kubernetes_sd_configs\" is a Prometheus setting this agent does not support"),
        "{e}"
    );
    let typo = write(
        &dir,
        "typo.yml",
        "scrape_configs:\n  - job_name: t\n    scrape_intervals: 5s\n",
    );
    let out = Agent::output(&["--config", &typo, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.contains("typo.yml:3:5: scrape_configs[0].scrape_intervals: unknown key"),
        "{e}"
    );
}

/// The body both scrapers see: a dropped family, a path to rewrite, a label to drop, and
/// scraped `job` / `instance` labels that clash with the target's.
const BODY: &str = "# TYPE go_goroutines gauge\ngo_goroutines 12\n\
# TYPE http_requests_total counter\n\
http_requests_total{path=\"/api/v1/users/42\",pod_hash=\"5d8f\"} 3\n\
http_requests_total{path=\"/health\",pod_hash=\"5d8f\"} 9\n\
# TYPE lt_clash gauge\n\
lt_clash{job=\"inner\",instance=\"elsewhere:1\",exported_job=\"x\"} 1\n";

/// The label sets of the series of job `copied` in `prom` (without `__name__`'s value
/// `scrape_duration_seconds`'s changing value: labels only).
async fn series(prom: &Prometheus) -> BTreeSet<Vec<(String, String)>> {
    let data = prom
        .api_async("series", &[("match[]", "{job=\"copied\"}".to_owned())])
        .await;
    data.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_stores_the_series_prometheus_stores_with_the_same_block() {
    let dir = TempDir::new("prom-same");
    let for_prometheus = Target::start(BODY).await;
    let for_agent = Target::start(BODY).await;
    // The same block, each pointed at its own copy of the target (so each records its own
    // scrape request); the address-derived labels are compared with the address replaced.
    let prom_jobs = full_job(&for_prometheus.addr.to_string(), &dir)
        .replace("  - job_name: bearer", "  - job_name: unused-bearer");
    let agent_jobs = full_job(&for_agent.addr.to_string(), &dir)
        .replace("  - job_name: bearer", "  - job_name: unused-bearer");
    let reference_dir = dir.path().join("reference");
    let receiver_dir = dir.path().join("receiver");
    for d in [&reference_dir, &receiver_dir] {
        if let Err(e) = std::fs::create_dir_all(d) {
            panic!("{e}");
        }
    }
    // Only `copied` runs: the bearer job's proxy is not there.
    let only_copied = |jobs: &str| -> String {
        match jobs.find("  - job_name: unused-bearer") {
            Some(i) => jobs[..i].to_owned(),
            None => jobs.to_owned(),
        }
    };
    let reference = Prometheus::start_async(
        &reference_dir,
        &format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n{}",
            only_copied(&prom_jobs)
        ),
    )
    .await;
    let receiver = Prometheus::start_async(&receiver_dir, NO_SCRAPES).await;
    let config = write(
        &dir,
        "agent.yml",
        &format!(
            "scrape_configs:\n{}remote_write:\n  url: {}\n  queue: {{batch_send_deadline: 200ms}}\n",
            only_copied(&agent_jobs),
            receiver.write_url()
        ),
    );
    let agent = Agent::start(dir.path(), &["--config", &config]).await;

    let normalise = |set: BTreeSet<Vec<(String, String)>>, addr: &str| {
        let host = addr.split(':').next().unwrap_or("").to_owned();
        set.into_iter()
            .map(|labels| {
                labels
                    .into_iter()
                    .map(|(k, v)| {
                        let v = v.replace(addr, "TARGET");
                        (k, if v == host { "HOST".to_owned() } else { v })
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<BTreeSet<_>>()
    };
    // Three scraped series (go_goroutines is dropped) and the five report series.
    let want_count = 8;
    let settled = eventually_async(Duration::from_secs(30), || async {
        series(&reference).await.len() >= want_count && series(&receiver).await.len() >= want_count
    })
    .await;
    let expected = normalise(series(&reference).await, &for_prometheus.addr.to_string());
    let got = normalise(series(&receiver).await, &for_agent.addr.to_string());
    assert!(
        settled,
        "series missing: prometheus {expected:#?}\nagent {got:#?}\n{}",
        agent.log()
    );
    assert_eq!(got, expected, "{}", agent.log());
    // Spot checks that the block did something.
    let flat = format!("{expected:?}");
    assert!(
        flat.contains("/api/v1/users/:id")
            && !flat.contains("go_goroutines")
            && !flat.contains("pod_hash")
    );
    assert!(flat.contains("exported_exported_job") && flat.contains("exported_instance"));
    assert!(
        flat.contains("(\"zone\", \"eu-1\")")
            && flat.contains("(\"host\", \"HOST\")")
            && !flat.contains("team")
    );
    // Both asked for the same URL, with the same credentials.
    let uri_p = for_prometheus
        .last_uri
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    let uri_a = for_agent
        .last_uri
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    assert_eq!(uri_a, uri_p);
    assert_eq!(uri_a, "/probe?extra=yes&module=http_2xx&target=a&target=b");
    assert_eq!(
        for_agent.header("authorization"),
        for_prometheus.header("authorization")
    );
}
