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
    /// The memory queue overflowed; the oldest samples were discarded.
    QueueFull,
    /// The remote answered with a non-retryable 4xx.
    Rejected,
    /// The write-ahead log outgrew `max_size`; its oldest segments were dropped.
    WalSize,
    /// Records outlived the write-ahead log's `max_age`.
    WalAge,
    /// One scrape's encoded series did not fit a WAL record.
    TooLarge,
    /// Writing to the write-ahead log failed (disk full, I/O error).
    WalError,
}

impl DropReason {
    /// Every reason.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::Rejected,
        DropReason::WalSize,
        DropReason::WalAge,
        DropReason::TooLarge,
        DropReason::WalError,
    ];

    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Rejected => "rejected",
            DropReason::WalSize => "wal_size",
            DropReason::WalAge => "wal_age",
            DropReason::TooLarge => "too_large",
            DropReason::WalError => "wal_error",
        }
    }
}

/// Why a scrape failed (the `reason` label of `livetranslate_agent_scrapes_failed_total`).
pub const SCRAPE_FAILURE_REASONS: [&str; 8] = [
    "http",
    "status",
    "timeout",
    "body_size_limit",
    "parse",
    "sample_limit",
    "label_limit",
    "invalid_series",
];

/// The write-ahead log's figures, cumulative since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WalFigures {
    /// Segment files.
    pub segments: u64,
    /// Records stored and not yet acknowledged.
    pub pending_records: u64,
    /// Append time of the oldest record waiting (Unix seconds), if any.
    pub oldest_record_seconds: Option<f64>,
    /// Records dropped by the size bound.
    pub dropped_size: u64,
    /// Records dropped by the age bound.
    pub dropped_age: u64,
    /// Records skipped because they were damaged.
    pub dropped_corrupt: u64,
    /// Records cut from a torn tail when the log was opened.
    pub cut_torn: u64,
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
    rw_queue_bytes: Gauge,
    rw_queue_capacity_bytes: Gauge,
    rw_exemplars_sent: Counter,
    rw_last_success: Gauge,
    rw_duration: Histogram,
    rw_delivery: Arc<DeliveryRecord>,
    reload: ReloadMetrics,
    scrape_targets: Family<Gauge>,
    scrapes_failed: Family<Counter>,
    samples_skipped: Family<Counter>,
    wal_segments: Gauge,
    wal_pending: Gauge,
    wal_oldest: Gauge,
    wal_records_lost: Family<Counter>,
    wal_seen: std::sync::Arc<std::sync::Mutex<WalFigures>>,
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
        for reason in DropReason::ALL {
            rw_dropped.with(&[reason.label()])?;
        }
        let one_gauge = |name: &str, help: &str| -> Result<Gauge, MetricError> {
            registry.gauge(name, help, &[])?.with(&[])
        };
        let rw_queue = one_gauge(
            "livetranslate_agent_remote_write_queue_samples",
            "Samples waiting to be sent (in the write-ahead log: those stored or read since start).",
        )?;
        let rw_queue_capacity = one_gauge(
            "livetranslate_agent_remote_write_queue_capacity_samples",
            "Bound of the waiting samples (+Inf with the write-ahead log, which is bounded in bytes).",
        )?;
        let rw_queue_bytes = one_gauge(
            "livetranslate_agent_remote_write_queue_bytes",
            "Bytes waiting to be sent: encoded in memory, or the write-ahead log on disk.",
        )?;
        let rw_queue_capacity_bytes = one_gauge(
            "livetranslate_agent_remote_write_queue_capacity_bytes",
            "Bound of the waiting bytes (the memory queue's max_bytes or the WAL's max_size).",
        )?;
        let rw_exemplars_sent = registry
            .counter(
                "livetranslate_agent_remote_write_exemplars_sent_total",
                "Exemplars acknowledged by the remote.",
                &[],
            )?
            .with(&[])?;
        let scrape_targets = registry.gauge(
            "livetranslate_agent_scrape_targets",
            "Targets of a job: active (scraped by this agent) or dropped by relabelling (another shard's, or filtered out).",
            &["job", "state"],
        )?;
        let scrapes_failed = registry.counter(
            "livetranslate_agent_scrapes_failed_total",
            "Failed scrapes by reason.",
            &["job", "reason"],
        )?;
        let samples_skipped = registry.counter(
            "livetranslate_agent_scrape_samples_skipped_total",
            "Samples and exemplars of successful scrapes that were not kept, by reason, as Prometheus skips them.",
            &["job", "reason"],
        )?;
        let wal_segments = one_gauge(
            "livetranslate_agent_wal_segments",
            "Segment files of the write-ahead log.",
        )?;
        let wal_pending = one_gauge(
            "livetranslate_agent_wal_pending_records",
            "Records of the write-ahead log not yet acknowledged by the remote.",
        )?;
        let wal_oldest = one_gauge(
            "livetranslate_agent_wal_oldest_record_timestamp_seconds",
            "When the oldest record waiting in the write-ahead log was stored (0: none waits).",
        )?;
        let wal_records_lost = registry.counter(
            "livetranslate_agent_wal_records_lost_total",
            "Write-ahead log records never sent: dropped by the size or age bound, damaged, or cut from a torn tail at start.",
            &["reason"],
        )?;
        for reason in ["size", "age", "corrupt", "torn"] {
            wal_records_lost.with(&[reason])?;
        }
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
            rw_queue_bytes,
            rw_queue_capacity_bytes,
            rw_exemplars_sent,
            rw_last_success,
            rw_duration,
            rw_delivery: Arc::default(),
            scrape_targets,
            scrapes_failed,
            samples_skipped,
            wal_segments,
            wal_pending,
            wal_oldest,
            wal_records_lost,
            wal_seen: Default::default(),
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

    /// The targets of a job after relabelling.
    pub fn targets(&self, job: &str, active: usize, dropped: usize) {
        for (state, n) in [("active", active), ("dropped", dropped)] {
            if let Ok(g) = self.scrape_targets.with(&[job, state]) {
                g.set(n as f64);
            }
        }
    }

    /// A scrape of `job` failed for `reason` (one of [`SCRAPE_FAILURE_REASONS`]).
    pub fn scrape_failed(&self, job: &str, reason: &str) {
        if let Ok(c) = self.scrapes_failed.with(&[job, reason]) {
            c.inc();
        }
    }

    /// `n` samples (or exemplars) of a successful scrape of `job` were skipped for `reason`.
    pub fn samples_skipped(&self, job: &str, reason: &str, n: u64) {
        if let Ok(c) = self.samples_skipped.with(&[job, reason]) {
            c.inc_by(n);
        }
    }

    /// The waiting samples: how many, their bytes, and the bounds (`None`: no bound in
    /// samples).
    pub fn buffer_state(&self, samples: u64, bytes: u64, max_samples: Option<u64>, max_bytes: u64) {
        self.rw_queue.set(samples as f64);
        self.rw_queue_capacity
            .set(max_samples.map_or(f64::INFINITY, |m| m as f64));
        self.rw_queue_bytes.set(bytes as f64);
        self.rw_queue_capacity_bytes.set(max_bytes as f64);
    }

    /// The write-ahead log's figures (counters advance by what changed since the last call).
    pub fn wal_state(&self, now: WalFigures) {
        self.wal_segments.set(now.segments as f64);
        self.wal_pending.set(now.pending_records as f64);
        self.wal_oldest
            .set(now.oldest_record_seconds.unwrap_or(0.0));
        let mut seen = self.wal_seen.lock().unwrap_or_else(|e| e.into_inner());
        for (reason, was, is) in [
            ("size", seen.dropped_size, now.dropped_size),
            ("age", seen.dropped_age, now.dropped_age),
            ("corrupt", seen.dropped_corrupt, now.dropped_corrupt),
            ("torn", seen.cut_torn, now.cut_torn),
        ] {
            if is > was {
                if let Ok(c) = self.wal_records_lost.with(&[reason]) {
                    c.inc_by(is - was);
                }
            }
        }
        *seen = now;
    }

    /// Samples and exemplars acknowledged by the remote.
    pub fn samples_sent(&self, n: usize, exemplars: usize) {
        self.rw_sent.inc_by(n as u64);
        self.rw_exemplars_sent.inc_by(exemplars as u64);
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

#[cfg(test)]
impl LogMetrics {
    /// Log metrics on a registry of their own (unit tests).
    pub(crate) fn detached() -> Self {
        let registry = livetranslate_telemetry::registry::Registry::new(&[]);
        match LogMetrics::new(&registry) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }
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
        m.targets("j", 1, 2);
        m.scrape_failed("j", "timeout");
        m.samples_skipped("j", "duplicate", 2);
        m.wal_state(WalFigures {
            cut_torn: 3,
            ..WalFigures::default()
        });
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
            "livetranslate_agent_remote_write_queue_bytes",
            "livetranslate_agent_remote_write_queue_capacity_bytes",
            "livetranslate_agent_remote_write_exemplars_sent_total",
            "livetranslate_agent_scrape_targets",
            "livetranslate_agent_scrapes_failed_total",
            "livetranslate_agent_scrape_samples_skipped_total",
            "livetranslate_agent_wal_segments",
            "livetranslate_agent_wal_pending_records",
            "livetranslate_agent_wal_oldest_record_timestamp_seconds",
            "livetranslate_agent_wal_records_lost_total",
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
