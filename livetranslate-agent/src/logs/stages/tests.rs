//! Whole pipelines: a `pipeline_stages` list using every stage, checked stage by stage; the
//! configuration errors a promtail.yml can hold; and a throughput measurement.

use std::time::{Duration, Instant};

use super::*;

/// Every stage this module runs, in a realistic order. Container lines (CRI or Docker, per
/// the `format` label) carry coloured JSON application logs.
const EVERY_STAGE: &str = r#"
pipeline_stages:
  - match:
      selector: '{format="docker"}'
      stages:
        - docker: {}
  - match:
      selector: '{format="cri"}'
      pipeline_name: cri
      stages:
        - cri: {}
  - decolorize:
  - json:
      expressions:
        level:
        msg:
        time:
        req_id: request.id
  - logfmt:
      source: msg
      mapping:
        user:
        took:
  - regex:
      source: took
      expression: '^(?P<took_ms>\d+)ms$'
  - replace:
      source: msg
      expression: 'user=(\w+)'
      replace: '{{ .Value | ToUpper }}'
  - template:
      source: level
      template: '{{ ToLower .Value }}'
  - labels:
      level:
      user:
  - static_labels:
      env: prod
  - labeldrop: [filename]
  - labelallow: [job, level, env, stream, user]
  - tenant:
      value: team-a
  - timestamp:
      source: time
      format: RFC3339
  - output:
      source: msg
  - drop:
      source: level
      value: debug
      drop_counter_reason: debug_lines
  - sampling:
      rate: 1.0
  - limit:
      rate: 1000
      burst: 1000
      drop: true
  - multiline:
      firstline: '^user='
      max_wait_time: 1s
"#;

#[derive(Debug, serde::Deserialize)]
struct ScrapeConfig {
    pipeline_stages: Vec<StageConfig>,
}

fn every_stage() -> Vec<StageConfig> {
    serde_yaml_ng::from_str::<ScrapeConfig>(EVERY_STAGE)
        .expect("the example parses")
        .pipeline_stages
}

const JSON_LINE: &str = r#"{"level":"INFO","msg":"user=alice action=login took=12ms","time":"2023-11-14T22:13:21Z","request":{"id":"r-1"}}"#;

fn cri_entry(level: &str) -> Entry {
    let json = JSON_LINE.replace("INFO", level);
    Entry::new(
        format!("2023-11-14T22:13:20.123456789Z stdout F \u{1b}[32m{json}\u{1b}[0m"),
        5,
        labels([
            ("job", "app"),
            ("format", "cri"),
            ("filename", "/var/log/app.log"),
        ]),
    )
}

fn run(stages: &[StageConfig], entry: Entry) -> Vec<Outcome> {
    let mut p = Pipeline::new(stages).expect("pipeline");
    let mut out = Vec::new();
    p.process(entry, &mut out);
    out
}

fn shipped(out: &[Outcome]) -> &Entry {
    match out {
        [Outcome::Ship(e)] => e,
        other => panic!("expected one shipped entry, got {other:?}"),
    }
}

fn label<'a>(e: &'a Entry, name: &str) -> Option<&'a str> {
    e.labels().get(name).map(|v| &**v)
}

