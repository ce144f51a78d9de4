//! Command-line flags. Every flag can also be set through an environment variable (boolean
//! ones accept `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`); flags override the
//! configuration file.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::Parser;

use crate::duration::HumanDuration;

/// Ships log files to Loki and scraped metrics to Prometheus (remote write).
#[derive(Debug, Default, Clone, Parser)]
#[command(name = "livetranslate-agent", version, about)]
pub struct Cli {
    /// YAML configuration file.
    #[arg(long, value_name = "FILE", env = "AGENT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address of the HTTP server (/metrics, /ready, status page) [default: 0.0.0.0:9080].
    #[arg(long, value_name = "ADDR", env = "AGENT_LISTEN")]
    pub listen: Option<String>,

    /// URL of a metrics endpoint to scrape (repeatable), e.g. http://127.0.0.1:3000/api/metrics.
    #[arg(
        long = "scrape-target",
        value_name = "URL",
        env = "SCRAPE_TARGETS",
        value_delimiter = ','
    )]
    pub scrape_targets: Vec<String>,

    /// Prometheus remote-write endpoint, e.g. http://127.0.0.1:9090/api/v1/write.
    #[arg(long, value_name = "URL", env = "PROMETHEUS_REMOTE_WRITE_URL")]
    pub remote_write_url: Option<String>,

    /// Directory of the remote-write write-ahead log [default: /var/lib/livetranslate-agent/wal].
    #[arg(long, value_name = "DIR", env = "AGENT_WAL_DIR")]
    pub wal_dir: Option<PathBuf>,

    /// Default scrape interval: 15s, 500ms, 1m or plain seconds [default: 15s].
    #[arg(long, value_name = "DURATION", env = "SCRAPE_INTERVAL")]
    pub scrape_interval: Option<HumanDuration>,

    /// Validate the configuration, print a summary and exit (0 if valid, 2 if not).
    #[arg(long, env = "AGENT_CHECK_CONFIG", value_parser = BoolishValueParser::new())]
    pub check_config: bool,

    /// Glob of log files to tail (repeatable).
    #[arg(
        long = "log-path",
        value_name = "GLOB",
        env = "LOG_PATHS",
        value_delimiter = ','
    )]
    pub log_paths: Vec<String>,

    /// Loki base URL, e.g. http://127.0.0.1:3100.
    #[arg(long, value_name = "URL", env = "LOKI_URL")]
    pub loki_url: Option<String>,

    /// File where log read offsets are remembered.
    #[arg(long, value_name = "PATH", env = "POSITIONS_FILE")]
    pub positions_file: Option<PathBuf>,

    /// Print what would be shipped as JSON lines on stdout instead of pushing it (when no
    /// remote-write URL / Loki URL is set).
    #[arg(long, env = "AGENT_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_every_flag() {
        let cli = Cli::try_parse_from([
            "livetranslate-agent",
            "--listen",
            "127.0.0.1:1",
            "--scrape-target",
            "http://127.0.0.1:2/m",
            "--scrape-target",
            "http://127.0.0.1:3/m",
            "--remote-write-url",
            "http://127.0.0.1:4/api/v1/write",
            "--wal-dir",
            "/tmp/wal",
            "--scrape-interval",
            "500ms",
            "--log-path",
            "/x/*.log",
            "--loki-url",
            "http://127.0.0.1:5",
            "--positions-file",
            "pos.yml",
            "--dry-run",
            "--check-config",
        ]);
        let cli = match cli {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(cli.scrape_targets.len(), 2);
        assert_eq!(cli.wal_dir, Some(PathBuf::from("/tmp/wal")));
        assert_eq!(
            cli.scrape_interval.map(|d| d.0),
            Some(std::time::Duration::from_millis(500))
        );
        assert!(cli.dry_run && cli.check_config);
        assert!(Cli::try_parse_from(["x", "--scrape-interval", "soon"]).is_err());
    }
}
