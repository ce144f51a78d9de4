//! The `--check-config` summary: what the agent will do, one line per thing.

use std::fmt::Write as _;

use super::Config;
use crate::duration::HumanDuration;

/// Renders the summary of `c`.
pub fn render(c: &Config) -> String {
    let mut s = String::new();
    let src = c
        .source
        .as_ref()
        .map_or_else(|| "flags only".to_owned(), |p| p.display().to_string());
    let _ = writeln!(s, "configuration OK ({src})");
    let _ = writeln!(s, "listen: {}", c.listen);
    if !c.labels.is_empty() {
        let l: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "labels: {}", l.join(", "));
    }
    let _ = writeln!(s, "scrape jobs: {}", c.jobs.len());
    for j in &c.jobs {
        let _ = writeln!(
            s,
            "  job {:?}: every {}, timeout {}, {}://…{}{}",
            j.job_name,
            HumanDuration(j.interval),
            HumanDuration(j.timeout),
            j.scheme,
            j.metrics_path,
            if j.honor_labels { ", honor_labels" } else { "" }
        );
        for g in &j.static_groups {
            let _ = writeln!(s, "    targets: {}", g.targets.join(", "));
        }
        for f in &j.file_sd {
            let p: Vec<String> = f.patterns.iter().map(|p| p.display().to_string()).collect();
            let _ = writeln!(s, "    file_sd: {}", p.join(", "));
        }
    }
    match &c.remote_write {
        Some(rw) => {
            let _ = writeln!(
                s,
                "remote write: {} (queue {} samples, batches of {} or every {})",
                livetranslate_push::redact_url(rw.url.as_str()),
                rw.queue.capacity,
                rw.queue.max_samples_per_send,
                HumanDuration(rw.queue.batch_send_deadline)
            );
        }
        None if c.dry_run => {
            let _ = writeln!(
                s,
                "remote write: none (dry run: samples printed as JSON lines)"
            );
        }
        None => {
            let _ = writeln!(s, "remote write: none (samples are scraped but not pushed)");
        }
    }
    if c.logs.enabled() {
        let to = match &c.logs.loki {
            Some(l) if !c.dry_run => format!("Loki {}", livetranslate_push::redact_url(&l.url)),
            _ => "dry run: printed as JSON lines".to_owned(),
        };
        let _ = writeln!(
            s,
            "logs: {to}, positions in {}",
            c.logs.positions_file.display()
        );
        for i in &c.logs.inputs {
            let _ = writeln!(s, "  {:?}: {}", i.format, i.paths.join(", "));
        }
    } else {
        let _ = writeln!(s, "logs: not shipped (no Loki URL)");
    }
    s
}
