//! Orchestration service miniature (:3000): the API gateway. It calls the audio and
//! translation services over HTTP, each behind its own circuit breaker, serves a WebSocket
//! endpoint where every connection is a translation session, and checks both upstreams.
//!
//! `cargo run --example orchestration-service` (PORT overrides the port;
//! AUDIO_SERVICE_URL and TRANSLATION_SERVICE_URL point at the upstreams).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use livetranslate_telemetry::breaker::BreakerConfig;
use livetranslate_telemetry::client::UpstreamError;
use livetranslate_telemetry::context::RequestContext;
use livetranslate_telemetry::health::HealthCheck;
use livetranslate_telemetry::registry::WebSocketGuard;
use livetranslate_telemetry::{RequestId, Telemetry};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone)]
struct Upstream {
    name: &'static str,
    base: String,
    client: livetranslate_telemetry::client::Upstream,
}

#[derive(Clone)]
struct AppState {
    client: reqwest::Client,
    audio: Upstream,
    translation: Upstream,
    telemetry: Telemetry,
}

#[derive(Debug)]
enum GatewayError {
    Open(&'static str),
    Unavailable(&'static str, String),
    Rejected(&'static str, StatusCode, String),
}

impl GatewayError {
    fn status_and_body(&self) -> (StatusCode, Value) {
        match self {
            GatewayError::Open(up) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "circuit_open", "upstream": up }),
            ),
            GatewayError::Unavailable(up, why) => (
                StatusCode::BAD_GATEWAY,
                json!({ "error": "upstream_unavailable", "upstream": up, "detail": why }),
            ),
            GatewayError::Rejected(up, code, body) => (
                *code,
                json!({ "error": "rejected_by_upstream", "upstream": up, "detail": body }),
            ),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (code, body) = self.status_and_body();
        (code, Json(body)).into_response()
    }
}

/// Calls `path` on an upstream through its instrumented client: the breaker counts 5xx,
/// timeouts and connection errors as failures; 4xx answers are the caller's fault. The
/// incoming request's id and trace context travel along automatically.
async fn call<T: DeserializeOwned>(
    client: &reqwest::Client,
    up: &Upstream,
    path: &str,
    body: &impl Serialize,
) -> Result<T, GatewayError> {
    let res = up
        .client
        .send(client.post(format!("{}{}", up.base, path)).json(body))
        .await
        .map_err(|e| match e {
            UpstreamError::Open(_) => GatewayError::Open(up.name),
            other => GatewayError::Unavailable(up.name, other.to_string()),
        })?;
    let status = res.status();
    if status.is_server_error() {
        return Err(GatewayError::Unavailable(
            up.name,
            format!("status {status}"),
        ));
    }
    if !status.is_success() {
        let text = res.text().await.unwrap_or_default();
        let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        return Err(GatewayError::Rejected(up.name, code, text));
    }
    res.json::<T>()
        .await
        .map_err(|e| GatewayError::Unavailable(up.name, format!("bad body: {e}")))
}

#[derive(Deserialize, Serialize)]
struct PipelineRequest {
    speech: String,
    #[serde(default = "default_target")]
    target: String,
}

fn default_target() -> String {
    "es".to_owned()
}

#[derive(Deserialize)]
struct Transcript {
    transcript: String,
    confidence: f64,
}

#[derive(Deserialize)]
struct Translation {
    translation: String,
    quality: f64,
}

async fn run_pipeline(state: &AppState, req: &PipelineRequest) -> Result<Value, GatewayError> {
    let transcript: Transcript = call(
        &state.client,
        &state.audio,
        "/api/audio/transcribe",
        &json!({ "speech": req.speech, "language": "en" }),
    )
    .await?;
    let translation: Translation = call(
        &state.client,
        &state.translation,
        "/api/translate",
        &json!({ "text": transcript.transcript, "source": "en", "target": req.target }),
    )
    .await?;
    Ok(json!({
        "transcript": transcript.transcript,
        "confidence": transcript.confidence,
        "translation": translation.translation,
        "quality": translation.quality,
    }))
}

async fn pipeline(
    State(state): State<AppState>,
    Json(req): Json<PipelineRequest>,
) -> Result<Json<Value>, GatewayError> {
    run_pipeline(&state, &req).await.map(Json)
}

async fn upstreams(State(state): State<AppState>) -> Json<Value> {
    // The URLs as configured, without credentials (`user:password@`, token parameters).
    let describe = |u: &Upstream| {
        json!({
            "url": livetranslate_push::redact_url(&u.base),
            "breaker": u.client.breaker().state().as_str(),
        })
    };
    Json(json!({
        "audio": describe(&state.audio),
        "translation": describe(&state.translation),
        "websocket_connections": state.telemetry.websockets().active(),
        "websocket_limit": state.telemetry.websockets().limit(),
    }))
}

/// Per-connection WebSocket buffers, sized for 10,000 idle connections. tungstenite's
/// defaults (a 128 KiB read buffer, zero-filled on the first read, so resident) made each
/// idle connection cost ~130 KiB: 1.3 GiB at the limit. Pipeline messages are well under
/// 1 KiB; a longer one is read in several turns.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Replies are written (flushed) one at a time; this is only the batching threshold.
const WS_WRITE_BUFFER: usize = 8 * 1024;
/// A client that stops reading cannot make the gateway buffer more than this.
const WS_MAX_WRITE_BUFFER: usize = 256 * 1024;
/// The largest pipeline request accepted (tungstenite's default is 64 MiB).
const WS_MAX_MESSAGE: usize = 64 * 1024;

async fn websocket(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
) -> Response {
    match state.telemetry.websockets().try_open() {
        // The session outlives the upgrade request: carry its id into the session's calls.
        Ok(guard) => ws
            .read_buffer_size(WS_READ_BUFFER)
            .write_buffer_size(WS_WRITE_BUFFER)
            .max_write_buffer_size(WS_MAX_WRITE_BUFFER)
            .max_message_size(WS_MAX_MESSAGE)
            .max_frame_size(WS_MAX_MESSAGE)
            .on_upgrade(move |socket| {
                RequestContext {
                    request_id: Some(id.header_value().clone()),
                    traceparent: None,
                }
                .scope(session(socket, guard, state))
            }),
        // Counted in livetranslate_websocket_connections_rejected_total by try_open; no
        // session was started, so none is counted as created or failed.
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// One WebSocket connection = one session: each text message is a pipeline request.
async fn session(mut socket: WebSocket, _guard: WebSocketGuard, state: AppState) {
    let session = state.telemetry.sessions().start();
    let mut failed = false;
    tracing::info!("session started");
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(text) => match serde_json::from_str::<PipelineRequest>(&text) {
                // Boxed: inline, the pipeline's state (two outbound calls) would make every
                // idle session's future ~3.5 KiB bigger (4.7 KiB in all, debug build).
                Ok(req) => match Box::pin(run_pipeline(&state, &req)).await {
                    Ok(v) => v,
                    Err(e) => {
                        failed = true;
                        e.status_and_body().1
                    }
                },
                Err(e) => json!({ "error": "bad_request", "detail": e.to_string() }),
            },
            Message::Close(_) => break,
            _ => continue,
        };
        if socket
            .send(Message::Text(reply.to_string().into()))
            .await
            .is_err()
        {
            failed = true;
            break;
        }
    }
    tracing::info!(failed, "session ended");
    if failed {
        session.fail("upstream_error");
    }
}

fn upstream_check(client: &reqwest::Client, name: &str, base: &str) -> HealthCheck {
    // Healthy only on a 2xx answer: an upstream answering 503 is down.
    HealthCheck::http_get(
        format!("{name}-service"),
        client,
        &format!("{base}/api/health/live"),
    )
    .timeout(Duration::from_secs(2))
}

fn env_url(var: &str, default: &str) -> anyhow::Result<String> {
    let value = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let trimmed = value.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        trimmed.starts_with("http://") || trimmed.starts_with("https://"),
        "invalid {var}={:?}: expected an http:// or https:// URL",
        livetranslate_push::redact_url(&value)
    );
    Ok(trimmed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let audio_url = env_url("AUDIO_SERVICE_URL", "http://127.0.0.1:5001")?;
    let translation_url = env_url("TRANSLATION_SERVICE_URL", "http://127.0.0.1:5003")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1))
        .build()?;
    let telemetry = Telemetry::builder("orchestration")
        .version(env!("CARGO_PKG_VERSION"))
        .health_check(upstream_check(&client, "audio", &audio_url))
        .health_check(upstream_check(&client, "translation", &translation_url))
        .build()?;
    let breaker = BreakerConfig {
        failure_threshold: 5,
        open_for: Duration::from_secs(10),
        ..Default::default()
    };
    let state = AppState {
        audio: Upstream {
            name: "audio",
            base: audio_url,
            client: telemetry.upstream("audio", breaker.clone())?,
        },
        translation: Upstream {
            name: "translation",
            base: translation_url,
            client: telemetry.upstream("translation", breaker)?,
        },
        client,
        telemetry: telemetry.clone(),
    };
    let app = Router::new()
        .route("/api/pipeline", post(pipeline))
        .route("/api/upstreams", get(upstreams))
        .route("/ws", get(websocket))
        .with_state(state);
    telemetry.serve(app, 3000).await?;
    Ok(())
}
