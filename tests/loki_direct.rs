//! Direct shipping to Loki (feature `loki`): lines arrive with the standard labels and the
//! level; with Loki down the service keeps serving and the lines beyond the buffer bound are
//! dropped and counted; after recovery lines flow again. Against the protocol-faithful Loki
//! stand-in (snappy + protobuf decoded independently). Installs the global subscriber, so it
//! is its own test binary.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use livetranslate_telemetry::Telemetry;
use livetranslate_test_support::eventually;
use livetranslate_test_support::loki::LokiStandIn;
use tower::ServiceExt;

/// Whether `cond` comes true within `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    eventually(limit, || cond().then_some(())).is_some()
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn ships_with_labels_survives_an_outage_and_counts_drops() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut loki = LokiStandIn::start();
    let url = loki.url();
    let telemetry = rt
        .block_on(async {
            Telemetry::builder("audio")
                .version("3.1.4")
                .env_lookup(move |k| match k {
                    "LOKI_URL" => Some(url.clone()),
                    "LOKI_BATCH_WAIT" => Some("0.1".into()),
                    "LOKI_MAX_BUFFERED_LINES" => Some("500".into()),
                    "ENVIRONMENT" => Some("staging".into()),
                    "RUST_LOG" => Some("info,loki_direct=debug".into()),
                    _ => None,
                })
                .build()
        })
        .expect("telemetry");
    let app = telemetry.router(Router::new().route(
        "/api/work",
        get(|| async {
            tracing::warn!(chunk = 7, "slow chunk");
            "done"
        }),
    ));
    let call = |app: &Router| {
        rt.block_on(async {
            let req = http::Request::get("/api/work")
                .header("x-request-id", "loki-req-1")
                .body(Body::empty())
                .expect("request");
            let res = app.clone().oneshot(req).await.expect("infallible");
            let status = res.status();
            res.into_body().collect().await.expect("body");
            status
        })
    };

    // 1. Lines arrive, labelled, with the JSON line as the library writes it.
    assert_eq!(call(&app), 200);
    assert!(
        wait_until(Duration::from_secs(10), || loki
            .entries()
            .iter()
            .any(|e| e.line.contains("slow chunk"))),
        "no line reached Loki"
    );
    let entries = loki.entries();
    let warn = entries
        .iter()
        .find(|e| e.line.contains("slow chunk"))
        .expect("line");
    for label in [
        "service=\"audio\"",
        "level=\"warn\"",
        "environment=\"staging\"",
        "version=\"3.1.4\"",
        "cluster=\"livetranslate\"",
    ] {
        assert!(
            warn.labels.contains(label),
            "{label} not in {}",
            warn.labels
        );
    }
    let json: serde_json::Value = serde_json::from_str(&warn.line).expect("JSON line");
    assert_eq!(json["request_id"], "loki-req-1");
    assert_eq!(json["chunk"], 7);
    let access = entries
        .iter()
        .find(|e| e.line.contains("\"target\":\"access\""))
        .expect("access line");
    assert!(
        access.labels.contains("level=\"info\""),
        "{}",
        access.labels
    );

    // Draining at shutdown: once it returns true, every line logged before it is in Loki.
    for i in 0..200 {
        tracing::info!(i, "burst before shutdown");
    }
    assert!(
        rt.block_on(telemetry.drain_loki(Duration::from_secs(20))),
        "queue did not drain"
    );
    let burst = loki
        .entries()
        .iter()
        .filter(|e| e.line.contains("burst before shutdown"))
        .count();
    assert_eq!(burst, 200);

    // 2. Loki down: the service keeps answering; beyond the bound lines are dropped, counted.
    loki.stop();
    for i in 0..5_000 {
        tracing::info!(i, "while Loki is down");
    }
    for _ in 0..50 {
        assert_eq!(call(&app), 200);
    }
    assert!(
        !rt.block_on(telemetry.drain_loki(Duration::from_millis(300))),
        "nothing can drain while Loki is down"
    );
    let text = telemetry.render_metrics();
    let dropped = metric(&text, "livetranslate_log_lines_dropped_total{");
    assert!(dropped >= 4_000.0, "only {dropped} drops counted\n{text}");

    // 3. Loki back: new lines flow again.
    loki.restart();
    std::thread::sleep(Duration::from_secs(1));
    tracing::error!("after the outage");
    assert!(
        wait_until(Duration::from_secs(40), || loki
            .entries()
            .iter()
            .any(|e| e.line.contains("after the outage"))),
        "lines did not flow again after Loki came back"
    );
    let shipped = metric(
        &telemetry.render_metrics(),
        "livetranslate_log_lines_shipped_total{",
    );
    assert!(shipped >= 3.0, "{shipped}");
}
