//! The `metrics` crate facade recorder, through a local recorder (the global one is tested in
//! `facade_global.rs`, alone in its process).

mod common;

use common::builder;
use livetranslate_telemetry::registry::encode::Format;
use livetranslate_telemetry::registry::{Matcher, MetricError, MetricsRecorder, Registry};
use livetranslate_telemetry::{Error, Telemetry};
use livetranslate_test_support::exposition::{samples, value};

/// A dependency of the service: it knows the `metrics` crate and nothing of this library.
mod dependency {
    pub fn transcribe(language: &str, seconds: f64) {
        metrics::counter!("asr_jobs_total", "kind" => "transcribe").increment(1);
        metrics::counter!("asr_words_total", "language" => language.to_owned()).increment(120);
        metrics::histogram!("asr_job_duration_seconds").record(seconds);
        metrics::gauge!("asr_queue_depth").set(4.0);
        metrics::gauge!("asr_queue_depth").decrement(1.0);
    }
}

fn telemetry(service: &str) -> Telemetry {
    builder(service, &[])
        .install_recorder(false)
        .build()
        .expect("telemetry")
}

fn with<T>(t: &Telemetry, f: impl FnOnce() -> T) -> T {
    metrics::with_local_recorder(&t.recorder(), f)
}

fn dropped(text: &str, reason: &str) -> f64 {
    value(
        text,
        "livetranslate_facade_series_dropped_total",
        &[&format!("reason=\"{reason}\"")],
    )
    .unwrap_or(0.0)
}

fn sanitized(text: &str, kind: &str) -> f64 {
    value(
        text,
        "livetranslate_facade_names_sanitized_total",
        &[&format!("kind=\"{kind}\"")],
    )
    .unwrap_or(0.0)
}

#[test]
fn a_dependency_that_only_knows_the_metrics_crate_is_on_the_exposition() {
    let t = telemetry("asr");
    with(&t, || {
        dependency::transcribe("de", 0.3);
        dependency::transcribe("de", 2.0);
        dependency::transcribe("fr", 0.01);
    });
    let text = t.render_metrics();
    let standard = [
        "service=\"asr\"",
        "environment=\"test\"",
        "version=\"1.2.3\"",
        "cluster=\"test-cluster\"",
    ];
    let jobs = samples(&text, "asr_jobs_total");
    assert_eq!(jobs.len(), 1, "{text}");
    for l in standard.iter().chain(&["kind=\"transcribe\""]) {
        assert!(jobs[0].contains(l), "{l} missing: {}", jobs[0]);
    }
    assert!(jobs[0].starts_with("asr_jobs_total{service=\"asr\","));
    assert_eq!(
        value(&text, "asr_jobs_total", &["kind=\"transcribe\""]),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "asr_words_total", &["language=\"de\""]),
        Some(240.0)
    );
    assert_eq!(
        value(&text, "asr_words_total", &["language=\"fr\""]),
        Some(120.0)
    );
    assert_eq!(value(&text, "asr_queue_depth", &[]), Some(3.0));
    assert!(text.contains("# TYPE asr_job_duration_seconds histogram\n"));
    assert_eq!(
        value(&text, "asr_job_duration_seconds_count", &[]),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "asr_job_duration_seconds_bucket", &["le=\"0.5\""]),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "asr_job_duration_seconds_bucket", &["le=\"+Inf\""]),
        Some(3.0)
    );
    let sum = value(&text, "asr_job_duration_seconds_sum", &[]).expect("sum");
    assert!((sum - 2.31).abs() < 1e-9, "{sum}");
    // Undescribed families still have HELP (promtool wants one).
    assert!(text.contains("# HELP asr_jobs_total "));
    // Nothing was corrected or dropped.
    assert_eq!(sanitized(&text, "metric") + sanitized(&text, "label"), 0.0);
    for reason in [
        "invalid_name",
        "name_clash",
        "type_clash",
        "duplicate_label",
    ] {
        assert_eq!(dropped(&text, reason), 0.0, "{reason}");
    }
}

