//! The typed domain metrics reach `/api/metrics` with the standard labels.

mod common;

use std::time::Duration;

use common::builder;
use livetranslate_telemetry::breaker::{BreakerConfig, BreakerState};
use livetranslate_telemetry::registry::MetricError;
use livetranslate_test_support::exposition::value;

#[test]
fn websocket_guard_counts_connections_and_enforces_the_limit() {
    let t = builder("orchestration", &[("WEBSOCKET_MAX_CONNECTIONS", "2")])
        .build()
        .expect("telemetry");
    let ws = t.websockets();
    let a = ws.try_open().expect("first");
    let b = ws.try_open().expect("second");
    assert!(ws.try_open().is_err(), "third is over the limit");
    let text = t.render_metrics();
    assert_eq!(
        value(&text, "livetranslate_websocket_connections", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "livetranslate_websocket_connections_limit", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "livetranslate_websocket_connections_rejected_total",
            &[]
        ),
        Some(1.0)
    );
    drop(a);
    drop(b);
    let text = t.render_metrics();
    assert_eq!(
        value(&text, "livetranslate_websocket_connections", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "livetranslate_websocket_connections_opened_total",
            &[]
        ),
        Some(2.0)
    );
}

#[test]
fn default_websocket_limit_is_the_seeds() {
    let t = builder("orchestration", &[]).build().expect("telemetry");
    assert_eq!(t.websockets().limit(), 10_000);
}

#[test]
fn circuit_breaker_opens_half_opens_and_closes() {
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let breaker = t
        .circuit_breaker(
            "audio",
            BreakerConfig {
                failure_threshold: 3,
                open_for: Duration::from_millis(50),
                ..Default::default()
            },
        )
        .expect("breaker");
    let state = |s: &str| {
        value(
            &t.render_metrics(),
            "livetranslate_circuit_breaker_state",
            &["upstream=\"audio\"", &format!("state=\"{s}\"")],
        )
    };
    assert_eq!(state("closed"), Some(1.0));
    for _ in 0..3 {
        breaker.try_acquire().expect("closed").failure();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(state("open"), Some(1.0));
    assert_eq!(state("closed"), Some(0.0));
    assert!(breaker.try_acquire().is_err());
    std::thread::sleep(Duration::from_millis(60));
    let probe = breaker.try_acquire().expect("half-open probe");
    assert!(breaker.try_acquire().is_err(), "only one probe at a time");
    assert_eq!(state("half_open"), Some(1.0));
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    let text = t.render_metrics();
    for (from, to) in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ] {
        assert_eq!(
            value(
                &text,
                "livetranslate_circuit_breaker_transitions_total",
                &[&format!("from=\"{from}\""), &format!("to=\"{to}\"")]
            ),
            Some(1.0),
            "{from} -> {to}"
        );
    }
    assert_eq!(
        value(
            &text,
            "livetranslate_circuit_breaker_rejected_calls_total",
            &["upstream=\"audio\""]
        ),
        Some(2.0)
    );
}

#[test]
fn failed_probe_reopens_and_cancelled_probe_frees_the_slot() {
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let breaker = t
        .circuit_breaker(
            "translation",
            BreakerConfig {
                failure_threshold: 1,
                open_for: Duration::from_millis(20),
                ..Default::default()
            },
        )
        .expect("breaker");
    breaker.try_acquire().expect("closed").failure();
    std::thread::sleep(Duration::from_millis(30));
    drop(breaker.try_acquire().expect("probe")); // cancelled: decides nothing
    breaker.try_acquire().expect("slot freed").failure();
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn sessions_and_quality() {
    let t = builder("orchestration", &[]).build().expect("telemetry");
    let sessions = t.sessions();
    let ok = sessions.start();
    let bad = sessions.start();
    bad.fail("upstream_unavailable");
    sessions.failed_to_start("limit_reached");
    let text = t.render_metrics();
    assert_eq!(
        value(&text, "livetranslate_sessions_active", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "livetranslate_sessions_created_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "livetranslate_sessions_failed_total",
            &["reason=\"upstream_unavailable\""]
        ),
        Some(1.0)
    );
    drop(ok);
    assert_eq!(
        value(&t.render_metrics(), "livetranslate_sessions_active", &[]),
        Some(0.0)
    );

    let q = t.translation_quality();
    q.observe("en-de", 0.95).expect("valid");
    q.observe("en-de", 0.55).expect("valid");
    assert!(q.observe("en-de", f64::NAN).is_err());
    assert!(q.observe("en-de", -0.1).is_err());
    let text = t.render_metrics();
    let pair = "language_pair=\"en-de\"";
    assert_eq!(
        value(
            &text,
            "livetranslate_translation_quality_score_count",
            &[pair]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "livetranslate_translation_quality_score_bucket",
            &[pair, "le=\"0.6\""]
        ),
        Some(1.0)
    );
}

#[test]
fn custom_metrics_carry_standard_labels_and_are_validated() {
    let t = builder("translation", &[]).build().expect("telemetry");
    let m = t.metrics();
    let c = m
        .counter("livetranslate_cache_hits_total", "Cache hits.", &["cache"])
        .expect("counter");
    c.with(&["lexicon"]).expect("series").inc_by(5);
    let text = t.render_metrics();
    let line = text
        .lines()
        .find(|l| l.starts_with("livetranslate_cache_hits_total{"))
        .expect("series");
    assert!(line.starts_with(
        "livetranslate_cache_hits_total{service=\"translation\",environment=\"test\",version=\"1.2.3\",cluster=\"test-cluster\",cache=\"lexicon\"} 5"
    ), "{line}");
    assert!(matches!(
        m.counter("hits", "x", &[]),
        Err(MetricError::CounterSuffix(_))
    ));
    assert!(matches!(
        m.gauge("bad-name", "x", &[]),
        Err(MetricError::InvalidName(_))
    ));
    assert!(matches!(
        m.gauge("ok_gauge", "x", &["service"]),
        Err(MetricError::ReservedLabel { .. })
    ));
    assert!(matches!(
        m.gauge("livetranslate_cache_hits_total", "x", &[]),
        Err(MetricError::Conflict(_))
    ));
    assert!(matches!(
        c.with(&[]),
        Err(MetricError::LabelCount {
            expected: 1,
            got: 0,
            ..
        })
    ));
    // Registering the identical family again returns the same series.
    let again = m
        .counter("livetranslate_cache_hits_total", "Cache hits.", &["cache"])
        .expect("same definition");
    assert_eq!(again.with(&["lexicon"]).expect("series").get(), 5);
}
