//! The status page's data: one [`Snapshot`] of the agent, taken per request, rendered as HTML,
//! text or JSON. Serialised as is for `?format=json`, so the field names are an interface:
//! times are Unix milliseconds (`*_ms`), durations seconds (`*_seconds`), sizes bytes.

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything the status page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The agent's version.
    pub version: String,
    /// When the snapshot was taken.
    pub generated_ms: i64,
    /// When the agent started.
    pub started_ms: i64,
    /// Where logs and samples go.
    pub destinations: Vec<Destination>,
    /// The log files, when logs are shipped (or printed in a dry run).
    pub logs: Option<Logs>,
    /// The scrape targets, in job order.
    pub targets: Vec<Target>,
    /// One line describing where samples go (the text view's `metrics:` line).
    pub metrics_destination: String,
}

/// The log side.
#[derive(Debug, Clone, Serialize)]
pub struct Logs {
    /// The configured inputs, by index.
    pub inputs: Vec<Input>,
    /// Tailed files in the order they were found, then the files finished lately.
    pub files: Vec<File>,
    /// Paths matched by an input that could not be opened.
    pub unreadable: Vec<Unreadable>,
}

/// One `logs.inputs` entry.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// Its index in `logs.inputs`.
    pub index: usize,
    /// Its globs.
    pub paths: Vec<String>,
    /// Globs left out.
    pub exclude: Vec<String>,
    /// The line format (`json`, `docker`, `cri`, `raw`, …).
    pub format: String,
    /// Its static labels.
    pub labels: BTreeMap<String, String>,
}

/// What a file is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileState {
    /// Read as it grows.
    Tailing,
    /// Rotated away (or read to its end after a truncation) and drained until Loki has
    /// acknowledged all of it.
    RotatedDraining,
    /// Read to its end and fully acknowledged; no longer tracked.
    Finished,
    /// Its latest read failed.
    Error,
}

impl FileState {
    /// The name shown (and used in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Tailing => "tailing",
            FileState::RotatedDraining => "rotated-draining",
            FileState::Finished => "finished",
            FileState::Error => "error",
        }
    }
}

/// An error and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorAt {
    /// The message.
    pub message: String,
    /// Unix ms.
    pub at_ms: i64,
}

/// One tailed file (one generation of it: a truncated file starts a new one).
#[derive(Debug, Clone, Serialize)]
pub struct File {
    /// Where it is (or was, when rotated away).
    pub path: String,
    /// The input that found it.
    pub input: Option<usize>,
    /// The labels every entry of the file carries (promoted fields aside).
    pub labels: BTreeMap<String, String>,
    /// What it is doing.
    pub state: FileState,
    /// Reading is over; the rest waits for Loki's acknowledgement.
    pub closed: bool,
    /// Offset read so far.
    pub read_offset: u64,
    /// Offset Loki acknowledged (the position saved in the positions file).
    pub acked_offset: u64,
    /// Size at the reader's latest look.
    pub size: u64,
    /// Bytes not yet acknowledged.
    pub lag_bytes: u64,
    /// How long the oldest unacknowledged byte has waited (to within a second).
    pub lag_seconds: Option<f64>,
    /// The latest read error (kept after a later success, with its time).
    pub last_error: Option<ErrorAt>,
    /// When it was finished.
    pub finished_ms: Option<i64>,
}

/// A path that could not be opened.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The path.
    pub path: String,
    /// The input whose glob matched it.
    pub input: usize,
    /// Why.
    pub error: ErrorAt,
}

/// A target's health, as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The latest scrape succeeded.
    Up,
    /// The latest scrape failed.
    Down,
    /// Not scraped yet.
    Unknown,
}

/// One scrape target.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Its job.
    pub job: String,
    /// Its instance.
    pub instance: String,
    /// The URL scraped (credentials and secret parameters never shown).
    pub url: String,
    /// The labels added to its series.
    pub labels: BTreeMap<String, String>,
    /// Its health.
    pub health: Health,
    /// When the latest scrape started.
    pub last_scrape_ms: Option<i64>,
    /// How long it took.
    pub last_scrape_duration_seconds: Option<f64>,
    /// Samples in the latest scrape.
    pub samples: usize,
    /// The latest scrape's error.
    pub last_error: Option<String>,
    /// Scrape interval.
    pub interval_seconds: f64,
    /// Scrape timeout.
    pub timeout_seconds: f64,
}

/// How a destination is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Pushed over HTTP.
    Push,
    /// Printed as JSON lines on stdout.
    DryRun,
    /// Not sent anywhere.
    Off,
}

/// A destination's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationState {
    /// The latest push was acknowledged (or none failed).
    Ok,
    /// Pushes fail (retried, or given up).
    Failing,
    /// Nothing pushed yet.
    Idle,
    /// A dry run.
    DryRun,
    /// Nothing is sent.
    Off,
}

impl DestinationState {
    /// The name shown (and used in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationState::Ok => "ok",
            DestinationState::Failing => "failing",
            DestinationState::Idle => "idle",
            DestinationState::DryRun => "dry run",
            DestinationState::Off => "off",
        }
    }
}

/// A count and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The count.
    pub value: u64,
    /// Its unit (`lines`, `samples`, `batches`, `bytes`, `attempts`).
    pub unit: &'static str,
}

/// Where one signal goes.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    /// `Loki` or `Remote write`.
    pub name: &'static str,
    /// `logs` or `metrics`.
    pub signal: &'static str,
    /// How it is used.
    pub mode: Mode,
    /// Its URL (credentials and secret parameters never shown).
    pub url: Option<String>,
    /// Its state.
    pub state: DestinationState,
    /// When it last acknowledged a push.
    pub last_success_ms: Option<i64>,
    /// When a push last failed.
    pub last_failure_ms: Option<i64>,
    /// Why.
    pub last_error: Option<String>,
    /// Failed attempts since the latest success.
    pub failures_in_a_row: u64,
    /// Failed attempts in all.
    pub failed_attempts: u64,
    /// Acknowledged.
    pub sent: Count,
    /// Retried.
    pub retried: Count,
    /// Given up.
    pub given_up: Count,
    /// Waiting to be sent.
    pub backlog: Count,
    /// The backlog's bound, when there is one.
    pub backlog_capacity: Option<u64>,
}
