//! `Telemetry::build()` installs the global `metrics` recorder (alone in this process: the
//! global recorder is process-wide).

mod common;

use common::builder;
use livetranslate_test_support::exposition::value;

fn jobs(t: &livetranslate_telemetry::Telemetry) -> Option<f64> {
    value(&t.render_metrics(), "global_jobs_total", &["kind=\"x\""])
}

#[test]
fn build_installs_the_global_recorder_and_the_latest_telemetry_takes_it_over() {
    // Before any Telemetry: the facade goes nowhere, and that is fine.
    metrics::counter!("global_jobs_total", "kind" => "x").increment(1000);

    let a = builder("ga", &[]).build().expect("telemetry a");
    assert!(a.recorder().is_installed());
    metrics::counter!("global_jobs_total", "kind" => "x").increment(1);
    assert_eq!(jobs(&a), Some(1.0));

    // From other threads too (the recorder is global, not thread-local).
    std::thread::spawn(|| metrics::counter!("global_jobs_total", "kind" => "x").increment(2))
        .join()
        .expect("thread");
    assert_eq!(jobs(&a), Some(3.0));

    // A later Telemetry takes the facade over; handles taken before keep their registry.
    let old_handle = metrics::counter!("global_jobs_total", "kind" => "x");
    let b = builder("gb", &[]).build().expect("telemetry b");
    assert!(b.recorder().is_installed());
    assert!(!a.recorder().is_installed());
    metrics::counter!("global_jobs_total", "kind" => "x").increment(5);
    old_handle.increment(1);
    assert_eq!(jobs(&b), Some(5.0));
    assert_eq!(jobs(&a), Some(4.0));

    // Opting out, or metrics turned off, leaves the facade where it is.
    let c = builder("gc", &[])
        .install_recorder(false)
        .build()
        .expect("telemetry c");
    let d = builder("gd", &[("PROMETHEUS_METRICS_ENABLED", "false")])
        .build()
        .expect("telemetry d");
    assert!(b.recorder().is_installed());
    assert!(!c.recorder().is_installed() && !d.recorder().is_installed());
    metrics::counter!("global_jobs_total", "kind" => "x").increment(1);
    assert_eq!(jobs(&b), Some(6.0));
    assert_eq!(jobs(&c), None);
}
