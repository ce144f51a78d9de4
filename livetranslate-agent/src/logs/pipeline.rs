//! The log pipeline: starts the file server on its thread, then batches what it reads and
//! pushes it to Loki (or prints it in a dry run); on acknowledgement the checkpointer
//! advances, and the positions file is saved every `sync_period`. Shutdown is graceful and
//! bounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::budget::ByteBudget;
use super::checkpointer::Checkpointer;
use super::config::LogsConfig;
use super::entry::{FileId, LogEntry};
use super::file_server::{BudgetedSink, FileServer};
use super::input::InputError;
use super::positions::{Positions, PositionsError};
use crate::internal_events::LogMetrics;
use crate::loki::{Batch, LokiClient, LokiError, PushOutcome};

/// Why the log pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The positions file is unreadable.
    #[error(transparent)]
    Positions(#[from] PositionsError),
    /// An input is invalid.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The Loki client could not be set up.
    #[error(transparent)]
    Loki(#[from] LokiError),
    /// The reader thread could not start.
    #[error("cannot start the log reader thread: {0}")]
    Thread(std::io::Error),
}

/// A running log pipeline.
pub struct LogsPipeline {
    /// Progress of every file (for the status page).
    pub tracker: Arc<Checkpointer>,
    task: tokio::task::JoinHandle<()>,
}

impl LogsPipeline {
    /// Starts the pipeline; it stops when `shutdown` turns true.
    pub fn start(
        config: LogsConfig,
        metrics: LogMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<LogsPipeline, PipelineError> {
        let saved = Positions::load(&config.positions_file)?;
        let client = match (&config.loki, config.dry_run) {
            (Some(loki), false) => Some(LokiClient::new(loki.clone(), metrics.clone())?),
            _ => None,
        };
        let tracker = Arc::new(Checkpointer::default());
        let budget = Arc::new(ByteBudget::new(config.max_buffer_bytes));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = FileServer::new(
            config.reader.clone(),
            &config.inputs,
            saved,
            tracker.clone(),
            metrics.clone(),
            BudgetedSink {
                tx,
                budget: budget.clone(),
                stop: stop.clone(),
            },
            stop.clone(),
        )?;
        let reader = std::thread::Builder::new()
            .name("log-reader".to_owned())
            .spawn(move || reader.run())
            .map_err(PipelineError::Thread)?;
        let task = tokio::spawn(drive(
            config,
            client,
            tracker.clone(),
            budget,
            stop,
            reader,
            rx,
            metrics,
            shutdown,
        ));
        Ok(LogsPipeline { tracker, task })
    }

    /// Waits for the pipeline to finish its shutdown.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    config: LogsConfig,
    client: Option<LokiClient>,
    tracker: Arc<Checkpointer>,
    budget: Arc<ByteBudget>,
    stop: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<()>,
    mut rx: mpsc::UnboundedReceiver<LogEntry>,
    metrics: LogMetrics,
    shutdown: watch::Receiver<bool>,
) {
    let saver = {
        let tracker = tracker.clone();
        let path = config.positions_file.clone();
        let mut shutdown = shutdown.clone();
        let period = config.sync_period;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = shutdown.changed() => return,
                }
                if let Err(e) = tracker.save_if_dirty(&path) {
                    tracing::error!(error = %e, "cannot save positions");
                }
            }
        })
    };

    let mut push_shutdown = shutdown.clone();
    let consume = async {
        let shutdown = &mut push_shutdown;
        let mut batch: Batch<FileId> = Batch::default();
        loop {
            let deadline = batch.started().map(|s| {
                tokio::time::Instant::from_std(
                    s + config
                        .loki
                        .as_ref()
                        .map_or(Duration::ZERO, |l| l.batch_wait),
                )
            });
            let next = tokio::select! {
                e = rx.recv() => e,
                _ = sleep_until(deadline) => {
                    if !flush(&mut batch, client.as_ref(), &tracker, &budget, &metrics, shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(entry) = next else {
                flush(
                    &mut batch,
                    client.as_ref(),
                    &tracker,
                    &budget,
                    &metrics,
                    shutdown,
                )
                .await;
                return;
            };
            match &client {
                None => {
                    print_entry(&entry);
                    if let Some((id, offset)) = entry.source {
                        tracker.ack(id, offset);
                    }
                    budget.release(entry.size());
                    metrics.buffered(budget.used());
                }
                Some(c) => {
                    let size = entry.size();
                    batch.push(
                        entry.labels,
                        entry.timestamp_ns,
                        entry.line,
                        size,
                        entry.source,
                    );
                    metrics.buffered(budget.used());
                    let full = batch.bytes() >= c.batch_size();
                    if full
                        && !flush(&mut batch, Some(c), &tracker, &budget, &metrics, shutdown).await
                    {
                        return;
                    }
                }
            }
        }
    };

    let mut stop_rx = shutdown;
    let stopping = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    tokio::pin!(consume);
    tokio::select! {
        _ = &mut consume => {}
        _ = stopping => {
            stop.store(true, Ordering::Relaxed);
            // The reader stops at its next line; what it handed over is flushed, bounded.
            let _ = tokio::task::spawn_blocking(move || reader.join()).await;
            if tokio::time::timeout(config.shutdown_timeout, &mut consume).await.is_err() {
                tracing::warn!("shutdown timeout: unacknowledged lines will be read again at the next start");
            }
        }
    }
    saver.abort();
    match tracker.save_if_dirty(&config.positions_file) {
        Ok(_) => tracing::info!(path = %config.positions_file.display(), "positions saved"),
        Err(e) => tracing::error!(error = %e, "cannot save positions"),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Pushes the batch; on acknowledgement (or a final refusal) its files' offsets advance.
/// Returns false when the agent is stopping and the batch was not acknowledged.
async fn flush(
    batch: &mut Batch<FileId>,
    client: Option<&LokiClient>,
    tracker: &Checkpointer,
    budget: &ByteBudget,
    metrics: &LogMetrics,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Some(client) = client else { return true };
    if batch.is_empty() {
        return true;
    }
    let full = std::mem::take(batch);
    let (lines, bytes) = (full.lines(), full.bytes());
    let (request, acks) = full.into_request();
    let body = match crate::loki::proto::encode(&request) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot compress a batch");
            return true;
        }
    };
    drop(request);
    match client.push(body, lines, shutdown).await {
        PushOutcome::Sent | PushOutcome::Dropped => {
            for (id, offset) in acks {
                tracker.ack(id, offset);
            }
            budget.release(bytes);
            metrics.buffered(budget.used());
            true
        }
        PushOutcome::Interrupted => false,
    }
}

/// Dry-run output: one JSON object per line on stdout.
fn print_entry(entry: &LogEntry) {
    use std::io::Write;
    let out = entry.to_json_line();
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(out.as_bytes());
    let _ = lock.flush();
}
