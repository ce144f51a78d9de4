//! The write-ahead log under remote write, against a real Prometheus receiver
//! (`--web.enable-remote-write-receiver`):
//!
//! - (a) the agent is `kill -9`ed five times while it scrapes and sends: every sample it
//!   scraped arrives, once, in order;
//! - (b) the receiver is down for five minutes while the agent scrapes more than the old
//!   in-memory queue held: memory stays flat while the log grows to its bound, the oldest
//!   records beyond the bound are dropped and counted, and every sample within the bound
//!   arrives, in order per series;
//! - (c) a torn write at the log's tail is found at start, cut and counted, and the agent
//!   starts and delivers everything before it.
//!
//! Each test prints its figures (samples sent, arrived and lost, RSS, WAL size, replay time).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use common::{Agent, NO_SCRAPES};
use livetranslate_test_support::{eventually_async, Prometheus, TempDir};

/// A target whose every answer carries the number of the request as the value of `series`
/// series `lt_seq{i="…"}`, and that remembers when it answered which number.
#[derive(Clone)]
struct Counter {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    served: Arc<Mutex<Vec<(Instant, u64)>>>,
}

impl Counter {
    async fn start(series: usize) -> Counter {
        let hits = Arc::new(AtomicU64::new(0));
        let served = Arc::new(Mutex::new(Vec::new()));
        let (h, s) = (hits.clone(), served.clone());
        let app = Router::new().fallback(get(move || {
            let (h, s) = (h.clone(), s.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst) + 1;
                if let Ok(mut v) = s.lock() {
                    v.push((Instant::now(), n));
                }
                let mut body = String::from("# TYPE lt_seq gauge\n");
                for i in 0..series {
                    body.push_str(&format!("lt_seq{{i=\"{i}\"}} {n}\n"));
                }
                body
            }
        }));
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Counter { addr, hits, served }
    }

    fn served_before(&self, t: Instant) -> Vec<u64> {
        self.served
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|(at, _)| *at < t)
                    .map(|(_, n)| *n)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, text) {
        panic!("{name}: {e}");
    }
    path.display().to_string()
}

/// The values (scrape numbers) stored for `lt_seq{i="0"}`.
async fn values_of_series_0(prom: &Prometheus) -> BTreeSet<u64> {
    stored(prom)
        .await
        .get("0")
        .map(|v| v.iter().map(|p| p.1).collect())
        .unwrap_or_default()
}