#[test]
fn every_stage_checked_stage_by_stage() {
    let stages = every_stage();
    assert_eq!(stages.len(), 19);
    let names: Vec<&str> = stages.iter().map(StageConfig::name).collect();
    // match holds docker and cri: every stage is used.
    let mut used: Vec<&str> = names.clone();
    used.extend(["docker", "cri"]);
    for name in STAGE_NAMES {
        assert!(used.contains(name), "stage {name} is not in the example");
    }
    let content = format!("\u{1b}[32m{JSON_LINE}\u{1b}[0m");
    // After each prefix of the pipeline, what the entry looks like.
    for k in 1..=stages.len() {
        let out = run(&stages[..k], cri_entry("INFO"));
        let stage = names[k - 1];
        if stage == "multiline" {
            // The start line is held until the next start line or the wait is over.
            assert!(out.is_empty(), "multiline holds the entry");
            continue;
        }
        let e = shipped(&out);
        match k {
            // match {format="docker"}: not a Docker line, unchanged.
            1 => assert_eq!(e, &cri_entry("INFO")),
            2 => {
                assert_eq!(e.line, content);
                assert_eq!(label(e, "stream"), Some("stdout"));
                assert_eq!(e.timestamp_ns, 1_700_000_000_123_456_789);
                assert_eq!(e.extracted_text("flags").as_deref(), Some("F"));
            }
            3 => assert_eq!(e.line, JSON_LINE),
            4 => {
                assert_eq!(e.extracted_text("level").as_deref(), Some("INFO"));
                assert_eq!(e.extracted_text("req_id").as_deref(), Some("r-1"));
                assert_eq!(
                    e.extracted_text("time").as_deref(),
                    Some("2023-11-14T22:13:21Z")
                );
            }
            5 => {
                assert_eq!(e.extracted_text("user").as_deref(), Some("alice"));
                assert_eq!(e.extracted_text("took").as_deref(), Some("12ms"));
            }
            6 => assert_eq!(e.extracted_text("took_ms").as_deref(), Some("12")),
            7 => assert_eq!(
                e.extracted_text("msg").as_deref(),
                Some("user=ALICE action=login took=12ms")
            ),
            8 => assert_eq!(e.extracted_text("level").as_deref(), Some("info")),
            9 => {
                assert_eq!(label(e, "level"), Some("info"));
                assert_eq!(label(e, "user"), Some("alice"));
            }
            10 => assert_eq!(label(e, "env"), Some("prod")),
            11 => assert_eq!(label(e, "filename"), None),
            12 => {
                let names: Vec<&str> = e.labels().keys().map(|k| &**k).collect();
                assert_eq!(names, vec!["env", "job", "level", "stream", "user"]);
            }
            13 => assert_eq!(label(e, RESERVED_LABEL_TENANT_ID), Some("team-a")),
            14 => assert_eq!(e.timestamp_ns, 1_700_000_001_000_000_000),
            15 => assert_eq!(e.line, "user=ALICE action=login took=12ms"),
            16..=18 => assert_eq!(e.line, "user=ALICE action=login took=12ms"),
            _ => unreachable!("{k}"),
        }
        // The extracted map still holds the labels the entry started with.
        assert_eq!(
            e.extracted_text("filename").as_deref(),
            Some("/var/log/app.log")
        );
    }

    // The whole pipeline: held by multiline, let out by the next start line, the wait, or
    // flush_all; a debug line is dropped with its reason.
    let mut p = Pipeline::new(&stages).expect("pipeline");
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut first = cri_entry("INFO");
    first.source = Some((7, 120));
    p.process_at(first, t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.held_sources(), vec![(7, 120)]);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(1)));
    p.process_at(cri_entry("DEBUG"), t0, &mut out);
    assert!(
        matches!(&out[..], [Outcome::Dropped(d)] if &*d.reason == "debug_lines" && d.stage == "drop")
    );
    out.clear();
    p.flush_expired(t0 + Duration::from_millis(500), &mut out);
    assert!(out.is_empty());
    p.flush_expired(t0 + Duration::from_secs(1), &mut out);
    let e = shipped(&out);
    assert_eq!(e.line, "user=ALICE action=login took=12ms");
    assert_eq!(label(e, "level"), Some("info"));
    assert_eq!(e.timestamp_ns, 1_700_000_001_000_000_000);
    assert_eq!(p.next_deadline(), None);
    assert!(p.held_sources().is_empty());

    // The Docker branch: the same application line in Docker's format.
    let docker = Entry::new(
        format!(
            r#"{{"log":{},"stream":"stderr","time":"2023-11-14T22:13:20Z"}}"#,
            serde_json::to_string(&format!("{JSON_LINE}\n")).expect("json")
        ),
        0,
        labels([("job", "app"), ("format", "docker")]),
    );
    let mut out = Vec::new();
    p.process(docker, &mut out);
    p.flush_all(&mut out);
    let e = shipped(&out);
    assert_eq!(e.line, "user=ALICE action=login took=12ms");
    assert_eq!(label(e, "stream"), Some("stderr"));
    assert_eq!(label(e, "user"), Some("alice"));
}

#[test]
fn pipeline_stages_round_trip_through_serialize() {
    let stages = every_stage();
    let yaml = serde_yaml_ng::to_string(&stages).expect("serializes");
    let back: Vec<StageConfig> = serde_yaml_ng::from_str(&yaml).expect("parses back");
    assert_eq!(back, stages);
}

fn yaml_error(doc: &str) -> (String, Option<(usize, usize)>) {
    let err = serde_yaml_ng::from_str::<ScrapeConfig>(doc).expect_err(doc);
    (
        err.to_string(),
        err.location().map(|l| (l.line(), l.column())),
    )
}

