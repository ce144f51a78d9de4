//! Log shipping throughput: the release agent, pinned to one core, tails a file of 200-byte
//! lines and pushes to a Loki stand-in on loopback (on the other core). Prints lines/s, MB/s,
//! CPU seconds per GB and peak RSS for each input format: the library's JSON lines
//! (`format: json`), a Docker json-file log under a data root with its `config.v2.json`
//! (`format: docker`: container labels) and a kubelet pod log (`format: cri`: pod labels).
//!
//! `cargo bench -p livetranslate-agent --bench log_throughput` (LINES=… to change the count;
//! FORMATS=json,docker,cri to choose; AGENT_BIN=… runs another agent binary under the same
//! harness, e.g. the previous commit's release build for a before/after comparison in one
//! session)

use std::fs;
use std::io::{BufWriter, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use livetranslate_test_support::ProcUsage;

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    ProcUsage::of(pid).map(|u| (u.cpu_seconds, u.peak_rss_bytes))
}

/// Writes `lines` lines of 200 bytes (newline included) in `format` under `dir`; returns the
/// input's YAML (indented as a `logs.inputs` entry) and the bytes written.
fn write_input(dir: &std::path::Path, format: &str, lines: u64) -> (String, u64) {
    let (path, input) = match format {
        "json" => {
            let p = dir.join("logs/app.log");
            let input = format!("    - paths: [\"{}/logs/*.log\"]\n", dir.display());
            (p, input)
        }
        "docker" => {
            let id = "ab".repeat(32);
            let c = dir.join("docker/containers").join(&id);
            fs::create_dir_all(&c).expect("container dir");
            fs::write(
                c.join("config.v2.json"),
                format!(r#"{{"ID":"{id}","Name":"/livetranslate-audio-service-1","Config":{{"Image":"livetranslate-examples:local","Labels":{{"com.docker.compose.service":"audio-service","com.docker.compose.project":"livetranslate"}}}},"State":{{"Running":true}}}}"#),
            )
            .expect("config.v2.json");
            let input = format!(
                "    - paths: [\"{d}/docker/containers/*/*-json.log\"]\n      format: docker\n      docker: {{data_root: \"{d}/docker\"}}\n",
                d = dir.display()
            );
            (c.join(format!("{id}-json.log")), input)
        }
        "cri" => {
            let c = dir
                .join("pods/prod_audio-7d9c5b6f4-x2x9k_0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77/audio");
            fs::create_dir_all(&c).expect("pod dir");
            let input = format!(
                "    - paths: [\"{}/pods/*/*/*.log\"]\n      format: cri\n",
                dir.display()
            );
            (c.join("0.log"), input)
        }
        other => panic!("unknown format {other}"),
    };
    fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    let mut w = BufWriter::new(fs::File::create(&path).expect("file"));
    for i in 0..lines {
        let ts = format!("2026-11-24T01:02:03.{:09}Z", i % 1_000_000_000);
        // Each form 199 bytes + newline.
        let line = match format {
            "json" => {
                let head = format!(
                    "{{\"timestamp\":\"2026-11-24T01:02:03.{:06}Z\",\"level\":\"INFO\",\"service\":\"audio\",\"target\":\"audio_service\",\"message\":\"chunk transcribed seq={i}\",\"pad\":\"",
                    i % 1_000_000
                );
                let pad = 199usize.saturating_sub(head.len() + 2);
                format!("{head}{}\"}}", "x".repeat(pad))
            }
            "docker" => {
                let head = format!("{{\"log\":\"chunk transcribed seq={i} ");
                let tail = format!("\\n\",\"stream\":\"stdout\",\"time\":\"{ts}\"}}");
                let pad = 199usize.saturating_sub(head.len() + tail.len());
                format!("{head}{}{tail}", "x".repeat(pad))
            }
            _ => {
                let head = format!("{ts} stdout F chunk transcribed seq={i} ");
                let pad = 199usize.saturating_sub(head.len());
                format!("{head}{}", "x".repeat(pad))
            }
        };
        writeln!(w, "{line}").expect("write");
    }
    drop(w);
    (input, fs::metadata(&path).expect("meta").len())
}

fn main() {
    let lines: u64 = std::env::var("LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let formats = std::env::var("FORMATS").unwrap_or_else(|_| "json,docker,cri".to_owned());
    for format in formats.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        run(format, lines);
    }
}

fn run(format: &str, lines: u64) {
    let dir = std::env::temp_dir().join(format!("lt-throughput-{}-{format}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let (input, bytes) = write_input(&dir, format, lines);
    let loki = livetranslate_test_support::loki::LokiStandIn::start();
    let config = dir.join("agent.yml");
    fs::write(
        &config,
        format!(
            "logs:\n  loki_url: {}\n  positions_file: {}\n  inputs:\n{input}",
            loki.url(),
            dir.join("positions.yml").display(),
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
        "log_throughput [{format}]: {got}/{lines} lines of 200 B ({:.1} MB) in {elapsed:.2} s{}",
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
