//! Traffic generator and live summary for the LiveTranslate demo (`scripts/demo`).
//!
//! It waits until the three example services and the agent are up, then keeps them busy:
//! pipeline calls through the gateway (German and Spanish, plus an unsupported target that
//! the translation service refuses with 400, unmatched paths that answer 404, reads of
//! `/api/upstreams`), a few long-lived WebSocket sessions, and — when the audio service runs
//! with `AUDIO_FAULT_INJECTION=1` — a periodic injected audio outage that trips the
//! gateway's circuit breaker (5 failures open it; it half-opens 10 s later and closes when
//! audio answers again).
//!
//! Every `--interval` seconds it prints a compact summary: the health of each service, the
//! gateway's breakers, the log lines the agent read and shipped per service, and the
//! agent's scrapes. On a terminal the summary is redrawn in place; otherwise it is appended.
//!
//! ```text
//! cargo run --example traffic-generator -- --gateway http://127.0.0.1:3000 \
//!     --audio http://127.0.0.1:5001 --translation http://127.0.0.1:5003 \
//!     --agent http://127.0.0.1:9080 [--agent-output logs/agent-dry-run.jsonl] \
//!     [--prometheus http://127.0.0.1:9090] [--interval 2] [--rate 5] [--duration 30] \
//!     [--fault-every 60]
//! ```
//!
//! It stops after `--duration` seconds (if given), on Ctrl-C or on SIGTERM, and exits 0;
//! it exits 1 when a service does not come up within `--startup-timeout` seconds (60).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// Above this size the agent's dry-run output is emptied once it has been counted, so a
/// demo left running for hours does not fill the disk. The agent appends (`O_APPEND`), so
/// its next line lands at the start of the emptied file.
const DRY_RUN_FILE_CAP: u64 = 64 * 1024 * 1024;
/// Length of each injected audio outage: long enough for 5 failed calls to open the
/// gateway's breaker, shorter than its 10 s open period, so the half-open probe succeeds.
const FAULT_MS: u64 = 8000;
/// Open WebSocket sessions kept by the generator.
const WEBSOCKETS: usize = 3;

const PHRASES: &[&str] = &[
    "hello world the meeting starts now",
    "good morning everyone please take your seats",
    "the quarterly numbers look better than expected",
    "can you hear me clearly on the conference line",
    "let us review the translation quality report",
    "thank you all for joining the call today",
];

struct Args {
    gateway: String,
    audio: String,
    translation: String,
    agent: String,
    agent_output: Option<PathBuf>,
    prometheus: Option<String>,
    interval: Duration,
    rate: f64,
    duration: Option<Duration>,
    fault_every: Duration,
    startup_timeout: Duration,
}

fn usage() -> &'static str {
    "usage: traffic-generator [--gateway URL] [--audio URL] [--translation URL] [--agent URL]\n\
     \x20      [--agent-output FILE] [--prometheus URL] [--interval SECS] [--rate PER_SEC]\n\
     \x20      [--duration SECS] [--fault-every SECS] [--startup-timeout SECS]"
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        gateway: "http://127.0.0.1:3000".into(),
        audio: "http://127.0.0.1:5001".into(),
        translation: "http://127.0.0.1:5003".into(),
        agent: "http://127.0.0.1:9080".into(),
        agent_output: None,
        prometheus: None,
        interval: Duration::from_secs(2),
        rate: 5.0,
        duration: None,
        fault_every: Duration::from_secs(60),
        startup_timeout: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{}", usage());
            std::process::exit(0);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{}", usage()))?;
        let secs = |v: &str| -> anyhow::Result<Duration> {
            let s: f64 = v
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .with_context(|| format!("{flag} {v:?}: expected seconds"))?;
            Ok(Duration::from_secs_f64(s))
        };
        let url = |v: String| -> anyhow::Result<String> {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                bail!("{flag} {v:?}: expected an http:// URL");
            }
            Ok(v.trim_end_matches('/').to_owned())
        };
        match flag.as_str() {
            "--gateway" => args.gateway = url(value)?,
            "--audio" => args.audio = url(value)?,
            "--translation" => args.translation = url(value)?,
            "--agent" => args.agent = url(value)?,
            "--prometheus" => args.prometheus = Some(url(value)?),
            "--agent-output" => args.agent_output = Some(value.into()),
            "--interval" => args.interval = secs(&value)?.max(Duration::from_millis(200)),
            "--rate" => {
                args.rate = value
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r > 0.0 && *r <= 1000.0)
                    .with_context(|| format!("--rate {value:?}: expected 0 < rate <= 1000"))?
            }
            "--duration" => args.duration = Some(secs(&value)?).filter(|d| !d.is_zero()),
            "--fault-every" => args.fault_every = secs(&value)?,
            "--startup-timeout" => args.startup_timeout = secs(&value)?,
            _ => bail!("unknown argument {flag:?}\n{}", usage()),
        }
    }
    Ok(args)
}

