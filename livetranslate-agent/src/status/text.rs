//! The plain-text view (`Accept: text/plain`, `?format=text`, curl): the page as it always
//! read, line for line, so the scripts that grep it keep working. Finished files are not
//! listed here (the HTML and JSON views show them).

use std::fmt::Write as _;

use super::format::rfc3339;
use super::model::{FileState, Health, Snapshot};

/// Renders `snap` as text.
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "livetranslate-agent {}", snap.version);
    let _ = writeln!(out, "metrics: {}", snap.metrics_destination);
    let _ = writeln!(out);
    let _ = writeln!(out, "targets: {}", snap.targets.len());
    for t in &snap.targets {
        let up = match t.health {
            Health::Up => "up",
            Health::Down => "DOWN",
            Health::Unknown => "pending",
        };
        let last = t.last_scrape_ms.map_or_else(|| "never".to_owned(), rfc3339);
        let took = t
            .last_scrape_duration_seconds
            .map_or_else(String::new, |d| format!(" in {d:.3}s"));
        let _ = writeln!(
            out,
            "  [{up}] job={} instance={} url={}\n        last scrape {last}{took}, {} samples{}",
            t.job,
            t.instance,
            t.url,
            t.samples,
            t.last_error
                .as_ref()
                .map_or_else(String::new, |e| format!(", error: {e}"))
        );
    }
    if let Some(logs) = &snap.logs {
        let files: Vec<_> = logs
            .files
            .iter()
            .filter(|f| f.state != FileState::Finished)
            .collect();
        let _ = writeln!(out);
        let _ = writeln!(out, "log files: {}", files.len());
        for f in files {
            let _ = writeln!(
                out,
                "  {}{}\n        size {} B, read {} B, acknowledged {} B, lag {} B",
                f.path,
                if f.closed { " (rotated, draining)" } else { "" },
                f.size,
                f.read_offset,
                f.acked_offset,
                f.lag_bytes
            );
        }
    }
    out
}
