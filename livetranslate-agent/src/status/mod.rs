//! The status page on `/` (and `/targets`, where Promtail and Prometheus keep theirs): what
//! the agent reads, scrapes and ships, and how each destination fares.
//!
//! - [`model`]: the data, one [`Snapshot`] per request; [`collect`] takes it from what the
//!   pipelines already keep (the checkpointer, the scrape status board, the destinations'
//!   delivery records and counters).
//! - Three views of it: [`html`] for browsers, [`text`] for terminals and the scripts that
//!   grep it, JSON (the model serialised) for programs; [`negotiate`] picks one from
//!   `?format=` or `Accept`.
//! - [`format`]: times, durations and sizes for people.

pub mod collect;
pub mod format;
pub mod html;
pub mod model;
pub mod negotiate;
pub mod text;

pub use collect::{LogSources, PageSources};
pub use model::Snapshot;
pub use negotiate::{choose, Refused, View};

/// The body of `view` of `snap`.
///
/// ```
/// # use livetranslate_agent::status::{render, Snapshot, View};
/// let snap = Snapshot {
///     version: "0.1.0".into(), generated_ms: 0, started_ms: 0, destinations: vec![],
///     logs: None, targets: vec![], metrics_destination: "not pushed".into(),
/// };
/// assert!(render(View::Text, &snap).starts_with("livetranslate-agent 0.1.0\nmetrics: not pushed\n"));
/// assert!(render(View::Html, &snap).starts_with("<!DOCTYPE html>"));
/// assert!(render(View::Json, &snap).contains("\"targets\": []"));
/// ```
pub fn render(view: View, snap: &Snapshot) -> String {
    match view {
        View::Text => text::render(snap),
        View::Html => html::render(snap),
        View::Json => {
            let mut body = serde_json::to_string_pretty(snap).unwrap_or_else(|e| {
                serde_json::json!({ "error": format!("cannot serialise the status: {e}") })
                    .to_string()
            });
            body.push('\n');
            body
        }
    }
}
