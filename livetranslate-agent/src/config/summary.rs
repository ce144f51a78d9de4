//! The `--check-config` summary: what the agent will do, one line per thing.

use std::fmt::Write as _;

use super::Config;
use crate::duration::HumanDuration;

/// Renders the summary of `c`.
pub fn render(c: &Config) -> String {
    let mut s = String::new();
    let src = if c.files.is_empty() {
        c.source
            .as_ref()
            .map_or_else(|| "flags only".to_owned(), |p| p.display().to_string())
    } else {
        c.files
            .iter()
            .map(|(p, f)| match f {
                super::FileFormat::Agent => p.display().to_string(),
                super::FileFormat::Promtail => format!("{} (promtail.yml)", p.display()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "configuration OK ({src})");
    let _ = writeln!(s, "listen: {}", c.listen);
    if !c.labels.is_empty() {
        let l: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "labels: {}", l.join(", "));
    }
    let _ = writeln!(s, "scrape jobs: {}", c.jobs.len());
    for j in &c.jobs {
        let mut path = format!("{}://…{}", j.scheme, j.metrics_path);
        if !j.params.is_empty() {
            let q: Vec<String> = j
                .params
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                .collect();
            path = livetranslate_push::redact_url(&format!("{path}?{}", q.join("&")));
        }
        let mut extras = Vec::new();
        if j.honor_labels {
            extras.push("honor_labels".to_owned());
        }
        if !j.honor_timestamps {
            extras.push("honor_timestamps: false".to_owned());
        }
        let l = &j.limits;
        for (name, v) in [
            ("sample_limit", l.sample_limit),
            ("label_limit", l.label_limit),
            ("label_name_length_limit", l.label_name_length_limit),
            ("label_value_length_limit", l.label_value_length_limit),
        ] {
            if v > 0 {
                extras.push(format!("{name} {v}"));
            }
        }
        if l.body_size_limit > 0 {
            extras.push(format!(
                "body_size_limit {}",
                crate::byte_size::ByteSize(l.body_size_limit)
            ));
        }
        if let Some(sh) = j.shard {
            extras.push(format!("shard {} of {}", sh.index, sh.count));
        }
        let own_rules = j.relabel_configs.len() - if j.shard.is_some() { 2 } else { 0 };
        if own_rules > 0 {
            extras.push(format!("{own_rules} relabel_configs"));
        }
        if !j.metric_relabel_configs.is_empty() {
            extras.push(format!(
                "{} metric_relabel_configs",
                j.metric_relabel_configs.len()
            ));
        }
        if j.http.has_auth() {
            extras.push("authenticated".to_owned());
        }
        if let Some(p) = &j.client.proxy_url {
            extras.push(format!(
                "proxy {}",
                livetranslate_push::redact_url(p.as_str())
            ));
        }
        let _ = writeln!(
            s,
            "  job {:?}: every {}, timeout {}, {}{}",
            j.job_name,
            HumanDuration(j.interval),
            HumanDuration(j.timeout),
            path,
            extras.iter().map(|e| format!(", {e}")).collect::<String>()
        );
        for g in &j.static_groups {
            let shown: Vec<String> = g
                .targets
                .iter()
                .map(|t| match t.rsplit_once('@') {
                    Some((_, host)) => host.to_owned(),
                    None => t.clone(),
                })
                .collect();
            let _ = writeln!(s, "    targets: {}", shown.join(", "));
        }
        for f in &j.file_sd {
            let p: Vec<String> = f.patterns.iter().map(|p| p.display().to_string()).collect();
            let _ = writeln!(s, "    file_sd: {}", p.join(", "));
        }
    }
    match &c.remote_write {
        Some(rw) => {
            let buffer = match &rw.wal {
                Some(w) => format!(
                    "write-ahead log in {} (up to {}{})",
                    w.dir.display(),
                    crate::byte_size::ByteSize(w.config.max_total_bytes),
                    w.config
                        .max_age
                        .map_or_else(String::new, |a| format!(", {}", HumanDuration(a)))
                ),
                None => format!(
                    "memory queue of {} samples / {}, lost on exit",
                    rw.queue.capacity,
                    crate::byte_size::ByteSize(rw.queue.max_bytes)
                ),
            };
            let _ = writeln!(
                s,
                "remote write: {} ({buffer}; batches of {} or every {})",
                livetranslate_push::redact_url(rw.url.as_str()),
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
            "logs: {to}, positions in {}{}",
            c.logs.positions_file.display(),
            if c.dry_run {
                " (read, never written)"
            } else {
                ""
            }
        );
        if let Some(l) = &c.logs.loki {
            let _ = writeln!(
                s,
                "  batches of {} B or every {}, timeout {}, backoff {}..{}, {}",
                l.batch_size,
                HumanDuration(l.batch_wait),
                HumanDuration(l.timeout),
                HumanDuration(l.min_backoff),
                HumanDuration(l.max_backoff),
                l.max_retries.map_or_else(
                    || "retried until Loki takes them".to_owned(),
                    |n| format!("given up after {n} retries")
                ),
            );
        }
        let r = &c.logs.reader;
        let _ = writeln!(
            s,
            "  poll {}, globs every {}, positions saved every {}, rotated files watched {}, at most {} values per label and {} streams per file",
            HumanDuration(r.poll_interval),
            HumanDuration(r.discover_interval),
            HumanDuration(c.logs.sync_period),
            HumanDuration(r.rotate_wait),
            r.limits.max_label_values,
            r.limits.max_streams_per_file,
        );
        for i in &c.logs.inputs {
            let name = i
                .job
                .as_ref()
                .map_or_else(String::new, |j| format!("job {j:?}: "));
            let format = match i.format {
                crate::logs::Format::Json => "json",
                crate::logs::Format::Docker => "docker",
                crate::logs::Format::Cri => "cri",
                crate::logs::Format::Raw => "raw",
                crate::logs::Format::Syslog => "syslog",
            };
            let _ = writeln!(s, "  {name}{format} {}", i.paths.join(", "));
            if !i.exclude.is_empty() {
                let _ = writeln!(s, "    exclude: {}", i.exclude.join(", "));
            }
            if !i.labels.is_empty() {
                let l: Vec<String> = i.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "    labels: {}", l.join(", "));
            }
            let stages = i.stages();
            if !stages.is_empty() {
                let names: Vec<&str> = stages.iter().map(|st| st.name()).collect();
                let _ = writeln!(s, "    stages: {}", names.join(", "));
            }
            if i.has_filename_label() {
                let _ = writeln!(s, "    filename: a stream label (stages may drop it)");
            }
        }
    } else {
        let _ = writeln!(s, "logs: not shipped (no Loki URL)");
    }
    s
}
