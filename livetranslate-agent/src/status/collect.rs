//! Takes a [`Snapshot`] from what the pipelines already keep: the checkpointer (files), the
//! scrape status board (targets) and the destinations' delivery records and counters. Reads
//! only; one short lock of each per request.

use std::collections::BTreeMap;
use std::time::Instant;

use super::model::{
    Count, Destination, DestinationState, ErrorAt, File, FileState, Health, Input, Logs, Mode,
    Snapshot, Target, Unreadable,
};
use crate::delivery::DeliveryStatus;
use crate::internal_events::{AgentMetrics, LogMetrics};
use crate::logs::checkpointer::{Checkpointer, FileError, FileStatus};
use crate::logs::input::LogInput;
use crate::metrics::scrape::{now_ms, StatusBoard, TargetStatus};

/// What the status page reads besides the server's own state: set up once by
/// [`crate::run`].
#[derive(Clone)]
pub struct PageSources {
    /// When the agent started (Unix ms).
    pub started_ms: i64,
    /// The log side, when log inputs are configured.
    pub logs: Option<LogSources>,
    /// How samples leave.
    pub metrics_mode: Mode,
    /// The remote-write URL, when there is one.
    pub remote_write_url: Option<String>,
}

/// The log side of [`PageSources`].
#[derive(Clone)]
pub struct LogSources {
    /// The configured inputs.
    pub inputs: Vec<LogInput>,
    /// How lines leave (off when no Loki URL is set and it is not a dry run).
    pub mode: Mode,
    /// The Loki URL, when there is one.
    pub loki_url: Option<String>,
    /// The log pipeline's metrics (Loki's counters and delivery record).
    pub metrics: LogMetrics,
    /// The cap on bytes read but not acknowledged.
    pub max_buffer_bytes: u64,
}

impl PageSources {
    /// The snapshot now: `targets` is the scrape status board, `files` the checkpointer when
    /// logs are read, `metrics_destination` the text view's one-line description.
    pub fn collect(
        &self,
        metrics: &AgentMetrics,
        targets: &StatusBoard,
        files: Option<&Checkpointer>,
        metrics_destination: &str,
    ) -> Snapshot {
        let now = now_ms();
        let mut destinations = Vec::with_capacity(2);
        if let Some(logs) = &self.logs {
            destinations.push(loki(logs, files.is_some()));
        } else {
            destinations.push(destination(
                "Loki",
                "logs",
                Mode::Off,
                None,
                DeliveryStatus::default(),
                ["lines", "attempts", "batches", "bytes"],
            ));
        }
        destinations.push(destination(
            "Remote write",
            "metrics",
            self.metrics_mode,
            self.remote_write_url.as_deref(),
            metrics.remote_write_status(),
            ["samples", "samples", "samples", "samples"],
        ));
        let targets = targets
            .lock()
            .map(|b| b.values().map(target).collect())
            .unwrap_or_default();
        let logs = match (files, &self.logs) {
            (Some(files), Some(sources)) => Some(logs(files, &sources.inputs)),
            _ => None,
        };
        Snapshot {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_ms: now,
            started_ms: self.started_ms,
            destinations,
            logs,
            targets,
            metrics_destination: metrics_destination.to_owned(),
        }
    }
}

fn loki(logs: &LogSources, reading: bool) -> Destination {
    let mode = if reading { logs.mode } else { Mode::Off };
    let mut d = destination(
        "Loki",
        "logs",
        mode,
        logs.loki_url.as_deref(),
        logs.metrics.loki_status(),
        ["lines", "attempts", "batches", "bytes"],
    );
    if mode != Mode::Off {
        d.backlog_capacity = Some(logs.max_buffer_bytes);
    }
    d
}

