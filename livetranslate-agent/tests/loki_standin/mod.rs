//! A Loki stand-in for tests: accepts `POST /loki/api/v1/push` in the real wire format
//! (snappy block-compressed protobuf `logproto.PushRequest`), decodes it with its own
//! protobuf reader (independent of the agent's types, so a field-number mistake shows),
//! records every entry, and can be told to answer 429, 500 or 400, or to be down.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

/// One received entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub labels: String,
    pub timestamp_ns: i64,
    pub line: String,
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Ok,
    /// Answer this status without recording.
    Status(u16),
}

#[derive(Default)]
struct Inner {
    entries: Vec<Received>,
    requests: Vec<u16>,
    mode: Option<Mode>,
    tenant: Vec<Option<String>>,
    auth: Vec<Option<String>>,
}

#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Inner>>);

pub struct LokiStandIn {
    pub addr: SocketAddr,
    shared: Shared,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Runtime,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One protobuf field: number, wire type, payload (length-delimited) and value (varint).
type Field<'a> = (u64, u8, &'a [u8], u64);

/// The fields of a protobuf message.
fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => {
                let v = varint(buf, &mut pos)?;
                out.push((field, 0, &buf[0..0], v));
            }
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos.checked_add(len)?;
                out.push((field, 2, buf.get(pos..end)?, 0));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => return None,
        }
    }
    Some(out)
}

/// Decodes `logproto.PushRequest` (streams=1 → labels=1, entries=2 → timestamp=1
/// {seconds=1, nanos=2}, line=2).
pub fn decode_push(body: &[u8]) -> Result<Vec<Received>, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let mut out = Vec::new();
    for (f, w, stream, _) in fields(&raw).ok_or("bad protobuf")? {
        if (f, w) != (1, 2) {
            continue;
        }
        let sf = fields(stream).ok_or("bad stream")?;
        let labels = sf
            .iter()
            .find(|(f, w, _, _)| (*f, *w) == (1, 2))
            .map(|(_, _, b, _)| String::from_utf8_lossy(b).into_owned())
            .ok_or("stream without labels")?;
        for (_, _, entry, _) in sf.iter().filter(|(f, w, _, _)| (*f, *w) == (2, 2)) {
            let ef = fields(entry).ok_or("bad entry")?;
            let mut ts = 0i64;
            let mut line = String::new();
            for (f, w, b, _) in ef {
                match (f, w) {
                    (1, 2) => {
                        let tf = fields(b).ok_or("bad timestamp")?;
                        let secs = tf.iter().find(|t| t.0 == 1).map_or(0, |t| t.3 as i64);
                        let nanos = tf.iter().find(|t| t.0 == 2).map_or(0, |t| t.3 as i64);
                        ts = secs * 1_000_000_000 + nanos;
                    }
                    (2, 2) => line = String::from_utf8(b.to_vec()).map_err(|_| "line not UTF-8")?,
                    _ => {}
                }
            }
            out.push(Received {
                labels: labels.clone(),
                timestamp_ns: ts,
                line,
            });
        }
    }
    Ok(out)
}

async fn push(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mode = shared.0.lock().expect("lock").mode.unwrap_or(Mode::Ok);
    let code = match mode {
        Mode::Status(code) => {
            shared.0.lock().expect("lock").requests.push(code);
            let msg = match code {
                429 => "Ingestion rate limit exceeded",
                400 => "entry too far behind",
                _ => "internal error",
            };
            return (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                msg.to_owned(),
            );
        }
        Mode::Ok => 204,
    };
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        shared.0.lock().expect("lock").requests.push(415);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-protobuf".into(),
        );
    }
    match decode_push(&body) {
        Ok(entries) => {
            let mut inner = shared.0.lock().expect("lock");
            inner.requests.push(code);
            inner.entries.extend(entries);
            inner.tenant.push(
                headers
                    .get("x-scope-orgid")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            );
            inner.auth.push(
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            );
            (StatusCode::NO_CONTENT, String::new())
        }
        Err(e) => {
            shared.0.lock().expect("lock").requests.push(400);
            (StatusCode::BAD_REQUEST, e)
        }
    }
}

impl LokiStandIn {
    /// Starts on a free 127.0.0.1 port.
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut s = LokiStandIn {
            addr,
            shared: Shared::default(),
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

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.0.lock().expect("lock").mode = Some(mode);
    }

    /// Stops listening: connections are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = self.rt.block_on(t);
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match self.rt.block_on(tokio::net::TcpListener::bind(self.addr)) {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot listen again on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    pub fn entries(&self) -> Vec<Received> {
        self.shared.0.lock().expect("lock").entries.clone()
    }

    /// Entries received so far (without copying them).
    pub fn count(&self) -> usize {
        self.shared.0.lock().expect("lock").entries.len()
    }

    pub fn requests(&self) -> Vec<u16> {
        self.shared.0.lock().expect("lock").requests.clone()
    }

    pub fn tenants(&self) -> Vec<Option<String>> {
        self.shared.0.lock().expect("lock").tenant.clone()
    }

    pub fn auths(&self) -> Vec<Option<String>> {
        self.shared.0.lock().expect("lock").auth.clone()
    }
}
