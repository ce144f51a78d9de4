//! Audio service miniature (:5001): "transcribes" audio chunks. Its health check proves the
//! spool directory where chunks are staged is writable.
//!
//! `cargo run --example audio-service` (PORT overrides the port; see the README for the
//! telemetry environment variables).
//!
//! Fault injection, for demos and tests only, is off unless `AUDIO_FAULT_INJECTION=1`: then
//! `POST /api/audio/faults {"fail_for_ms": 8000}` makes `/api/audio/transcribe` answer 503
//! for that long (`0` ends it early), so the gateway's circuit breaker can be tripped on
//! purpose. Without the variable the route does not exist (404).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use livetranslate_telemetry::health::HealthCheck;
use livetranslate_telemetry::registry::Counter;
use livetranslate_telemetry::Telemetry;
use serde::{Deserialize, Serialize};

#[derive(Clone)]
struct AppState {
    spool: PathBuf,
    chunks: Counter,
    /// Until when transcription fails on purpose (fault injection).
    failing_until: Arc<Mutex<Option<Instant>>>,
}

impl AppState {
    fn injected_fault(&self) -> Option<Duration> {
        let until = (*self.failing_until.lock().unwrap_or_else(|e| e.into_inner()))?;
        until.checked_duration_since(Instant::now())
    }
}

#[derive(Deserialize)]
struct TranscribeRequest {
    /// Stands in for audio samples: the words "spoken" in the chunk.
    speech: String,
    #[serde(default = "default_language")]
    language: String,
}

fn default_language() -> String {
    "en".to_owned()
}

#[derive(Serialize)]
struct Transcript {
    transcript: String,
    language: String,
    confidence: f64,
    processing_ms: u64,
}

async fn transcribe(
    State(state): State<AppState>,
    Json(req): Json<TranscribeRequest>,
) -> Result<Json<Transcript>, (StatusCode, String)> {
    if let Some(left) = state.injected_fault() {
        tracing::warn!(
            remaining_ms = left.as_millis() as u64,
            "injected fault: transcription unavailable"
        );
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "transcription model unavailable (injected fault)".to_owned(),
        ));
    }
    let words: Vec<&str> = req.speech.split_whitespace().collect();
    if words.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "empty audio chunk".to_owned()));
    }
    if words.len() > 500 {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunk over 500 words".to_owned(),
        ));
    }
    // Stage the chunk like the real service does before feeding the model.
    let path = state
        .spool
        .join(format!("chunk-{}.txt", std::process::id()));
    tokio::fs::write(&path, req.speech.as_bytes())
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("spool: {e}")))?;
    let processing = Duration::from_millis(2 + words.len() as u64);
    tokio::time::sleep(processing).await;
    state.chunks.inc();
    tracing::info!(words = words.len(), language = %req.language, "chunk transcribed");
    let confidence = 0.99 - 0.02 * (words.iter().filter(|w| w.len() > 9).count() as f64);
    Ok(Json(Transcript {
        transcript: words.join(" ").to_lowercase(),
        language: req.language,
        confidence: confidence.clamp(0.5, 0.99),
        processing_ms: processing.as_millis() as u64,
    }))
}

/// The longest fault that can be injected at once.
const MAX_FAULT: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct FaultRequest {
    fail_for_ms: u64,
}

async fn inject_fault(
    State(state): State<AppState>,
    Json(req): Json<FaultRequest>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let span = Duration::from_millis(req.fail_for_ms);
    if span > MAX_FAULT {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("fail_for_ms is at most {}", MAX_FAULT.as_millis()),
        ));
    }
    *state
        .failing_until
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = (!span.is_zero()).then(|| Instant::now() + span);
    if span.is_zero() {
        tracing::warn!("injected fault cleared");
    } else {
        tracing::warn!(
            fail_for_ms = req.fail_for_ms,
            "fault injected: transcription answers 503"
        );
    }
    Ok(Json(serde_json::json!({ "fail_for_ms": req.fail_for_ms })))
}

async fn models() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "models": ["whisper-base-cpu", "whisper-small-cpu"] }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let spool = std::env::temp_dir().join(format!("audio-spool-{}", std::process::id()));
    std::fs::create_dir_all(&spool)?;
    let probe_dir = spool.clone();
    let telemetry = Telemetry::builder("audio")
        .version(env!("CARGO_PKG_VERSION"))
        .health_check(HealthCheck::new("spool-directory", move || {
            let probe = probe_dir.join(".health-probe");
            async move {
                tokio::fs::write(&probe, b"ok").await?;
                tokio::fs::remove_file(&probe).await?;
                Ok(())
            }
        }))
        .build()?;
    let chunks = telemetry
        .metrics()
        .counter(
            "livetranslate_audio_chunks_transcribed_total",
            "Audio chunks transcribed.",
            &[],
        )?
        .with(&[])?;
    let mut app = Router::new()
        .route("/api/audio/transcribe", post(transcribe))
        .route("/api/audio/models", get(models));
    let faults = std::env::var("AUDIO_FAULT_INJECTION").unwrap_or_default();
    match faults.as_str() {
        "" | "0" | "false" => {}
        "1" | "true" => {
            tracing::warn!("fault injection enabled: POST /api/audio/faults");
            app = app.route("/api/audio/faults", post(inject_fault));
        }
        other => anyhow::bail!("invalid AUDIO_FAULT_INJECTION={other:?}: expected 1 or 0"),
    }
    let app = app.with_state(AppState {
        spool,
        chunks,
        failing_until: Arc::new(Mutex::new(None)),
    });
    telemetry.serve(app, 5001).await?;
    Ok(())
}
