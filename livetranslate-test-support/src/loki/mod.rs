//! A Loki stand-in for tests (Loki has no Debian package): `POST /loki/api/v1/push` in the
//! real wire format (snappy block-compressed protobuf, decoded by its own [`wire`] reader),
//! stored as Loki stores ([`store`]: one entry per distinct labels, timestamp and line), and
//! scriptable to answer 429, 500 or 400 with Loki's own error messages, or to be down.

pub mod store;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

pub use store::{Duplicates, Store};
pub use wire::{decode_push, Received};

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Store and answer 204, as Loki does.
    Ok,
    /// Answer this status with Loki's message for it, storing nothing.
    Status(u16),
}

/// Loki's message for a refusal with `status` (from its distributor and ingester).
pub fn loki_error_body(status: u16) -> &'static str {
    match status {
        429 => "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest '1000' lines totaling '1048576' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\n",
        400 => "entry with timestamp 2026-01-01 00:00:00 +0000 UTC ignored, reason: 'entry too far behind, oldest acceptable timestamp is: 2026-01-01T01:00:00Z'\n",
        413 => "Request body too large: 10485760 bytes, limit: 4194304 bytes\n",
        _ => "at least 1 live replicas required, could only find 0 - unhealthy instances: 127.0.0.1:9095\n",
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<u16>,
    mode: Option<Mode>,
    script: VecDeque<u16>,
    tenant: Vec<Option<String>>,
    auth: Vec<Option<String>>,
}

/// The state the handler and the accessors share. Accepted batches are stored by a thread
/// of their own, off the response path (as Loki's ingesters work while its distributor
/// answers the next request); every accessor first waits until all acknowledged batches are
/// stored, so a test sees everything Loki acknowledged.
#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    store: Arc<Mutex<Store>>,
    to_store: mpsc::Sender<Vec<Received>>,
    accepted: Arc<AtomicU64>,
    stored: Arc<AtomicU64>,
}

impl Shared {
    fn new() -> Shared {
        let (to_store, batches) = mpsc::channel::<Vec<Received>>();
        let store = Arc::new(Mutex::new(Store::default()));
        let stored = Arc::new(AtomicU64::new(0));
        let (s, n) = (store.clone(), stored.clone());
        std::thread::spawn(move || {
            // Ends when the last sender (the stand-in) is gone.
            for batch in batches {
                let mut store = s.lock().unwrap_or_else(|e| e.into_inner());
                for e in batch {
                    store.add(e);
                }
                drop(store);
                n.fetch_add(1, Ordering::Release);
            }
        });
        Shared {
            inner: Arc::default(),
            store,
            to_store,
            accepted: Arc::default(),
            stored,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store, once every acknowledged batch is in it (waits at most 30 s).
    fn settled(&self) -> MutexGuard<'_, Store> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stored.load(Ordering::Acquire) < self.accepted.load(Ordering::Acquire)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running stand-in on 127.0.0.1, on a runtime of its own (usable from any test).
pub struct LokiStandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Shared,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Runtime,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn push(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let scripted = {
        let mut inner = shared.lock();
        match inner.script.pop_front() {
            Some(code) => Mode::Status(code),
            None => inner.mode.unwrap_or(Mode::Ok),
        }
    };
    if let Mode::Status(code) = scripted {
        shared.lock().requests.push(code);
        return (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            loki_error_body(code).to_owned(),
        );
    }
    if header(&headers, "content-type").as_deref() != Some("application/x-protobuf") {
        shared.lock().requests.push(415);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-protobuf\n".into(),
        );
    }
    match decode_push(&body) {
        Ok(mut entries) => {
            let tenant: Option<Arc<str>> = header(&headers, "x-scope-orgid").map(Arc::from);
            for e in &mut entries {
                e.tenant.clone_from(&tenant);
            }
            let mut inner = shared.lock();
            inner.requests.push(204);
            inner.tenant.push(header(&headers, "x-scope-orgid"));
            inner.auth.push(header(&headers, "authorization"));
            drop(inner);
            shared.accepted.fetch_add(1, Ordering::AcqRel);
            if shared.to_store.send(entries).is_err() {
                return (StatusCode::INTERNAL_SERVER_ERROR, "store stopped\n".into());
            }
            (StatusCode::NO_CONTENT, String::new())
        }
        Err(e) => {
            shared.lock().requests.push(400);
            (StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

impl LokiStandIn {
    /// Starts on a free 127.0.0.1 port.
    pub fn start() -> Self {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        Self::start_on(listener)
    }

    /// Starts on a listener bound elsewhere: in a network namespace of the test's own
    /// ([`crate::netns::NetNs::listener`]), say.
    pub fn start_on(listener: std::net::TcpListener) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        if let Err(e) = listener.set_nonblocking(true) {
            panic!("listener: {e}");
        }
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(listener).unwrap_or_else(|e| panic!("listener: {e}"))
        };
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let mut s = LokiStandIn {
            addr,
            shared: Shared::new(),
            task: None,
            rt,
        };
        s.serve(listener);
        s
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/loki/api/v1/push", post(push))
            .with_state(self.shared.clone());
        self.task = Some(self.rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// The base URL (`http://127.0.0.1:<port>`), as a Loki URL is configured.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How to answer from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().mode = Some(mode);
    }

    /// Answers the next pushes with these statuses, in order, then as the mode says.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared.lock().script.extend(statuses.iter().copied());
    }

    /// Stops listening: connections are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = self.rt.block_on(t);
        }
    }

    /// Listens again on the same port (127.0.0.1 only; a stand-in in a network namespace is
    /// cut off by its link instead).
    pub fn restart(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match self.rt.block_on(tokio::net::TcpListener::bind(self.addr)) {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot listen again on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// The entries stored (each distinct labels, timestamp and line once), in arrival order.
    pub fn entries(&self) -> Vec<Received> {
        self.shared.settled().entries().to_vec()
    }

    /// Distinct entries stored (cheap).
    pub fn count(&self) -> usize {
        self.shared.settled().count()
    }

    /// Entries received, re-sent duplicates included.
    pub fn received(&self) -> usize {
        self.shared.settled().received()
    }

    /// Distinct entries per stream (rendered label set → count).
    pub fn per_stream(&self) -> BTreeMap<String, usize> {
        self.shared.settled().per_stream()
    }

    /// Re-sent entries and lines stored in several streams.
    pub fn duplicates(&self) -> Duplicates {
        self.shared.settled().duplicates()
    }

    /// The status of every push, in order.
    pub fn requests(&self) -> Vec<u16> {
        self.shared.lock().requests.clone()
    }

    /// `X-Scope-OrgID` of every stored push.
    pub fn tenants(&self) -> Vec<Option<String>> {
        self.shared.lock().tenant.clone()
    }

    /// `Authorization` of every stored push.
    pub fn auths(&self) -> Vec<Option<String>> {
        self.shared.lock().auth.clone()
    }
}
