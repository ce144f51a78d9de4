//! Every metric the agent reports about itself, in one place (names as in `docs/metrics.md`).
//!
//! The rest of the crate records events through the methods of [`AgentMetrics`] and never
//! names a metric itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livetranslate_push::Attempt;
use livetranslate_telemetry::registry::{
    Counter, Family, Gauge, Histogram, MetricError, Registry, LATENCY_BUCKETS,
};

use crate::delivery::{DeliveryRecord, DeliveryStatus};

/// Why remote-write samples were given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The queue overflowed; the oldest samples were discarded.
    QueueFull,
    /// The remote answered with a non-retryable 4xx.
    Rejected,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Rejected => "rejected",
        }
    }
}

/// The agent's own metrics, served on its `/metrics`.
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    registry: Registry,
    target_up: Family<Gauge>,
    scrape_samples: Family<Counter>,
    scrape_errors: Family<Counter>,
    rw_sent: Counter,
    rw_retried: Counter,
    rw_dropped: Family<Counter>,
    rw_queue: Gauge,
    rw_queue_capacity: Gauge,
    rw_last_success: Gauge,
    rw_duration: Histogram,
    rw_delivery: Arc<DeliveryRecord>,
    reload: ReloadMetrics,
}

/// Configuration reloads (SIGHUP, `POST /-/reload`, `/reload`).
#[derive(Debug, Clone)]
struct ReloadMetrics {
    last_successful: Gauge,
    last_success_time: Gauge,
    reloads: Family<Counter>,
}