/// Outcomes of the generated requests.
#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    breaker_rejected: AtomicU64,
    failed: AtomicU64,
    ws_open: AtomicI64,
    ws_messages: AtomicU64,
    faults: AtomicU64,
}

impl Stats {
    fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.client_errors.load(Ordering::Relaxed)
            + self.server_errors.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
    }

    fn record(&self, status: u16, body: &str) {
        let counter = match status {
            200..=399 => &self.ok,
            400..=499 => &self.client_errors,
            _ => {
                if status == 503 && body.contains("circuit_open") {
                    self.breaker_rejected.fetch_add(1, Ordering::Relaxed);
                }
                &self.server_errors
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct Ctx {
    args: Args,
    http: reqwest::Client,
    stats: Stats,
    started: Instant,
    /// Lines to print above the next summary (breaker trips, faults, errors).
    events: Mutex<Vec<String>>,
}

impl Ctx {
    fn event(&self, msg: impl Into<String>) {
        let line = format!("{} {}", clock(self.started.elapsed()), msg.into());
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    fn services(&self) -> [(&'static str, &str); 3] {
        [
            ("orchestration", &self.args.gateway),
            ("audio", &self.args.audio),
            ("translation", &self.args.translation),
        ]
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("[{:02}:{:02}]", s / 60, s % 60)
}

/// Sleeps, returning false early when the generator is stopping.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    !stopped && !*stop.borrow()
}

async fn wait_until_up(ctx: &Ctx) -> anyhow::Result<()> {
    let mut pending: Vec<(String, String)> = ctx
        .services()
        .iter()
        .map(|(name, base)| (format!("{name} service"), format!("{base}/api/health/live")))
        .collect();
    pending.push(("agent".into(), format!("{}/ready", ctx.args.agent)));
    if let Some(p) = &ctx.args.prometheus {
        pending.push(("Prometheus".into(), format!("{p}/-/ready")));
    }
    let deadline = Instant::now() + ctx.args.startup_timeout;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (name, url) in pending {
            let up = ctx
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !up {
                still.push((name, url));
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let names: Vec<String> = pending.iter().map(|(n, u)| format!("{n} ({u})")).collect();
            bail!(
                "not up after {:?}: {}",
                ctx.args.startup_timeout,
                names.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Pipeline calls and a mix of routes at `--rate` requests per second.
async fn http_traffic(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs_f64(1.0 / ctx.args.rate);
    let mut i: u64 = 0;
    let mut last_error = Instant::now() - Duration::from_secs(60);
    loop {
        let gw = &ctx.args.gateway;
        let request = match i % 20 {
            9 | 19 => {
                // An unsupported language: the translation service answers 400.
                ctx.http.post(format!("{gw}/api/pipeline")).json(
                    &json!({ "speech": PHRASES[(i as usize) % PHRASES.len()], "target": "xx" }),
                )
            }
            7 => ctx.http.get(format!("{gw}/api/upstreams")),
            13 => ctx.http.get(format!("{gw}/api/no-such-route/{i}")),
            17 => ctx.http.get(format!("{}/api/audio/models", ctx.args.audio)),
            _ => {
                let target = if i % 2 == 0 { "de" } else { "es" };
                ctx.http.post(format!("{gw}/api/pipeline")).json(
                    &json!({ "speech": PHRASES[(i as usize) % PHRASES.len()], "target": target }),
                )
            }
        };
        match request.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                ctx.stats.record(status, &body);
            }
            Err(e) => {
                ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
                if last_error.elapsed() > Duration::from_secs(10) {
                    last_error = Instant::now();
                    ctx.event(format!("request failed: {e}"));
                }
            }
        }
        i += 1;
        if !pause(&mut stop, period).await {
            return;
        }
    }
}

/// One WebSocket session at a time on this slot: a pipeline request every 1.5 s; the
/// session is closed and a new one opened every `lifetime`.
async fn websocket_slot(ctx: Arc<Ctx>, slot: usize, mut stop: watch::Receiver<bool>) {
    let url = format!(
        "{}/ws",
        ctx.args.gateway.replacen("http", "ws", 1) // http:// → ws://, https:// → wss://
    );
    let lifetime = Duration::from_secs(20 + 10 * slot as u64);
    let mut reported = false;
    loop {
        let (mut ws, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok(c) => c,
            Err(e) => {
                if !reported {
                    reported = true;
                    ctx.event(format!("WebSocket {url}: {e}"));
                }
                if !pause(&mut stop, Duration::from_secs(2)).await {
                    return;
                }
                continue;
            }
        };
        ctx.stats.ws_open.fetch_add(1, Ordering::Relaxed);
        let opened = Instant::now();
        let mut n = slot;
        let mut running = true;
        while running && opened.elapsed() < lifetime {
            let msg = json!({
                "speech": PHRASES[n % PHRASES.len()],
                "target": if n % 2 == 0 { "es" } else { "de" },
            });
            n += 1;
            if ws
                .send(Message::Text(msg.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => {
                    ctx.stats.ws_messages.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
            running = pause(&mut stop, Duration::from_millis(1500)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        ctx.stats.ws_open.fetch_sub(1, Ordering::Relaxed);
        if !running || *stop.borrow() {
            return;
        }
    }
}

/// Injects an audio outage 8 s after the start and then every `--fault-every` seconds.
async fn faults(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    if ctx.args.fault_every.is_zero() {
        return;
    }
    let mut wait = Duration::from_secs(8);
    loop {
        if !pause(&mut stop, wait).await {
            return;
        }
        wait = ctx.args.fault_every;
        let res = ctx
            .http
            .post(format!("{}/api/audio/faults", ctx.args.audio))
            .json(&json!({ "fail_for_ms": FAULT_MS }))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                ctx.stats.faults.fetch_add(1, Ordering::Relaxed);
                ctx.event(format!(
                    "injected a {} s audio outage: the gateway's breaker to audio opens after 5 failed calls",
                    FAULT_MS / 1000
                ));
            }
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                ctx.event(
                    "fault injection is off (start the audio service with AUDIO_FAULT_INJECTION=1 to trip the breaker)",
                );
                return;
            }
            Ok(r) => ctx.event(format!("fault injection answered {}", r.status())),
            Err(e) => ctx.event(format!("fault injection failed: {e}")),
        }
    }
}

/// Counts what the agent printed in dry-run mode: log entries per `service` label, samples.
#[derive(Default)]
struct DryRunCounter {
    offset: u64,
    partial: Vec<u8>,
    lines: BTreeMap<String, u64>,
    samples: u64,
}

#[derive(Deserialize)]
struct DryRunRow {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    line: Option<serde::de::IgnoredAny>,
}

impl DryRunCounter {
    fn update(&mut self, path: &PathBuf) {
        let Ok(mut file) = std::fs::File::open(path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Emptied (by us, or by a restart): start over at the beginning.
            self.offset = 0;
            self.partial.clear();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        // At most 16 MiB per round, so a backlog never balloons memory.
        let Ok(n) = Read::by_ref(&mut file).take(16 << 20).read_to_end(&mut buf) else {
            return;
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for raw in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<DryRunRow>(raw) {
                Ok(row) if row.line.is_some() => {
                    let service = row
                        .labels
                        .get("service")
                        .cloned()
                        .unwrap_or_else(|| "(no service label)".into());
                    *self.lines.entry(service).or_default() += 1;
                }
                Ok(_) => self.samples += 1,
                Err(_) => {}
            }
        }
        if self.offset >= DRY_RUN_FILE_CAP && self.partial.is_empty() {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
                if f.set_len(0).is_ok() {
                    self.offset = 0;
                }
            }
        }
    }
}

/// One series of a Prometheus text exposition: its labels and value.
fn series<'a>(
    text: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (BTreeMap<String, String>, f64)> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let (labels, after) = parse_labels(r)?;
                (labels, after)
            }
            None if rest.starts_with(' ') => (BTreeMap::new(), rest),
            None => return None,
        };
        let value = value.split_whitespace().next()?.parse().ok()?;
        Some((labels, value))
    })
}

/// Parses `k="v",...}` (after the opening brace); returns the labels and the rest.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let mut chars = rest[eq + 1..].strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        rest = &rest[eq + 1..].strip_prefix('"')?[end + 1..];
        labels.insert(key, value);
    }
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// What one summary shows.
struct Snapshot {
    health: Vec<String>,
    breakers: BTreeMap<String, String>,
    ws_gateway: Option<u64>,
    agent: Option<String>,
    prometheus: Option<String>,
}

async fn get_text(ctx: &Ctx, url: &str) -> Option<(u16, String)> {
    let res = ctx
        .http
        .get(url)
        .timeout(Duration::from_millis(1500))
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().await.ok()?))
}

async fn snapshot(ctx: &Ctx) -> Snapshot {
    let mut health = Vec::new();
    for (_, base) in ctx.services() {
        let status = match get_text(ctx, &format!("{base}/api/health")).await {
            Some((code, body)) => serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {code}")),
            None => "DOWN".to_owned(),
        };
        health.push(status);
    }
    let mut breakers = BTreeMap::new();
    let mut ws_gateway = None;
    if let Some((200, body)) = get_text(ctx, &format!("{}/api/upstreams", ctx.args.gateway)).await {
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            for up in ["audio", "translation"] {
                if let Some(s) = v[up]["breaker"].as_str() {
                    breakers.insert(up.to_owned(), s.to_owned());
                }
            }
            ws_gateway = v["websocket_connections"].as_u64();
        }
    }
    let agent = get_text(ctx, &format!("{}/metrics", ctx.args.agent))
        .await
        .filter(|(c, _)| *c == 200)
        .map(|(_, b)| b);
    let prometheus = match &ctx.args.prometheus {
        None => None,
        Some(p) => Some(match get_text(ctx, &format!("{p}/api/v1/alerts")).await {
            Some((200, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
                let firing = alerts.iter().filter(|a| a["state"] == "firing").count();
                let pending = alerts.iter().filter(|a| a["state"] == "pending").count();
                format!("up, {firing} alerts firing, {pending} pending (alerts page: {p}/alerts)")
            }
            _ => format!("DOWN ({p})"),
        }),
    };
    Snapshot {
        health,
        breakers,
        ws_gateway,
        agent,
        prometheus,
    }
}

fn render(ctx: &Ctx, snap: &Snapshot, dry: Option<&DryRunCounter>) -> Vec<String> {
    let s = &ctx.stats;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = vec![format!(
        "{} traffic: {} requests ({} ok, {} 4xx, {} 5xx of which {} breaker-rejected, {} failed); websockets {} open, {} messages; {} audio faults injected",
        clock(ctx.started.elapsed()),
        s.total(),
        load(&s.ok),
        load(&s.client_errors),
        load(&s.server_errors),
        load(&s.breaker_rejected),
        load(&s.failed),
        snap.ws_gateway
            .unwrap_or_else(|| s.ws_open.load(Ordering::Relaxed).max(0) as u64),
        load(&s.ws_messages),
        load(&s.faults),
    )];
    let metrics = snap.agent.as_deref().unwrap_or("");
    let mut read_lines: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, v) in series(metrics, "livetranslate_agent_log_read_lines_total") {
        if let Some(path) = labels.get("path") {
            let stem = std::path::Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            *read_lines.entry(stem).or_default() += v;
        }
    }
    let up: BTreeMap<String, f64> = series(metrics, "livetranslate_agent_target_up")
        .filter_map(|(l, v)| Some((l.get("instance")?.clone(), v)))
        .collect();
    let samples: BTreeMap<String, f64> =
        series(metrics, "livetranslate_agent_scrape_samples_total")
            .filter_map(|(l, v)| Some((l.get("instance")?.clone(), v)))
            .collect();
    out.push(format!(
        "  {:<14} {:<10} {:<16} {:>10} {:>9}  {}",
        "service", "health", "gateway breaker", "lines read", "shipped", "agent scrape"
    ));
    for (i, (name, base)) in ctx.services().iter().enumerate() {
        let breaker = snap.breakers.get(*name).map_or("-", String::as_str);
        let read = read_lines.get(*name).copied().unwrap_or(0.0);
        let shipped = dry.map_or("-".to_owned(), |d| {
            d.lines.get(*name).copied().unwrap_or(0).to_string()
        });
        let inst = authority(base);
        let scrape = match up.get(inst) {
            Some(v) if *v >= 1.0 => format!(
                "up, {} samples",
                samples.get(inst).copied().unwrap_or(0.0) as u64
            ),
            Some(_) => "DOWN".to_owned(),
            None => "not yet".to_owned(),
        };
        out.push(format!(
            "  {:<14} {:<10} {:<16} {:>10} {:>9}  {}",
            name, snap.health[i], breaker, read as u64, shipped, scrape
        ));
    }
    let agent_line = if snap.agent.is_none() {
        "DOWN".to_owned()
    } else if let Some(d) = dry {
        let path = ctx
            .args
            .agent_output
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!(
            "dry run (no Loki / Prometheus configured): {} log lines and {} samples printed to {path}",
            d.lines.values().sum::<u64>(),
            d.samples
        )
    } else {
        let sent = series(metrics, "livetranslate_agent_loki_sent_lines_total")
            .map(|(_, v)| v)
            .sum::<f64>();
        let rw = series(
            metrics,
            "livetranslate_agent_remote_write_samples_sent_total",
        )
        .map(|(_, v)| v)
        .sum::<f64>();
        format!(
            "shipping: {} log lines acknowledged by Loki, {} samples by remote write",
            sent as u64, rw as u64
        )
    };
    out.push(format!("  agent          {agent_line}"));
    if let Some(p) = &snap.prometheus {
        out.push(format!("  prometheus     {p}"));
    }
    out
}

