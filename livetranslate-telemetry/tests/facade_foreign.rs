//! Another global `metrics` recorder installed first: `build()` says so clearly, and
//! `install_recorder(false)` keeps it (alone in this process: the global recorder is
//! process-wide).

mod common;

use common::builder;
use livetranslate_telemetry::registry::RecorderError;
use livetranslate_telemetry::Error;
use livetranslate_test_support::exposition::value;

#[test]
fn another_global_recorder_is_a_clear_error_unless_opted_out() {
    metrics::set_global_recorder(metrics::NoopRecorder).expect("first recorder of the process");

    let err = builder("foreign", &[])
        .build()
        .expect_err("a recorder is installed");
    assert!(
        matches!(err, Error::Recorder(RecorderError::AlreadyInstalled)),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("install_recorder(false)"), "{msg}");

    let t = builder("foreign", &[])
        .install_recorder(false)
        .build()
        .expect("opted out");
    assert!(!t.recorder().is_installed());
    // The library's recorder still works where it is put.
    metrics::with_local_recorder(&t.recorder(), || {
        metrics::counter!("foreign_jobs_total").increment(2)
    });
    assert_eq!(
        value(&t.render_metrics(), "foreign_jobs_total", &[]),
        Some(2.0)
    );
}
