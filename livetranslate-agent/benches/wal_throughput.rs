//! Write-ahead log throughput: appends per second and MB/s for several record sizes and fsync
//! policies, then the time to reopen a large log and to replay it (records/s, MB/s) and the
//! peak RSS while replaying (it must not grow with the log).
//!
//! `cargo bench -p livetranslate-agent --bench wal_throughput` (`WAL_MB=…` sets the size of the
//! replayed log, default 256; `SECONDS=…` the time per append case, default 2).

use std::time::{Duration, Instant};

use livetranslate_agent::metrics::wal::{SyncPolicy, Wal, WalConfig};
use livetranslate_test_support::ProcUsage;

fn peak_rss_kib() -> u64 {
    ProcUsage::of(std::process::id()).map_or(0, |u| u.peak_rss_bytes / 1024)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fresh_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lt-wal-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(sync: SyncPolicy) -> WalConfig {
    WalConfig {
        max_total_bytes: 8 << 30,
        max_age: None,
        sync,
        ..WalConfig::default()
    }
}

fn append_case(name: &str, sync: SyncPolicy, record: usize, per_call: usize, secs: u64) {
    let dir = fresh_dir("append");
    let wal = Wal::open(&dir, config(sync)).expect("open");
    let payload = vec![0x5au8; record];
    let batch: Vec<&[u8]> = (0..per_call).map(|_| payload.as_slice()).collect();
    let budget = Duration::from_secs(secs);
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        wal.append_batch(&batch).expect("append");
        calls += 1;
    }
    wal.sync().expect("sync");
    let t = start.elapsed().as_secs_f64();
    let records = calls * per_call as u64;
    let mb = (records * record as u64) as f64 / 1e6;
    println!(
        "append {name:<22} {record:>7} B x{per_call:<3} {:>10.0} calls/s {:>10.0} records/s {:>8.1} MB/s  ({} fsyncs)",
        calls as f64 / t,
        records as f64 / t,
        mb / t,
        wal.stats().fsyncs
    );
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `threads` appenders (like scrape loops) under `SyncPolicy::Always`: fsyncs are shared.
fn concurrent_case(threads: usize, record: usize, secs: u64) {
    let dir = fresh_dir("group");
    let wal = std::sync::Arc::new(Wal::open(&dir, config(SyncPolicy::Always)).expect("open"));
    let budget = Duration::from_secs(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let payload = vec![0x3cu8; record];
                let mut n = 0u64;
                while start.elapsed() < budget {
                    wal.append(&payload).expect("append");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let records: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let t = start.elapsed().as_secs_f64();
    println!(
        "append always, {threads} threads  {record:>7} B x1   {:>10.0} records/s {:>8.1} MB/s  ({} fsyncs for {records} appends)",
        records as f64 / t,
        (records * record as u64) as f64 / 1e6 / t,
        wal.stats().fsyncs
    );
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let secs = env("SECONDS", 2);
    let interval = SyncPolicy::Interval(Duration::from_millis(100));
    for &(name, sync) in &[
        ("never", SyncPolicy::Never),
        ("interval 100ms", interval),
        ("always", SyncPolicy::Always),
    ] {
        for &record in &[1usize << 10, 16 << 10, 256 << 10] {
            append_case(name, sync, record, 1, secs);
        }
    }
    append_case(
        "always, batch of 16",
        SyncPolicy::Always,
        16 << 10,
        16,
        secs,
    );
    concurrent_case(8, 1 << 10, secs);

    // Replay: write a large log, reopen it, read it all.
    let mb = env("WAL_MB", 256);
    let record = 16usize << 10;
    let count = mb * 1_000_000 / record as u64;
    let dir = fresh_dir("replay");
    {
        let wal = Wal::open(&dir, config(SyncPolicy::Never)).expect("open");
        let payload = vec![0xa5u8; record];
        let batch: Vec<&[u8]> = (0..64).map(|_| payload.as_slice()).collect();
        for _ in 0..count / 64 {
            wal.append_batch(&batch).expect("append");
        }
        wal.sync().expect("sync");
    }
    let rss_before = peak_rss_kib();
    let t0 = Instant::now();
    let wal = Wal::open(&dir, config(SyncPolicy::Always)).expect("reopen");
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let s = wal.stats();
    let t1 = Instant::now();
    let mut reader = wal.reader();
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(r) = reader.next().expect("read") {
        n += 1;
        bytes += r.payload.len() as u64;
    }
    let t = t1.elapsed().as_secs_f64();
    println!(
        "reopen {:.0} MB in {} segments: {open_ms:.1} ms; replay {n} records of {record} B: {:.2} s, {:.0} records/s, {:.0} MB/s (page cache warm)",
        s.disk_bytes as f64 / 1e6,
        s.segments,
        t,
        n as f64 / t,
        bytes as f64 / 1e6 / t
    );
    println!(
        "peak RSS before reopen {} KiB, after replay {} KiB",
        rss_before,
        peak_rss_kib()
    );
    drop(reader);
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
}
