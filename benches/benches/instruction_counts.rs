//! Instructions per request, counted by valgrind (callgrind): repeatable on a busy machine
//! where times are not. Each variant runs N1 and N2 requests in a child process under
//! callgrind; (Ir(N2) - Ir(N1)) / (N2 - N1) cancels the set-up cost.
//!
//! `cargo bench -p livetranslate-benches --bench instruction_counts` (needs valgrind)

use std::process::Command;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use livetranslate_telemetry::Telemetry;
use tower::ServiceExt;

const VARIANTS: [&str; 5] = [
    "bare",
    "passthrough_layer",
    "ours_metrics",
    "ours_full",
    "axum_prometheus",
];
const N1: u64 = 2_000;
const N2: u64 = 12_000;
/// Outbound calls over loopback (the in-process server's cost is the same in both).
const CLIENT_VARIANTS: [&str; 2] = ["client_bare_reqwest", "client_upstream"];
const C1: u64 = 300;
const C2: u64 = 1_300;
/// The `metrics` facade: ours against metrics-exporter-prometheus, per call and per render of
/// 10,000 counter series.
const FACADE_VARIANTS: [&str; 6] = [
    "facade_counter_ours",
    "facade_counter_peer",
    "facade_histogram_ours",
    "facade_histogram_peer",
    "facade_render_ours",
    "facade_render_peer",
];
const F1: u64 = 100_000;
const F2: u64 = 1_100_000;
const R1: u64 = 2;
const R2: u64 = 12;

/// Runs `n` facade calls (or, for `facade_render_*`, `n` renders of 10,000 series) through
/// our recorder or metrics-exporter-prometheus's, both with the four standard labels and the
/// latency buckets.
fn run_facade_variant(variant: &str, n: u64) {
    const LABELS: [(&str, &str); 4] = [
        ("service", "bench"),
        ("environment", "production"),
        ("version", "1.0.0"),
        ("cluster", "eu-1"),
    ];
    let registry = livetranslate_telemetry::registry::Registry::new(&LABELS);
    let ours = livetranslate_telemetry::registry::MetricsRecorder::builder(&registry)
        .build()
        .expect("recorder");
    let mut b = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(livetranslate_telemetry::registry::LATENCY_BUCKETS)
        .expect("buckets");
    for (k, v) in LABELS {
        b = b.add_global_label(k, v);
    }
    let peer = b.build_recorder();
    let handle = peer.handle();
    let recorder: &dyn metrics::Recorder = if variant.ends_with("_ours") {
        &ours
    } else {
        &peer
    };
    metrics::with_local_recorder(recorder, || {
        if variant.starts_with("facade_counter") {
            for _ in 0..n {
                metrics::counter!("bench_requests_total", "route" => "/api/users").increment(1);
            }
        } else if variant.starts_with("facade_histogram") {
            for i in 0..n {
                metrics::histogram!("bench_latency_seconds", "route" => "/api/users")
                    .record((i % 100) as f64 / 1000.0);
            }
        } else {
            for i in 0..10_000u64 {
                metrics::counter!("bench_events_total", "key" => format!("k{i:05}")).increment(i);
            }
        }
    });
    if variant.starts_with("facade_render") {
        for _ in 0..n {
            let text = if variant.ends_with("_ours") {
                registry.render()
            } else {
                handle.render()
            };
            std::hint::black_box(text);
        }
    }
}

fn routes() -> Router {
    Router::new()
        .route("/api/users/{id}", get(|| async { "user" }))
        .route("/api/orders/{id}", get(|| async { "order" }))
        .route("/api/health-ish", get(|| async { "ok" }))
}

fn run_client_variant(variant: &str, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/api/audio/models", get(|| async { "[]" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}/api/audio/models");
        let client = reqwest::Client::new();
        let telemetry = Telemetry::builder("bench")
            .install_logging(false)
            .env_lookup(|_| None)
            .build()
            .expect("telemetry");
        let upstream = telemetry
            .upstream("audio", Default::default())
            .expect("upstream");
        for _ in 0..n {
            let req = client.get(&url);
            let res = if variant == "client_upstream" {
                upstream.send(req).await.expect("call")
            } else {
                req.send().await.expect("call")
            };
            std::hint::black_box(res.bytes().await.expect("body"));
        }
    });
}

