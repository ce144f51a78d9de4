//! Command-line flags. Every flag can also be set through an environment variable (boolean
//! ones accept `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`); flags override the
//! configuration file.
//!
//! Promtail's flags work as they do for Promtail: `-config.file`, `-config.expand-env`,
//! `-dry-run`, `-check-syntax`, `-print-config-stderr`, `-log.level`, `-client.url`,
//! `-positions.file`. Go's flag syntax is accepted for every long flag (see
//! [`normalize_args`]): one dash or two, `-x=value` or `-x value`, and `-flag=true` /
//! `-flag=false` for switches.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, CommandFactory, Parser};

use crate::duration::HumanDuration;

/// `--config-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ConfigFormat {
    /// Tell by the file's keys.
    #[default]
    Auto,
    /// The agent's own YAML.
    Agent,
    /// Promtail's promtail.yml.
    Promtail,
}

/// Ships log files to Loki and scraped metrics to Prometheus (remote write).
#[derive(Debug, Default, Clone, Parser)]
#[command(name = "livetranslate-agent", version, about)]
pub struct Cli {
    /// YAML configuration file: the agent's own, or a promtail.yml (told apart by its keys).
    #[arg(long, value_name = "FILE", env = "AGENT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Promtail's flag: a promtail.yml (or the agent's own file). With --config too, one
    /// file of each format: the promtail.yml for logs, the agent's file for the rest.
    #[arg(long = "config.file", value_name = "FILE", env = "PROMTAIL_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// The format of the configuration file(s) [default: auto].
    #[arg(
        long = "config-format",
        value_name = "FORMAT",
        value_enum,
        default_value_t
    )]
    pub config_format: ConfigFormat,

    /// Promtail's flag: expand ${VAR} and ${VAR:-default} in a promtail.yml (the agent's own
    /// file is always expanded).
    #[arg(
        long = "config.expand-env",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub expand_env: bool,

    /// Promtail's flag: print the configuration in effect on stderr at start.
    #[arg(
        long = "print-config-stderr",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub print_config: bool,

    /// Promtail's flag: only messages of this level or above (debug, info, warn, error);
    /// RUST_LOG wins.
    #[arg(long = "log.level", value_name = "LEVEL")]
    pub log_level: Option<String>,

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

    /// Validate the configuration, print a summary and exit (0 if valid, 2 if not). Also
    /// Promtail's -check-syntax.
    #[arg(
        long,
        alias = "check-syntax",
        env = "AGENT_CHECK_CONFIG",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub check_config: bool,

    /// Glob of log files to tail (repeatable).
    #[arg(
        long = "log-path",
        value_name = "GLOB",
        env = "LOG_PATHS",
        value_delimiter = ','
    )]
    pub log_paths: Vec<String>,

    /// Loki base URL, e.g. http://127.0.0.1:3100 (or Promtail's -client.url push URL).
    #[arg(long, alias = "client.url", value_name = "URL", env = "LOKI_URL")]
    pub loki_url: Option<String>,

    /// File where log read offsets are remembered (Promtail's -positions.file).
    #[arg(
        long,
        alias = "positions.file",
        value_name = "PATH",
        env = "POSITIONS_FILE"
    )]
    pub positions_file: Option<PathBuf>,

    /// Print what would be shipped as JSON lines on stdout instead of pushing it; the saved
    /// positions are read and never written.
    #[arg(
        long,
        env = "AGENT_DRY_RUN",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub dry_run: bool,
}

/// Rewrites Go-style flags (`-config.file=x`, `-dry-run`) to the long form clap reads
/// (`--config.file=x`, `--dry-run`), for every long flag and alias of [`Cli`]; anything
/// else (short flags, values, what follows `--`) is left as it is.
///
/// ```
/// use livetranslate_agent::config::cli::normalize_args;
/// let args = normalize_args(["agent", "-config.file=p.yml", "-dry-run", "-listen", "x", "-h", "--", "-dry-run"]);
/// assert_eq!(args, ["agent", "--config.file=p.yml", "--dry-run", "--listen", "x", "-h", "--", "-dry-run"]);
/// ```
pub fn normalize_args<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let cmd = Cli::command();
    let mut long: Vec<String> = Vec::new();
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            long.push(l.to_owned());
        }
        if let Some(aliases) = a.get_all_aliases() {
            long.extend(aliases.into_iter().map(str::to_owned));
        }
    }
    long.extend(["help".to_owned(), "version".to_owned()]);
    let mut out = Vec::new();
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        let arg: OsString = arg.into();
        if i == 0 || rest {
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let name = s.strip_prefix('-').filter(|n| !n.starts_with('-'));
        match name {
            Some(n) if long.iter().any(|l| l == n.split('=').next().unwrap_or("")) => {
                out.push(OsString::from(format!("-{s}")));
            }
            _ => out.push(arg),
        }
    }
    out
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

    #[test]
    fn promtail_flags_in_go_syntax() {
        let parse = |args: &[&str]| {
            let mut v = vec!["promtail"];
            v.extend_from_slice(args);
            Cli::try_parse_from(normalize_args(v)).map_err(|e| e.to_string())
        };
        let cli = parse(&[
            "-config.file=/etc/promtail/promtail.yml",
            "-config.expand-env=true",
            "-dry-run",
            "-check-syntax",
            "-print-config-stderr",
            "-log.level=debug",
            "-client.url",
            "http://loki:3100/loki/api/v1/push",
            "-positions.file=/tmp/p.yaml",
        ]);
        let cli = match cli {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            cli.config_file.as_deref(),
            Some(std::path::Path::new("/etc/promtail/promtail.yml"))
        );
        assert!(cli.expand_env && cli.dry_run && cli.check_config && cli.print_config);
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
        assert_eq!(
            cli.loki_url.as_deref(),
            Some("http://loki:3100/loki/api/v1/push")
        );
        assert_eq!(
            cli.positions_file.as_deref(),
            Some(std::path::Path::new("/tmp/p.yaml"))
        );
        let cli = parse(&[
            "-config.file",
            "a.yml",
            "-dry-run=false",
            "--check-syntax=0",
        ])
        .expect("parses");
        assert!(!cli.dry_run && !cli.check_config && !cli.expand_env);
        assert!(parse(&["-no-such-flag"]).is_err());
        assert!(parse(&["-dry-run=maybe"]).is_err());
    }
}
