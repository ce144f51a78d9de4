//! The YAML configuration file: the top-level keys, each holding the section its component
//! owns (the schema of `logs:` lives in [`crate::logs::config`], of `remote_write:` in
//! [`crate::metrics::remote_write::config`], and so on).
//!
//! ```yaml
//! listen: 0.0.0.0:9080
//! labels: {environment: production, cluster: eu-1}   # added to every pushed series
//! scrape:
//!   interval: 15s            # default for every job
//!   timeout: 10s
//!   job_name: agent          # job of --scrape-target URLs
//! scrape_configs:
//!   - job_name: agent-audio
//!     interval: 5s
//!     metrics_path: /api/metrics
//!     honor_labels: true
//!     bearer_token_file: /run/secrets/token
//!     static_configs:
//!       - targets: ["audio:3000"]
//!         labels: {service: audio}
//!     file_sd_configs:
//!       - files: ["/etc/agent/targets/*.json"]
//!         refresh_interval: 5s
//! remote_write:
//!   url: http://prometheus:9090/api/v1/write
//!   queue: {capacity: 100000, max_samples_per_send: 2000, batch_send_deadline: 5s}
//! logs:
//!   paths: ["/var/log/livetranslate/*.log"]
//!   loki_url: http://loki:3100
//!   positions_file: /var/lib/agent/positions.yml
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::logs::LogsFile;
use crate::metrics::job::{ScrapeConfigFile, ScrapeDefaults};
use crate::metrics::remote_write::RemoteWriteFile;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address of the HTTP server (`/metrics`, `/ready`, status page).
    pub listen: Option<String>,
    /// Standard labels (`service`, `environment`, `version`, `cluster`) added to every
    /// pushed series.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Defaults for every scrape job.
    #[serde(default)]
    pub scrape: ScrapeDefaults,
    /// Scrape jobs.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfigFile>,
    /// Where samples are pushed.
    pub remote_write: Option<RemoteWriteFile>,
    /// The log half.
    #[serde(default)]
    pub logs: LogsFile,
    /// Print samples (and log entries) as JSON lines instead of pushing them.
    #[serde(default)]
    pub dry_run: bool,
    /// Upper bound on the final flush at shutdown.
    pub shutdown_timeout: Option<HumanDuration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        let r: Result<FileConfig, _> = serde_yaml_ng::from_str("listen: x\nbogus: 1\n");
        let e = match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
        assert_eq!(e.location().map(|l| l.line()), Some(2));
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
listen: 127.0.0.1:9080
labels: {environment: production, cluster: eu-1}
scrape: {interval: 15s, timeout: 10s, job_name: agent}
scrape_configs:
  - job_name: agent-audio
    interval: 5s
    metrics_path: /api/metrics
    honor_labels: true
    basic_auth: {username: u, password: p}
    tls: {insecure_skip_verify: true}
    static_configs:
      - targets: ["127.0.0.1:3000"]
        labels: {service: audio}
    file_sd_configs:
      - files: ["targets/*.json"]
        refresh_interval: 2s
remote_write:
  url: http://127.0.0.1:9090/api/v1/write
  headers: {X-Scope-OrgID: a}
  queue: {capacity: 1000, max_samples_per_send: 100, batch_send_deadline: 1s}
logs:
  paths: ["/var/log/*.log"]
dry_run: false
shutdown_timeout: 5s
"#;
        let r: Result<FileConfig, _> = serde_yaml_ng::from_str(text);
        let c = match r {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            c.scrape_configs[0].static_configs[0].targets,
            ["127.0.0.1:3000"]
        );
        assert_eq!(c.remote_write.and_then(|r| r.queue.capacity), Some(1000));
    }
}
