//! The HTML view, laid out like Promtail's and Prometheus' `/targets`: a summary, the
//! destinations, the log files per input and the scrape targets per job, each row with its
//! state badge, labels and latest error. One self-contained HTML5 document: inline CSS, no
//! script, no external resource. Every piece of dynamic text goes through [`escape`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::format::{ago, bytes, count, count_of, duration, rfc3339};
use super::model::{
    Destination, DestinationState, File, FileState, Health, Input, Mode, Snapshot, Target,
    Unreadable,
};

/// `s` made safe as HTML text and as a quoted attribute value.
///
/// ```
/// use livetranslate_agent::status::html::escape;
/// assert_eq!(escape(r#"<script>alert("x&y")</script>"#),
///            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa;--bar:#24292f;
--ok:#1a7f37;--ok-bg:#dafbe1;--bad:#cf222e;--bad-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;
--info:#0969da;--info-bg:#ddf4ff;--off:#59636e;--off-bg:#eaeef2}
*{box-sizing:border-box}
html{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:#fff}
body{margin:0}
a{color:var(--info)}
header{background:var(--bar);color:#fff;padding:10px 24px;display:flex;align-items:center;gap:18px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}
header .meta{color:#c9d1d9;font-size:13px}
header nav{margin-left:auto;display:flex;gap:14px;align-items:center;font-size:13px}
header nav a{color:#c9d1d9;text-decoration:none;border:1px solid #57606a;border-radius:6px;padding:2px 8px}
header nav a:hover{color:#fff;border-color:#c9d1d9}
header label{color:#c9d1d9;cursor:pointer;user-select:none}
main{padding:14px 24px 32px;max-width:1600px}
.summary{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:12px;margin-bottom:6px}
.tile{border:1px solid var(--line);border-left:4px solid var(--off);border-radius:6px;padding:8px 12px;background:#fff}
.tile.ok{border-left-color:var(--ok)}.tile.bad{border-left-color:var(--bad)}.tile.warn{border-left-color:var(--warn)}
.tile .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.tile .v{font-size:18px;font-weight:600}
.tile .s{font-size:12.5px;color:var(--muted)}
h2{font-size:17px;margin:22px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:14.5px;margin:16px 0 6px;display:flex;align-items:baseline;gap:10px;flex-wrap:wrap}
h3 .count{font-weight:400;color:var(--muted)}
h3.bad>a:first-child{color:var(--bad)}
h3 a{color:inherit;text-decoration:none}
.note{color:var(--muted);margin:6px 0}
table{width:100%;border-collapse:collapse;border:1px solid var(--line);table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{background:var(--head);font-size:12.5px;font-weight:600;color:var(--muted);white-space:nowrap}
tbody tr:nth-child(even){background:#fbfcfd}
tbody tr:hover{background:#f3f6f9}
.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
.path,.url{overflow-wrap:anywhere}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sub{display:block;color:var(--muted);font-size:12px}
.err{color:var(--bad);overflow-wrap:anywhere;font-size:13px}
.err.past{color:var(--muted)}
.err .sub{color:var(--muted)}
.none{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.b-ok{color:var(--ok);background:var(--ok-bg)}.b-bad{color:var(--bad);background:var(--bad-bg)}
.b-warn{color:var(--warn);background:var(--warn-bg)}.b-info{color:var(--info);background:var(--info-bg)}
.b-off{color:var(--off);background:var(--off-bg)}
.labels{display:flex;flex-wrap:wrap;gap:3px}
.label{display:inline-block;background:#eef1f4;border:1px solid #dfe3e8;border-radius:4px;padding:0 5px;font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11.5px;overflow-wrap:anywhere;max-width:100%}
.label b{font-weight:600}
footer{color:var(--muted);font-size:12px;margin-top:24px}
#problems{accent-color:var(--bad)}
body:has(#problems:checked) tr.healthy{display:none}
"#;

fn badge(class: &str, text: &str) -> String {
    format!(r#"<span class="badge b-{class}">{}</span>"#, escape(text))
}

/// A `<time>` with the age as text and the exact time as its title.
fn time_ago(now_ms: i64, at_ms: Option<i64>) -> String {
    match at_ms {
        None => r#"<span class="none">never</span>"#.to_owned(),
        Some(at) => {
            let exact = rfc3339(at);
            // The datetime attribute takes at most milliseconds.
            let machine = format!("{}Z", &exact[..exact.len().saturating_sub(4)]);
            format!(
                r#"<time datetime="{}" title="{}">{}</time>"#,
                escape(&machine),
                escape(&exact),
                escape(&ago(now_ms, at))
            )
        }
    }
}

fn labels_html(labels: &BTreeMap<String, String>, skip: Option<(&str, &str)>) -> String {
    let mut out = String::from(r#"<div class="labels">"#);
    let mut any = false;
    for (k, v) in labels {
        if skip.is_some_and(|(sk, sv)| sk == k && sv == v) {
            continue;
        }
        any = true;
        let _ = write!(
            out,
            r#"<span class="label"><b>{}</b>="{}"</span>"#,
            escape(k),
            escape(v)
        );
    }
    if !any {
        out.push_str(r#"<span class="none">none</span>"#);
    }
    out.push_str("</div>");
    out
}

/// An error and, below it, `at` (HTML); shown muted when it is `past` (recovered since).
fn error_cell(message: Option<&str>, at: Option<String>, past: bool) -> String {
    match message {
        None => String::new(),
        Some(m) => format!(
            r#"<div class="err{}">{}{}</div>"#,
            if past { " past" } else { "" },
            escape(m),
            at.map_or_else(String::new, |a| format!(r#"<span class="sub">{a}</span>"#))
        ),
    }
}

/// A path, escaped, with a line-break opportunity after each `/` so a long path wraps
/// between its directories.
fn path_html(path: &str) -> String {
    escape(path).replace('/', "/<wbr>")
}

/// Renders `snap` as a complete HTML5 document.
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let now = snap.generated_ms;
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livetranslate-agent status</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>livetranslate-agent</h1>
<span class="meta">version {} · up {}</span>
<nav>
<label><input type="checkbox" id="problems"> Only problems</label>
<a href="?format=text">Text</a>
<a href="?format=json">JSON</a>
<a href="/metrics">/metrics</a>
<a href="/ready">/ready</a>
</nav>
</header>
<main>
"#,
        escape(&snap.version),
        escape(&duration((now - snap.started_ms).max(0) as f64 / 1000.0)),
    );
    summary(&mut out, snap);
    destinations(&mut out, snap);
    logs(&mut out, snap);
    targets(&mut out, snap);
    let _ = write!(
        out,
        r#"<footer>Generated at {} · the same data: <a href="?format=json">JSON</a>, <a href="?format=text">text</a></footer>
</main>
</body>
</html>
"#,
        escape(&rfc3339(now))
    );
    out
}

/// A file whose oldest unacknowledged byte waited this long turns the summary amber.
const STALLED_SECONDS: f64 = 60.0;

fn tile(out: &mut String, class: &str, key: &str, value: &str, sub: &str) {
    let _ = write!(
        out,
        r#"<div class="tile {class}"><div class="k">{}</div><div class="v">{}</div><div class="s">{}</div></div>"#,
        escape(key),
        escape(value),
        escape(sub)
    );
}

fn summary(out: &mut String, snap: &Snapshot) {
    out.push_str(r#"<section class="summary" id="summary">"#);
    match &snap.logs {
        Some(logs) => {
            let n = |s: FileState| logs.files.iter().filter(|f| f.state == s).count();
            let (tailing, draining, errors) = (
                n(FileState::Tailing),
                n(FileState::RotatedDraining),
                n(FileState::Error) + logs.unreadable.len(),
            );
            let lag: u64 = logs.files.iter().map(|f| f.lag_bytes).sum();
            let stalled = logs
                .files
                .iter()
                .any(|f| f.lag_seconds.is_some_and(|s| s >= STALLED_SECONDS));
            let class = if errors > 0 {
                "bad"
            } else if stalled {
                "warn"
            } else {
                "ok"
            };
            tile(
                out,
                class,
                "Log files",
                &format!("{} tailed", tailing + draining),
                &format!(
                    "{draining} draining · {errors} with errors · {} behind",
                    bytes(lag)
                ),
            );
        }
        None => tile(
            out,
            "",
            "Log files",
            "not read",
            "no Loki URL and no dry run",
        ),
    }
    let up = snap
        .targets
        .iter()
        .filter(|t| t.health == Health::Up)
        .count();
    let down = snap
        .targets
        .iter()
        .filter(|t| t.health == Health::Down)
        .count();
    tile(
        out,
        if down > 0 {
            "bad"
        } else if snap.targets.is_empty() {
            ""
        } else {
            "ok"
        },
        "Scrape targets",
        &format!("{up}/{} up", snap.targets.len()),
        &format!("{down} down"),
    );
    for d in &snap.destinations {
        let class = match d.state {
            DestinationState::Ok => "ok",
            DestinationState::Failing => "bad",
            DestinationState::Idle => "warn",
            DestinationState::DryRun | DestinationState::Off => "",
        };
        let sub = match (d.mode, d.last_success_ms) {
            (Mode::Push, Some(at)) => format!("last success {}", ago(snap.generated_ms, at)),
            (Mode::Push, None) => "nothing acknowledged yet".to_owned(),
            (Mode::DryRun, _) => "printed as JSON lines on stdout".to_owned(),
            (Mode::Off, _) => "not sent".to_owned(),
        };
        tile(out, class, d.name, d.state.as_str(), &sub);
    }
    out.push_str("</section>\n");
}

fn destination_badge(s: DestinationState) -> String {
    let class = match s {
        DestinationState::Ok => "ok",
        DestinationState::Failing => "bad",
        DestinationState::Idle => "warn",
        DestinationState::DryRun => "info",
        DestinationState::Off => "off",
    };
    badge(class, s.as_str())
}

fn destinations(out: &mut String, snap: &Snapshot) {
    out.push_str(
        r#"<section id="destinations">
<h2>Destinations</h2>
<table>
<colgroup><col style="width:11%"><col style="width:8%"><col style="width:23%"><col style="width:10%"><col style="width:22%"><col style="width:13%"><col style="width:13%"></colgroup>
<thead><tr><th>Destination</th><th>State</th><th>URL</th><th>Last success</th><th>Last error</th><th>Delivered</th><th>Backlog</th></tr></thead>
<tbody>
"#,
    );
    for d in &snap.destinations {
        destination_row(out, snap.generated_ms, d);
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn destination_row(out: &mut String, now: i64, d: &Destination) {
    let healthy = matches!(
        d.state,
        DestinationState::Ok | DestinationState::DryRun | DestinationState::Off
    );
    let url = match (&d.url, d.mode) {
        (Some(u), Mode::Push) => format!(r#"<span class="mono url">{}</span>"#, escape(u)),
        (_, Mode::DryRun) => r#"<span class="none">stdout (dry run)</span>"#.to_owned(),
        _ => r#"<span class="none">—</span>"#.to_owned(),
    };
    let pushing = d.mode == Mode::Push;
    let error = if pushing {
        let failures = if d.failures_in_a_row > 0 {
            format!(
                "{} failed in a row · {}",
                count_of(d.failures_in_a_row, "attempts"),
                ago(now, d.last_failure_ms.unwrap_or(now))
            )
        } else {
            d.last_failure_ms
                .map_or_else(String::new, |at| format!("{} (recovered)", ago(now, at)))
        };
        error_cell(
            d.last_error.as_deref(),
            Some(escape(&failures)),
            d.failures_in_a_row == 0,
        )
    } else {
        String::new()
    };
    let delivered = if pushing {
        format!(
            r#"{} sent<span class="sub">{} retried · {} given up</span>"#,
            escape(&count_of(d.sent.value, d.sent.unit)),
            escape(&count_of(d.retried.value, d.retried.unit)),
            escape(&count_of(d.given_up.value, d.given_up.unit)),
        )
    } else {
        String::new()
    };
    let backlog = if pushing {
        let value = if d.backlog.unit == "bytes" {
            bytes(d.backlog.value)
        } else {
            count_of(d.backlog.value, d.backlog.unit)
        };
        let cap = d.backlog_capacity.map_or_else(String::new, |c| {
            let c = if d.backlog.unit == "bytes" {
                bytes(c)
            } else {
                count(c)
            };
            format!(r#"<span class="sub">of {} at most</span>"#, escape(&c))
        });
        format!("{}{cap}", escape(&value))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        r#"<tr class="destination{}" data-name="{}" data-state="{}"><td><b>{}</b><span class="sub">{}</span></td><td>{}</td><td>{url}</td><td>{}</td><td>{error}</td><td>{delivered}</td><td>{backlog}</td></tr>"#,
        if healthy { " healthy" } else { "" },
        escape(d.name),
        escape(d.state.as_str()),
        escape(d.name),
        escape(d.signal),
        destination_badge(d.state),
        if pushing {
            time_ago(now, d.last_success_ms)
        } else {
            String::new()
        },
    );
}

fn file_badge(s: FileState) -> String {
    let class = match s {
        FileState::Tailing => "ok",
        FileState::RotatedDraining => "warn",
        FileState::Finished => "off",
        FileState::Error => "bad",
    };
    badge(class, s.as_str())
}

const FILE_TABLE_HEAD: &str = r#"<table>
<colgroup><col style="width:26%"><col style="width:11%"><col style="width:27%"><col style="width:8%"><col style="width:8%"><col style="width:8%"><col style="width:12%"></colgroup>
<thead><tr><th>Path</th><th>State</th><th>Labels</th><th class="num">Position</th><th class="num">Size</th><th class="num">Lag</th><th>Last error</th></tr></thead>
<tbody>
"#;

fn logs(out: &mut String, snap: &Snapshot) {
    out.push_str("<section id=\"logs\">\n<h2>Log files</h2>\n");
    let Some(logs) = &snap.logs else {
        out.push_str(
            r#"<p class="note">Log files are not read: no Loki URL is set and this is not a dry run (set <span class="mono">--loki-url</span>, or <span class="mono">--dry-run</span>).</p>"#,
        );
        out.push_str("\n</section>\n");
        return;
    };
    if logs.inputs.is_empty() && logs.files.is_empty() {
        out.push_str(r#"<p class="note">No log inputs are configured.</p>"#);
    }
    for input in &logs.inputs {
        let files: Vec<&File> = logs
            .files
            .iter()
            .filter(|f| f.input == Some(input.index))
            .collect();
        let unreadable: Vec<&Unreadable> = logs
            .unreadable
            .iter()
            .filter(|u| u.input == input.index)
            .collect();
        input_table(out, snap.generated_ms, input, &files, &unreadable);
    }
    let orphans: Vec<&File> = logs
        .files
        .iter()
        .filter(|f| f.input.is_none_or(|i| i >= logs.inputs.len()))
        .collect();
    if !orphans.is_empty() {
        out.push_str("<h3>Other files</h3>\n");
        out.push_str(FILE_TABLE_HEAD);
        for f in orphans {
            file_row(out, snap.generated_ms, f);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

fn input_table(
    out: &mut String,
    now: i64,
    input: &Input,
    files: &[&File],
    unreadable: &[&Unreadable],
) {
    let problems = files.iter().any(|f| f.state == FileState::Error) || !unreadable.is_empty();
    let live = files
        .iter()
        .filter(|f| f.state != FileState::Finished)
        .count();
    let _ = writeln!(
        out,
        r##"<h3 id="input-{i}"{cls}><a href="#input-{i}">Input {n}</a> <span class="mono">{paths}</span> <span class="count">{fmt} · {live} tailed{excl}</span></h3>"##,
        i = input.index,
        n = input.index + 1,
        cls = if problems { r#" class="bad""# } else { "" },
        paths = escape(&input.paths.join(", ")),
        fmt = escape(&input.format),
        excl = if input.exclude.is_empty() {
            String::new()
        } else {
            format!(" · excluding {}", escape(&input.exclude.join(", ")))
        },
    );
    if files.is_empty() && unreadable.is_empty() {
        out.push_str(r#"<p class="note">No file matches yet (discovery keeps looking).</p>"#);
        out.push('\n');
        return;
    }
    out.push_str(FILE_TABLE_HEAD);
    for f in files {
        file_row(out, now, f);
    }
    for u in unreadable {
        let _ = writeln!(
            out,
            r#"<tr class="file" data-state="error"><td class="mono path">{}</td><td>{}</td><td><span class="none">not opened</span></td><td></td><td></td><td></td><td>{}</td></tr>"#,
            path_html(&u.path),
            file_badge(FileState::Error),
            error_cell(
                Some(&u.error.message),
                Some(escape(&ago(now, u.error.at_ms))),
                false,
            ),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn file_row(out: &mut String, now: i64, f: &File) {
    let healthy = f.state != FileState::Error;
    let lag = if f.lag_bytes == 0 {
        r#"<span class="none">0 B</span>"#.to_owned()
    } else {
        format!(
            r#"{}{}"#,
            escape(&bytes(f.lag_bytes)),
            f.lag_seconds.map_or_else(String::new, |s| format!(
                r#"<span class="sub">oldest {}</span>"#,
                escape(&duration(s))
            ))
        )
    };
    let position = if f.read_offset == f.acked_offset {
        escape(&count(f.acked_offset))
    } else {
        format!(
            r#"{}<span class="sub">read {}</span>"#,
            escape(&count(f.acked_offset)),
            escape(&count(f.read_offset))
        )
    };
    let finished = f.finished_ms.map_or_else(String::new, |at| {
        format!(r#"<span class="sub">{}</span>"#, time_ago(now, Some(at)))
    });
    let _ = writeln!(
        out,
        r#"<tr class="file{}" data-state="{}"><td class="mono path">{}</td><td>{}{finished}</td><td>{}</td><td class="num" title="acknowledged offset (saved position); read offset below when ahead">{position}</td><td class="num" title="{} bytes">{}</td><td class="num">{lag}</td><td>{}</td></tr>"#,
        if healthy { " healthy" } else { "" },
        f.state.as_str(),
        path_html(&f.path),
        file_badge(f.state),
        labels_html(&f.labels, Some(("filename", f.path.as_str()))),
        f.size,
        escape(&count(f.size)),
        error_cell(
            f.last_error.as_ref().map(|e| e.message.as_str()),
            f.last_error.as_ref().map(|e| escape(&ago(now, e.at_ms))),
            f.state != FileState::Error,
        ),
    );
}

fn targets(out: &mut String, snap: &Snapshot) {
    out.push_str("<section id=\"targets\">\n<h2>Scrape targets</h2>\n");
    if snap.targets.is_empty() {
        out.push_str(r#"<p class="note">No scrape targets.</p>"#);
        out.push_str("\n</section>\n");
        return;
    }
    let mut jobs: BTreeMap<&str, Vec<&Target>> = BTreeMap::new();
    for t in &snap.targets {
        jobs.entry(t.job.as_str()).or_default().push(t);
    }
    for (n, (job, targets)) in jobs.iter().enumerate() {
        let up = targets.iter().filter(|t| t.health == Health::Up).count();
        let down = targets.iter().any(|t| t.health == Health::Down);
        let _ = write!(
            out,
            r##"<h3 id="job-{n}"{cls}><a href="#job-{n}">{job}</a> <span class="count">({up}/{total} up)</span></h3>
<table>
<colgroup><col style="width:24%"><col style="width:8%"><col style="width:28%"><col style="width:10%"><col style="width:8%"><col style="width:7%"><col style="width:15%"></colgroup>
<thead><tr><th>Endpoint</th><th>State</th><th>Labels</th><th>Last scrape</th><th class="num">Duration</th><th class="num">Samples</th><th>Error</th></tr></thead>
<tbody>
"##,
            cls = if down { r#" class="bad""# } else { "" },
            job = escape(job),
            total = targets.len(),
        );
        for t in targets {
            target_row(out, snap.generated_ms, t);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

fn target_row(out: &mut String, now: i64, t: &Target) {
    let (class, text) = match t.health {
        Health::Up => ("ok", "up"),
        Health::Down => ("bad", "down"),
        Health::Unknown => ("off", "unknown"),
    };
    let _ = writeln!(
        out,
        r#"<tr class="target{}" data-health="{text}"><td class="mono url">{}<span class="sub">every {} · timeout {}</span></td><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
        if t.health == Health::Down {
            ""
        } else {
            " healthy"
        },
        escape(&t.url),
        escape(&duration(t.interval_seconds)),
        escape(&duration(t.timeout_seconds)),
        badge(class, text),
        labels_html(&t.labels, None),
        time_ago(now, t.last_scrape_ms),
        t.last_scrape_duration_seconds
            .map_or_else(String::new, |d| escape(&duration(d))),
        escape(&count(t.samples as u64)),
        error_cell(t.last_error.as_deref(), None, false),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{Count, ErrorAt, Logs};

    fn snapshot() -> Snapshot {
        let evil = "<script>document.title='pwned'</script>";
        let mut labels = BTreeMap::new();
        labels.insert("team".to_owned(), evil.to_owned());
        labels.insert("filename".to_owned(), format!("/l/{evil}.log"));
        let count = |value, unit| Count { value, unit };
        Snapshot {
            version: "1.2.3".into(),
            generated_ms: 10_000,
            started_ms: 0,
            destinations: vec![Destination {
                name: "Loki",
                signal: "logs",
                mode: Mode::Push,
                url: Some("http://loki:3100/?a=<b>".into()),
                state: DestinationState::Failing,
                last_success_ms: None,
                last_failure_ms: Some(9_000),
                last_error: Some("500 Internal Server Error: <oops>".into()),
                failures_in_a_row: 2,
                failed_attempts: 2,
                sent: count(0, "lines"),
                retried: count(2, "attempts"),
                given_up: count(0, "batches"),
                backlog: count(2048, "bytes"),
                backlog_capacity: Some(1 << 20),
            }],
            logs: Some(Logs {
                inputs: vec![Input {
                    index: 0,
                    paths: vec!["/l/*.log".into()],
                    exclude: vec![],
                    format: "json".into(),
                    labels: BTreeMap::new(),
                }],
                files: vec![File {
                    path: format!("/l/{evil}.log"),
                    input: Some(0),
                    labels,
                    state: FileState::Error,
                    closed: false,
                    read_offset: 1_500,
                    acked_offset: 1_000,
                    size: 2_000,
                    lag_bytes: 1_000,
                    lag_seconds: Some(3.0),
                    last_error: Some(ErrorAt {
                        message: "denied & <gone>".into(),
                        at_ms: 9_500,
                    }),
                    finished_ms: None,
                }],
                unreadable: vec![],
            }),
            targets: vec![Target {
                job: "j<1>".into(),
                instance: "i".into(),
                url: "http://t/metrics?x=\"y\"".into(),
                labels: BTreeMap::new(),
                health: Health::Down,
                last_scrape_ms: Some(9_000),
                last_scrape_duration_seconds: Some(0.01),
                samples: 0,
                last_error: Some("malformed exposition: <html>".into()),
                interval_seconds: 15.0,
                timeout_seconds: 10.0,
            }],
            metrics_destination: "x".into(),
        }
    }

    #[test]
    fn dynamic_text_is_escaped_everywhere() {
        let page = render(&snapshot());
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<oops>") && !page.contains("<gone>") && !page.contains("<html>"));
        assert!(!page.contains("<b>\"") && !page.contains("j<1>"));
        assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
        assert!(page.contains("denied &amp; &lt;gone&gt;"));
        // No resource is loaded from anywhere.
        for needle in ["src=", "<link", "@import", "url("] {
            assert!(!page.contains(needle), "{needle} in the page");
        }
    }

    #[test]
    fn rows_carry_their_state_and_figures() {
        let page = render(&snapshot());
        assert!(page.contains(r#"<tr class="file" data-state="error">"#));
        assert!(page.contains(r#"<tr class="target" data-health="down">"#));
        assert!(page.contains(r#"data-name="Loki" data-state="failing""#));
        assert!(page.contains(">1,000<span class=\"sub\">read 1,500</span>"));
        assert!(page.contains("2,000"));
        assert!(page.contains("(0/1 up)"));
        // The filename label repeats the path: left out of the row's labels.
        assert_eq!(page.matches("<b>filename</b>").count(), 0);
        assert_eq!(page.matches("<b>team</b>").count(), 1);
        assert!(page.contains(r#"<time datetime="1970-01-01T00:00:09.000Z""#));
    }
}
