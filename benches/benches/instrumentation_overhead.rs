//! Instrumentation overhead: the same in-process axum router bare, with our layer, and with
//! axum-prometheus's layer, in one run; plus the render time of `/api/metrics`.
//!
//! `cargo bench -p livetranslate-benches --bench instrumentation_overhead`

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use http_body_util::BodyExt;
use livetranslate_telemetry::registry::{encode::Format, exporter};
use livetranslate_telemetry::Telemetry;
use tower::ServiceExt;

fn routes() -> Router {
    Router::new()
        .route("/api/users/{id}", get(|| async { "user" }))
        .route("/api/orders/{id}", get(|| async { "order" }))
        .route("/api/health-ish", get(|| async { "ok" }))
}

fn telemetry(service: &str) -> Telemetry {
    Telemetry::builder(service)
        .install_logging(false)
        // axum-prometheus installs its own global `metrics` recorder in this process.
        .install_recorder(false)
        .env_lookup(|_| None)
        .build()
        .expect("telemetry")
}

fn request() -> Request<Body> {
    Request::get("/api/users/42")
        .body(Body::empty())
        .expect("request")
}

async fn call(app: &Router) {
    let res = app.clone().oneshot(request()).await.expect("infallible");
    let body = res.into_body().collect().await.expect("body");
    std::hint::black_box(body);
}

fn per_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // axum-prometheus spawns its recorder's upkeep task: it needs a runtime context.
    let _entered = rt.enter();
    let ours_t = telemetry("bench");
    let full_t = telemetry("bench-full");
    let (prom_layer, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
    // Finalize each router once, as axum::serve does (see the notes on the harness pitfall).
    let bare = routes().with_state(());
    // A layer that does nothing: what wrapping every route costs in axum by itself.
    let passthrough = routes()
        .layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
        .with_state(());
    let ours = routes()
        .layer(ours_t.http_layer().request_id(false).access_log(false))
        .with_state(());
    let full = routes().layer(full_t.http_layer()).with_state(());
    let peer = routes().layer(prom_layer).with_state(());

    let mut g = c.benchmark_group("request");
    for (name, app) in [
        ("bare", &bare),
        ("passthrough_layer", &passthrough),
        ("ours_metrics", &ours),
        ("ours_full", &full),
        ("axum_prometheus", &peer),
    ] {
        g.bench_function(name, |b| b.iter(|| rt.block_on(call(app))));
    }
    g.finish();
}

fn render(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("render");

    // 10,000 series of one labeled counter family.
    let t = telemetry("render-10k");
    let fam = t
        .metrics()
        .counter("bench_events_total", "Events.", &["key"])
        .expect("family");
    for i in 0..10_000 {
        fam.with(&[&format!("k{i:05}")]).expect("series").inc_by(i);
    }
    g.bench_function("10k_counter_series", |b| {
        b.iter(|| std::hint::black_box(t.render_metrics()))
    });

    // 50 routes x 3 statuses = 150 HTTP label sets, as in the reference figures.
    let t = telemetry("render-http");
    let mut router = Router::new();
    for r in 0..50 {
        router = router.route(&format!("/api/r{r}/{{id}}"), get(|| async { "x" }));
    }
    let app = router
        .layer(t.http_layer().access_log(false))
        .with_state(());
    rt.block_on(async {
        for r in 0..50 {
            for (suffix, _) in [("1", 200), ("2", 200), ("3", 200)] {
                let req = Request::get(format!("/api/r{r}/{suffix}"))
                    .body(Body::empty())
                    .expect("request");
                let _ = app.clone().oneshot(req).await;
            }
            let req = Request::post(format!("/api/r{r}/1"))
                .body(Body::empty())
                .expect("request");
            let _ = app.clone().oneshot(req).await;
            let req = Request::delete(format!("/api/r{r}/1"))
                .body(Body::empty())
                .expect("request");
            let _ = app.clone().oneshot(req).await;
        }
    });
    let text = t.render_metrics();
    let om = t.render_metrics_as(Format::OpenMetrics);
    let zipped = exporter::gzip(text.as_bytes()).expect("gzip");
    let om_zipped = exporter::gzip(om.as_bytes()).expect("gzip");
    println!(
        "http render: {} sample lines; text {} bytes, gzip {} bytes; OpenMetrics {} bytes ({} exemplars), gzip {} bytes",
        text.lines().filter(|l| !l.starts_with('#')).count(),
        text.len(),
        zipped.len(),
        om.len(),
        om.matches(" # {").count(),
        om_zipped.len()
    );
    g.bench_function("150_http_label_sets", |b| {
        b.iter(|| std::hint::black_box(t.render_metrics()))
    });
    g.bench_function("150_http_label_sets_openmetrics", |b| {
        b.iter(|| std::hint::black_box(t.render_metrics_as(Format::OpenMetrics)))
    });
    g.bench_function("150_http_label_sets_gzip", |b| {
        b.iter(|| std::hint::black_box(exporter::gzip(t.render_metrics().as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, per_request, render);
criterion_main!(benches);