#[test]
fn configuration_errors_name_the_stage_key_and_location() {
    let cases: &[(&str, &str, usize)] = &[
        // (document, expected in the message, expected line)
        (
            "pipeline_stages:\n  - jsn:\n      expressions: {a: b}\n",
            "pipeline_stages[0]: unknown pipeline stage `jsn`, expected one of: docker, cri",
            2,
        ),
        (
            "pipeline_stages:\n  - docker: {}\n  - json:\n      expresions: {a: b}\n",
            "pipeline_stages[1].json: unknown field `expresions`",
            4,
        ),
        (
            "pipeline_stages:\n  - metrics:\n      lines_total: {type: Counter}\n",
            "stage `metrics` is not supported",
            2,
        ),
        (
            "pipeline_stages:\n  - json: {expressions: {a: b}}\n    labels: {a: }\n",
            "exactly one key; found `json` and `labels`",
            2,
        ),
        (
            "pipeline_stages:\n  - cri: {}\n  - regex:\n      expression: '(?P<a>'\n",
            "pipeline_stages[1]: regex.expression: could not compile regular expression",
            3,
        ),
        (
            "pipeline_stages:\n  - match:\n      selector: '{a=\"b\"}'\n      stages:\n        - timestamp: {source: t, format: yyyy}\n",
            "pipeline_stages[0].match.stages[0]: timestamp.format: layout \"yyyy\" has no date or time element",
            5,
        ),
        (
            "pipeline_stages:\n  - template: {source: a, template: '{{ Bogus .Value }}'}\n",
            "template.template: invalid template: function \"Bogus\" not defined",
            2,
        ),
        (
            "pipeline_stages:\n  - json: {expressions: {a: 'b[*]'}}\n",
            "json.expressions.a: JMESPath expression \"b[*]\": a wildcard `[*]` is not supported",
            2,
        ),
        (
            "pipeline_stages:\n  - labels: {\"bad-name\": }\n",
            "labels.bad-name: invalid label name",
            2,
        ),
        ("pipeline_stages:\n  - docker\n", "stage `docker` has no settings", 2),
    ];
    for (doc, want, line) in cases {
        let (msg, loc) = yaml_error(doc);
        assert!(msg.contains(want), "{doc}\n got: {msg}\nwant: {want}");
        assert_eq!(loc.map(|l| l.0), Some(*line), "{doc}: {msg}");
    }
    for refused in [
        "pack",
        "geoip",
        "eventlogmessage",
        "structured_metadata",
        "non_indexed_labels",
    ] {
        let (msg, _) = yaml_error(&format!("pipeline_stages:\n  - {refused}: {{}}\n"));
        assert!(
            msg.contains(&format!("stage `{refused}` is not supported")),
            "{msg}"
        );
    }
}

#[test]
fn pipeline_new_reports_the_nested_key_path() {
    let nested = StageConfig::Match(MatchConfig {
        selector: "{a=\"b\"}".into(),
        stages: vec![
            StageConfig::Decolorize,
            StageConfig::Regex(RegexConfig {
                expression: "(".into(),
                source: None,
            }),
        ],
        action: None,
        pipeline_name: None,
        drop_counter_reason: None,
    });
    let err = Pipeline::new(&[StageConfig::Decolorize, nested]).expect_err("bad regex");
    assert_eq!(err.path, vec![(1, "match"), (1, "regex")]);
    assert_eq!(err.key, "expression");
    assert!(
        err.to_string()
            .starts_with("pipeline_stages[1].match.stages[1].regex.expression: could not compile"),
        "{err}"
    );
}

#[test]
fn empty_pipeline_ships_unchanged() {
    let mut p = Pipeline::new(&[]).expect("empty");
    assert!(p.is_empty());
    let mut out = Vec::new();
    let e = Entry::new("x", 1, labels([("a", "b")]));
    p.process(e.clone(), &mut out);
    assert_eq!(out, vec![Outcome::Ship(e)]);
}

/// Lines per second through a json + labels + timestamp pipeline (the library's log lines).
/// Measured, not asserted: `cargo test --release -p livetranslate-agent --lib
/// logs::stages::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run in release"]
fn throughput() {
    let stages: Vec<StageConfig> = serde_yaml_ng::from_str(
        "- json:\n    expressions: {level: level, service: service, ts: timestamp}\n\
         - labels: {level: , service: }\n\
         - timestamp: {source: ts, format: RFC3339Nano}\n",
    )
    .expect("stages");
    let mut p = Pipeline::new(&stages).expect("pipeline");
    let base = labels([
        ("job", "livetranslate"),
        ("filename", "/var/log/livetranslate/audio.log"),
    ]);
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"timestamp":"2026-11-24T01:02:{:02}.{:06}Z","level":"{}","service":"audio","message":"processed audio chunk {i}","request_id":"req-{i:08}","fields":{{"duration_ms":{},"bytes":{}}}}}"#,
                i % 60,
                i * 37 % 1_000_000,
                ["INFO", "WARN", "ERROR", "DEBUG"][i % 4],
                i % 250,
                i * 31
            )
        })
        .collect();
    let n: usize = std::env::var("STAGES_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let bytes: usize = (0..n).map(|i| lines[i % lines.len()].len()).sum();
    let report = |what: &str, secs: f64| {
        println!(
            "{what}: {n} lines in {secs:.3} s = {:.0} lines/s ({:.1} MB/s)",
            n as f64 / secs,
            bytes as f64 / secs / 1e6
        );
    };
    // What any caller pays anyway: the line and label set of each entry.
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(Entry::new(lines[i % lines.len()].clone(), 0, base.clone()));
    }
    report(
        "baseline (entry construction only)",
        start.elapsed().as_secs_f64(),
    );
    // A full JSON decode of each line, for scale.
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(
            serde_json::from_str::<serde_json::Value>(&lines[i % lines.len()]).ok(),
        );
    }
    report(
        "serde_json::Value decode, for scale",
        start.elapsed().as_secs_f64(),
    );
    let mut out = Vec::with_capacity(4);
    let start = Instant::now();
    for i in 0..n {
        p.process(
            Entry::new(lines[i % lines.len()].clone(), 0, base.clone()),
            &mut out,
        );
        for o in out.drain(..) {
            std::hint::black_box(o);
        }
    }
    report(
        "json+labels+timestamp pipeline",
        start.elapsed().as_secs_f64(),
    );
}