async fn summaries(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let tty = std::io::stdout().is_terminal();
    let mut dry = ctx
        .args
        .agent_output
        .as_ref()
        .map(|_| DryRunCounter::default());
    let mut drawn = 0usize;
    let mut breakers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let running = pause(&mut stop, ctx.args.interval).await;
        let snap = snapshot(&ctx).await;
        if let (Some(d), Some(path)) = (dry.as_mut(), ctx.args.agent_output.as_ref()) {
            d.update(path);
        }
        for (up, state) in &snap.breakers {
            match breakers.insert(up.clone(), state.clone()) {
                Some(before) if &before != state => {
                    ctx.event(format!("gateway breaker to {up}: {before} -> {state}"))
                }
                _ => {}
            }
        }
        let events = std::mem::take(&mut *ctx.events.lock().unwrap_or_else(|e| e.into_inner()));
        let block = render(&ctx, &snap, dry.as_ref());
        let mut out = String::new();
        if tty && drawn > 0 {
            // Back to the start of the previous summary and clear it: the events scroll
            // above, the summary stays in place.
            out.push_str(&format!("\x1b[{drawn}F\x1b[J"));
        }
        for e in events {
            out.push_str(&e);
            out.push('\n');
        }
        for line in &block {
            out.push_str(line);
            out.push('\n');
        }
        drawn = block.len();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush());
        if !running {
            return;
        }
    }
}