#[test]
fn labels_are_escaped_ordered_and_bounded_by_their_key() {
    let t = telemetry("lbl");
    with(&t, || {
        metrics::counter!("lbl_calls_total", "a" => "1", "b" => "2").increment(1);
        // Same labels in another order: the same series.
        metrics::counter!("lbl_calls_total", "b" => "2", "a" => "1").increment(1);
        let quoted = "say \"hi\"\\now\n".to_owned();
        metrics::counter!("lbl_calls_total", "a" => quoted, "b" => "3").increment(5);
        let labels = vec![metrics::Label::new("a", "9"), metrics::Label::new("b", "9")];
        metrics::counter!("lbl_calls_total", labels).increment(7);
    });
    let text = t.render_metrics();
    assert_eq!(samples(&text, "lbl_calls_total").len(), 3, "{text}");
    assert_eq!(
        value(&text, "lbl_calls_total", &["a=\"1\",b=\"2\""]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "lbl_calls_total",
            &[r#"a="say \"hi\"\\now\n",b="3""#]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(&text, "lbl_calls_total", &["a=\"9\",b=\"9\""]),
        Some(7.0)
    );
}

#[test]
fn describe_gives_help_and_unit() {
    let t = telemetry("desc");
    with(&t, || {
        // Described before the first use ...
        metrics::describe_histogram!(
            "desc_fetch_duration_seconds",
            metrics::Unit::Seconds,
            "Time to fetch a model."
        );
        metrics::histogram!("desc_fetch_duration_seconds").record(0.2);
        // ... and after.
        metrics::counter!("desc_fetched_bytes_total").increment(10);
        metrics::describe_counter!(
            "desc_fetched_bytes_total",
            metrics::Unit::Bytes,
            "Bytes of models fetched.\nAll of them."
        );
        // A unit the name does not carry cannot be an OpenMetrics UNIT.
        metrics::describe_gauge!("desc_queue", metrics::Unit::Seconds, "Queue wait.");
        metrics::gauge!("desc_queue").set(1.0);
    });
    let text = t.render_metrics();
    assert!(text.contains("# HELP desc_fetch_duration_seconds Time to fetch a model.\n"));
    assert!(
        text.contains("# HELP desc_fetched_bytes_total Bytes of models fetched.\\nAll of them.\n")
    );
    assert!(!text.contains("# UNIT"), "the text format has no units");
    let om = t.render_metrics_as(Format::OpenMetrics);
    assert!(
        om.contains("# UNIT desc_fetch_duration_seconds seconds\n"),
        "{om}"
    );
    assert!(om.contains("# HELP desc_fetched_bytes Bytes of models fetched.\\nAll of them.\n"));
    assert!(om.contains("# TYPE desc_fetched_bytes counter\n# UNIT desc_fetched_bytes bytes\n"));
    assert!(om.contains("\ndesc_fetched_bytes_total{service=\"desc\","));
    assert!(!om.contains("# UNIT desc_queue "), "{om}");
}

#[test]
fn a_name_clash_with_a_typed_metric_keeps_the_typed_one() {
    let t = telemetry("clash");
    let jobs = t
        .metrics()
        .counter("clash_jobs_total", "Jobs, typed.", &["kind"])
        .expect("typed family");
    jobs.with(&["a"]).expect("series").inc();
    with(&t, || {
        metrics::counter!("clash_jobs_total", "kind" => "a").increment(100);
        // The library's own typed metrics are protected the same way.
        metrics::gauge!("livetranslate_websocket_connections").set(99.0);
        metrics::histogram!("http_server_request_duration_seconds").record(1.0);
    });
    let text = t.render_metrics();
    assert_eq!(value(&text, "clash_jobs_total", &["kind=\"a\""]), Some(1.0));
    assert!(text.contains("# HELP clash_jobs_total Jobs, typed.\n"));
    assert_eq!(
        value(&text, "livetranslate_websocket_connections", &[]),
        Some(0.0)
    );
    assert_eq!(dropped(&text, "name_clash"), 3.0);

    // The other way round: the facade had the name first, the typed registration is refused.
    with(&t, || {
        metrics::gauge!("clash_temperature_celsius").set(21.5)
    });
    let err = t
        .metrics()
        .gauge("clash_temperature_celsius", "Typed.", &[])
        .expect_err("taken by the facade");
    assert_eq!(
        err,
        MetricError::Conflict("clash_temperature_celsius".into())
    );
    assert_eq!(
        value(&t.render_metrics(), "clash_temperature_celsius", &[]),
        Some(21.5)
    );
}

#[test]
fn a_name_used_as_two_kinds_keeps_the_first() {
    let t = telemetry("kinds");
    with(&t, || {
        metrics::counter!("kinds_events_total").increment(2);
        metrics::gauge!("kinds_events_total").set(50.0);
        metrics::histogram!("kinds_events_total").record(1.0);
        // A gauge `x` next to the counter `x_total` would be one OpenMetrics family `x`.
        metrics::gauge!("kinds_events").set(1.0);
    });
    let text = t.render_metrics();
    assert_eq!(value(&text, "kinds_events_total", &[]), Some(2.0));
    assert!(samples(&text, "kinds_events").is_empty());
    assert_eq!(dropped(&text, "type_clash"), 2.0);
    assert_eq!(dropped(&text, "name_clash"), 1.0);
}

#[test]
fn invalid_names_are_sanitised_or_dropped_never_a_panic() {
    let t = telemetry("names");
    with(&t, || {
        metrics::counter!("names.http-requests").increment(1); // sanitised, gets _total
        metrics::counter!("9lives_total").increment(1);
        metrics::counter!("").increment(1); // nothing to keep
        metrics::gauge!("names_temp", "sensor.id" => "a", "ünï" => "b").set(1.0);
        metrics::gauge!("names_owner", "service" => "spoof", "le" => "x", "__meta" => "y").set(2.0);
        metrics::gauge!("names_dup", "a-b" => "1", "a_b" => "2").set(3.0);
        metrics::gauge!("names_empty_label", "" => "1").set(4.0);
        metrics::histogram!("日本語").record(1.0);
    });
    let text = t.render_metrics();
    assert_eq!(value(&text, "names_http_requests_total", &[]), Some(1.0));
    assert_eq!(value(&text, "_lives_total", &[]), Some(1.0));
    assert_eq!(
        value(&text, "names_temp", &["sensor_id=\"a\",_n_=\"b\""]),
        Some(1.0)
    );
    let owner = samples(&text, "names_owner");
    assert_eq!(owner.len(), 1);
    assert!(owner[0].contains("service=\"names\""), "{}", owner[0]);
    assert!(
        owner[0].contains("exported_service=\"spoof\",exported_le=\"x\",exported___meta=\"y\""),
        "{}",
        owner[0]
    );
    assert!(samples(&text, "names_dup").is_empty());
    assert!(samples(&text, "names_empty_label").is_empty());
    assert_eq!(value(&text, "____count", &[]), Some(1.0));
    assert_eq!(sanitized(&text, "metric"), 3.0);
    assert_eq!(sanitized(&text, "label"), 2.0);
    assert_eq!(dropped(&text, "invalid_name"), 2.0);
    assert_eq!(dropped(&text, "duplicate_label"), 1.0);
    // Every name written is valid.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        assert!(
            livetranslate_telemetry::names::is_valid_metric_name(name),
            "{line}"
        );
    }
}

