//! Helpers for tests that run the example services and real Prometheus tools as processes.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let p = std::env::temp_dir().join(format!("lt-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a program on PATH; fails the test with a clear message when it is missing.
pub fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed: apt-get install prometheus prometheus-alertmanager")
        })
}

fn target_dir() -> PathBuf {
    // Test binaries live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target profile dir")
}

/// Brings a binary up to date (a test run of one target does not rebuild the others, and a
/// stale binary would test old code).
fn cargo_build(args: &[&str]) {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    // The profile of this test binary (`cargo test --release` runs release examples).
    let profile: &[&str] = if cfg!(debug_assertions) {
        &[]
    } else {
        &["--release"]
    };
    let status = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .args(profile)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// The binary of an example, up to date.
pub fn example(name: &str) -> PathBuf {
    cargo_build(&["--example", name]);
    let bin = target_dir().join("examples").join(name);
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// The agent binary, up to date.
pub fn agent_binary() -> PathBuf {
    cargo_build(&["-p", "livetranslate-agent", "--bin", "livetranslate-agent"]);
    target_dir().join("livetranslate-agent")
}

/// Starts a real Prometheus on a free port with `config` (YAML text); waits until ready.
pub fn start_prometheus(dir: &TempDir, config: &str) -> (Proc, u16) {
    start_prometheus_with(dir, config, &[])
}

/// [`start_prometheus`] with extra command-line flags (`--enable-feature=...`).
pub fn start_prometheus_with(dir: &TempDir, config: &str, flags: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, config).expect("prometheus config");
    let child = Command::new(require("prometheus"))
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .args(flags)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log file"))
        .spawn()
        .expect("start prometheus");
    let proc = Proc {
        child,
        name: "prometheus".into(),
    };
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    if eventually(Duration::from_secs(60), || {
        matches!(http_get(&ready), Some((200, _))).then_some(())
    })
    .is_none()
    {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        panic!("prometheus did not start: {}", tail.join(" | "));
    }
    (proc, port)
}

/// `s` percent-encoded for a URL query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs an instant query; the result vector (None on any error).
pub fn prom_query(port: u16, q: &str) -> Option<Vec<serde_json::Value>> {
    let enc = urlencode(q);
    let (code, body) = http_get(&format!("http://127.0.0.1:{port}/api/v1/query?query={enc}"))?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"].as_array().cloned()
}

/// A blocking HTTP POST of a JSON body to a loopback URL: the status.
pub fn http_post_json(url: &str, body: &serde_json::Value) -> Option<u16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let res = reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .ok()?;
        Some(res.status().as_u16())
    })
}

/// Starts an example service on a free port (`PORT`) with extra env vars and its stdout
/// going to `stdout`; does not wait for it.
pub fn spawn_example(name: &str, env: &[(&str, &str)], stdout: Stdio) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(example(name));
    cmd.env("PORT", port.to_string())
        .env_remove("LOG_FILE")
        .env_remove("RUST_LOG")
        .stdout(stdout)
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn example");
    let proc = Proc {
        child,
        name: name.to_owned(),
    };
    (proc, port)
}

/// Starts an example service on a free port with extra env vars; waits until it is live.
pub fn start_example(name: &str, env: &[(&str, &str)]) -> (Proc, u16) {
    let (proc, port) = spawn_example(name, env, Stdio::null());
    wait_http(
        &format!("http://127.0.0.1:{port}/api/health/live"),
        Duration::from_secs(30),
    );
    (proc, port)
}

impl Proc {
    /// Sends `signal` (`libc::SIGTERM`, …) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with a pid this test started and has not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits (bounded) until the process exits: its status, `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process's resident set size in KiB (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}

/// Parses JSON like a strict consumer does: an object with a repeated key is an error (serde_json
/// alone keeps the last value silently).
pub fn parse_json_strict(text: &str) -> Result<serde_json::Value, String> {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;

    struct Strict(Value);
    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Strict;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<Strict, E> {
            Ok(Strict(Value::Bool(v)))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Strict, E> {
            Ok(Strict(Value::String(v.to_owned())))
        }
        fn visit_unit<E: Error>(self) -> Result<Strict, E> {
            Ok(Strict(Value::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
            let mut out = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Strict(Value::Array(out)))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some((k, Strict(v))) = map.next_entry::<String, Strict>()? {
                if out.contains_key(&k) {
                    return Err(A::Error::custom(format!("duplicate key {k:?}")));
                }
                out.insert(k, v);
            }
            Ok(Strict(Value::Object(out)))
        }
    }

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor)
        }
    }

    serde_json::from_str::<Strict>(text)
        .map(|s| s.0)
        .map_err(|e| e.to_string())
}

/// A blocking HTTP GET of a loopback URL, bounded by 10 s: status and body.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    http_get_with(url, &[])
}

/// [`http_get`] with request headers.
pub fn http_get_with(url: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.ok()?;
        let status = res.status().as_u16();
        Some((status, res.text().await.ok()?))
    })
}

/// Waits (bounded) until `url` answers 2xx.
pub fn wait_http(url: &str, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if matches!(http_get(url), Some((200..=299, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not answer within {limit:?}");
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