impl ReloadMetrics {
    fn new(registry: &Registry) -> Result<Self, MetricError> {
        let last_successful = registry
            .gauge(
                "livetranslate_agent_config_last_reload_successful",
                "1 if the latest configuration reload succeeded (or none was tried), 0 if it failed and the previous configuration still runs.",
                &[],
            )?
            .with(&[])?;
        last_successful.set(1.0);
        let last_success_time = registry
            .gauge(
                "livetranslate_agent_config_last_reload_success_timestamp_seconds",
                "Time the running configuration was loaded (at start or by the latest successful reload).",
                &[],
            )?
            .with(&[])?;
        last_success_time.set(unix_now());
        let reloads = registry.counter(
            "livetranslate_agent_config_reloads_total",
            "Configuration reloads tried, by result.",
            &["result"],
        )?;
        for r in ["success", "failure"] {
            reloads.with(&[r])?;
        }
        Ok(ReloadMetrics {
            last_successful,
            last_success_time,
            reloads,
        })
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl AgentMetrics {
    /// Registers the agent metrics in a new registry whose series carry `const_labels`.
    pub fn new(const_labels: &[(&str, &str)]) -> Result<Self, MetricError> {
        let registry = Registry::new(const_labels);
        registry
            .gauge(
                "livetranslate_agent_build_info",
                "Always 1; the labels identify the build.",
                &[],
            )?
            .with(&[])?
            .set(1.0);
        let target_up = registry.gauge(
            "livetranslate_agent_target_up",
            "1 if the latest scrape of a target succeeded.",
            &["job", "instance"],
        )?;
        let scrape_samples = registry.counter(
            "livetranslate_agent_scrape_samples_total",
            "Samples scraped.",
            &["job", "instance"],
        )?;
        let scrape_errors = registry.counter(
            "livetranslate_agent_scrape_errors_total",
            "Failed scrapes.",
            &["job", "instance"],
        )?;
        let rw_sent = registry
            .counter(
                "livetranslate_agent_remote_write_samples_sent_total",
                "Samples acknowledged by the remote.",
                &[],
            )?
            .with(&[])?;
        let rw_retried = registry
            .counter(
                "livetranslate_agent_remote_write_samples_retried_total",
                "Samples in retried requests.",
                &[],
            )?
            .with(&[])?;
        let rw_dropped = registry.counter(
            "livetranslate_agent_remote_write_samples_dropped_total",
            "Samples given up.",
            &["reason"],
        )?;
        for reason in [DropReason::QueueFull, DropReason::Rejected] {
            rw_dropped.with(&[reason.label()])?;
        }
        let rw_queue = registry
            .gauge(
                "livetranslate_agent_remote_write_queue_samples",
                "Samples waiting to be sent.",
                &[],
            )?
            .with(&[])?;
        let rw_queue_capacity = registry
            .gauge(
                "livetranslate_agent_remote_write_queue_capacity_samples",
                "Queue bound.",
                &[],
            )?
            .with(&[])?;
        let rw_last_success = registry
            .gauge(
                "livetranslate_agent_remote_write_last_success_timestamp_seconds",
                "Time of the latest acknowledged request.",
                &[],
            )?
            .with(&[])?;
        let rw_duration = registry
            .histogram(
                "livetranslate_agent_remote_write_request_duration_seconds",
                "Remote-write request latency.",
                &[],
                LATENCY_BUCKETS,
            )?
            .with(&[])?;
        let reload = ReloadMetrics::new(&registry)?;
        Ok(AgentMetrics {
            reload,
            registry,
            target_up,
            scrape_samples,
            scrape_errors,
            rw_sent,
            rw_retried,
            rw_dropped,
            rw_queue,
            rw_queue_capacity,
            rw_last_success,
            rw_duration,
            rw_delivery: Arc::default(),
        })
    }

    /// The registry, for rendering `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A configuration reload was tried.
    pub fn reloaded(&self, ok: bool) {
        self.reload.last_successful.set(if ok { 1.0 } else { 0.0 });
        if ok {
            self.reload.last_success_time.set(unix_now());
        }
        if let Ok(c) = self
            .reload
            .reloads
            .with(&[if ok { "success" } else { "failure" }])
        {
            c.inc();
        }
    }

    /// A scrape finished: `samples` scraped (0 on failure), `ok` whether it succeeded.
    pub fn scrape_finished(&self, job: &str, instance: &str, ok: bool, samples: usize) {
        if let Ok(g) = self.target_up.with(&[job, instance]) {
            g.set(if ok { 1.0 } else { 0.0 });
        }
        if let Ok(c) = self.scrape_samples.with(&[job, instance]) {
            c.inc_by(samples as u64);
        }
        if let Ok(c) = self.scrape_errors.with(&[job, instance]) {
            if !ok {
                c.inc();
            }
        }
    }

    /// A target went away: its per-target gauge disappears (its counters stay).
    pub fn target_removed(&self, job: &str, instance: &str) {
        self.target_up.remove(&[job, instance]);
    }

    /// Samples acknowledged by the remote.
    pub fn samples_sent(&self, n: usize) {
        self.rw_sent.inc_by(n as u64);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.rw_last_success.set(now);
    }

    /// A request carrying `n` samples is retried.
    pub fn samples_retried(&self, n: usize) {
        self.rw_retried.inc_by(n as u64);
    }

    /// `n` samples were given up.
    pub fn samples_dropped(&self, reason: DropReason, n: usize) {
        if n == 0 {
            return;
        }
        if let Ok(c) = self.rw_dropped.with(&[reason.label()]) {
            c.inc_by(n as u64);
        }
    }

    /// The queue length and bound changed.
    pub fn queue_state(&self, len: usize, capacity: usize) {
        self.rw_queue.set(len as f64);
        self.rw_queue_capacity.set(capacity as f64);
    }

    /// One remote-write request took `d` (whatever its outcome).
    pub fn request_finished(&self, d: Duration) {
        self.rw_duration.observe(d.as_secs_f64());
    }

    /// What one remote-write request came to (for the status page).
    pub fn request_attempted(&self, attempt: &Attempt) {
        self.rw_delivery.attempted(attempt);
    }

    /// Remote write as the status page shows it: its record and its counters.
    pub fn remote_write_status(&self) -> DeliveryStatus {
        let dropped = [DropReason::QueueFull, DropReason::Rejected]
            .iter()
            .filter_map(|r| self.rw_dropped.with(&[r.label()]).ok())
            .map(|c| c.get())
            .sum();
        DeliveryStatus {
            delivery: self.rw_delivery.snapshot(),
            sent: self.rw_sent.get(),
            retried: self.rw_retried.get(),
            given_up: dropped,
            backlog: self.rw_queue.get() as u64,
            backlog_capacity: Some(self.rw_queue_capacity.get() as u64),
        }
    }
}

/// Why log lines were not shipped, or were changed before shipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineDropReason {
    /// Longer than the configured maximum and dropped.
    TooLong,
    /// Longer than the configured maximum and cut (the line itself is shipped).
    Truncated,
    /// Not valid UTF-8; shipped with replacement characters.
    InvalidUtf8,
    /// Expected JSON (or Docker / CRI) but malformed; shipped as raw text.
    Malformed,
    /// Loki refused the batch with a non-retryable 4xx.
    Rejected,
    /// The agent stopped retrying (configured `max_retries` exhausted).
    RetriesExhausted,
}

impl LineDropReason {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            LineDropReason::TooLong => "too_long",
            LineDropReason::Truncated => "truncated",
            LineDropReason::InvalidUtf8 => "invalid_utf8",
            LineDropReason::Malformed => "malformed",
            LineDropReason::Rejected => "rejected",
            LineDropReason::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// Why a matched path is not tailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A directory (the glob should name the files in it).
    Directory,
    /// A named pipe: reading it would block the reader and consume what others write.
    Fifo,
    /// A socket, character or block device.
    Special,
    /// A regular file the agent may not read (permissions).
    Unreadable,
}

impl SkipReason {
    /// Every reason, for metrics.
    pub const ALL: [SkipReason; 4] = [
        SkipReason::Directory,
        SkipReason::Fifo,
        SkipReason::Special,
        SkipReason::Unreadable,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Directory => "directory",
            SkipReason::Fifo => "fifo",
            SkipReason::Special => "special_file",
            SkipReason::Unreadable => "unreadable",
        }
    }

