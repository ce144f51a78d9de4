//! Log lines as the tests write and count them: JSON lines like the library writes, each
//! with its own timestamp and a sequence number; a writer that rotates as logrotate does;
//! tallies of what Loki stores against what was written.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use livetranslate_test_support::loki::{LokiStandIn, Received};

/// A JSON log line like the library writes, with its own timestamp and a sequence number.
pub fn json_line(seq: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let mut ts = String::new();
    livetranslate_telemetry::logging::write_rfc3339(&mut ts, UNIX_EPOCH + now);
    format!(
        "{{\"timestamp\":\"{ts}\",\"level\":\"{}\",\"service\":\"audio\",\"target\":\"t\",\"message\":\"chunk seq={seq}\",\"pad\":\"{}\"}}\n",
        if seq % 10 == 0 { "ERROR" } else { "INFO" },
        "x".repeat(100)
    )
}

#[derive(Clone, Copy, PartialEq)]
pub enum Rotation {
    None,
    /// Rotate every this many bytes, alternating rename and copytruncate.
    Every(u64),
    /// Rotate every this many lines, alternating rename and copytruncate (the rotated files
    /// are `app.log.1`, `app.log.2`, …, as logrotate names them).
    EveryLines(u64),
}

/// Appends the lines `range` to `dir/app.log` at about `rate` lines/s.
pub fn write_lines(dir: &Path, range: std::ops::Range<u64>, rate: u64, rotation: Rotation) {
    write_lines_to(&dir.join("app.log"), range, rate, rotation);
}

/// Appends the lines `range` to `path` at about `rate` lines/s.
pub fn write_lines_to(path: &Path, range: std::ops::Range<u64>, rate: u64, rotation: Rotation) {
    let dir = path.parent().expect("a file in a directory");
    let name = path
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let path = path.to_owned();
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open log")
    };
    let mut f = std::io::BufWriter::new(open());
    let mut written = 0u64;
    let mut k = 0u32;
    let start = Instant::now();
    let first = range.start;
    for seq in range {
        let line = json_line(seq);
        f.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        let due = match rotation {
            Rotation::None => false,
            Rotation::Every(limit) => written >= limit,
            Rotation::EveryLines(n) => (seq - first + 1) % n == 0,
        };
        if due {
            f.flush().expect("flush");
            written = 0;
            k += 1;
            let rotated = dir.join(format!("{name}.{k}"));
            if k % 2 == 1 {
                fs::rename(&path, &rotated).expect("rename");
                f = std::io::BufWriter::new(open());
            } else {
                fs::copy(&path, &rotated).expect("copy");
                f.get_ref().set_len(0).expect("truncate");
            }
        }
        if (seq - first) % 100 == 99 {
            f.flush().expect("flush");
            let due = Duration::from_secs_f64((seq - first + 1) as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    f.flush().expect("flush");
}

/// The sequence number (`seq=N`) of a line.
pub fn seq_of(line: &str) -> Option<u64> {
    let i = line.find("seq=")? + 4;
    line[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Over the entries Loki stores (each distinct labels, timestamp and line once): (missing
/// sequence numbers, lines stored more than once — a real duplicate, which Loki would keep).
pub fn tally(entries: &[Received], n: u64) -> (Vec<u64>, u64) {
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for e in entries {
        if let Some(s) = seq_of(&e.line) {
            *seen.entry(s).or_default() += 1;
        }
    }
    let missing = (0..n).filter(|s| !seen.contains_key(s)).collect();
    let dups = seen.values().map(|c| c - 1).sum();
    (missing, dups)
}

/// Waits (bounded) until every line 0..n arrived.
pub fn wait_all(loki: &LokiStandIn, n: u64, limit: Duration) -> (Vec<u64>, u64) {
    let start = Instant::now();
    loop {
        let (missing, dups) = tally(&loki.entries(), n);
        if missing.is_empty() || start.elapsed() > limit {
            return (missing, dups);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn summary(missing: &[u64]) -> String {
    format!(
        "{} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    )
}
