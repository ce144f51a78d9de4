//! Outbound call overhead: the same loopback GET with a bare reqwest client and through
//! `Telemetry::upstream` (breaker, metrics, context propagation), in one run.
//!
//! `cargo bench -p livetranslate-benches --bench client_overhead`

use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use livetranslate_telemetry::registry::BreakerConfig;
use livetranslate_telemetry::Telemetry;

fn calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/api/audio/models", get(|| async { "[\"whisper\"]" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/api/audio/models")
    });
    let client = reqwest::Client::new();
    let telemetry = rt.block_on(async {
        Telemetry::builder("bench")
            .install_logging(false)
            .env_lookup(|_| None)
            .build()
            .expect("telemetry")
    });
    let upstream = telemetry
        .upstream("audio", BreakerConfig::default())
        .expect("upstream");

    let mut g = c.benchmark_group("client_call");
    g.bench_function("bare_reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = client.get(&url).send().await.expect("call");
                std::hint::black_box(res.bytes().await.expect("body"));
            })
        })
    });
    g.bench_function("instrumented_upstream", |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = upstream.send(client.get(&url)).await.expect("call");
                std::hint::black_box(res.bytes().await.expect("body"));
            })
        })
    });
    g.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
