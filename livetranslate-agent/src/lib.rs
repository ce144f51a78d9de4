//! `livetranslate-agent`: a sidecar that tails log files and pushes them to Loki, and scrapes
//! Prometheus metrics endpoints and pushes the samples to Prometheus with remote write. It
//! serves its own metrics, `/ready` and a status page.
//!
//! The binary is a thin wrapper: flags → [`config::Config`] → [`run`]. The data's way:
//!
//! - file → [`logs::watcher`] (offset, framing, rotation) → [`logs::decode`] (parse,
//!   multiline) → [`loki::batch`] → [`loki::client`] → on acknowledgement
//!   [`logs::checkpointer`] → positions file;
//! - target → [`metrics::discovery`] (relabelling, sharding) → [`metrics::scrape`] (the body
//!   streamed through [`metrics::exposition`]) → [`metrics::ingest`] (target labels, metric
//!   relabelling, limits, staleness; encoded for remote write) → [`metrics::wal`] (or the
//!   memory [`metrics::queue`]) → [`metrics::remote_write`] → on acknowledgement, the log is
//!   truncated.
//!
//! Both push paths use the one push client of the `livetranslate-push` crate (authentication,
//! TLS, retries, `Retry-After`); each keeps only its encoding.
//!
//! Modules, each owning its configuration type next to its code:
//! - [`config`]: parses (flags, YAML, `${VAR}`) and assembles; errors name `file:line:col`.
//! - [`logs`]: the log pipeline; [`loki`]: shipping to Loki.
//! - [`metrics`]: scrape jobs, discovery, scraping, the exposition parser, the queue and
//!   remote write.
//! - [`server`]: `/metrics`, `/ready` and the status page, and the listen address;
//!   [`status`]: the status page itself (data model, HTML, text and JSON views).
//! - [`internal_events`]: every metric the agent reports about itself.
//! - Leaves that import nothing of the agent: [`duration`], [`byte_size`], [`validate`],
//!   [`tz`] (time zones), [`delivery`] (a destination's delivery record), [`relabel`],
//!   [`metrics::wal`]. Label names follow the library's one rule,
//!   [`livetranslate_telemetry::names`].

pub mod byte_size;
pub mod config;
pub mod delivery;
pub mod duration;
pub mod internal_events;
pub mod logs;
pub mod loki;
pub mod metrics;
pub mod relabel;
pub mod server;
pub mod status;
pub mod tz;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use config::{Config, ConfigError};
use internal_events::AgentMetrics;
use metrics::discovery::TargetManager;
use metrics::queue::MemoryQueue;
use metrics::remote_write::buffer::Buffer;
use metrics::remote_write::{RemoteWriteConfig, RemoteWriter};
use metrics::scrape::ScrapeContext;
use metrics::wal::{Wal, WalError};
use metrics::{DiscardSink, JsonLinesSink, SampleSink};

