//! Translation service miniature (:5003): word-by-word translation from a small lexicon.
//! The quality score of each translation is the share of words the lexicon knew; its health
//! check translates a known sentence and compares the result.
//!
//! `cargo run --example translation-service` (PORT overrides the port).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use livetranslate_telemetry::health::{CheckOutcome, HealthCheck};
use livetranslate_telemetry::registry::{Counter, Family, TranslationQuality};
use livetranslate_telemetry::Telemetry;
use serde::{Deserialize, Serialize};

type Lexicon = HashMap<(&'static str, &'static str), HashMap<&'static str, &'static str>>;

fn lexicon() -> Lexicon {
    let es = [
        ("hello", "hola"),
        ("world", "mundo"),
        ("good", "buenos"),
        ("morning", "días"),
        ("thank", "gracias"),
        ("you", "tú"),
        ("the", "el"),
        ("meeting", "reunión"),
        ("starts", "empieza"),
        ("now", "ahora"),
        ("please", "por favor"),
        ("yes", "sí"),
        ("no", "no"),
        ("translation", "traducción"),
        ("is", "es"),
        ("live", "en vivo"),
    ];
    let de = [
        ("hello", "hallo"),
        ("world", "welt"),
        ("good", "guten"),
        ("morning", "morgen"),
        ("thank", "danke"),
        ("you", "du"),
        ("the", "die"),
        ("meeting", "besprechung"),
        ("starts", "beginnt"),
        ("now", "jetzt"),
        ("please", "bitte"),
        ("yes", "ja"),
        ("no", "nein"),
        ("translation", "übersetzung"),
        ("is", "ist"),
        ("live", "live"),
    ];
    let mut l = Lexicon::new();
    l.insert(("en", "es"), es.into_iter().collect());
    l.insert(("en", "de"), de.into_iter().collect());
    l
}

#[derive(Clone)]
struct AppState {
    lexicon: Arc<Lexicon>,
    quality: TranslationQuality,
    words: Family<Counter>,
}

#[derive(Deserialize)]
struct TranslateRequest {
    text: String,
    #[serde(default = "default_source")]
    source: String,
    target: String,
}

fn default_source() -> String {
    "en".to_owned()
}

#[derive(Serialize)]
struct Translation {
    translation: String,
    source: String,
    target: String,
    quality: f64,
    unknown_words: Vec<String>,
}

fn translate_text(lexicon: &Lexicon, req: &TranslateRequest) -> Result<Translation, String> {
    let table = lexicon
        .get(&(req.source.as_str(), req.target.as_str()))
        .ok_or_else(|| format!("unsupported language pair {}-{}", req.source, req.target))?;
    let words: Vec<String> = req
        .text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err("nothing to translate".to_owned());
    }
    let mut unknown = Vec::new();
    let out: Vec<String> = words
        .iter()
        .map(|w| match table.get(w.as_str()) {
            Some(t) => (*t).to_owned(),
            None => {
                unknown.push(w.clone());
                w.clone()
            }
        })
        .collect();
    Ok(Translation {
        translation: out.join(" "),
        source: req.source.clone(),
        target: req.target.clone(),
        quality: 1.0 - unknown.len() as f64 / words.len() as f64,
        unknown_words: unknown,
    })
}

async fn translate(
    State(state): State<AppState>,
    Json(req): Json<TranslateRequest>,
) -> Result<Json<Translation>, (StatusCode, String)> {
    let t = translate_text(&state.lexicon, &req).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let pair = format!("{}-{}", t.source, t.target);
    if let Err(e) = state.quality.observe(&pair, t.quality) {
        tracing::warn!(error = %e, "quality score not recorded");
    }
    if let Ok(c) = state.words.with(&[&pair]) {
        c.inc_by(t.translation.split_whitespace().count() as u64);
    }
    tracing::info!(language_pair = %pair, quality = t.quality, "translated");
    Ok(Json(t))
}

async fn languages(State(state): State<AppState>) -> Json<Vec<String>> {
    let mut pairs: Vec<String> = state
        .lexicon
        .keys()
        .map(|(s, t)| format!("{s}-{t}"))
        .collect();
    pairs.sort();
    Json(pairs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let lexicon = Arc::new(lexicon());
    let check_lexicon = lexicon.clone();
    let telemetry = Telemetry::builder("translation")
        .version(env!("CARGO_PKG_VERSION"))
        .health_check(HealthCheck::new("lexicon-self-test", move || {
            let lexicon = check_lexicon.clone();
            async move {
                let probe = TranslateRequest {
                    text: "hello world".to_owned(),
                    source: "en".to_owned(),
                    target: "es".to_owned(),
                };
                match translate_text(&lexicon, &probe) {
                    Ok(t) if t.translation == "hola mundo" => CheckOutcome::healthy(),
                    Ok(t) => CheckOutcome::unhealthy(format!("self-test gave {:?}", t.translation)),
                    Err(e) => CheckOutcome::unhealthy(e),
                }
            }
        }))
        .build()?;
    let words = telemetry.metrics().counter(
        "livetranslate_translation_words_total",
        "Words produced by translations.",
        &["language_pair"],
    )?;
    let state = AppState {
        lexicon,
        quality: telemetry.translation_quality().clone(),
        words,
    };
    let app = Router::new()
        .route("/api/translate", post(translate))
        .route("/api/languages", get(languages))
        .with_state(state);
    telemetry.serve(app, 5003).await?;
    Ok(())
}
