//! `livetranslate-agent` binary: flags → configuration → [`livetranslate_agent::run_with_reload`].
//!
//! Exit codes: 0 on a clean shutdown (or a valid `--check-config`), 2 for an invalid command
//! line, configuration or positions file, 1 for a failure while running. SIGHUP reloads the
//! configuration (it never stops the agent); SIGTERM and SIGINT stop it cleanly.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use livetranslate_agent::config::{cli::normalize_args, Cli, Config};
use livetranslate_agent::logs::pipeline::{load_positions, PipelineError};
use livetranslate_agent::{AgentError, ReloadRequest};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    ignore_sighup_until_handled();
    let cli = Cli::parse_from(normalize_args(std::env::args_os()));
    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::load(&cli, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livetranslate-agent: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_level.as_deref());
    if config.logs.enabled() {
        if let Err(e) = load_positions(&config.logs) {
            eprintln!("livetranslate-agent: {e}");
            return ExitCode::from(2);
        }
    }
    if cli.check_config {
        print!("{}", config.summary());
        return ExitCode::SUCCESS;
    }
    if cli.print_config {
        eprint!("{}", config.summary());
    }
    match serve(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("livetranslate-agent: {e:#}");
            let bad_positions = e
                .downcast_ref::<AgentError>()
                .is_some_and(|e| matches!(e, AgentError::Logs(PipelineError::Positions(_))));
            ExitCode::from(if bad_positions { 2 } else { 1 })
        }
    }
}

/// SIGHUP's default action ends the process. It is ignored from the first instruction on,
/// until the runtime's handler (which reloads) replaces that.
fn ignore_sighup_until_handled() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread exists.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("info")));
    // Logs go to stderr: stdout carries the dry-run output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn serve(cli: Cli, config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let cli = Arc::new(cli);
    let loader: livetranslate_agent::Loader = {
        let cli = cli.clone();
        Arc::new(move || Config::load(&cli, &|name| std::env::var(name).ok()))
    };
    runtime.block_on(async move {
        let (tx, rx) = mpsc::channel(4);
        listen_for_sighup(tx);
        livetranslate_agent::run_with_reload(config, Some(loader), rx, shutdown_signal()).await
    })?;
    Ok(())
}

/// Every SIGHUP asks for a reload.
fn listen_for_sighup(tx: mpsc::Sender<ReloadRequest>) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut s) => {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if tx.send(ReloadRequest { reply: None }).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::error!(error = %e, "cannot listen for SIGHUP; it is ignored"),
    }
    #[cfg(not(unix))]
    drop(tx);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
