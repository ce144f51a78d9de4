//! The log pipeline: starts the file server on its thread, then batches what it reads and
//! pushes it to Loki (or prints it in a dry run); on acknowledgement the checkpointer
//! advances, and the positions file is saved every `sync_period` (never in a dry run, which
//! reads the saved positions and leaves them as they are). Shutdown is graceful and bounded.
//! [`LogsPipeline::reconfigure`] applies a reloaded configuration without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::budget::ByteBudget;
use super::checkpointer::Checkpointer;
use super::config::LogsConfig;
use super::entry::{FileId, LogEntry};
use super::file_server::{BudgetedSink, FileServer, Item, Reconfigure};
use super::input::{Input, InputError};
use super::positions::{Positions, PositionsError};
use crate::internal_events::LogMetrics;
use crate::loki::{Batch, LokiClient, LokiError, PushOutcome};

/// Why the log pipeline could not start (or take a new configuration).
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
    /// The reader thread is gone.
    #[error("the log reader has stopped")]
    Stopped,
}

/// A running log pipeline.
pub struct LogsPipeline {
    /// Progress of every file (for the status page).
    pub tracker: Arc<Checkpointer>,
    task: tokio::task::JoinHandle<()>,
    control: Mutex<std_mpsc::Sender<Reconfigure>>,
    client: Option<watch::Sender<Arc<LokiClient>>>,
    metrics: LogMetrics,
    current: Mutex<LogsConfig>,
}

/// Reads the positions file, or starts empty when it is corrupt and `ignore_invalid` says so
/// (Promtail's `ignore_invalid_yaml`).
pub fn load_positions(config: &LogsConfig) -> Result<Positions, PositionsError> {
    match Positions::load(&config.positions_file) {
        Err(e @ PositionsError::Corrupt { .. }) if config.ignore_invalid_positions => {
            tracing::warn!(error = %e, "ignoring the invalid positions file (ignore_invalid_positions); starting without positions");
            Ok(Positions::default())
        }
        other => other,
    }
}

