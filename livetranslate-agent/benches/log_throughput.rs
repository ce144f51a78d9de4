//! Log shipping throughput: the release agent, pinned to one core, tails a file of 200-byte
//! JSON lines and pushes to a Loki stand-in on loopback (on the other core). Prints lines/s,
//! MB/s, CPU seconds per GB and peak RSS.
//!
//! `cargo bench -p livetranslate-agent --bench log_throughput` (LINES=… to change the count;
//! AGENT_BIN=… runs another agent binary under the same harness, e.g. the previous commit's
//! release build for a before/after comparison in one session)

use std::fs;
use std::io::{BufWriter, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?;
    Some((cpu, hwm * 1024))
}

fn main() {
    let lines: u64 = std::env::var("LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("lt-throughput-{}", std::process::id()));
    fs::create_dir_all(dir.join("logs")).expect("dir");
    let path = dir.join("logs/app.log");
    {
        let mut w = BufWriter::new(fs::File::create(&path).expect("file"));
        for i in 0..lines {
            // 199 bytes + newline, like the library's lines.
            let head = format!(
                "{{\"timestamp\":\"2026-11-24T01:02:03.{:06}Z\",\"level\":\"INFO\",\"service\":\"audio\",\"target\":\"audio_service\",\"message\":\"chunk transcribed seq={i}\",\"pad\":\"",
                i % 1_000_000
            );
            let pad = 199usize.saturating_sub(head.len() + 2);
            writeln!(w, "{head}{}\"}}", "x".repeat(pad)).expect("write");
        }
    }
    let bytes = fs::metadata(&path).expect("meta").len();
    let loki = livetranslate_test_support::loki::LokiStandIn::start();
    let config = dir.join("agent.yml");
    fs::write(
        &config,
        format!(
            "logs:\n  loki_url: {}\n  positions_file: {}\n  inputs:\n    - paths: [\"{}/logs/*.log\"]\n",
            loki.url(),
            dir.join("positions.yml").display(),
            dir.display()
        ),
    )
    .expect("config");
    let agent_bin = std::env::var("AGENT_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_livetranslate-agent").to_owned());
    let agent_bin = agent_bin.as_str();
    let pinned = Command::new("taskset").arg("--version").output().is_ok();
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", agent_bin]);
        c
    } else {
        Command::new(agent_bin)
    };
    let start = Instant::now();
    let mut child = cmd
        .args([
            "--config",
            config.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent");
    let pid = child.id();
    let mut last = (0.0, 0);
    let deadline = Instant::now() + Duration::from_secs(300);
    while (loki.count() as u64) < lines && Instant::now() < deadline {
        if let Some(s) = proc_stat(pid) {
            last = s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(s) = proc_stat(pid) {
        last = s;
    }
    let _ = child.kill();
    let _ = child.wait();
    let got = loki.count() as u64;
    let (cpu, rss) = last;
    println!(
        "log_throughput: {got}/{lines} lines of 200 B ({:.1} MB) in {elapsed:.2} s{}",
        bytes as f64 / 1e6,
        if pinned {
            ", agent pinned to one core"
        } else {
            ""
        }
    );
    println!(
        "  {:.0} lines/s, {:.1} MB/s",
        got as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed
    );
    println!(
        "  agent CPU {cpu:.2} s = {:.1} CPU s per GB, peak RSS {:.1} MiB",
        cpu / (bytes as f64 / 1e9),
        rss as f64 / 1048576.0
    );
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(got, lines, "not every line arrived");
}