/// The `User-Agent` of scrapes and remote-write requests.
pub const USER_AGENT: &str = concat!("livetranslate-agent/", env!("CARGO_PKG_VERSION"));

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The agent's own metrics could not be registered.
    #[error("metrics registry: {0}")]
    Metrics(#[from] livetranslate_telemetry::registry::MetricError),
    /// The log pipeline could not start.
    #[error(transparent)]
    Logs(#[from] logs::pipeline::PipelineError),
    /// An HTTP client (scrape or remote write) could not be built.
    #[error(transparent)]
    Client(#[from] livetranslate_push::ClientError),
    /// The remote-write write-ahead log could not be opened.
    #[error("{0} (set remote_write.wal.dir or --wal-dir, or remote_write.wal.enabled: false)")]
    Wal(#[from] WalError),
    /// The HTTP server could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
}

/// Reads the configuration again (from the same files, flags and environment).
pub type Loader = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

pub use server::ReloadRequest;

/// Runs the agent until `shutdown` completes, then stops scraping, flushes the remote-write
/// queue (for at most the configured shutdown timeout) and stops the HTTP server. Without a
/// loader, reload requests are refused.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let (_tx, rx) = mpsc::channel(1);
    run_with_reload(config, None, rx, shutdown).await
}

/// [`run`], reloading the configuration with `loader` on every request from `signals`
/// (SIGHUP) and from the HTTP server (`POST /-/reload`, `/reload`). A configuration that
/// does not load or apply is refused: the running one goes on, the error is logged and
/// counted (`livetranslate_agent_config_reloads_total{result="failure"}`).
pub async fn run_with_reload(
    config: Config,
    loader: Option<Loader>,
    mut signals: mpsc::Receiver<ReloadRequest>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let version = env!("CARGO_PKG_VERSION");
    let mut const_labels: Vec<(&str, &str)> = vec![("service", "livetranslate-agent")];
    for name in ["environment", "version", "cluster"] {
        let value = match (name, config.labels.get(name)) {
            ("version", _) => version,
            (_, Some(v)) => v.as_str(),
            (_, None) => continue,
        };
        const_labels.push((name, value));
    }
    let started_ms = metrics::scrape::now_ms();
    let agent_metrics = AgentMetrics::new(&const_labels)?;
    let status = Arc::new(Mutex::new(Default::default()));
    let ready = Arc::new(AtomicBool::new(false));
    // Bind first: nothing is started if the address is taken.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Bind {
            addr: config.listen,
            source,
        })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (give_up_tx, give_up_rx) = watch::channel(false);

    let mut writer_task = None;
    let (sink, destination): (Arc<dyn SampleSink>, String) = match &config.remote_write {
        Some(rw) => {
            let buffer = Arc::new(open_buffer(rw).await?);
            let writer = RemoteWriter::new(rw.clone(), buffer, agent_metrics.clone(), USER_AGENT)?;
            let sink = writer.sink();
            writer_task = Some(tokio::spawn(writer.run(shutdown_rx.clone(), give_up_rx)));
            let stored = match &rw.wal {
                Some(w) => format!("write-ahead log in {}", w.dir.display()),
                None => "memory queue".to_owned(),
            };
            (
                Arc::new(sink),
                format!(
                    "remote write to {} (waiting in the {stored})",
                    livetranslate_push::redact_url(rw.url.as_str())
                ),
            )
        }
        None if config.dry_run => (
            Arc::new(JsonLinesSink::stdout()),
            "dry run: printed as JSON lines on stdout".to_owned(),
        ),
        None => {
            tracing::warn!("no remote-write URL: metrics are scraped but nothing is pushed");
            (
                Arc::new(DiscardSink),
                "not pushed (no remote-write URL)".to_owned(),
            )
        }
    };
    let mut log_metrics = None;
    let logs_pipeline = if config.logs.enabled() {
        let m = internal_events::LogMetrics::new(agent_metrics.registry())?;
        log_metrics = Some(m.clone());
        let pipeline =
            logs::pipeline::LogsPipeline::start(config.logs.clone(), m, shutdown_rx.clone())?;
        Some(pipeline)
    } else {
        if !config.logs.inputs.is_empty() {
            tracing::warn!("no Loki URL: log files are not read (set --loki-url, or --dry-run)");
        }
        None
    };

    let local = listener.local_addr().unwrap_or(config.listen);
    let page = Arc::new(std::sync::RwLock::new(status_sources(
        &config,
        started_ms,
        log_metrics.clone(),
    )));
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(8);
    let app = server::router(server::ServerState {
        metrics: agent_metrics.clone(),
        status: Arc::clone(&status),
        ready: Arc::clone(&ready),
        destination,
        logs: logs_pipeline.as_ref().map(|p| p.tracker.clone()),
        page: Arc::clone(&page),
        reload: loader.as_ref().map(|_| reload_tx.clone()),
    });
    let mut server_shutdown = shutdown_rx.clone();
    let server_task = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let ctx = ScrapeContext {
        sink,
        metrics: agent_metrics.clone(),
        status,
    };
    let chunk_samples = config
        .remote_write
        .as_ref()
        .map_or(metrics::remote_write::chunk::DEFAULT_MAX_SAMPLES, |rw| {
            rw.queue.max_samples_per_send
        });
    let mut manager = TargetManager::new(
        &config.jobs,
        &config.labels,
        ctx.clone(),
        USER_AGENT,
        chunk_samples,
    )?;
    manager.reconcile().await;
    tracing::info!(listen = %local, targets = manager.target_count(), "agent started");
    let (mut manager_stop, manager_rx) = watch::channel(false);
    let mut manager_task = tokio::spawn(manager.run(manager_rx));
    ready.store(true, Ordering::Release);

    let mut current = config.clone();
    tokio::pin!(shutdown);
    loop {
        let request = tokio::select! {
            () = &mut shutdown => break,
            Some(r) = signals.recv() => r,
            Some(r) = reload_rx.recv() => r,
        };
        let outcome = match &loader {
            None => Err("reloading is not available".to_owned()),
            Some(load) => match load() {
                Err(e) => Err(e.to_string()),
                Ok(new) => {
                    apply_reload(
                        &mut current,
                        new,
                        logs_pipeline.as_ref(),
                        &ctx,
                        &mut manager_stop,
                        &mut manager_task,
                        chunk_samples,
                    )
                    .await
                }
            },
        };
        agent_metrics.reloaded(outcome.is_ok());
        let reply = match outcome {
            Ok(later) => {
                *page.write().unwrap_or_else(|e| e.into_inner()) =
                    status_sources(&current, started_ms, log_metrics.clone());
                tracing::info!("configuration reloaded");
                for what in later {
                    tracing::warn!(setting = %what, "changed in the configuration, applied at the next start");
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; the previous configuration goes on");
                Err(e)
            }
        };
        if let Some(tx) = request.reply {
            let _ = tx.send(reply);
        }
    }
    tracing::info!("shutting down");
    ready.store(false, Ordering::Release);
    let _ = shutdown_tx.send(true);
    let _ = manager_stop.send(true);
    // One deadline for everything that flushes: scrape loops stop at once, the log pipeline
    // and remote write flush side by side, and at the deadline remote write gives up (with
    // the write-ahead log, what is unsent waits there for the next start).
    let limit = current.shutdown_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        let _ = give_up_tx.send(true);
    });
    if tokio::time::timeout_at(deadline, manager_task)
        .await
        .is_err()
    {
        tracing::warn!("scrape loops did not stop in time");
    }
    let grace = Duration::from_secs(2);
    let logs = async {
        if let Some(p) = logs_pipeline {
            // Bounded inside by the shutdown timeout.
            if tokio::time::timeout_at(deadline + grace, p.join())
                .await
                .is_err()
            {
                tracing::warn!("log pipeline did not stop in time");
            }
        }
    };
    let remote = async {
        if let Some(task) = writer_task {
            if tokio::time::timeout_at(deadline + grace, task)
                .await
                .is_err()
            {
                tracing::warn!("remote-write flush did not finish in time");
            }
        }
    };
    tokio::join!(logs, remote);
    timer.abort();
    if tokio::time::timeout(grace, server_task).await.is_err() {
        tracing::warn!("HTTP server did not stop in time");
    }
    tracing::info!("stopped");
    Ok(())
}

