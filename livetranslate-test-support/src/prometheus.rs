//! A real Prometheus (Debian's package) on a free 127.0.0.1 port, with the remote-write
//! receiver on, and query helpers. Every method has a blocking form and an `_async` one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, http_get, urlencode};
use crate::process::{require, ChildGuard};

/// A running Prometheus; stopped on drop.
#[derive(Debug)]
pub struct Prometheus {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    flags: Vec<String>,
    guard: Option<ChildGuard>,
}

impl Prometheus {
    /// Writes `config` (YAML) to `dir/prometheus.yml`, starts Prometheus with its TSDB in
    /// `dir/tsdb` and waits (up to 60 s) until it is ready.
    pub fn start(dir: &Path, config: &str) -> Prometheus {
        Prometheus::start_with(dir, config, &[])
    }

    /// [`Prometheus::start`] with extra command-line flags (`--enable-feature=...`).
    pub fn start_with(dir: &Path, config: &str, flags: &[&str]) -> Prometheus {
        if let Err(e) = std::fs::write(dir.join("prometheus.yml"), config) {
            panic!("prometheus.yml: {e}");
        }
        let mut p = Prometheus {
            port: free_port(),
            dir: dir.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            guard: None,
        };
        p.launch();
        p
    }

    /// [`Prometheus::start`] from an async test.
    pub async fn start_async(dir: &Path, config: &str) -> Prometheus {
        Prometheus::start_with_async(dir, config, &[]).await
    }

    /// [`Prometheus::start_with`] from an async test.
    pub async fn start_with_async(dir: &Path, config: &str, flags: &[&str]) -> Prometheus {
        let (dir, config) = (dir.to_owned(), config.to_owned());
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        match tokio::task::spawn_blocking(move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Prometheus::start_with(&dir, &config, &flags)
        })
        .await
        {
            Ok(p) => p,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("prometheus.log"))
            .unwrap_or_else(|e| panic!("prometheus log: {e}"));
        let mut cmd = Command::new(require("prometheus"));
        cmd.arg(format!(
            "--config.file={}",
            self.dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            self.dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
        .arg("--web.enable-remote-write-receiver")
        .args(&self.flags)
        .stdout(Stdio::null())
        .stderr(log);
        self.guard = Some(ChildGuard::spawn(&mut cmd, "prometheus"));
        let ready = format!("{}/-/ready", self.url());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if matches!(http_get(&ready), Some((200, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        panic!("prometheus did not become ready: {}", tail.join(" | "));
    }

    /// Stops it (SIGTERM, then SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.terminate(Duration::from_secs(20));
        }
    }

    /// Stops it and starts it again on the same port and TSDB.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// [`Prometheus::restart`] from an async test.
    pub async fn restart_async(&mut self) {
        self.stop();
        let mut moved = Prometheus {
            port: self.port,
            dir: self.dir.clone(),
            flags: self.flags.clone(),
            guard: None,
        };
        moved = match tokio::task::spawn_blocking(move || {
            moved.launch();
            moved
        })
        .await
        {
            Ok(p) => p,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        self.guard = moved.guard.take();
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The remote-write endpoint.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    fn query_url(&self, q: &str, time: Option<f64>) -> String {
        let mut url = format!("{}/api/v1/query?query={}", self.url(), urlencode(q));
        if let Some(t) = time {
            url.push_str(&format!("&time={t:.3}"));
        }
        url
    }

    /// `GET /api/v1/<path>?<params>` from an async test: the answer's `data` (`Null` on any
    /// error), e.g. `api_async("targets", &[("state", "active".into())])`.
    pub async fn api_async(&self, path: &str, params: &[(&str, String)]) -> serde_json::Value {
        let Ok(resp) = crate::http_client()
            .get(format!("{}/api/v1/{path}", self.url()))
            .query(params)
            .send()
            .await
        else {
            return serde_json::Value::Null;
        };
        let text = resp.text().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["data"].clone()
    }

    /// An instant query (at `time`, Unix seconds, if given): `data.result`, or `None` on any
    /// error.
    pub fn query(&self, q: &str, time: Option<f64>) -> Option<Vec<serde_json::Value>> {
        let (code, body) = http_get(&self.query_url(q, time))?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"].as_array().cloned()
    }

    /// [`Prometheus::query`] from an async test (empty on any error).
    pub async fn query_async(&self, q: &str, time: Option<f64>) -> Vec<serde_json::Value> {
        let url = self.query_url(q, time);
        let Ok(resp) = crate::http_client().get(url).send().await else {
            return Vec::new();
        };
        let text = resp.text().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls a query until it returns at least one series or `within` passes.
    pub fn wait_for(&self, q: &str, within: Duration) -> Vec<serde_json::Value> {
        crate::eventually(within, || self.query(q, None).filter(|r| !r.is_empty()))
            .unwrap_or_default()
    }

    /// [`Prometheus::wait_for`] from an async test.
    pub async fn wait_for_async(&self, q: &str, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.query_async(q, None).await;
            if !r.is_empty() || Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(crate::POLL).await;
        }
    }
}

/// The value of an instant-vector element (NaN when absent).
pub fn value_of(v: &serde_json::Value) -> f64 {
    v["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}
