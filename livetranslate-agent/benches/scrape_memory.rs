//! Peak memory and time of scraping big expositions: the release agent scrapes a 7 MB body of
//! 500,000 series and a 60 MB body of `m 1` lines (one series repeated) every 15 s while remote
//! write is down, for 40 s; then SIGINT. Prints the peak RSS (`VmHWM`), CPU seconds, scrapes
//! answered and the time SIGINT took.
//!
//! `cargo bench -p livetranslate-agent --bench scrape_memory`
//! (`AGENT_BIN=/path/to/livetranslate-agent` measures another build, e.g. an older one;
//! `SECONDS_PER_CASE=…` changes the 40 s)

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livetranslate_test_support::ProcUsage;

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    ProcUsage::of(pid).map(|u| (u.cpu_seconds, u.peak_rss_bytes))
}

/// Serves `body` as text/plain on every request (HTTP/1.1, one request per connection).
fn serve(body: Arc<Vec<u8>>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let body = body.clone();
            let count = count.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if s.write_all(&body).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (port, served)
}

struct Run {
    peak_rss: u64,
    cpu: f64,
    served: usize,
    sigint: Duration,
}

fn run(agent: &str, body: Vec<u8>, seconds: u64, dir: &std::path::Path, wal: bool) -> Run {
    let (port, served) = serve(Arc::new(body));
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let mut cmd = Command::new(agent);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--scrape-target",
        &format!("http://127.0.0.1:{port}/metrics"),
        "--scrape-interval",
        "15s",
        "--remote-write-url",
        &format!("http://127.0.0.1:{dead_port}/api/v1/write"),
    ]);
    if wal {
        let wal_dir = dir.join(format!("wal-{port}"));
        cmd.arg("--wal-dir").arg(&wal_dir);
    }
    let mut child = cmd
        .env("RUST_LOG", "error")
        .env_remove("AGENT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start agent");
    let pid = child.id();
    let started = Instant::now();
    let mut last = (0.0, 0);
    while started.elapsed() < Duration::from_secs(seconds) {
        if let Some(s) = proc_stat(pid) {
            last = s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let t = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        if let Some(s) = proc_stat(pid) {
            last = s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run {
        peak_rss: last.1,
        cpu: last.0,
        served: served.load(Ordering::Relaxed),
        sigint: t.elapsed(),
    }
}

fn main() {
    let agent = std::env::var("AGENT_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_livetranslate-agent").to_owned());
    let seconds: u64 = std::env::var("SECONDS_PER_CASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let help = Command::new(&agent)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let wal = help.contains("--wal-dir");
    let dir = std::env::temp_dir().join(format!("lt-scrape-memory-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");

    let mut many = Vec::with_capacity(7_000_000);
    for i in 0..500_000 {
        writeln!(many, "mtrc_{i:06} 1").expect("write");
    }
    let one = b"m 1\n".repeat(15_000_000);
    println!("agent: {agent}");
    println!("| body | size | peak RSS | CPU in {seconds} s | scrapes answered | SIGINT to exit |");
    println!("|---|---|---|---|---|---|");
    for (name, body) in [("500,000 series", many), ("`m 1` lines", one)] {
        let size = body.len();
        let r = run(&agent, body, seconds, &dir, wal);
        println!(
            "| {name} | {:.1} MB | {:.1} MiB | {:.2} s | {} | {:.2} s |",
            size as f64 / 1e6,
            r.peak_rss as f64 / (1024.0 * 1024.0),
            r.cpu,
            r.served,
            r.sigint.as_secs_f64()
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
