//! The agent's own test wrappers: a scrape target, a remote-write receiver that decodes with
//! the agent's decoder, and the agent binary as a process. The generic pieces (temp dirs,
//! ports, child processes, Prometheus, the Loki stand-in, polling) come from
//! `livetranslate-test-support`.
#![allow(dead_code)]

pub mod logs;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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
use livetranslate_test_support::{free_port, http_client, ChildGuard, ProcUsage};

/// A Prometheus configuration that scrapes nothing (it only receives remote writes).
pub const NO_SCRAPES: &str = "global: {scrape_interval: 1h}\n";

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
    /// Every path and query scraped, with how often.
    pub uris: Arc<Mutex<std::collections::BTreeMap<String, usize>>>,
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
            uris: Arc::default(),
        };
        async fn serve(
            State(t): State<Target>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
        ) -> impl IntoResponse {
            t.hits.fetch_add(1, Ordering::Relaxed);
            *t.last_uri.lock().expect("lock") = uri.to_string();
            *t.uris
                .lock()
                .expect("lock")
                .entry(uri.to_string())
                .or_default() += 1;
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
    /// Starts the agent with `args` (plus `--listen` on a free port, logs at `RUST_LOG`
    /// level `log_level`) without waiting for it: for tests that kill and restart it.
    ///
    /// Unless `args` name one, the agent's write-ahead log goes to a directory of its own in
    /// `dir` (never the system default, which concurrent tests would share).
    pub fn spawn(dir: &Path, args: &[&str], log_level: &str) -> Agent {
        let port = free_port();
        let stderr = dir.join(format!("agent-{port}.log"));
        let log = std::fs::File::create(&stderr).expect("agent log");
        let mut cmd = Agent::command(args);
        if !args.contains(&"--wal-dir") {
            cmd.arg("--wal-dir").arg(dir.join(format!("wal-{port}")));
        }
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", log_level)
            .stdout(Stdio::null())
            .stderr(log);
        Agent {
            port,
            guard: ChildGuard::spawn(&mut cmd, "agent"),
            stderr,
        }
    }

    /// The agent's command with `args`, without the environment variables a configuration
    /// can come from (the test's own environment must not leak into it).
    pub fn command(args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_livetranslate-agent"));
        cmd.args(args).stdin(Stdio::null());
        for var in [
            "SCRAPE_TARGETS",
            "PROMETHEUS_REMOTE_WRITE_URL",
            "AGENT_CONFIG",
            "PROMTAIL_CONFIG",
            "LOKI_URL",
            "AGENT_WAL_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs the agent with `args` and the environment `env` to its end (a check, a bad
    /// configuration, a flag error).
    pub fn output(args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Agent::command(args);
        cmd.envs(env.iter().copied());
        match cmd.output() {
            Ok(o) => o,
            Err(e) => panic!("run agent: {e}"),
        }
    }

    /// [`Agent::output`] without environment: the exit code (-1 for a signal) and stdout
    /// followed by stderr.
    pub fn run(args: &[&str]) -> (i32, String) {
        let out = Agent::output(args, &[]);
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Starts the agent with the configuration file `config`, scraping `target` every
    /// `interval` and pushing to the remote-write URL `receiver`; waits for `/ready`.
    pub async fn start_scraping(
        dir: &Path,
        config: &str,
        target: &str,
        interval: &str,
        receiver: &str,
    ) -> Agent {
        let args = [
            "--config",
            config,
            "--scrape-target",
            target,
            "--scrape-interval",
            interval,
            "--remote-write-url",
            receiver,
        ];
        Agent::start(dir, &args).await
    }

    /// Starts the agent with `args` (plus `--listen`) and waits for `/ready`.
    pub async fn start(dir: &Path, args: &[&str]) -> Agent {
        let mut agent = Agent::spawn(dir, args, "info");
        let ok = livetranslate_test_support::wait_ok(&agent.url("/ready"), Duration::from_secs(20))
            .await;
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

    /// SIGHUP: reload the configuration.
    pub fn hup(&self) {
        self.guard.signal(libc::SIGHUP);
    }

    /// Asks for a reload over HTTP (`method` on `path`); the status and the answer.
    pub fn reload_http(&self, method: &str, path: &str) -> (u16, String) {
        let url = self.url(path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        // A thread of its own: usable from sync and async tests alike.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                match http_client().request(method, url).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.text().await.unwrap_or_default())
                    }
                    Err(e) => (0, e.to_string()),
                }
            })
        })
        .join()
        .expect("reload request thread")
    }

    /// The value of one of the agent's own series (blocking), summed over the series whose
    /// labels contain `label` (`""`: all).
    pub fn metric_sum(&self, name: &str, label: &str) -> f64 {
        self.metrics_text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// SIGKILL: no chance to flush or save anything.
    pub fn kill9(&mut self) {
        self.guard.kill();
    }

    /// SIGTERM, and the exit status (fails the test if it does not stop within 30 s).
    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        match self.guard.terminate(Duration::from_secs(30)) {
            Some(status) => status,
            None => panic!("agent did not stop on SIGTERM:\n{}", self.log()),
        }
    }

    /// Resident memory now.
    pub fn rss_bytes(&self) -> Option<u64> {
        ProcUsage::of(self.guard.id()?).map(|u| u.rss_bytes)
    }

    /// The agent's own metrics, as text (blocking: for tests without a runtime).
    pub fn metrics_text(&self) -> String {
        livetranslate_test_support::http_get(&self.url("/metrics"))
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The agent's own metrics, parsed.
    pub async fn metrics(&self) -> Vec<ParsedSample> {
        let Ok(resp) = http_client().get(self.url("/metrics")).send().await else {
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
