//! The log pipeline's server loop: the reader thread, the batcher/pusher (or the dry-run
//! printer), and the positions saver, with a bounded graceful shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::budget::ByteBudget;
use super::positions::{Positions, PositionsError};
use super::tail::{EntrySink, InputError, Reader, ReaderConfig};
use super::tracker::Tracker;
use super::LogInput;
use crate::internal_events::LogMetrics;
use crate::loki::{Batch, LogEntry, LokiClient, LokiConfig, LokiError, PushOutcome};

/// Settings of the log pipeline.
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// What to tail.
    pub inputs: Vec<LogInput>,
    /// Reader settings.
    pub reader: ReaderConfig,
    /// Where to push; `None` with `dry_run` prints entries instead.
    pub loki: Option<LokiConfig>,
    /// Print entries as JSON lines on stdout instead of pushing.
    pub dry_run: bool,
    /// The positions file.
    pub positions_file: PathBuf,
    /// Cap on bytes read but not yet acknowledged.
    pub max_buffer_bytes: usize,
    /// How often positions are saved.
    pub sync_period: Duration,
    /// How long shutdown may spend flushing.
    pub shutdown_timeout: Duration,
}

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
}

struct ChannelSink {
    tx: mpsc::UnboundedSender<LogEntry>,
    budget: Arc<ByteBudget>,
    stop: Arc<AtomicBool>,
}

impl EntrySink for ChannelSink {
    fn send(&mut self, entry: LogEntry) -> bool {
        let size = entry.size();
        while !self.budget.acquire(size, Duration::from_millis(200)) {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
        }
        self.tx.send(entry).is_ok()
    }
}

/// A running log pipeline.
pub struct LogsPipeline {
    /// Progress of every file (for the status page).
    pub tracker: Arc<Tracker>,
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
        let tracker = Arc::new(Tracker::default());
        let budget = Arc::new(ByteBudget::new(config.max_buffer_bytes));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = Reader::new(
            config.reader.clone(),
            &config.inputs,
            saved,
            tracker.clone(),
            metrics.clone(),
            ChannelSink {
                tx,
                budget: budget.clone(),
                stop: stop.clone(),
            },
            stop.clone(),
        )?;
        let reader = std::thread::Builder::new()
            .name("log-reader".to_owned())
            .spawn(move || reader.run())
            .map_err(|e| {
                PipelineError::Positions(PositionsError::Io {
                    path: config.positions_file.clone(),
                    source: e,
                })
            })?;
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
    tracker: Arc<Tracker>,
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
        let mut batch = Batch::default();
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
                    batch.push(entry);
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
    batch: &mut Batch,
    client: Option<&LokiClient>,
    tracker: &Tracker,
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

/// Dry-run output: `{"labels":{…},"timestamp":"…","line":"…"}`.
fn print_entry(entry: &LogEntry) {
    use std::io::Write;
    let mut out = String::with_capacity(entry.line.len() + 128);
    out.push_str("{\"labels\":{");
    for (i, (k, v)) in parse_rendered_labels(&entry.labels).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(k.as_str()).to_string());
        out.push(':');
        out.push_str(&serde_json::Value::from(v.as_str()).to_string());
    }
    out.push_str("},\"timestamp\":\"");
    let at = std::time::UNIX_EPOCH + Duration::from_nanos(entry.timestamp_ns.max(0) as u64);
    livetranslate_telemetry::logging::write_rfc3339(&mut out, at);
    out.push_str("\",\"line\":");
    out.push_str(&serde_json::Value::from(entry.line.as_str()).to_string());
    out.push_str("}\n");
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(out.as_bytes());
    let _ = lock.flush();
}

/// Parses what [`super::render_labels`] wrote back into pairs.
pub fn parse_rendered_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_labels_parse_back() {
        let rendered =
            super::super::render_labels([("a", "x\"y"), ("b", "line\nbreak"), ("c", "")]);
        assert_eq!(
            parse_rendered_labels(&rendered),
            vec![
                ("a".to_owned(), "x\"y".to_owned()),
                ("b".to_owned(), "line\nbreak".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
    }
}