    /// What the status page says of such a path.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Directory => "a directory: not tailed (the glob should name its files)",
            SkipReason::Fifo => "a named pipe (FIFO): not tailed",
            SkipReason::Special => "a socket or device: not tailed",
            SkipReason::Unreadable => "cannot be opened for reading (permissions)",
        }
    }
}

/// Which stream cap replaced label values with the overflow value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelCap {
    /// A varying label reached its number of distinct values.
    LabelValues,
    /// A file reached its number of distinct streams.
    StreamsPerFile,
}

impl LabelCap {
    fn label(self) -> &'static str {
        match self {
            LabelCap::LabelValues => "label_values",
            LabelCap::StreamsPerFile => "streams_per_file",
        }
    }
}

/// The log pipeline's own metrics.
#[derive(Debug, Clone)]
pub struct LogMetrics {
    capped: Family<Counter>,
    skipped_paths: Family<Gauge>,
    read_bytes: Family<Counter>,
    read_lines: Family<Counter>,
    dropped: Family<Counter>,
    files_watched: Gauge,
    file_lag: Family<Gauge>,
    sent_lines: Counter,
    sent_bytes: Counter,
    batches_sent: Counter,
    batches_retried: Counter,
    batches_failed: Counter,
    push_duration: Histogram,
    buffered: Gauge,
    delivery: Arc<DeliveryRecord>,
}