/// Every raw sample of `lt_seq{i}` in Prometheus: series label `i` → (timestamp ms, value).
async fn stored(prom: &Prometheus) -> BTreeMap<String, Vec<(i64, u64)>> {
    let result = prom.query_async("lt_seq[2h]", None).await;
    let mut out = BTreeMap::new();
    for s in result {
        let i = s["metric"]["i"].as_str().unwrap_or("").to_owned();
        let values: Vec<(i64, u64)> = s["values"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let ts = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                        let v = p[1].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
                        (ts, v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(i, values);
    }
    out
}

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The agent's configuration: one job scraping `target` every `interval`, remote write to
/// `url` with batches sent at the latest `deadline` after their first sample was stored.
fn agent_config(
    dir: &Path,
    target: SocketAddr,
    url: &str,
    interval: &str,
    deadline: &str,
    extra: &str,
) -> String {
    write(
        dir,
        "agent.yml",
        &format!(
            "shutdown_timeout: 5s
scrape_configs:
  - job_name: wal
    scrape_interval: {interval}
    static_configs: [{{targets: ['{target}']}}]
remote_write:
  url: {url}
  queue: {{batch_send_deadline: {deadline}, min_backoff: 100ms, max_backoff: 1s}}
{extra}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_nothing_that_was_scraped() {
    let dir = TempDir::new("wal-kill");
    let prom = Prometheus::start_async(dir.path(), NO_SCRAPES).await;
    let target = Counter::start(3).await;
    let wal: PathBuf = dir.path().join("wal");
    let wal_arg = wal.display().to_string();
    // The one scrape that may be in flight at each kill: answered by the target but not yet
    // stored by the agent (it was never scraped as far as the agent knows).
    let mut in_flight = BTreeSet::new();
    for round in 0..5u64 {
        // Odd rounds send every 100 ms (the kill lands between acknowledged and unsent
        // records: the next start resumes at the last acknowledgement); even rounds, the last
        // one too, hold their batch for 10 s (nothing they scrape is sent before the kill:
        // only the log has it).
        let deadline = if round % 2 == 1 { "100ms" } else { "10s" };
        let config = agent_config(
            dir.path(),
            target.addr,
            &prom.write_url(),
            "200ms",
            deadline,
            "",
        );
        let args = ["--config", config.as_str(), "--wal-dir", wal_arg.as_str()];
        let mut agent = Agent::spawn(dir.path(), &args, "info");
        // Kill at a different point of the scrape/send cycle each time.
        tokio::time::sleep(Duration::from_millis(1200 + round * 170)).await;
        agent.kill9();
        let killed_at = Instant::now();
        if let Some(last) = target.served_before(killed_at).last() {
            in_flight.insert(*last);
        }
    }
    let config = agent_config(
        dir.path(),
        target.addr,
        &prom.write_url(),
        "200ms",
        "100ms",
        "",
    );
    let args = ["--config", config.as_str(), "--wal-dir", wal_arg.as_str()];
    let wal_at_restart = wal_bytes(&wal);
    let agent = Agent::start(dir.path(), &args).await;
    let restarted = Instant::now();
    // Replay: everything scraped before this start, in Prometheus.
    let before_start: BTreeSet<u64> = target.served_before(restarted).into_iter().collect();
    let caught_up = eventually_async(Duration::from_secs(30), || async {
        let got = values_of_series_0(&prom).await;
        before_start
            .iter()
            .all(|n| got.contains(n) || in_flight.contains(n))
    })
    .await;
    let catch_up = restarted.elapsed();
    assert!(caught_up, "backlog not sent:\n{}", agent.log());
    let opened = agent
        .log()
        .lines()
        .rfind(|l| l.contains("write-ahead log opened"))
        .map(str::to_owned)
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let served_until = Instant::now();
    let served: BTreeSet<u64> = target.served_before(served_until).into_iter().collect();
    let complete = eventually_async(Duration::from_secs(30), || async {
        let got = values_of_series_0(&prom).await;
        served
            .iter()
            .all(|n| got.contains(n) || in_flight.contains(n))
    })
    .await;
    let s = stored(&prom).await;
    let got: Vec<(i64, u64)> = s.get("0").cloned().unwrap_or_default();
    let got_set: BTreeSet<u64> = got.iter().map(|p| p.1).collect();
    let lost: Vec<u64> = served
        .iter()
        .filter(|n| !got_set.contains(n) && !in_flight.contains(n))
        .copied()
        .collect();
    let in_flight_lost = in_flight.iter().filter(|n| !got_set.contains(n)).count();
    println!(
        "kill -9 x5: target answered {} scrapes; {} arrived; lost {} (+{} answered at the moment of a kill, never stored); \
         WAL {wal_at_restart} bytes at the last start, all in Prometheus {:.2} s after it was ready (log: {} {}); WAL {} bytes at the end",
        served.len(),
        got_set.len(),
        lost.len(),
        in_flight_lost,
        catch_up.as_secs_f64(),
        log_field(&opened, "replay_records"),
        log_field(&opened, "opened_in_ms"),
        wal_bytes(&wal)
    );
    assert!(
        complete && lost.is_empty(),
        "lost {lost:?}\n{}",
        agent.log()
    );
    // Once each, in order: Prometheus stores a series' samples in time order; the values
    // (request numbers) rise with the timestamps.
    assert_eq!(got.len(), got_set.len(), "a sample arrived twice");
    assert!(
        got.windows(2).all(|w| w[0].1 < w[1].1),
        "out of order: {got:?}"
    );
    for i in ["1", "2"] {
        let other: BTreeSet<u64> = s
            .get(i)
            .map(|v| v.iter().map(|p| p.1).collect())
            .unwrap_or_default();
        assert_eq!(other, got_set, "series {i} differs from series 0");
    }
}

/// `name=value` from a log line, as it stands (or `name=?`).
fn log_field(line: &str, name: &str) -> String {
    let key = format!("{name}=");
    line.split_whitespace()
        .find(|w| w.starts_with(&key))
        .map_or_else(|| format!("{name}=?"), str::to_owned)
}

fn rss_mib(agent: &Agent) -> f64 {
    agent
        .rss_bytes()
        .map_or(0.0, |b| b as f64 / (1024.0 * 1024.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_minute_outage_stays_on_disk_within_the_bound() {
    let outage = std::env::var("WAL_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let dir = TempDir::new("wal-outage");
    let mut prom = Prometheus::start_async(dir.path(), NO_SCRAPES).await;
    // 500 series a second: 150,000 samples in five minutes, beyond the 100,000 the memory
    // queue held. The log is bounded at 512 KiB: about half of what five minutes need, so the
    // oldest records go.
    let target = Counter::start(500).await;
    let wal = dir.path().join("wal");
    let config = agent_config(
        dir.path(),
        target.addr,
        &prom.write_url(),
        "1s",
        "100ms",
        "  wal: {max_size: 512KiB, segment_size: 32KiB}\n",
    );
    let wal_arg = wal.display().to_string();
    let agent = Agent::start(dir.path(), &["--config", &config, "--wal-dir", &wal_arg]).await;
    let first = eventually_async(Duration::from_secs(20), || async {
        !stored(&prom).await.is_empty()
    })
    .await;
    assert!(first, "nothing arrived before the outage:\n{}", agent.log());
    prom.stop();
    let down_at = Instant::now();
    let mut rss = Vec::new();
    let mut wal_sizes = Vec::new();
    while down_at.elapsed() < outage {
        tokio::time::sleep(Duration::from_secs(10)).await;
        rss.push(rss_mib(&agent));
        wal_sizes.push(wal_bytes(&wal));
    }
    let scraped_during = target.hits.load(Ordering::SeqCst);
    prom.restart_async().await;
    let up_at = Instant::now();
    let caught_up = eventually_async(Duration::from_secs(120), || async {
        agent
            .metric("livetranslate_agent_wal_pending_records", &[])
            .await
            <= 1.0
    })
    .await;
    let replay = up_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dropped = agent
        .metric(
            "livetranslate_agent_remote_write_samples_dropped_total",
            &[("reason", "wal_size")],
        )
        .await;
    let records_lost = agent
        .metric(
            "livetranslate_agent_wal_records_lost_total",
            &[("reason", "size")],
        )
        .await;
    let sent = agent
        .metric("livetranslate_agent_remote_write_samples_sent_total", &[])
        .await;
    let s = stored(&prom).await;
    assert_eq!(s.len(), 500, "series missing");
    let served = target.served_before(Instant::now()).len() as u64;
    let mut missing = BTreeSet::new();
    for (i, samples) in &s {
        // In order: values (request numbers) rise with time, and apart from one block of the
        // oldest records the log dropped, every answer is there.
        assert!(
            samples.windows(2).all(|w| w[0].1 < w[1].1),
            "series {i} out of order"
        );
        let values: Vec<u64> = samples.iter().map(|p| p.1).collect();
        let gaps: Vec<(u64, u64)> = values
            .windows(2)
            .filter(|w| w[1] != w[0] + 1)
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(
            gaps.len() <= 1,
            "series {i} has more than one gap: {gaps:?}"
        );
        missing.insert(gaps.iter().map(|(a, b)| b - a - 1).sum::<u64>());
    }
    assert_eq!(
        missing.len(),
        1,
        "series lost different scrapes: {missing:?}"
    );
    let lost_scrapes = missing.iter().next().copied().unwrap_or(0);
    let rss_start = rss.first().copied().unwrap_or(0.0);
    let rss_end = rss.last().copied().unwrap_or(0.0);
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    let wal_max = wal_sizes.iter().copied().max().unwrap_or(0);
    println!(
        "outage {outage:?}: target answered {served} scrapes ({scraped_during} by the end of the outage, \
         {} samples with the report series); each series has {} samples in Prometheus; \
         the WAL bound dropped {lost_scrapes} scrapes = {dropped} samples in {records_lost} records, all counted; \
         sent {sent}; agent RSS {rss_start:.1} MiB 10 s into the outage, {rss_end:.1} MiB at its end (max {rss_max:.1}); \
         WAL at most {wal_max} bytes (bound 512 KiB); caught up {:.1} s after the receiver came back",
        scraped_during * 505,
        s.get("0").map_or(0, Vec::len),
        replay.as_secs_f64()
    );
    assert!(caught_up, "backlog not sent:\n{}", agent.log());
    // Every sample missing from Prometheus is a counted drop: a scrape is 500 series and the
    // 5 report series, stored as one record.
    assert_eq!(dropped, (lost_scrapes * 505) as f64, "drops counted");
    // One record per scrape: the records counted lost are the scrapes missing (a record the
    // sender was retrying when its segment was dropped still arrives, and is not counted).
    assert_eq!(records_lost, lost_scrapes as f64, "records counted lost");
    // The bound, and the active segment that may still be filling when it is applied.
    assert!(
        wal_max <= (512 << 10) + (32 << 10),
        "WAL grew past its bound: {wal_max}"
    );
    assert!(
        rss_end < rss_start + 32.0,
        "memory grew during the outage: {rss_start:.1} -> {rss_end:.1} MiB"
    );
    if outage >= Duration::from_secs(200) {
        assert!(
            records_lost > 0.0,
            "the outage should have overflowed a 512 KiB log"
        );
        assert!(dropped > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_counted_and_the_agent_starts() {
    let dir = TempDir::new("wal-torn");
    let prom = Prometheus::start_async(dir.path(), NO_SCRAPES).await;
    let target = Counter::start(3).await;
    let wal = dir.path().join("wal");
    let wal_arg = wal.display().to_string();
    let dead = livetranslate_test_support::free_port();
    // First run: the receiver is not reachable, so everything scraped stays in the log.
    let config = agent_config(
        dir.path(),
        target.addr,
        &format!("http://127.0.0.1:{dead}/api/v1/write"),
        "200ms",
        "100ms",
        "",
    );
    let mut agent = Agent::spawn(
        dir.path(),
        &["--config", &config, "--wal-dir", &wal_arg],
        "info",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    agent.kill9();
    let served = target.served_before(Instant::now());
    // A torn write: a frame header that promises 4,000 bytes, then only part of them, as a
    // crash in the middle of `write(2)` leaves it.
    let newest = std::fs::read_dir(&wal)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                .max()
        })
        .ok()
        .flatten();
    let Some(newest) = newest else {
        panic!("no segment in {}:\n{}", wal.display(), agent.log());
    };
    let before = std::fs::metadata(&newest).map(|m| m.len()).unwrap_or(0);
    let mut torn = Vec::new();
    torn.extend_from_slice(&4000u32.to_le_bytes());
    torn.extend_from_slice(&0xdead_beefu32.to_le_bytes());
    torn.extend_from_slice(&0u64.to_le_bytes());
    torn.extend_from_slice(&[0x5a; 1500]);
    {
        use std::io::Write;
        let mut f = match std::fs::OpenOptions::new().append(true).open(&newest) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        if let Err(e) = f.write_all(&torn) {
            panic!("{e}");
        }
    }
    // Second run, towards the real receiver: it starts, cuts the tail, delivers the rest.
    let config = agent_config(
        dir.path(),
        target.addr,
        &prom.write_url(),
        "200ms",
        "100ms",
        "",
    );
    let started = Instant::now();
    let agent = Agent::start(dir.path(), &["--config", &config, "--wal-dir", &wal_arg]).await;
    let start_time = started.elapsed();
    let segment = std::fs::read(&newest).unwrap_or_default();
    let cut = agent
        .metric(
            "livetranslate_agent_wal_records_lost_total",
            &[("reason", "torn")],
        )
        .await;
    assert_eq!(cut, 1.0, "the torn record is counted:\n{}", agent.log());
    assert!(
        agent.log().contains("torn_records_cut=1"),
        "{}",
        agent.log()
    );
    assert!(
        segment.len() as u64 >= before
            && !segment.windows(64).any(|w| w.iter().all(|&b| b == 0x5a)),
        "the torn bytes were not cut ({before} bytes before, {} now)",
        segment.len()
    );
    // Everything stored before the kill arrives (the last answer may have been in flight).
    let must: Vec<u64> = served[..served.len().saturating_sub(1)].to_vec();
    let arrived = eventually_async(Duration::from_secs(30), || async {
        let got = values_of_series_0(&prom).await;
        must.iter().all(|n| got.contains(n))
    })
    .await;
    println!(
        "torn tail: {} bytes appended and cut, 1 record counted; agent ready {:.2} s after start; {} of {} samples scraped before the kill arrived",
        torn.len(),
        start_time.as_secs_f64(),
        must.len(),
        must.len()
    );
    assert!(
        arrived,
        "samples before the torn tail missing:\n{}",
        agent.log()
    );
}
