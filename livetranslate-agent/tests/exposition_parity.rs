//! Differential test: the agent parses exposition bodies exactly as Prometheus 2.42 does.
//!
//! Every case under `tests/fixtures/exposition/` (see its README) is served from one local HTTP
//! server with its own `Content-Type`, and one real Prometheus (`prometheus` on PATH) scrapes
//! all of them, one target per case. For each case the test compares
//! - the verdict: Prometheus's target health (`up` / `down` with `lastError`) against the agent
//!   parser's accept / reject, and
//! - the stored samples: what Prometheus keeps from the scrape (a range selector returns the raw
//!   samples with their timestamps; the synthetic `up` / `scrape_*` series are left out) against
//!   what the agent keeps after Prometheus's append rules (duplicates, out-of-order and
//!   out-of-bounds timestamps are skipped), with the target labels attached by the agent's own
//!   label merge, and the exemplars Prometheus stores against the exemplars the agent keeps.
//!
//! Prometheus scrapes every few seconds; the comparison uses each target's first successful
//! scrape (`t0`, the timestamp of its first `up` = 1 sample): samples at later scrape times are
//! dropped from Prometheus's side, samples with explicit timestamps are stored once whatever the
//! number of scrapes.
//!
//! On failure the test prints a table of every disagreement. `EXPOSITION_CASE=<substring>` runs
//! only the matching cases.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Bodies, BodyServer};
use livetranslate_agent::metrics::exposition::{self, Format};
use livetranslate_agent::metrics::ingest::{Ingest, SeriesKeys, SeriesMemory, TargetShape};
use livetranslate_agent::metrics::job::ScrapeLimits;
use livetranslate_test_support::{Prometheus, TempDir};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exposition");

/// Series Prometheus synthesizes for every scrape.
const SYNTHETIC: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// One fixture: its name (file stem), the `Content-Type` it is served with, and its body with
/// timestamp placeholders.
struct Case {
    name: String,
    content_type: Option<String>,
    template: Vec<u8>,
}