impl LogMetrics {
    /// Registers the log pipeline metrics in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, MetricError> {
        let one_counter = |name: &str, help: &str| -> Result<Counter, MetricError> {
            registry.counter(name, help, &[])?.with(&[])
        };
        let capped = registry.counter(
            "livetranslate_agent_log_capped_entries_total",
            "Log entries shipped with label values replaced by __overflow__, by the cap that was reached.",
            &["cap"],
        )?;
        for c in [LabelCap::LabelValues, LabelCap::StreamsPerFile] {
            capped.with(&[c.label()])?;
        }
        let skipped_paths = registry.gauge(
            "livetranslate_agent_log_skipped_paths",
            "Paths matched by a log input's globs that are not tailed, by reason (directory, fifo, special_file, unreadable).",
            &["reason"],
        )?;
        for r in SkipReason::ALL {
            skipped_paths.with(&[r.label()])?;
        }
        Ok(LogMetrics {
            capped,
            skipped_paths,
            read_bytes: registry.counter(
                "livetranslate_agent_log_read_bytes_total",
                "Bytes read from a log file.",
                &["path"],
            )?,
            read_lines: registry.counter(
                "livetranslate_agent_log_read_lines_total",
                "Lines read from a log file.",
                &["path"],
            )?,
            dropped: registry.counter(
                "livetranslate_agent_log_dropped_lines_total",
                "Log lines not shipped, or altered before shipping, by reason.",
                &["reason"],
            )?,
            files_watched: registry
                .gauge(
                    "livetranslate_agent_log_files_watched",
                    "Log files being tailed.",
                    &[],
                )?
                .with(&[])?,
            file_lag: registry.gauge(
                "livetranslate_agent_log_file_lag_bytes",
                "File size minus the offset Loki has acknowledged.",
                &["path"],
            )?,
            sent_lines: one_counter(
                "livetranslate_agent_loki_sent_lines_total",
                "Log lines acknowledged by Loki.",
            )?,
            sent_bytes: one_counter(
                "livetranslate_agent_loki_sent_bytes_total",
                "Compressed push bytes acknowledged by Loki.",
            )?,
            batches_sent: one_counter(
                "livetranslate_agent_loki_batches_sent_total",
                "Batches acknowledged by Loki.",
            )?,
            batches_retried: one_counter(
                "livetranslate_agent_loki_batches_retried_total",
                "Push attempts retried (connection errors, 429, 5xx).",
            )?,
            batches_failed: one_counter(
                "livetranslate_agent_loki_batches_failed_total",
                "Batches given up (non-retryable 4xx or retries exhausted).",
            )?,
            push_duration: registry
                .histogram(
                    "livetranslate_agent_loki_push_duration_seconds",
                    "Loki push request latency.",
                    &[],
                    LATENCY_BUCKETS,
                )?
                .with(&[])?,
            buffered: registry
                .gauge(
                    "livetranslate_agent_loki_buffered_bytes",
                    "Bytes read from files but not yet acknowledged by Loki.",
                    &[],
                )?
                .with(&[])?,
            delivery: Arc::default(),
        })
    }

    /// Bytes and lines read from `path`.
    pub fn read(&self, path: &str, bytes: u64, lines: u64) {
        if let Ok(c) = self.read_bytes.with(&[path]) {
            c.inc_by(bytes);
        }
        if let Ok(c) = self.read_lines.with(&[path]) {
            c.inc_by(lines);
        }
    }

    /// Lines dropped or altered.
    pub fn dropped(&self, reason: LineDropReason, n: u64) {
        self.dropped_by(reason.label(), n);
    }

    /// Entries a pipeline stage dropped, under the stage's reason (`drop_stage`,
    /// `match_stage`, `ratelimit_drop_stage`, `sampling_stage` or a configured
    /// `drop_counter_reason`: a fixed set per configuration).
    pub fn dropped_by(&self, reason: &str, n: u64) {
        if let Ok(c) = self.dropped.with(&[reason]) {
            c.inc_by(n);
        }
    }

    /// An entry was shipped with capped labels.
    pub fn label_capped(&self, cap: LabelCap) {
        if let Ok(c) = self.capped.with(&[cap.label()]) {
            c.inc();
        }
    }

    /// Matched paths not tailed, by reason, now.
    pub fn skipped_paths(&self, reason: SkipReason, n: usize) {
        if let Ok(g) = self.skipped_paths.with(&[reason.label()]) {
            g.set(n as f64);
        }
    }

    /// Files tailed now.
    pub fn files_watched(&self, n: usize) {
        self.files_watched.set(n as f64);
    }

    /// A file's unacknowledged bytes.
    pub fn file_lag(&self, path: &str, lag: u64) {
        if let Ok(g) = self.file_lag.with(&[path]) {
            g.set(lag as f64);
        }
    }

    /// A file is no longer tailed.
    pub fn file_forgotten(&self, path: &str) {
        self.file_lag.remove(&[path]);
    }

    /// A batch was acknowledged.
    pub fn batch_sent(&self, lines: usize, bytes: usize) {
        self.batches_sent.inc();
        self.sent_lines.inc_by(lines as u64);
        self.sent_bytes.inc_by(bytes as u64);
    }

    /// A push attempt will be retried.
    pub fn batch_retried(&self) {
        self.batches_retried.inc();
    }

    /// A batch was given up.
    pub fn batch_failed(&self, reason: LineDropReason, lines: usize) {
        self.batches_failed.inc();
        self.dropped(reason, lines as u64);
    }

    /// One push request's latency.
    pub fn push_finished(&self, d: Duration) {
        self.push_duration.observe(d.as_secs_f64());
    }

    /// Bytes held between reading and acknowledgement.
    pub fn buffered(&self, bytes: usize) {
        self.buffered.set(bytes as f64);
    }

    /// What one Loki push request came to (for the status page).
    pub fn push_attempted(&self, attempt: &Attempt) {
        self.delivery.attempted(attempt);
    }

    /// Loki as the status page shows it: its record and its counters (lines sent, push
    /// attempts retried, batches given up, bytes buffered).
    pub fn loki_status(&self) -> DeliveryStatus {
        DeliveryStatus {
            delivery: self.delivery.snapshot(),
            sent: self.sent_lines.get(),
            retried: self.batches_retried.get(),
            given_up: self.batches_failed.get(),
            backlog: self.buffered.get() as u64,
            backlog_capacity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_name_is_rendered() {
        let m = match AgentMetrics::new(&[("service", "livetranslate-agent")]) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        m.scrape_finished("j", "i:1", true, 3);
        m.samples_dropped(DropReason::Rejected, 4);
        let out = m.registry().render();
        for name in [
            "livetranslate_agent_build_info",
            "livetranslate_agent_target_up",
            "livetranslate_agent_scrape_samples_total",
            "livetranslate_agent_scrape_errors_total",
            "livetranslate_agent_remote_write_samples_sent_total",
            "livetranslate_agent_remote_write_samples_retried_total",
            "livetranslate_agent_remote_write_samples_dropped_total",
            "livetranslate_agent_remote_write_queue_samples",
            "livetranslate_agent_remote_write_queue_capacity_samples",
            "livetranslate_agent_remote_write_last_success_timestamp_seconds",
            "livetranslate_agent_remote_write_request_duration_seconds",
            "livetranslate_agent_config_reloads_total",
            "livetranslate_agent_config_last_reload_successful",
            "livetranslate_agent_config_last_reload_success_timestamp_seconds",
        ] {
            assert!(out.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
        assert!(out.contains(
            "livetranslate_agent_remote_write_samples_dropped_total{service=\"livetranslate-agent\",reason=\"rejected\"} 4"
        ), "{out}");
        assert!(out.contains(
            "livetranslate_agent_scrape_samples_total{service=\"livetranslate-agent\",job=\"j\",instance=\"i:1\"} 3"
        ), "{out}");
    }
}
