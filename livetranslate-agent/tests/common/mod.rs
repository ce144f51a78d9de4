//! Helpers shared by the integration tests: temp dirs, free ports, child processes that die
//! with the test, a scrape target, a remote-write receiver, a real Prometheus, and the agent.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use livetranslate_agent::metrics::exposition::{self, Format, ParsedSample};
use livetranslate_agent::metrics::remote_write::{decode_body, proto};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "lt-agent-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard {
    pub child: Option<Child>,
    pub name: String,
}

impl ChildGuard {
    pub fn new(child: Child, name: &str) -> Self {
        ChildGuard {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `prometheus` binary on PATH; fails the test with a clear message if missing.
pub fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("prometheus");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "the `prometheus` binary is not on PATH: these tests need a real Prometheus (2.x with \
         --web.enable-remote-write-receiver); install it (e.g. `apt-get install prometheus`)"
    );
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Polls `url` until it answers 2xx or `within` passes.
pub async fn wait_ok(url: &str, within: Duration) -> bool {
    let client = http();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A real Prometheus with the remote-write receiver and no scrape configs.
pub struct Prometheus {
    pub port: u16,
    dir: PathBuf,
    guard: Option<ChildGuard>,
    /// Flags added to the command line (see [`Prometheus::start_with`]).
    extra_args: Vec<String>,
}

impl Prometheus {
    pub async fn start(dir: &Path) -> Prometheus {
        Prometheus::start_with(dir, "global: {scrape_interval: 1h}\n", &[]).await
    }

    /// A real Prometheus running `config` (the text of `prometheus.yml`) with `extra_args`
    /// added to its command line.
    pub async fn start_with(dir: &Path, config: &str, extra_args: &[&str]) -> Prometheus {
        let mut p = Prometheus {
            port: free_port(),
            dir: dir.to_owned(),
            guard: None,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
        };
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        p.launch().await;
        p
    }

    async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("prometheus.log"))
            .expect("prometheus log");
        let child = Command::new(prometheus_binary())
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--web.enable-remote-write-receiver")
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        self.guard = Some(ChildGuard::new(child, "prometheus"));
        let ready = wait_ok(
            &format!("http://127.0.0.1:{}/-/ready", self.port),
            Duration::from_secs(60),
        )
        .await;
        assert!(ready, "prometheus did not become ready:\n{}", self.log());
    }

    pub fn stop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.terminate(Duration::from_secs(20));
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant query (at `time`, Unix seconds, if given) and returns `data.result`.
    pub async fn query(&self, q: &str, time: Option<f64>) -> Vec<serde_json::Value> {
        let mut params = vec![("query", q.to_owned())];
        if let Some(t) = time {
            params.push(("time", format!("{t:.3}")));
        }
        let resp = http()
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&params)
            .send()
            .await;
        let Ok(resp) = resp else {
            return Vec::new();
        };
        let text = resp.text().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// `GET /api/v1/<path>` with `params`; returns the `data` member of the answer (`Null` when
    /// the request fails).
    pub async fn api(&self, path: &str, params: &[(&str, String)]) -> serde_json::Value {
        let resp = http()
            .get(format!("http://127.0.0.1:{}/api/v1/{path}", self.port))
            .query(params)
            .send()
            .await;
        let Ok(resp) = resp else {
            return serde_json::Value::Null;
        };
        let text = resp.text().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["data"].clone()
    }

    /// Polls a query until it returns at least one series or `within` passes.
    pub async fn wait_for(&self, q: &str, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.query(q, None).await;
            if !r.is_empty() || Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The value of an instant-vector element.
pub fn value_of(v: &serde_json::Value) -> f64 {
    v["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// An HTTP server serving changeable exposition bodies at any path.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub body: Arc<Mutex<(String, String)>>,
    pub hits: Arc<AtomicUsize>,
    /// The request headers of the latest scrape.
    pub last_headers: Arc<Mutex<Option<axum::http::HeaderMap>>>,
    /// The path and query of the latest scrape.
    pub last_uri: Arc<Mutex<String>>,
}

impl Target {
    pub async fn start(body: &str) -> Target {
        let state = Target {
            addr: "127.0.0.1:0".parse().expect("addr"),
            body: Arc::new(Mutex::new((
                body.to_owned(),
                "text/plain; version=0.0.4; charset=utf-8".to_owned(),
            ))),
            hits: Arc::new(AtomicUsize::new(0)),
            last_headers: Arc::default(),
            last_uri: Arc::default(),
        };
        async fn serve(
            State(t): State<Target>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
        ) -> impl IntoResponse {
            t.hits.fetch_add(1, Ordering::Relaxed);
            *t.last_uri.lock().expect("lock") = uri.to_string();
            *t.last_headers.lock().expect("lock") = Some(headers);
            let (body, ct) = t.body.lock().expect("lock").clone();
            ([(header::CONTENT_TYPE, ct)], body)
        }
        let app = Router::new().fallback(get(serve)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind target");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Target { addr, ..state }
    }

    pub fn set(&self, body: &str, content_type: &str) {
        *self.body.lock().expect("lock") = (body.to_owned(), content_type.to_owned());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A header of the latest scrape request.
    pub fn header(&self, name: &str) -> Option<String> {
        let h = self.last_headers.lock().expect("lock");
        h.as_ref()?
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// An HTTP server answering `GET <path>` with a fixed body and `Content-Type` (no header when
/// `None`) for each path it was given, and 404 for any other path.
#[derive(Clone)]
pub struct BodyServer {
    pub addr: SocketAddr,
}

/// The routes of a [`BodyServer`]: path → (`Content-Type`, body).
pub type Bodies = std::collections::HashMap<String, (Option<String>, Vec<u8>)>;

impl BodyServer {
    pub async fn start(bodies: Bodies) -> BodyServer {
        let bodies = Arc::new(bodies);
        let app = Router::new().fallback(get(move |uri: axum::http::Uri| {
            let bodies = bodies.clone();
            async move {
                let Some((content_type, body)) = bodies.get(uri.path()) else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                let mut resp = axum::http::Response::builder().status(StatusCode::OK);
                if let Some(ct) = content_type {
                    resp = resp.header(header::CONTENT_TYPE, ct.as_str());
                }
                resp.body(axum::body::Body::from(body.clone()))
                    .expect("response")
                    .into_response()
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind body server");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        BodyServer { addr }
    }
}

/// A scripted answer: status code and optional `Retry-After` value.
pub type Reply = (u16, Option<String>);

/// A received sample: series labels, timestamp (ms), value.
pub type Received = (Vec<(String, String)>, i64, f64);

/// A remote-write receiver that decodes and records every request and answers with scripted
/// status codes (then `default_status`).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<proto::WriteRequest>>>,
    pub headers: Arc<Mutex<Vec<axum::http::HeaderMap>>>,
    /// When each request arrived.
    pub times: Arc<Mutex<Vec<Instant>>>,
    pub script: Arc<Mutex<VecDeque<Reply>>>,
    pub default_status: u16,
}

impl Receiver {
    pub async fn start(default_status: u16, script: Vec<Reply>) -> Receiver {
        let state = Receiver {
            addr: "127.0.0.1:0".parse().expect("addr"),
            requests: Arc::default(),
            headers: Arc::default(),
            times: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            default_status,
        };
        async fn write(
            State(r): State<Receiver>,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> impl IntoResponse {
            let decoded = decode_body(&body);
            let Ok(req) = decoded else {
                return (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    [(header::RETRY_AFTER, String::new())],
                    "cannot decode".to_owned(),
                );
            };
            r.requests.lock().expect("lock").push(req);
            r.headers.lock().expect("lock").push(headers);
            r.times.lock().expect("lock").push(Instant::now());
            let (status, retry_after) = r
                .script
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or((r.default_status, None));
            let status = StatusCode::from_u16(status).expect("status");
            (
                status,
                [(header::RETRY_AFTER, retry_after.unwrap_or_default())],
                if status.is_success() {
                    String::new()
                } else {
                    format!("test receiver says {status}")
                },
            )
        }
        let app = Router::new()
            .route("/api/v1/write", post(write))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, ..state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    /// Every (series labels, timestamp, value) received, in arrival order.
    pub fn samples(&self) -> Vec<Received> {
        let reqs = self.requests.lock().expect("lock");
        let mut out = Vec::new();
        for r in reqs.iter() {
            for ts in &r.timeseries {
                let labels: Vec<(String, String)> = ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                for s in &ts.samples {
                    out.push((labels.clone(), s.timestamp, s.value));
                }
            }
        }
        out
    }
}

/// A running agent process.
pub struct Agent {
    pub port: u16,
    pub guard: ChildGuard,
    pub stderr: PathBuf,
}

impl Agent {
    /// Starts the agent with `args` (plus `--listen`) and waits for `/ready`.
    pub async fn start(dir: &Path, args: &[&str]) -> Agent {
        let port = free_port();
        let stderr = dir.join(format!("agent-{port}.log"));
        let log = std::fs::File::create(&stderr).expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_livetranslate-agent"))
            .args(args)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("SCRAPE_TARGETS")
            .env_remove("PROMETHEUS_REMOTE_WRITE_URL")
            .env_remove("AGENT_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start agent");
        let mut agent = Agent {
            port,
            guard: ChildGuard::new(child, "agent"),
            stderr,
        };
        let ok = wait_ok(&agent.url("/ready"), Duration::from_secs(20)).await;
        assert!(ok, "agent not ready:\n{}", agent.log());
        assert!(agent.guard.running(), "agent exited:\n{}", agent.log());
        agent
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The agent's own metrics, parsed.
    pub async fn metrics(&self) -> Vec<ParsedSample> {
        let Ok(resp) = http().get(self.url("/metrics")).send().await else {
            return Vec::new();
        };
        let body = resp.bytes().await.unwrap_or_default();
        exposition::parse(&body, Format::Text).expect("agent /metrics parses")
    }

    /// The value of one of the agent's own series (matching all of `labels`), or NaN.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics()
            .await
            .into_iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map_or(f64::NAN, |s| s.value)
    }
}

/// Polls `cond` every 200 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