#[test]
fn histogram_buckets_by_name_prefix_suffix_and_default() {
    let t = builder("bkt", &[])
        .install_recorder(false)
        .histogram_buckets(&[1.0, 2.0])
        .histogram_buckets_for(Matcher::Suffix("_bytes".into()), &[100.0, 1000.0])
        .histogram_buckets_for(Matcher::Prefix("bkt_db_".into()), &[0.001, 0.01])
        .histogram_buckets_for(Matcher::Prefix("bkt_db_slow_".into()), &[10.0])
        .histogram_buckets_for(Matcher::Full("bkt_db_size_bytes".into()), &[5.0])
        .build()
        .expect("telemetry");
    with(&t, || {
        for name in [
            "bkt_other_seconds",
            "bkt_payload_bytes",
            "bkt_db_query_seconds",
            "bkt_db_slow_query_seconds",
            "bkt_db_size_bytes",
        ] {
            metrics::histogram!(name).record(0.5);
        }
    });
    let text = t.render_metrics();
    let les = |name: &str| -> Vec<String> {
        samples(&text, &format!("{name}_bucket"))
            .iter()
            .filter_map(|l| l.split("le=\"").nth(1))
            .filter_map(|r| r.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(les("bkt_other_seconds"), ["1", "2", "+Inf"]);
    assert_eq!(les("bkt_payload_bytes"), ["100", "1000", "+Inf"]);
    assert_eq!(les("bkt_db_query_seconds"), ["0.001", "0.01", "+Inf"]);
    assert_eq!(les("bkt_db_slow_query_seconds"), ["10", "+Inf"]);
    assert_eq!(les("bkt_db_size_bytes"), ["5", "+Inf"]);

    // Default: the latency buckets.
    let t = telemetry("bkt2");
    with(&t, || metrics::histogram!("bkt2_seconds").record(0.5));
    assert_eq!(
        samples(&t.render_metrics(), "bkt2_seconds_bucket").len(),
        livetranslate_telemetry::registry::LATENCY_BUCKETS.len() + 1
    );
}

#[test]
fn bad_bucket_lists_are_build_errors() {
    for (default, rule) in [
        (Some(&[][..]), None),
        (None, Some(&[2.0, 1.0][..])),
        (None, Some(&[f64::INFINITY][..])),
    ] {
        let mut b = builder("bad", &[]).install_recorder(false);
        if let Some(d) = default {
            b = b.histogram_buckets(d);
        }
        if let Some(r) = rule {
            b = b.histogram_buckets_for(Matcher::Prefix("x_".into()), r);
        }
        let err = b.build().expect_err("bad buckets");
        assert!(matches!(err, Error::Recorder(_)), "{err:?}");
        assert!(err.to_string().contains("facade histograms"), "{err}");
    }
}

#[test]
fn a_family_keeps_at_most_its_series_limit() {
    let registry = Registry::new(&[("service", "lim")]);
    let recorder = MetricsRecorder::builder(&registry)
        .series_limit(3)
        .build()
        .expect("recorder");
    metrics::with_local_recorder(&recorder, || {
        for i in 0..10 {
            metrics::counter!("lim_hits_total", "user" => i.to_string()).increment(1);
        }
        // Known series keep counting.
        metrics::counter!("lim_hits_total", "user" => "0").increment(1);
        // Refused keys are not remembered: each refusal counts.
        metrics::counter!("lim_hits_total", "user" => "9").increment(1);
    });
    let text = registry.render();
    assert_eq!(samples(&text, "lim_hits_total").len(), 3);
    assert_eq!(value(&text, "lim_hits_total", &["user=\"0\""]), Some(2.0));
    assert_eq!(dropped(&text, "series_limit"), 8.0);
}

#[test]
fn a_log_layer_that_records_through_the_facade_does_not_deadlock_a_drop() {
    use tracing_subscriber::layer::SubscriberExt;

    /// Counts every log event through the facade, as some logging integrations do.
    struct CountingLayer;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountingLayer {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            metrics::counter!("log_events_total").increment(1);
        }
    }

    let t = telemetry("reent");
    let recorder = t.recorder();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let subscriber = tracing_subscriber::registry().with(CountingLayer);
        tracing::subscriber::with_default(subscriber, || {
            metrics::with_local_recorder(&recorder, || {
                // A dropped series logs a warning; the layer records while it is logged.
                metrics::counter!("").increment(1);
                metrics::counter!("reent_ok_total").increment(1);
            })
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("recording from a log layer while a drop is logged deadlocked");
    let text = t.render_metrics();
    assert_eq!(value(&text, "log_events_total", &[]), Some(1.0));
    assert_eq!(value(&text, "reent_ok_total", &[]), Some(1.0));
    assert_eq!(dropped(&text, "invalid_name"), 1.0);
}

#[test]
fn handles_work_from_any_thread() {
    let t = telemetry("thr");
    let (c, h) = with(&t, || {
        (
            metrics::counter!("thr_events_total"),
            metrics::histogram!("thr_wait_seconds"),
        )
    });
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (c, h) = (c.clone(), h.clone());
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    c.increment(1);
                    h.record(0.01);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|j| j.join().expect("thread"));
    let text = t.render_metrics();
    assert_eq!(value(&text, "thr_events_total", &[]), Some(20_000.0));
    assert_eq!(value(&text, "thr_wait_seconds_count", &[]), Some(20_000.0));
    let sum = value(&text, "thr_wait_seconds_sum", &[]).expect("sum");
    assert!((sum - 200.0).abs() < 1e-6, "{sum}");
}

#[test]
fn facade_metrics_in_openmetrics() {
    let t = telemetry("om");
    with(&t, || {
        metrics::counter!("om_jobs_total", "kind" => "a").increment(3);
        metrics::counter!("om_retries").increment(1);
        metrics::histogram!("om_wait_seconds").record(0.2);
    });
    let om = t.render_metrics_as(Format::OpenMetrics);
    assert!(om.contains("# TYPE om_jobs counter\n"));
    assert!(om.contains("\nom_jobs_total{service=\"om\","));
    assert!(om.contains("# TYPE om_retries counter\n"));
    assert!(om.contains("\nom_retries_total{service=\"om\","));
    assert!(om.contains("# TYPE om_wait_seconds histogram\n"));
    assert!(om.ends_with("# EOF\n"));
}
