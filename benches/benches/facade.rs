//! The `metrics` facade through our recorder against metrics-exporter-prometheus's, in one
//! run: a labelled `counter!(..).increment(1)` and `histogram!(..).record(x)` per call (the
//! macro registers and looks the series up on every call, as code using the facade does),
//! the same with a handle kept, and the render of the same 10,000 counter series.
//!
//! `cargo bench -p livetranslate-benches --bench facade`

use criterion::{criterion_group, criterion_main, Criterion};
use livetranslate_telemetry::registry::{MetricsRecorder, Registry, LATENCY_BUCKETS};
use livetranslate_telemetry::Telemetry;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

const LABELS: [(&str, &str); 4] = [
    ("service", "bench"),
    ("environment", "production"),
    ("version", "1.0.0"),
    ("cluster", "eu-1"),
];

/// Theirs, set up to write what ours writes: the standard labels as global labels, and
/// histograms as histograms with the same buckets (not summaries).
fn theirs() -> PrometheusRecorder {
    let mut b = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .expect("buckets");
    for (k, v) in LABELS {
        b = b.add_global_label(k, v);
    }
    b.build_recorder()
}

fn ours() -> (Registry, MetricsRecorder) {
    let registry = Registry::new(&LABELS);
    let recorder = MetricsRecorder::builder(&registry)
        .build()
        .expect("recorder");
    (registry, recorder)
}

fn per_call(c: &mut Criterion) {
    let (_registry, ours) = ours();
    let theirs = theirs();
    // Ours as the process's global recorder too, as `Telemetry::build()` installs it.
    let telemetry = Telemetry::builder("bench")
        .install_logging(false)
        .env_lookup(|_| None)
        .build()
        .expect("telemetry");
    assert!(telemetry.recorder().is_installed());

    let mut g = c.benchmark_group("facade_counter");
    g.bench_function("ours", |b| {
        metrics::with_local_recorder(&ours, || {
            b.iter(|| {
                metrics::counter!("bench_requests_total", "route" => "/api/users").increment(1)
            })
        })
    });
    g.bench_function("ours_global", |b| {
        b.iter(|| metrics::counter!("bench_requests_total", "route" => "/api/users").increment(1))
    });
    g.bench_function("metrics_exporter_prometheus", |b| {
        metrics::with_local_recorder(&theirs, || {
            b.iter(|| {
                metrics::counter!("bench_requests_total", "route" => "/api/users").increment(1)
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("facade_histogram");
    g.bench_function("ours", |b| {
        metrics::with_local_recorder(&ours, || {
            b.iter(|| {
                metrics::histogram!("bench_latency_seconds", "route" => "/api/users")
                    .record(std::hint::black_box(0.042))
            })
        })
    });
    g.bench_function("metrics_exporter_prometheus", |b| {
        metrics::with_local_recorder(&theirs, || {
            b.iter(|| {
                metrics::histogram!("bench_latency_seconds", "route" => "/api/users")
                    .record(std::hint::black_box(0.042))
            })
        })
    });
    g.finish();

    // A handle kept: the update alone.
    let mut g = c.benchmark_group("facade_handle");
    let (oc, tc) = (
        metrics::with_local_recorder(
            &ours,
            || metrics::counter!("bench_kept_total", "route" => "/"),
        ),
        metrics::with_local_recorder(
            &theirs,
            || metrics::counter!("bench_kept_total", "route" => "/"),
        ),
    );
    g.bench_function("ours_counter", |b| b.iter(|| oc.increment(1)));
    g.bench_function("metrics_exporter_prometheus_counter", |b| {
        b.iter(|| tc.increment(1))
    });
    let (oh, th) = (
        metrics::with_local_recorder(&ours, || metrics::histogram!("bench_kept_seconds")),
        metrics::with_local_recorder(&theirs, || metrics::histogram!("bench_kept_seconds")),
    );
    g.bench_function("ours_histogram", |b| {
        b.iter(|| oh.record(std::hint::black_box(0.042)))
    });
    g.bench_function("metrics_exporter_prometheus_histogram", |b| {
        b.iter(|| th.record(std::hint::black_box(0.042)))
    });
    g.finish();
    // Keep theirs bounded (it buffers raw histogram samples until a render or upkeep).
    theirs.handle().run_upkeep();
}

fn render(c: &mut Criterion) {
    let (registry, ours) = ours();
    let theirs = theirs();
    let handle = theirs.handle();
    for recorder in [&ours as &dyn metrics::Recorder, &theirs] {
        metrics::with_local_recorder(recorder, || {
            for i in 0..10_000u64 {
                metrics::counter!("bench_events_total", "key" => format!("k{i:05}")).increment(i);
            }
        });
    }
    let (a, b) = (registry.render(), handle.render());
    let series = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("bench_events_total{"))
            .count()
    };
    assert_eq!((series(&a), series(&b)), (10_000, 10_000));
    println!(
        "render: ours {} bytes, metrics-exporter-prometheus {} bytes",
        a.len(),
        b.len()
    );
    let mut g = c.benchmark_group("facade_render_10k_series");
    g.bench_function("ours", |b| {
        b.iter(|| std::hint::black_box(registry.render()))
    });
    g.bench_function("metrics_exporter_prometheus", |b| {
        b.iter(|| std::hint::black_box(handle.render()))
    });
    g.finish();
}

criterion_group!(benches, per_call, render);
criterion_main!(benches);