/// What the status page needs besides the pipelines' own state.
fn status_sources(
    config: &Config,
    started_ms: i64,
    log_metrics: Option<internal_events::LogMetrics>,
) -> status::PageSources {
    use status::model::Mode;
    let logs = log_metrics.map(|metrics| {
        let loki_url = config.logs.loki.as_ref().map(|l| l.url.clone());
        status::LogSources {
            inputs: config.logs.inputs.clone(),
            mode: if config.logs.dry_run || loki_url.is_none() {
                Mode::DryRun
            } else {
                Mode::Push
            },
            loki_url,
            metrics,
            max_buffer_bytes: config.logs.max_buffer_bytes as u64,
        }
    });
    let (metrics_mode, remote_write_url) = match &config.remote_write {
        Some(rw) => (Mode::Push, Some(rw.url.as_str().to_owned())),
        None if config.dry_run => (Mode::DryRun, None),
        None => (Mode::Off, None),
    };
    status::PageSources {
        started_ms,
        logs,
        metrics_mode,
        remote_write_url,
    }
}

/// Applies a reloaded configuration: the log inputs and the Loki client live, the scrape
/// jobs by a new target manager; returns what only a restart applies (the listen address,
/// remote write, dry run). Nothing changes when it fails.
async fn apply_reload(
    current: &mut Config,
    mut new: Config,
    logs: Option<&logs::pipeline::LogsPipeline>,
    ctx: &ScrapeContext,
    manager_stop: &mut watch::Sender<bool>,
    manager_task: &mut tokio::task::JoinHandle<()>,
    chunk_samples: usize,
) -> Result<Vec<String>, String> {
    let mut later = Vec::new();
    if new.listen != current.listen {
        later.push(format!("listen ({} → {})", current.listen, new.listen));
        new.listen = current.listen;
    }
    if format!("{:?}", new.remote_write) != format!("{:?}", current.remote_write) {
        later.push("remote_write".to_owned());
        new.remote_write = current.remote_write.clone();
    }
    if new.dry_run != current.dry_run {
        later.push("dry run".to_owned());
        new.dry_run = current.dry_run;
        new.logs.dry_run = current.dry_run;
    }
    let jobs_changed =
        format!("{:?}", new.jobs) != format!("{:?}", current.jobs) || new.labels != current.labels;
    // Built first: a failure leaves everything as it was.
    let manager = if jobs_changed {
        Some(
            TargetManager::new(
                &new.jobs,
                &new.labels,
                ctx.clone(),
                USER_AGENT,
                chunk_samples,
            )
            .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    match logs {
        Some(p) if new.logs.enabled() => {
            later.extend(p.reconfigure(&new.logs).map_err(|e| e.to_string())?);
        }
        Some(_) => {
            return Err(
                "the new configuration ships no logs (no Loki URL, no inputs); restart the agent to stop the log pipeline".to_owned(),
            )
        }
        None if new.logs.enabled() => later.push("the log pipeline (none ran at start)".to_owned()),
        None => {}
    }
    if let Some(mut m) = manager {
        let _ = manager_stop.send(true);
        let _ = (&mut *manager_task).await;
        m.reconcile().await;
        tracing::info!(targets = m.target_count(), "scrape jobs reloaded");
        let (tx, rx) = watch::channel(false);
        *manager_stop = tx;
        *manager_task = tokio::spawn(m.run(rx));
    }
    *current = new;
    Ok(later)
}

/// Opens where samples wait for remote write: the write-ahead log (repairing a torn tail,
/// reporting what it replays) or the memory queue.
async fn open_buffer(rw: &RemoteWriteConfig) -> Result<Buffer, AgentError> {
    let Some(w) = rw.wal.clone() else {
        return Ok(Buffer::memory(MemoryQueue::new(
            rw.queue.capacity as u64,
            rw.queue.max_bytes,
        )));
    };
    let started = std::time::Instant::now();
    let opened = tokio::task::spawn_blocking(move || {
        Wal::open(&w.dir, w.config.clone()).map(|wal| (wal, w.config))
    })
    .await
    .map_err(|e| WalError::Failed {
        reason: e.to_string(),
    })?;
    let (wal, wal_config) = opened?;
    let r = wal.recovery().clone();
    let dir = wal.dir().display().to_string();
    if r.torn_records_cut > 0 || r.checkpoint_reset {
        tracing::warn!(
            dir = %dir,
            torn_records_cut = r.torn_records_cut,
            torn_bytes_cut = r.torn_bytes_cut,
            checkpoint_reset = r.checkpoint_reset,
            "write-ahead log was damaged (a crash in the middle of a write); cut after its last whole record"
        );
    }
    tracing::info!(
        dir = %dir,
        segments = r.segments,
        disk_bytes = r.disk_bytes,
        replay_records = r.head.saturating_sub(r.replay_from),
        opened_in_ms = started.elapsed().as_millis() as u64,
        "write-ahead log opened"
    );
    Ok(Buffer::wal(wal, wal_config))
}