fn load_cases() -> Vec<Case> {
    let filter = std::env::var("EXPOSITION_CASE").unwrap_or_default();
    let mut cases = Vec::new();
    let entries = std::fs::read_dir(FIXTURES).expect("fixtures directory");
    for entry in entries {
        let path = entry.expect("fixture entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("http") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("fixture name")
            .to_owned();
        if !name.contains(&filter) {
            continue;
        }
        let raw = std::fs::read(&path).expect("read fixture");
        let split = raw
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|i| (i, i + 2))
            .or_else(|| raw.starts_with(b"\n").then_some((0, 1)))
            .unwrap_or_else(|| panic!("{name}: no empty line after the response head"));
        let head = String::from_utf8(raw[..split.0].to_vec()).expect("fixture head is UTF-8");
        let mut content_type = None;
        for line in head.lines() {
            let (key, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{name}: bad header line {line:?}"));
            assert!(
                key.eq_ignore_ascii_case("content-type"),
                "{name}: unknown header {key:?}"
            );
            content_type = Some(value.trim().to_owned());
        }
        cases.push(Case {
            name,
            content_type,
            template: raw[split.1..].to_vec(),
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// Replaces `${NOW_MS}`, `${NOW_S}`, `${NOW_S_INT}` (optionally `±<seconds>`) in a template.
fn render(template: &[u8], now_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.windows(6).position(|w| w == b"${NOW_") {
        out.extend_from_slice(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .iter()
            .position(|&b| b == b'}')
            .expect("closing brace of a placeholder");
        let inner = std::str::from_utf8(&after[..end]).expect("placeholder is ASCII");
        let (kind, offset_s) = match inner.find(['+', '-']) {
            Some(i) => (
                &inner[..i],
                inner[i..].parse::<i64>().expect("placeholder offset"),
            ),
            None => (inner, 0),
        };
        let ms = now_ms + offset_s * 1000;
        let text = match kind {
            "NOW_MS" => ms.to_string(),
            "NOW_S" => format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000)),
            "NOW_S_INT" => ms.div_euclid(1000).to_string(),
            other => panic!("unknown placeholder {other}"),
        };
        out.extend_from_slice(text.as_bytes());
        rest = &after[end + 1..];
    }
    out.extend_from_slice(rest);
    out
}

/// Label name → value.
type LabelMap = BTreeMap<String, String>;

/// A stored sample: series labels, timestamp (ms), value bits (every NaN is the same NaN).
type Stored = (LabelMap, i64, u64);

/// A stored exemplar: series labels, exemplar labels, timestamp (ms), value bits.
type StoredExemplar = (LabelMap, LabelMap, i64, u64);

fn value_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn parse_prom_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s
            .parse()
            .unwrap_or_else(|_| panic!("unexpected value {s:?}")),
    }
}

fn ts_ms(v: &serde_json::Value) -> i64 {
    (v.as_f64().expect("timestamp") * 1000.0).round() as i64
}

fn label_map(v: &serde_json::Value) -> LabelMap {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// What the agent makes of a scrape: the samples and exemplars its scrape loop keeps and
/// encodes for remote write (the same code: parser, target labels, storage rules, staleness,
/// report series — the report series left out here, as for Prometheus), or the parse error.
fn agent_scrape(
    content_type: Option<&str>,
    body: &[u8],
    scrape_ts: i64,
    target: &BTreeMap<String, String>,
) -> Result<(Vec<Stored>, Vec<StoredExemplar>), String> {
    let format = Format::from_content_type(content_type);
    let shape = TargetShape {
        labels: target
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
            .into(),
        honor_labels: false,
        honor_timestamps: true,
        limits: ScrapeLimits {
            body_size_limit: 0,
            ..ScrapeLimits::default()
        },
        metric_relabel: Vec::new().into(),
        chunk_samples: 10_000,
    };
    let keys = SeriesKeys::default();
    let previous = SeriesMemory::default();
    let mut ingest = Ingest::new(&shape, &keys, &previous, scrape_ts);
    let mut parser = exposition::Parser::new(format);
    let parsed = parser
        .feed(body, |s| ingest.add(&s))
        .and_then(|()| parser.finish(|s| ingest.add(&s)))
        .map_err(|e| e.to_string());
    let (out, _, error) = ingest.finish(parsed.clone().err(), Duration::ZERO);
    parsed?;
    if let Some(e) = error {
        return Err(e);
    }
    let mut samples = Vec::new();
    let mut exemplars = Vec::new();
    for chunk in &out.chunks {
        let req = chunk.decode().map_err(|e| e.to_string())?;
        for ts in req.timeseries {
            let series: LabelMap = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            if SYNTHETIC.contains(&series.get("__name__").map(String::as_str).unwrap_or("")) {
                continue;
            }
            for smp in &ts.samples {
                samples.push((series.clone(), smp.timestamp, value_bits(smp.value)));
            }
            for e in &ts.exemplars {
                exemplars.push((
                    series.clone(),
                    e.labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    e.timestamp,
                    value_bits(e.value),
                ));
            }
        }
    }
    Ok((samples, exemplars))
}

/// The shared Prometheus takes its TSDB time window from the first sample it is given, so no
/// case may start with a sample older than the window (see the fixtures' README).
fn check_first_sample(case: &Case, body: &[u8], format: Format, now: i64) {
    let mut first = None;
    let mut parser = exposition::Parser::new(format);
    let _ = parser.feed(body, |s| {
        if first.is_none() {
            first = Some(s.timestamp_ms());
        }
    });
    if let Some(Some(ts)) = first {
        assert!(
            ts >= now - exposition::MAX_BEHIND_MS / 2,
            "fixture {}: the first sample has a timestamp more than 30 minutes old; put a \
             sample without a timestamp first (see {FIXTURES}/README.md)",
            case.name
        );
    }
}

/// What Prometheus did with one target.
#[derive(Default)]
struct PromResult {
    health: String,
    last_error: String,
    /// Timestamps of the target's `up` samples: (ms, value).
    up: Vec<(i64, f64)>,
    samples: Vec<Stored>,
    exemplars: Vec<StoredExemplar>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn short(s: &str, max: usize) -> String {
    let s = s.replace('\n', "\\n");
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn describe(sample: &Stored) -> String {
    let (labels, ts, bits) = sample;
    let labels: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "job" && *k != "instance")
        .map(|(k, v)| format!("{k}={}", short(&format!("{v:?}"), 40)))
        .collect();
    format!("{{{}}} {} @{ts}", labels.join(","), f64::from_bits(*bits))
}

fn describe_exemplar(e: &StoredExemplar) -> String {
    let (series, labels, ts, bits) = e;
    format!(
        "{} # {:?} {} @{ts}",
        series.get("__name__").cloned().unwrap_or_default(),
        labels,
        f64::from_bits(*bits)
    )
}

/// Elements of `a` not in `b` (as multisets).
fn minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut counts: BTreeMap<&T, usize> = BTreeMap::new();
    for x in b {
        *counts.entry(x).or_default() += 1;
    }
    let mut out = Vec::new();
    for x in a {
        match counts.get_mut(x) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(x.clone()),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_parses_every_case_as_prometheus_2_42_does() {
    let started = Instant::now();
    let cases = load_cases();
    if std::env::var("EXPOSITION_CASE").is_err() {
        assert!(
            cases.len() >= 150,
            "only {} exposition cases under {FIXTURES}",
            cases.len()
        );
    }
    let now = now_ms();
    let mut bodies: Bodies = HashMap::new();
    let mut rendered = HashMap::new();
    for case in &cases {
        let body = render(&case.template, now);
        let format = Format::from_content_type(case.content_type.as_deref());
        check_first_sample(case, &body, format, now);
        bodies.insert(
            format!("/{}", case.name),
            (case.content_type.clone(), body.clone()),
        );
        rendered.insert(case.name.clone(), body);
    }
    let server = BodyServer::start(bodies).await;
    let addr = server.addr.to_string();

    let dir = TempDir::new("exposition-parity");
    let mut config = String::from(
        "global: {scrape_interval: 5s, scrape_timeout: 4s}\n\
         scrape_configs:\n  - job_name: exposition\n    static_configs:\n",
    );
    for case in &cases {
        let _ = writeln!(
            config,
            "      - targets: ['{addr}']\n        labels: {{job: '{0}', __metrics_path__: '/{0}'}}",
            case.name
        );
    }
    let prom =
        Prometheus::start_with_async(dir.path(), &config, &["--enable-feature=exemplar-storage"])
            .await;

    // Wait until Prometheus has scraped every target at least once (a transport error, which
    // only a loaded machine causes, waits for the next scrape).
    let mut results: BTreeMap<String, PromResult> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let targets = prom
            .api_async("targets", &[("state", "active".into())])
            .await;
        results.clear();
        let mut pending = Vec::new();
        for t in targets["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let job = t["labels"]["job"].as_str().unwrap_or_default().to_owned();
            let health = t["health"].as_str().unwrap_or_default().to_owned();
            let last_error = t["lastError"].as_str().unwrap_or_default().to_owned();
            if health == "unknown" || last_error.starts_with("Get \"") {
                pending.push(job.clone());
            }
            results.insert(
                job,
                PromResult {
                    health,
                    last_error,
                    ..PromResult::default()
                },
            );
        }
        if pending.is_empty() && results.len() == cases.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape every case within 60 s ({} of {} known, waiting for {:?})\n{}",
            results.len(),
            cases.len(),
            pending.iter().take(10).collect::<Vec<_>>(),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Exemplars, then raw samples of every case, then the `up` samples once more: a scrape that
    // commits between two queries has its `up` sample in the last one, so whatever it stored is
    // recognised as a later scrape's. Accepted explicit timestamps lie at most 10 minutes ahead;
    // evaluate past them.
    let eval_s = (now_ms() + 11 * 60 * 1000) as f64 / 1000.0;
    let exemplars = prom
        .api_async(
            "query_exemplars",
            &[
                ("query", "{job=~\".+\"}".into()),
                (
                    "start",
                    format!("{:.3}", (now - 3 * 3600 * 1000) as f64 / 1000.0),
                ),
                ("end", format!("{eval_s:.3}")),
            ],
        )
        .await;
    for s in exemplars.as_array().cloned().unwrap_or_default() {
        let series = label_map(&s["seriesLabels"]);
        let job = series.get("job").cloned().unwrap_or_default();
        let Some(result) = results.get_mut(&job) else {
            continue;
        };
        for e in s["exemplars"].as_array().cloned().unwrap_or_default() {
            result.exemplars.push((
                series.clone(),
                label_map(&e["labels"]),
                ts_ms(&e["timestamp"]),
                value_bits(parse_prom_value(e["value"].as_str().unwrap_or_default())),
            ));
        }
    }
    for selector in ["{job=~\".+\"}[3h]", "up[3h]"] {
        if selector.starts_with("up") {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let matrix = prom
            .api_async(
                "query",
                &[("query", selector.into()), ("time", format!("{eval_s:.3}"))],
            )
            .await;
        let series = matrix["result"].as_array().cloned().unwrap_or_default();
        assert!(
            !series.is_empty(),
            "no series in Prometheus:\n{}",
            prom.log()
        );
        for s in &series {
            let labels = label_map(&s["metric"]);
            let job = labels.get("job").cloned().unwrap_or_default();
            let Some(result) = results.get_mut(&job) else {
                continue;
            };
            let name = labels.get("__name__").cloned().unwrap_or_default();
            for v in s["values"].as_array().cloned().unwrap_or_default() {
                let ts = ts_ms(&v[0]);
                let value = parse_prom_value(v[1].as_str().unwrap_or_default());
                if name == "up" {
                    result.up.push((ts, value));
                } else if !SYNTHETIC.contains(&name.as_str()) {
                    result.samples.push((labels.clone(), ts, value_bits(value)));
                }
            }
        }
    }

    // Compare case by case.
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut agreed = 0;
    for case in &cases {
        let prom_case = results.get(&case.name).expect("every case has a target");
        let body = &rendered[&case.name];
        let prom_up = prom_case.health == "up";
        let mut up_ts: Vec<(i64, f64)> = prom_case.up.clone();
        up_ts.sort_by_key(|(ts, _)| *ts);
        up_ts.dedup_by_key(|(ts, _)| *ts);
        let t0 = up_ts.iter().find(|(_, v)| *v == 1.0).map(|(ts, _)| *ts);
        let later: BTreeSet<i64> = up_ts
            .iter()
            .map(|(ts, _)| *ts)
            .filter(|ts| Some(*ts) != t0)
            .collect();
        let mut prom_samples: Vec<Stored> = prom_case
            .samples
            .iter()
            .filter(|(_, ts, _)| !later.contains(ts))
            .cloned()
            .collect();
        prom_samples.sort();
        let mut prom_exemplars: Vec<StoredExemplar> = prom_case
            .exemplars
            .iter()
            .filter(|(_, _, ts, _)| !later.contains(ts))
            .cloned()
            .collect();
        prom_exemplars.sort();

        let target: BTreeMap<String, String> = [
            ("job".to_owned(), case.name.clone()),
            ("instance".to_owned(), addr.clone()),
        ]
        .into();
        let scrape_ts = t0.unwrap_or_else(now_ms);
        let agent = agent_scrape(case.content_type.as_deref(), body, scrape_ts, &target);

        let prom_verdict = if prom_up {
            "up".to_owned()
        } else {
            format!("down: {}", short(&prom_case.last_error, 70))
        };
        let agent_verdict = match &agent {
            Ok(_) => "accepted".to_owned(),
            Err(e) => format!("rejected: {}", short(e, 70)),
        };
        let detail = match (&agent, prom_up) {
            (Ok(_), false) | (Err(_), true) => Some("verdicts differ".to_owned()),
            (Err(_), false) => (!prom_samples.is_empty())
                .then(|| format!("Prometheus stored {} samples", prom_samples.len())),
            (Ok((samples, exemplars)), true) => {
                let mut samples = samples.clone();
                samples.sort();
                let mut exemplars = exemplars.clone();
                exemplars.sort();
                let mut d = String::new();
                if t0.is_none() {
                    d.push_str("no successful scrape in Prometheus; ");
                }
                let missing = minus(&prom_samples, &samples);
                let extra = minus(&samples, &prom_samples);
                if !missing.is_empty() || !extra.is_empty() {
                    let _ = write!(
                        d,
                        "samples: {} only in Prometheus {:?}, {} only in agent {:?}; ",
                        missing.len(),
                        missing.iter().take(3).map(describe).collect::<Vec<_>>(),
                        extra.len(),
                        extra.iter().take(3).map(describe).collect::<Vec<_>>(),
                    );
                }
                let missing = minus(&prom_exemplars, &exemplars);
                let extra = minus(&exemplars, &prom_exemplars);
                if !missing.is_empty() || !extra.is_empty() {
                    let _ = write!(
                        d,
                        "exemplars: {} only in Prometheus {:?}, {} only in agent {:?}",
                        missing.len(),
                        missing
                            .iter()
                            .take(3)
                            .map(describe_exemplar)
                            .collect::<Vec<_>>(),
                        extra.len(),
                        extra
                            .iter()
                            .take(3)
                            .map(describe_exemplar)
                            .collect::<Vec<_>>(),
                    );
                }
                (!d.is_empty()).then_some(d)
            }
        };
        match detail {
            None => agreed += 1,
            Some(d) => rows.push([case.name.clone(), prom_verdict, agent_verdict, d]),
        }
    }

    let mut report = format!(
        "{} of {} exposition cases agree with Prometheus 2.42 ({} disagree; {:.1} s)\n",
        agreed,
        cases.len(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    if !rows.is_empty() {
        let widths: Vec<usize> = (0..3)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
                    .min(80)
            })
            .collect();
        let _ = writeln!(
            report,
            "{:w0$} | {:w1$} | {:w2$} | detail",
            "case",
            "Prometheus",
            "agent",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        for r in &rows {
            let _ = writeln!(
                report,
                "{:w0$} | {:w1$} | {:w2$} | {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
        }
    }
    eprintln!("{report}");
    assert!(rows.is_empty(), "{report}");
}