async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = term.recv() => "terminated",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("traffic-generator: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1))
        .build()?;
    let ctx = Arc::new(Ctx {
        args,
        http,
        stats: Stats::default(),
        started: Instant::now(),
        events: Mutex::new(Vec::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signal = tokio::spawn(stop_signal());

    tokio::select! {
        r = wait_until_up(&ctx) => r?,
        // Stopped while waiting: nothing to stop yet.
        _ = &mut signal => return Ok(()),
    }
    println!(
        "{} all services are up; generating traffic ({} requests/s, {} WebSocket sessions); summary every {:?}",
        clock(ctx.started.elapsed()),
        ctx.args.rate,
        WEBSOCKETS,
        ctx.args.interval
    );

    let mut tasks = vec![
        tokio::spawn(http_traffic(ctx.clone(), stop_rx.clone())),
        tokio::spawn(faults(ctx.clone(), stop_rx.clone())),
    ];
    for slot in 0..WEBSOCKETS {
        tasks.push(tokio::spawn(websocket_slot(
            ctx.clone(),
            slot,
            stop_rx.clone(),
        )));
    }
    let summary = tokio::spawn(summaries(ctx.clone(), stop_rx.clone()));

    let why = match ctx.args.duration {
        Some(d) => tokio::select! {
            _ = tokio::time::sleep(d) => "duration reached",
            s = signal => s.unwrap_or("interrupted"),
        },
        None => signal.await.unwrap_or("interrupted"),
    };
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    // The summary task prints one last summary before it returns.
    let _ = tokio::time::timeout(Duration::from_secs(5), summary).await;
    println!(
        "{} traffic generator stopped ({why})",
        clock(ctx.started.elapsed())
    );
    Ok(())
}