fn destination(
    name: &'static str,
    signal: &'static str,
    mode: Mode,
    url: Option<&str>,
    status: DeliveryStatus,
    [sent, retried, given_up, backlog]: [&'static str; 4],
) -> Destination {
    let d = status.delivery;
    let state = match mode {
        Mode::Off => DestinationState::Off,
        Mode::DryRun => DestinationState::DryRun,
        Mode::Push if d.failures_in_a_row > 0 => DestinationState::Failing,
        Mode::Push if d.last_success_ms.is_none() => DestinationState::Idle,
        Mode::Push => DestinationState::Ok,
    };
    Destination {
        name,
        signal,
        mode,
        url: url.map(livetranslate_push::redact_url),
        state,
        last_success_ms: d.last_success_ms,
        last_failure_ms: d.last_failure_ms,
        last_error: d.last_error,
        failures_in_a_row: d.failures_in_a_row,
        failed_attempts: d.failed_attempts,
        sent: Count {
            value: status.sent,
            unit: sent,
        },
        retried: Count {
            value: status.retried,
            unit: retried,
        },
        given_up: Count {
            value: status.given_up,
            unit: given_up,
        },
        backlog: Count {
            value: status.backlog,
            unit: backlog,
        },
        backlog_capacity: status.backlog_capacity,
    }
}

fn target(t: &TargetStatus) -> Target {
    Target {
        job: t.job.clone(),
        instance: t.instance.clone(),
        // Redacted where the URL is made; again here, so no secret can reach the page.
        url: livetranslate_push::redact_url(&t.url),
        labels: t.labels.clone(),
        health: match t.up {
            Some(true) => Health::Up,
            Some(false) => Health::Down,
            None => Health::Unknown,
        },
        last_scrape_ms: t.last_scrape_ms,
        last_scrape_duration_seconds: t.last_duration.map(|d| d.as_secs_f64()),
        samples: t.samples,
        // A client error can quote the URL it was sending to.
        last_error: t.last_error.as_deref().map(|e| {
            if e.contains("://") {
                livetranslate_push::redact_url(e)
            } else {
                e.to_owned()
            }
        }),
        interval_seconds: t.interval.as_secs_f64(),
        timeout_seconds: t.timeout.as_secs_f64(),
    }
}

fn logs(files: &Checkpointer, inputs: &[LogInput]) -> Logs {
    let clock = Instant::now();
    let mut rows: Vec<File> = files.files().iter().map(|f| file(f, clock)).collect();
    rows.extend(files.finished().iter().map(|f| file(f, clock)));
    Logs {
        inputs: inputs
            .iter()
            .enumerate()
            .map(|(index, i)| Input {
                index,
                paths: i.paths.clone(),
                exclude: i.exclude.clone(),
                format: format!("{:?}", i.format).to_lowercase(),
                labels: i.labels.clone(),
            })
            .collect(),
        files: rows,
        unreadable: files
            .unreadable()
            .into_iter()
            .map(|u| Unreadable {
                path: u.path,
                input: u.input,
                error: error_at(&u.error),
            })
            .collect(),
    }
}

fn error_at(e: &FileError) -> ErrorAt {
    ErrorAt {
        message: e.message.clone(),
        at_ms: e.at_ms,
    }
}

fn file(f: &FileStatus, clock: Instant) -> File {
    let state = if f.finished_ms.is_some() {
        FileState::Finished
    } else if f.failing {
        FileState::Error
    } else if f.closed || f.rotated {
        FileState::RotatedDraining
    } else {
        FileState::Tailing
    };
    File {
        path: f.path.clone(),
        input: f.input,
        labels: f.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        state,
        closed: f.closed,
        read_offset: f.read,
        acked_offset: f.acked,
        size: f.size,
        lag_bytes: f.lag(),
        lag_seconds: f
            .lag_since()
            .map(|t| clock.saturating_duration_since(t).as_secs_f64()),
        last_error: f.last_error.as_ref().map(error_at),
        finished_ms: f.finished_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Delivery;
    use std::time::Duration;

    #[test]
    fn no_credential_reaches_the_page() {
        let t = TargetStatus {
            job: "j".into(),
            instance: "h:1".into(),
            url: "http://user:s3cret@h:1/metrics?token=abc".into(),
            up: Some(false),
            last_error: Some(
                "request failed: error sending request for url (http://user:s3cret@h:1/metrics)"
                    .into(),
            ),
            interval: Duration::from_secs(15),
            ..TargetStatus::default()
        };
        let row = target(&t);
        assert_eq!(row.url, "http://h:1/metrics?token=xxxxx");
        assert_eq!(
            row.last_error.as_deref(),
            Some("request failed: error sending request for url (http://h:1/metrics)")
        );
        assert_eq!((row.health, row.interval_seconds), (Health::Down, 15.0));
        let d = destination(
            "Loki",
            "logs",
            Mode::Push,
            Some("https://u:pw@loki:3100"),
            DeliveryStatus::default(),
            ["lines", "attempts", "batches", "bytes"],
        );
        assert_eq!(d.url.as_deref(), Some("https://loki:3100"));
    }

    #[test]
    fn destination_states() {
        let state = |mode, delivery: Delivery| {
            let status = DeliveryStatus {
                delivery,
                ..DeliveryStatus::default()
            };
            destination("x", "logs", mode, None, status, ["a", "b", "c", "d"]).state
        };
        let ok = Delivery {
            last_success_ms: Some(1),
            ..Delivery::default()
        };
        let failing = Delivery {
            failures_in_a_row: 2,
            ..ok.clone()
        };
        assert_eq!(
            state(Mode::Push, Delivery::default()),
            DestinationState::Idle
        );
        assert_eq!(state(Mode::Push, ok), DestinationState::Ok);
        assert_eq!(
            state(Mode::Push, failing.clone()),
            DestinationState::Failing
        );
        assert_eq!(
            state(Mode::DryRun, failing.clone()),
            DestinationState::DryRun
        );
        assert_eq!(state(Mode::Off, failing), DestinationState::Off);
    }
}