impl LogsPipeline {
    /// Starts the pipeline; it stops when `shutdown` turns true.
    pub fn start(
        config: LogsConfig,
        metrics: LogMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<LogsPipeline, PipelineError> {
        let saved = load_positions(&config)?;
        let inputs = config
            .inputs
            .iter()
            .map(Input::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let client = match (&config.loki, config.dry_run) {
            (Some(loki), false) => Some(LokiClient::new(loki.clone(), metrics.clone())?),
            _ => None,
        };
        let tracker = Arc::new(Checkpointer::default());
        tracker.retain_all(saved);
        let budget = Arc::new(ByteBudget::new(config.max_buffer_bytes));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = std_mpsc::channel();
        let reader = FileServer::new(
            config.reader.clone(),
            inputs,
            tracker.clone(),
            metrics.clone(),
            BudgetedSink {
                tx,
                budget: budget.clone(),
                stop: stop.clone(),
            },
            stop.clone(),
            control_rx,
        );
        let reader = std::thread::Builder::new()
            .name("log-reader".to_owned())
            .spawn(move || reader.run())
            .map_err(PipelineError::Thread)?;
        let (client_tx, client_rx) = match client {
            Some(c) => {
                let (t, r) = watch::channel(Arc::new(c));
                (Some(t), Some(r))
            }
            None => (None, None),
        };
        let task = tokio::spawn(drive(
            config.clone(),
            client_rx,
            tracker.clone(),
            budget,
            stop,
            reader,
            rx,
            metrics.clone(),
            shutdown,
        ));
        Ok(LogsPipeline {
            tracker,
            task,
            control: Mutex::new(control_tx),
            client: client_tx,
            metrics,
            current: Mutex::new(config),
        })
    }

    /// Applies a reloaded configuration: inputs added start, removed ones stop (their
    /// positions kept), unchanged ones go on; a changed Loki client takes over from the
    /// next push (a push in progress is restarted with it). Returns what could not be
    /// applied without a restart. Nothing changes when the new configuration is refused.
    pub fn reconfigure(&self, config: &LogsConfig) -> Result<Vec<String>, PipelineError> {
        let inputs = config
            .inputs
            .iter()
            .map(Input::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut later = Vec::new();
        if config.positions_file != current.positions_file {
            later.push("the positions file".to_owned());
        }
        if config.dry_run != current.dry_run {
            later.push("dry run".to_owned());
        }
        if config.max_buffer_bytes != current.max_buffer_bytes {
            later.push("logs.max_buffer_bytes".to_owned());
        }
        if config.sync_period != current.sync_period {
            later.push("the positions sync period".to_owned());
        }
        let new_client = match (&self.client, &config.loki) {
            (Some(tx), Some(loki)) if *tx.borrow().config() != *loki => {
                Some(LokiClient::new(loki.clone(), self.metrics.clone())?)
            }
            _ => None,
        };
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Reconfigure {
                reader: config.reader.clone(),
                inputs,
            })
            .map_err(|_| PipelineError::Stopped)?;
        if let (Some(tx), Some(c)) = (&self.client, new_client) {
            tracing::info!(url = %c.url(), "Loki client replaced");
            tx.send_replace(Arc::new(c));
        }
        *current = config.clone();
        Ok(later)
    }

    /// Waits for the pipeline to finish its shutdown.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    config: LogsConfig,
    client: Option<watch::Receiver<Arc<LokiClient>>>,
    tracker: Arc<Checkpointer>,
    budget: Arc<ByteBudget>,
    stop: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<()>,
    mut rx: mpsc::UnboundedReceiver<Item>,
    metrics: LogMetrics,
    shutdown: watch::Receiver<bool>,
) {
    // A dry run reads the saved positions and never writes them (as Promtail's does).
    let saver = (!config.dry_run).then(|| {
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
    });

    let mut push_shutdown = shutdown.clone();
    let consume = async {
        let shutdown = &mut push_shutdown;
        let mut batch: Batch<FileId> = Batch::default();
        let mut client = client;
        // The batch limits of the current client, read once per batch (not per entry).
        let limits = |c: &Option<watch::Receiver<Arc<LokiClient>>>| {
            c.as_ref().map_or((Duration::ZERO, usize::MAX), |c| {
                let c = c.borrow();
                (c.config().batch_wait, c.batch_size())
            })
        };
        let (mut batch_wait, mut batch_size) = limits(&client);
        loop {
            if batch.is_empty() {
                (batch_wait, batch_size) = limits(&client);
            }
            let deadline = batch
                .started()
                .map(|s| tokio::time::Instant::from_std(s + batch_wait));
            let next = tokio::select! {
                e = rx.recv() => e,
                _ = sleep_until(deadline) => {
                    if !flush(&mut batch, client.as_mut(), &tracker, &budget, &metrics, shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(item) = next else {
                flush(
                    &mut batch,
                    client.as_mut(),
                    &tracker,
                    &budget,
                    &metrics,
                    shutdown,
                )
                .await;
                return;
            };
            match (item, client.as_mut()) {
                (Item::Ack(id, offset), None) => tracker.ack(id, offset),
                (Item::Ack(id, offset), Some(_)) if batch.is_empty() => {
                    // Every entry read before it was acknowledged already.
                    batch.ack(id, offset);
                    for (id, offset) in batch.take_acks() {
                        tracker.ack(id, offset);
                    }
                }
                (Item::Ack(id, offset), Some(_)) => batch.ack(id, offset),
                (Item::Entry(entry), None) => {
                    print_entry(&entry);
                    if let Some((id, offset)) = entry.source {
                        tracker.ack(id, offset);
                    }
                    budget.release(entry.size());
                    metrics.buffered(budget.used());
                }
                (Item::Entry(entry), Some(c)) => {
                    let size = entry.size();
                    batch.push(
                        entry.tenant,
                        entry.labels,
                        entry.timestamp_ns,
                        entry.line,
                        size,
                        entry.source,
                    );
                    metrics.buffered(budget.used());
                    let full = batch.bytes() >= batch_size;
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
    if let Some(saver) = saver {
        saver.abort();
        match tracker.save_if_dirty(&config.positions_file) {
            Ok(_) => tracing::info!(path = %config.positions_file.display(), "positions saved"),
            Err(e) => tracing::error!(error = %e, "cannot save positions"),
        }
    } else {
        tracing::info!(path = %config.positions_file.display(), "dry run: positions file left as it was");
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Pushes the batch (one request per tenant); once every request is acknowledged (or
/// refused for good) its files' offsets advance. A reload replacing the client restarts the
/// push in progress with the new one. Returns false when the agent is stopping and the batch
/// was not acknowledged.
async fn flush(
    batch: &mut Batch<FileId>,
    client: Option<&mut watch::Receiver<Arc<LokiClient>>>,
    tracker: &Checkpointer,
    budget: &ByteBudget,
    metrics: &LogMetrics,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Some(client) = client else { return true };
    if batch.is_empty() {
        for (id, offset) in batch.take_acks() {
            tracker.ack(id, offset);
        }
        return true;
    }
    let full = std::mem::take(batch);
    let bytes = full.bytes();
    let (requests, acks) = full.into_requests();
    for (tenant, request) in requests {
        let lines: usize = request.streams.iter().map(|s| s.entries.len()).sum();
        let body = match crate::loki::proto::encode(&request) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot compress a batch");
                continue;
            }
        };
        drop(request);
        loop {
            let current = client.borrow_and_update().clone();
            let mut replaced = client.clone();
            let mut stopping = shutdown.clone();
            let cancel = async move {
                tokio::select! {
                    _ = stopping.wait_for(|s| *s) => {}
                    _ = replaced.changed() => {}
                }
            };
            match current
                .push(tenant.as_ref(), body.clone(), lines, cancel)
                .await
            {
                PushOutcome::Sent | PushOutcome::Dropped => break,
                PushOutcome::Interrupted if *shutdown.borrow() => return false,
                PushOutcome::Interrupted => {
                    tracing::info!(
                        "Loki client replaced by a reload; pushing the batch again with it"
                    );
                }
            }
        }
    }
    for (id, offset) in acks {
        tracker.ack(id, offset);
    }
    budget.release(bytes);
    metrics.buffered(budget.used());
    true
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