fn run_variant(variant: &str, n: u64) {
    if variant.starts_with("client_") {
        return run_client_variant(variant, n);
    }
    if variant.starts_with("facade_") {
        return run_facade_variant(variant, n);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = rt.enter();
    let telemetry = || {
        Telemetry::builder("bench")
            .install_logging(false)
            .env_lookup(|_| None)
            .build()
            .expect("telemetry")
    };
    let app = match variant {
        "bare" => routes(),
        "passthrough_layer" => {
            routes().layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
        }
        "ours_metrics" => {
            routes().layer(telemetry().http_layer().request_id(false).access_log(false))
        }
        "ours_full" => routes().layer(telemetry().http_layer()),
        "axum_prometheus" => routes().layer(axum_prometheus::PrometheusMetricLayer::pair().0),
        other => panic!("unknown variant {other}"),
    }
    .with_state(());
    rt.block_on(async {
        for _ in 0..n {
            let req = Request::get("/api/users/42")
                .body(Body::empty())
                .expect("request");
            let res = app.clone().oneshot(req).await.expect("infallible");
            std::hint::black_box(res.into_body().collect().await.expect("body"));
        }
    });
}

fn count(variant: &str, n: u64) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .env("LT_IC_VARIANT", variant)
        .env("LT_IC_N", n.to_string())
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    if let (Ok(variant), Ok(n)) = (std::env::var("LT_IC_VARIANT"), std::env::var("LT_IC_N")) {
        run_variant(&variant, n.parse().expect("LT_IC_N"));
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!(
            "valgrind is not installed (apt-get install valgrind): skipping instruction counts"
        );
        return;
    }
    let mut per_request = Vec::new();
    for v in VARIANTS {
        match (count(v, N1), count(v, N2)) {
            (Some(a), Some(b)) => {
                per_request.push((v, (b.saturating_sub(a)) as f64 / (N2 - N1) as f64))
            }
            _ => eprintln!("{v}: valgrind run failed"),
        }
    }
    let mut per_call = Vec::new();
    for v in CLIENT_VARIANTS {
        match (count(v, C1), count(v, C2)) {
            (Some(a), Some(b)) => {
                per_call.push((v, (b.saturating_sub(a)) as f64 / (C2 - C1) as f64))
            }
            _ => eprintln!("{v}: valgrind run failed"),
        }
    }
    let mut facade = Vec::new();
    for v in FACADE_VARIANTS {
        let (n1, n2) = if v.starts_with("facade_render") {
            (R1, R2)
        } else {
            (F1, F2)
        };
        match (count(v, n1), count(v, n2)) {
            (Some(a), Some(b)) => facade.push((v, (b.saturating_sub(a)) as f64 / (n2 - n1) as f64)),
            _ => eprintln!("{v}: valgrind run failed"),
        }
    }
    let bare = per_request
        .iter()
        .find(|(v, _)| *v == "bare")
        .map(|(_, n)| *n);
    println!(
        "{:<20} {:>14} {:>10} {:>12}",
        "variant", "instr/request", "vs bare", "added"
    );
    for (v, n) in &per_request {
        let (ratio, added) = match bare {
            Some(b) if b > 0.0 => (n / b, n - b),
            _ => (f64::NAN, f64::NAN),
        };
        println!("{v:<20} {n:>14.0} {ratio:>10.3} {added:>12.0}");
    }
    println!();
    println!(
        "{:<22} {:>14} {:>12}",
        "outbound call", "instr/call", "added"
    );
    let bare_call = per_call.first().map(|(_, n)| *n).unwrap_or(f64::NAN);
    for (v, n) in &per_call {
        println!("{v:<22} {n:>14.0} {:>12.0}", n - bare_call);
    }
    println!();
    println!(
        "{:<22} {:>16} {:>10}",
        "metrics facade", "instr/operation", "ours/peer"
    );
    for pair in facade.chunks(2) {
        if let [(ours, a), (peer, b)] = pair {
            println!("{ours:<22} {a:>16.0} {:>10.3}", a / b);
            println!("{peer:<22} {b:>16.0}");
        }
    }
}
