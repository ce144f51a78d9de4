//! Differential tests of `livetranslate_agent::relabel` against a real Prometheus 2.42
//! (`prometheus` and `promtool` on PATH):
//!
//! - `target_relabelling_agrees_with_prometheus`: scrape jobs with `relabel_configs` over
//!   file_sd targets; Prometheus's `/api/v1/targets?state=any` (kept targets' labels, scrape
//!   URL and interval; dropped targets; targets refused after relabelling) against
//!   `relabel::apply` on each discovered label set.
//! - `rule_validation_agrees_with_promtool`: every rule is accepted by us iff
//!   `promtool check config` accepts it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use livetranslate_agent::relabel::{self, Labels, RelabelConfig};
use livetranslate_test_support::{http_get, Prometheus, TempDir};
use serde_json::Value;

fn labels_of(json: &Value) -> Labels {
    json.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

// --- the cases ---------------------------------------------------------------------------

/// One scrape job: its rules (a YAML flow list, given verbatim to both sides), its targets
/// (label sets; `__address__` added when absent), and optional `params`.
struct Job {
    name: String,
    rules: String,
    targets: Vec<Vec<(String, String)>>,
    params: &'static str,
}

fn job(name: &str, rules: &str, targets: &[&[(&str, &str)]]) -> Job {
    Job {
        name: name.to_owned(),
        rules: rules.to_owned(),
        targets: targets
            .iter()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect(),
        params: "",
    }
}

const NONE: &[(&str, &str)] = &[];

fn jobs() -> Vec<Job> {
    let mut jobs = vec![
        // replace
        job(
            "replace_copy",
            r#"[{source_labels: [env], target_label: environment}]"#,
            &[&[("env", "prod")], NONE, &[("environment", "stale")]],
        ),
        job(
            "replace_groups",
            r#"[{source_labels: [__address__], regex: "(.+):(\\d+)", target_label: port, replacement: "p$2"}]"#,
            &[NONE, NONE],
        ),
        job(
            "replace_join",
            r#"[{source_labels: [a, b, c], separator: "/", target_label: joined}, {source_labels: [a, c], target_label: default_sep}]"#,
            &[
                &[("a", "1"), ("b", "2"), ("c", "3")],
                &[("a", "1"), ("c", "3")],
                &[("b", "é")],
            ],
        ),
        job(
            "replace_const",
            r#"[{target_label: env, replacement: prod}, {source_labels: [drop_me], regex: ".*", target_label: gone, replacement: ""}]"#,
            &[&[("gone", "x")], &[("env", "dev")]],
        ),
        job(
            "replace_templated_target",
            r#"[{source_labels: [kv], regex: "([^=]*)=(.*)", target_label: "$1", replacement: "$2"}]"#,
            &[
                &[("kv", "team=core")],
                &[("kv", "9x=bad")],
                &[("kv", "=nameless")],
                &[("kv", "keep=")],
                &[("kv", "keep="), ("keep", "still")],
                &[("kv", "no equals sign")],
            ],
        ),
        job(
            "replace_target_suffix",
            r#"[{source_labels: [kv], regex: "([a-z]+)-(.*)", target_label: "${1}_info", replacement: "${2}"}]"#,
            &[&[("kv", "build-1.2.3")], &[("kv", "Upper-x")]],
        ),
        job(
            "go_expand",
            concat!(
                r#"[{source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r1, replacement: "$1x"},"#,
                r#" {source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r2, replacement: "${1}x"},"#,
                r#" {source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r3, replacement: "$$1 $- ${1 $"},"#,
                r#" {source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r4, replacement: "<$0>"},"#,
                r#" {source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r5, replacement: "<$01|$10|$4>"},"#,
                r#" {source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r6, replacement: "${name}/$name/$name_x/$é/${name"},"#,
                r#" {source_labels: [v], regex: "(?P<1x>f)(.*)", target_label: r7, replacement: "[$1x]"},"#,
                r#" {source_labels: [v], regex: "(?P<n>x)?(?P<n>f).*", target_label: r8, replacement: "[$n]"},"#,
                r#" {source_labels: [v], regex: "(a)|(f.*)", target_label: r9, replacement: "<$1|$2>"},"#,
                r#" {source_labels: [v], regex: "(f)(o+)-(?P<name>.*)", target_label: r10, replacement: "$999999999$9999999999"}]"#,
            ),
            &[
                &[("v", "foo-bar"), ("r1", "old"), ("r10", "old")],
                &[("v", "nomatch"), ("r1", "old")],
            ],
        ),
        // regex dialect and anchoring
        job(
            "anchoring",
            concat!(
                r#"[{source_labels: [v], regex: "fo", target_label: prefix, replacement: hit},"#,
                r#" {source_labels: [v], regex: "foo|bar", target_label: alt, replacement: hit},"#,
                r#" {source_labels: [v], regex: "a)|(b", target_label: split, replacement: hit},"#,
                r#" {source_labels: [v], regex: "", target_label: empty, replacement: hit},"#,
                r#" {source_labels: [v], regex: ~, target_label: null_regex, replacement: hit}]"#,
            ),
            &[
                &[("v", "foo")],
                &[("v", "xbar")],
                &[("v", "bar")],
                &[("v", "a-anything")],
                &[("v", "anything-b")],
                &[("v", "xyz")],
                NONE,
            ],
        ),
        job(
            "newline",
            r#"[{source_labels: [v], target_label: copy}, {source_labels: [v], regex: "(?s)(.*)", target_label: dotall}, {source_labels: [v], regex: "two.lines", action: drop}]"#,
            &[&[("v", "two\nlines")], &[("v", "one line")]],
        ),
        job(
            "go_classes",
            concat!(
                r#"[{source_labels: [v], regex: "\\d+", target_label: digits, replacement: yes},"#,
                r#" {source_labels: [v], regex: "\\w+", target_label: word, replacement: yes},"#,
                r#" {source_labels: [v], regex: ".*\\s.*", target_label: space, replacement: yes},"#,
                r#" {source_labels: [v], regex: ".*\\bx\\b.*", target_label: boundary, replacement: yes},"#,
                r#" {source_labels: [v], regex: "(?i)k+", target_label: kelvin, replacement: yes},"#,
                r#" {source_labels: [v], regex: "[[:alpha:]]+", target_label: posix, replacement: yes},"#,
                r#" {source_labels: [v], regex: "\\pL+", target_label: letters, replacement: yes},"#,
                r#" {source_labels: [v], regex: "\\p{Greek}+", target_label: greek, replacement: yes},"#,
                r#" {source_labels: [v], regex: "x{,3}", target_label: brace, replacement: yes},"#,
                r#" {source_labels: [v], regex: "\\Q.*\\E", target_label: quoted, replacement: yes},"#,
                r#" {source_labels: [v], regex: "(?U)(.+)(.*)", target_label: lazy, replacement: "$1|$2"},"#,
                r#" {source_labels: [v], regex: "[^a-z]+", target_label: negated, replacement: yes}]"#,
            ),
            &[
                &[("v", "0123")],
                &[("v", "٣")],
                &[("v", "word_1")],
                &[("v", "é")],
                &[("v", "a\u{a0}b")],
                &[("v", "a b")],
                &[("v", "éxé")],
                &[("v", "a x b")],
                &[("v", "\u{212a}k")],
                &[("v", "αβγ")],
                &[("v", "x{,3}")],
                &[("v", ".*")],
                &[("v", "abc")],
            ],
        ),
        // __ labels that steer the scrape
        Job {
            params: "{module: [http_2xx], target: [a, b]}",
            ..job(
                "blackbox",
                r#"[{source_labels: [__address__], target_label: __param_target}, {source_labels: [__param_target], target_label: instance}, {target_label: __address__, replacement: "127.0.0.1:9115"}]"#,
                &[
                    &[("__address__", "example.org:443")],
                    &[("__address__", "example.com:80")],
                ],
            )
        },
        job(
            "scrape_steering",
            concat!(
                r#"[{source_labels: [path], regex: "(.+)", target_label: __metrics_path__},"#,
                r#" {source_labels: [interval], regex: "(.+)", target_label: __scrape_interval__},"#,
                r#" {source_labels: [https], regex: "yes", target_label: __scheme__, replacement: https},"#,
                r#" {source_labels: [module], regex: "(.+)", target_label: __param_module},"#,
                r#" {source_labels: [__path__], regex: "/var/log/(.+)\\.log", target_label: filename}]"#,
            ),
            &[
                &[
                    ("path", "/api/metrics"),
                    ("interval", "30s"),
                    ("https", "yes"),
                ],
                &[("module", "tcp"), ("__path__", "/var/log/audio.log")],
                NONE,
            ],
        ),
        job(
            "refused_after_relabel",
            r#"[{source_labels: [kill], regex: "address", target_label: __address__, replacement: ""}, {source_labels: [kill], regex: "interval", target_label: __scrape_interval__, replacement: ""}]"#,
            &[
                &[("kill", "address")],
                &[("kill", "interval")],
                &[("kill", "nothing")],
            ],
        ),
        // keep / drop
        job(
            "keep",
            r#"[{source_labels: [team, env], separator: "|", regex: "core\\|prod|edge\\|.*", action: keep}]"#,
            &[
                &[("team", "core"), ("env", "prod")],
                &[("team", "core"), ("env", "dev")],
                &[("team", "edge")],
                &[("env", "prod")],
            ],
        ),
        job(
            "drop",
            r#"[{source_labels: [env], regex: "dev|", action: drop}]"#,
            &[
                &[("env", "dev")],
                &[("env", "prod")],
                NONE,
                &[("env", "devel")],
            ],
        ),
        job(
            "keep_missing_label",
            r#"[{source_labels: [missing], regex: "", action: keep}, {source_labels: [__meta_case_target], regex: ".*-1", action: drop}]"#,
            &[NONE, NONE],
        ),
        // keepequal / dropequal
        job(
            "keepequal",
            r#"[{source_labels: [a], target_label: b, action: keepequal}]"#,
            &[
                &[("a", "1"), ("b", "1")],
                &[("a", "1"), ("b", "2")],
                NONE,
                &[("a", "1")],
            ],
        ),
        job(
            "dropequal",
            r#"[{source_labels: [a, b], target_label: c, action: dropequal}]"#,
            &[
                &[("a", "1"), ("b", "2"), ("c", "1;2")],
                &[("a", "1"), ("b", "2"), ("c", "1")],
            ],
        ),
        // hashmod
        job(
            "hashmod",
            concat!(
                r#"[{source_labels: [__address__], modulus: 1000, target_label: h1000, action: hashmod},"#,
                r#" {source_labels: [__address__], modulus: 1, target_label: h1, action: hashmod},"#,
                r#" {source_labels: [a, b], modulus: 7, target_label: joined, action: hashmod},"#,
                r#" {source_labels: [__address__], modulus: 9223372036854775813, target_label: huge, action: hashmod},"#,
                r#" {source_labels: [a], modulus: 3.7, target_label: float, action: hashmod}]"#,
            ),
            &[&[("a", "é"), ("b", "")], &[("a", "x"), ("b", "y")], NONE],
        ),
        // labelmap
        job(
            "labelmap_meta",
            r#"[{action: labelmap, regex: "__meta_pod_label_(.+)"}]"#,
            &[
                &[
                    ("__meta_pod_label_app", "api"),
                    ("__meta_pod_label_tier", "web"),
                ],
                &[
                    ("__meta_pod_label_job", "override"),
                    ("__meta_pod_label_instance", "i-1"),
                ],
            ],
        ),
        job(
            "labelmap_template",
            r#"[{action: labelmap, regex: "([a-z]+)", replacement: "${1}_copy"}]"#,
            &[&[("a", "1"), ("bb", "2")]],
        ),
        job(
            "labelmap_collisions",
            r#"[{action: labelmap, regex: "[xy]_(a)"}, {action: labelmap, regex: "z_(.*)"}]"#,
            &[
                &[("x_a", "first"), ("y_a", "second")],
                &[("a", "2"), ("x_a", "1"), ("y_a", "2")],
                &[("z_", "nameless")],
            ],
        ),
        // labeldrop / labelkeep
        job(
            "labeldrop",
            r#"[{action: labeldrop, regex: "tmp_.*|pod_template_hash"}, {action: labeldrop, regex: "a.+"}]"#,
            &[&[
                ("tmp_x", "1"),
                ("pod_template_hash", "abc"),
                ("a", "kept"),
                ("ab", "gone"),
            ]],
        ),
        job(
            "labelkeep",
            r#"[{action: labelkeep, regex: "__.*|app"}]"#,
            &[&[("app", "api"), ("team", "core"), ("job", "own")]],
        ),
        // case mapping
        job(
            "case_mapping",
            r#"[{source_labels: [v], target_label: lower, action: lowercase}, {source_labels: [v], target_label: upper, action: uppercase}, {source_labels: [v], target_label: "$1", action: uppercase}]"#,
            &[
                &[("v", "İSTANBUL")],
                &[("v", "ΣΑΣ ǅ")],
                &[("v", "straße ﬁ ᾳ ᾀ")],
                &[("v", "MiXeD 123")],
                &[("lower", "stale")],
            ],
        ),
        // a sequence
        job(
            "sequence",
            r#"[{source_labels: [a], target_label: b, replacement: "$1-1"}, {source_labels: [b], target_label: c, replacement: "$1-2"}, {source_labels: [c], regex: "foo-1-2", action: keep}, {action: labeldrop, regex: "a|b"}]"#,
            &[&[("a", "foo")], &[("a", "bar")]],
        ),
    ];
    // Sharding: three jobs (one per agent) over the same twelve targets.
    let shard_targets: Vec<Vec<(String, String)>> = (0..12)
        .map(|i| {
            vec![(
                "__address__".to_owned(),
                format!("127.0.{}.{}:9100", i / 5, 10 + i),
            )]
        })
        .collect();
    for shard in 0..3u64 {
        let rules = match RelabelConfig::sharding(shard, 3)
            .map_err(|e| e.to_string())
            .and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => panic!("sharding rules: {e}"),
        };
        jobs.push(Job {
            name: format!("shard_{shard}"),
            rules,
            targets: shard_targets.clone(),
            params: "",
        });
    }
    jobs
}

// --- the model of what Prometheus does around relabelling ---------------------------------

const INTERVAL: &str = "1h";
const TIMEOUT: &str = "10s";

/// The label set Prometheus hands to relabelling (its `populateLabels`, before `Process`).
fn discovered(
    job: &str,
    target: &[(String, String)],
    file: &str,
    params: &[(String, Vec<String>)],
) -> Labels {
    let mut l = Labels::from_pairs(target.to_vec());
    l.set("__meta_filepath", file);
    for (name, value) in [
        ("job", job),
        ("__scrape_interval__", INTERVAL),
        ("__scrape_timeout__", TIMEOUT),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
    ] {
        if l.get(name).is_none() {
            l.set(name, value);
        }
    }
    for (name, values) in params {
        if let Some(first) = values.first() {
            l.set(format!("__param_{name}"), first.as_str());
        }
    }
    l
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Kept: target labels, scrape URL, scrape interval.
    Active(Labels, String, String),
    Dropped,
    /// Refused after relabelling (Prometheus logs it and lists it nowhere).
    Refused(&'static str),
}

/// What Prometheus makes of the relabelled set (the rest of `populateLabels`), and the scrape
/// URL (`Target.URL`): the wiring the agent must reproduce.
fn outcome(
    discovered: &Labels,
    rules: &[RelabelConfig],
    params: &[(String, Vec<String>)],
) -> Outcome {
    let Some(relabelled) = relabel::apply(discovered.clone(), rules) else {
        return Outcome::Dropped;
    };
    let Some(address) = relabelled.get("__address__") else {
        return Outcome::Refused("no address");
    };
    let Some(interval) = relabelled.get("__scrape_interval__") else {
        return Outcome::Refused("empty scrape interval");
    };
    let mut query: Vec<(String, Vec<String>)> = params.to_vec();
    for (name, value) in relabelled.iter() {
        if let Some(key) = name.strip_prefix("__param_") {
            match query.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) => values[0] = value.to_owned(),
                None => query.push((key.to_owned(), vec![value.to_owned()])),
            }
        }
    }
    query.sort();
    let query: Vec<String> = query
        .iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .map(move |v| format!("{}={}", query_escape(k), query_escape(v)))
        })
        .collect();
    let mut url = format!(
        "{}://{}{}",
        relabelled.value_or("__scheme__", ""),
        address,
        relabelled.value_or("__metrics_path__", "")
    );
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    let interval = interval.to_owned();
    let address = address.to_owned();
    let mut target = relabelled;
    target.retain(|name, _| !name.starts_with("__"));
    if target.get("instance").is_none() {
        target.set("instance", address);
    }
    Outcome::Active(target, url, interval)
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

trait ValueOr {
    fn value_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str;
}

impl ValueOr for Labels {
    fn value_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }
}

/// `{module: [http_2xx], target: [a, b]}` → pairs (only this simple form is used).
fn parse_params(text: &str) -> Vec<(String, Vec<String>)> {
    if text.is_empty() {
        return Vec::new();
    }
    let map: BTreeMap<String, Vec<String>> = match serde_yaml_ng::from_str(text) {
        Ok(m) => m,
        Err(e) => panic!("params {text}: {e}"),
    };
    map.into_iter().collect()
}

// --- the tests ---------------------------------------------------------------------------

/// Prometheus's view of every target (`/api/v1/targets?state=any`), `data`.
fn targets(prom: &Prometheus) -> Value {
    http_get(&format!("{}/api/v1/targets?state=any", prom.url()))
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
        .map(|v| v["data"].clone())
        .unwrap_or(Value::Null)
}

/// A label every test target carries, for reading failures (not used to match targets:
/// Prometheus 2.42 reports the discovered labels of a relabelled target partly overwritten by
/// the result, because `relabel.Process` writes into its input's backing array).
const ID: &str = "__meta_case_target";

#[test]
fn target_relabelling_agrees_with_prometheus() {
    let dir = TempDir::new("targets");
    let jobs = jobs();
    let mut config = format!(
        "global: {{scrape_interval: {INTERVAL}, scrape_timeout: {TIMEOUT}}}\nscrape_configs:\n"
    );
    // Each target gets a scrape job of its own, so that Prometheus's answer can be matched to
    // it whatever the rules do: a kept target by its scrape pool, a refused one by the pool
    // named in Prometheus's log, a dropped one by elimination (and the count of dropped).
    // Prometheus job name → (discovered labels as we build them, expected outcome, rules)
    let mut expected: BTreeMap<String, (Labels, Outcome, Vec<RelabelConfig>)> = BTreeMap::new();
    let mut port = 20000;
    for job in &jobs {
        let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(&job.rules)
            .unwrap_or_else(|e| panic!("{}: our parser refuses the rules: {e}", job.name));
        let params = parse_params(job.params);
        for (i, target) in job.targets.iter().enumerate() {
            let name = format!("{}__{i}", job.name);
            let file = dir.0.join(format!("{name}.json"));
            let file_text = file.display().to_string();
            let mut target = target.clone();
            target.push((ID.to_owned(), name.clone()));
            let address = match target.iter().position(|(k, _)| k == "__address__") {
                Some(p) => target.remove(p).1,
                None => {
                    port += 1;
                    format!("127.0.0.1:{port}")
                }
            };
            let group_labels: BTreeMap<&str, &str> = target
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let group = serde_json::json!([{"targets": [address], "labels": group_labels}]);
            std::fs::write(&file, group.to_string()).expect("write file_sd file");
            target.push(("__address__".to_owned(), address));
            let d = discovered(&name, &target, &file_text, &params);
            let o = outcome(&d, &rules, &params);
            expected.insert(name.clone(), (d, o, rules.clone()));
            config.push_str(&format!(
                "  - job_name: {name}\n    file_sd_configs: [{{files: [{file_text:?}]}}]\n    relabel_configs: {}\n",
                job.rules
            ));
            if !job.params.is_empty() {
                config.push_str(&format!("    params: {}\n", job.params));
            }
        }
    }
    let prom = Prometheus::start(&dir.0, &config);

    // Prometheus's view: pool → kept target, pools refused (from its log), dropped count.
    let observe = |data: &Value| {
        let mut active: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
        for t in data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let pool = t["scrapePool"].as_str().unwrap_or_default().to_owned();
            active.entry(pool).or_default().push(Outcome::Active(
                labels_of(&t["labels"]),
                t["scrapeUrl"].as_str().unwrap_or_default().to_owned(),
                t["scrapeInterval"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        let dropped = data["droppedTargets"].as_array().map_or(0, Vec::len);
        let log = prom.log();
        let refused: BTreeSet<String> = expected
            .keys()
            .filter(|name| {
                log.contains(&format!(
                    "scrape_pool={name} msg=\"Creating target failed\""
                ))
            })
            .cloned()
            .collect();
        (active, refused, dropped)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut active, mut refused, mut dropped) = observe(&targets(&prom));
    while active.len() + refused.len() + dropped < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        (active, refused, dropped) = observe(&targets(&prom));
    }
    let data = targets(&prom);
    (active, refused, dropped) = observe(&data);

    let mut failures = Vec::new();
    let mut predicted_dropped = 0;
    for (name, (d, want, _)) in &expected {
        let got = match (active.get(name).map(Vec::as_slice), refused.contains(name)) {
            (Some([one]), false) => one,
            (None, true) => &Outcome::Refused("(see the log)"),
            (None, false) => &Outcome::Dropped,
            (other, refused) => {
                failures.push(format!("{name}: listed as {other:?}, refused: {refused}"));
                continue;
            }
        };
        let agree = match (want, got) {
            (Outcome::Refused(_), Outcome::Refused(_)) => true,
            (want, got) => want == got,
        };
        if !agree {
            failures.push(format!(
                "{name}:\n  discovered {d:?}\n  ours       {want:?}\n  prometheus {got:?}"
            ));
        }
        if matches!(want, Outcome::Dropped) {
            predicted_dropped += 1;
        }
    }
    if dropped != predicted_dropped {
        failures.push(format!(
            "Prometheus lists {dropped} dropped targets, we drop {predicted_dropped}"
        ));
    }
    // Where relabelling changes nothing, Prometheus's discovered labels are intact: they must
    // be the input we built (the wiring the agent has to reproduce).
    for t in data["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let pool = t["scrapePool"].as_str().unwrap_or_default();
        if let Some((d, Outcome::Active(..), rules)) = expected.get(pool) {
            let reported = labels_of(&t["discoveredLabels"]);
            if relabel::apply(d.clone(), rules).as_ref() == Some(d) && reported != *d {
                failures.push(format!(
                    "{pool}: discovered labels\n  ours       {d:?}\n  prometheus {reported:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements over {} targets:\n{}\n\nPrometheus log:\n{}",
        failures.len(),
        expected.len(),
        failures.join("\n"),
        prom.log()
    );

    // Sharding: each of the twelve targets is scraped by exactly one of the three agents.
    for i in 0..12 {
        let owners: Vec<u64> = (0..3)
            .filter(|s| active.contains_key(&format!("shard_{s}__{i}")))
            .collect();
        assert_eq!(owners.len(), 1, "target {i} kept by shards {owners:?}");
    }
    for s in 0..3 {
        let prefix = format!("shard_{s}__");
        assert!(
            active.keys().any(|k| k.starts_with(&prefix)),
            "shard {s} gets no target"
        );
    }

    let counts = |f: fn(&Outcome) -> bool| expected.values().filter(|(_, o, _)| f(o)).count();
    println!(
        "relabel vs Prometheus: {} rule lists, {} targets agree ({} kept, {} dropped, {} refused after relabelling)",
        jobs.len(),
        expected.len(),
        counts(|o| matches!(o, Outcome::Active(..))),
        counts(|o| matches!(o, Outcome::Dropped)),
        counts(|o| matches!(o, Outcome::Refused(_))),
    );
}

/// Rules checked by `promtool check config`: accepted by Prometheus 2.42 iff by us.
const VALIDATION: &[&str] = &[
    "{target_label: t}",
    "{}",
    "{action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}",
    "{action: keepequal, source_labels: [a], target_label: b, separator: ';'}",
    "{action: keepequal, source_labels: [a], target_label: b, regex: ~}",
    "{action: keepequal, source_labels: [a], target_label: '$1'}",
    "{action: keepequal, source_labels: [a], target_label: 1x}",
    "{action: dropequal, source_labels: [a], target_label: b, replacement: x}",
    "{action: dropequal, source_labels: [a], target_label: b, modulus: 2}",
    "{action: labeldrop, regex: a, source_labels: []}",
    "{action: labeldrop, regex: a, source_labels: ~}",
    "{action: labeldrop, regex: a, replacement: '$1', separator: ';', target_label: ''}",
    "{action: labelkeep, regex: a, separator: ~}",
    "{action: labelkeep, regex: a, target_label: x}",
    "{action: labelkeep, regex: a, modulus: 1}",
    "{source_labels: [a], target_label: b, separator: ~}",
    "{source_labels: [a], target_label: b, action: ~}",
    "{source_labels: [a], target_label: b, action: KEEP}",
    "{source_labels: [a], target_label: b, action: bogus}",
    "{source_labels: [a], target_label: b, action: ''}",
    "{source_labels: [a], target_label: b, regex: ~}",
    "{source_labels: [a, ~], target_label: b}",
    "{source_labels: ['1a'], target_label: b}",
    "{source_labels: a, target_label: b}",
    "{target_label: b, foo: 1}",
    "{target_label: '${1}x'}",
    "{target_label: '$1-x'}",
    "{target_label: '$$'}",
    "{target_label: '${}'}",
    "{target_label: '$é'}",
    "{target_label: é}",
    "{target_label: 1x}",
    "{target_label: 123}",
    "{target_label: '__${1}_$2'}",
    "{target_label: b, replacement: true, separator: 1, regex: 1.5}",
    "{action: lowercase, source_labels: [a], target_label: b, replacement: x}",
    "{action: uppercase, source_labels: [a], target_label: '$1'}",
    "{action: uppercase, source_labels: [a], target_label: 1x}",
    "{action: uppercase, source_labels: [a]}",
    "{action: hashmod, source_labels: [a], target_label: b}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: 0}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: -1}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: 3.5}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: -0.5}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: 1e3}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: 0x10}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: '5'}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: true}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: .inf}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: 18446744073709551615}",
    "{action: hashmod, source_labels: [a], target_label: '$1', modulus: 2}",
    "{action: hashmod, source_labels: [a], target_label: 1x, modulus: 2}",
    "{action: labelmap, regex: '(.*)', replacement: 'a-$1'}",
    "{action: labelmap, regex: '(.*)', replacement: '${1}_x'}",
    "{action: labelmap, regex: '(.*)', replacement: '1$1'}",
    "{action: labelmap, regex: '(.*)', replacement: ''}",
    "{action: keep, source_labels: [a], target_label: 1x, replacement: x, modulus: 4}",
    // Regex dialect: what Go's regexp accepts and refuses.
    r"{target_label: b, regex: 'a{1001}'}",
    r"{target_label: b, regex: 'a{1000}'}",
    r"{target_label: b, regex: 'x{2,1}'}",
    r"{target_label: b, regex: 'x{,3}'}",
    r"{target_label: b, regex: 'a{01}'}",
    r"{target_label: b, regex: 'a**'}",
    r"{target_label: b, regex: 'a*??'}",
    r"{target_label: b, regex: 'a{2}{3}'}",
    r"{target_label: b, regex: 'a*?'}",
    r"{target_label: b, regex: '\1'}",
    r"{target_label: b, regex: '\8'}",
    r"{target_label: b, regex: '\12'}",
    r"{target_label: b, regex: '\Z'}",
    r"{target_label: b, regex: '\<'}",
    r"{target_label: b, regex: '\_\@\ '}",
    r"{target_label: b, regex: '\Qa.b\E'}",
    r"{target_label: b, regex: '\Qab'}",
    r"{target_label: b, regex: '\x{110000}'}",
    r"{target_label: b, regex: '\x{10FFFF}\x41\x4'}",
    r"{target_label: b, regex: '\b\B\A\z'}",
    r"{target_label: b, regex: '[\b]'}",
    r"{target_label: b, regex: '\pZ\p{Greek}\PL\p{^Lu}'}",
    r"{target_label: b, regex: '\p{sc=Greek}'}",
    r"{target_label: b, regex: '\p{greek}'}",
    r"{target_label: b, regex: '\p{Old_Italic}'}",
    r"{target_label: b, regex: '[[:alpha:][:^word:]]'}",
    r"{target_label: b, regex: '[[:foo:]]'}",
    r"{target_label: b, regex: '[[]'}",
    r"{target_label: b, regex: '[]a]'}",
    r"{target_label: b, regex: '[a&&b]'}",
    r"{target_label: b, regex: '[a-b-c]'}",
    r"{target_label: b, regex: '[a--]'}",
    r"{target_label: b, regex: '[z-a]'}",
    r"{target_label: b, regex: '[\d-z]'}",
    r"{target_label: b, regex: '[^\x00-\x{10FFFF}]'}",
    r"{target_label: b, regex: '(?x)a'}",
    r"{target_label: b, regex: '(?i-m:a)(?s)(?U)'}",
    r"{target_label: b, regex: '(?i-)a'}",
    r"{target_label: b, regex: '(?)a'}",
    r"{target_label: b, regex: '(?--i)a'}",
    r"{target_label: b, regex: '(?ii)a'}",
    r"{target_label: b, regex: '(?P<1x>a)'}",
    r"{target_label: b, regex: '(?P<n>a)(?P<n>b)'}",
    r"{target_label: b, regex: '(?<n>a)'}",
    r"{target_label: b, regex: '(?P<>a)'}",
    r"{target_label: b, regex: '(?P=n)'}",
    r"{target_label: b, regex: '(?=a)'}",
    r"{target_label: b, regex: 'a)|(b'}",
    r"{target_label: b, regex: '('}",
    r"{target_label: b, regex: '())'}",
    r"{target_label: b, regex: 'a\'}",
    r"{target_label: b, regex: '|*'}",
    r"{target_label: b, regex: '(*)'}",
    r"{target_label: b, regex: '^*$'}",
    r"{target_label: b, regex: '{2}'}",
    r"{target_label: b, regex: 'x{'}",
];

#[test]
fn rule_validation_agrees_with_promtool() {
    let dir = TempDir::new("validation");
    let results: Vec<(usize, bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = VALIDATION
            .chunks(VALIDATION.len().div_ceil(4))
            .enumerate()
            .map(|(c, chunk)| {
                let dir = &dir.0;
                s.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, rule)| {
                            let n = c * 1000 + i;
                            let path = dir.join(format!("p{n}.yml"));
                            // file_sd (not static) targets: promtool checks the rules
                            // without relabelling any target.
                            let text = format!(
                                "scrape_configs:\n  - job_name: j\n    file_sd_configs: [{{files: [{:?}]}}]\n    relabel_configs:\n      - {rule}\n",
                                dir.join("none.json").display().to_string()
                            );
                            std::fs::write(&path, text).expect("write config");
                            let out = Command::new("promtool")
                                .args(["check", "config"])
                                .arg(&path)
                                .output()
                                .unwrap_or_else(|e| {
                                    panic!("cannot run `promtool` ({e}): these tests need it on PATH")
                                });
                            let text = String::from_utf8_lossy(&out.stdout).to_string()
                                + &String::from_utf8_lossy(&out.stderr);
                            (n, out.status.success(), text)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    assert_eq!(results.len(), VALIDATION.len());
    let mut failures = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for ((_, prom_ok, prom_text), rule) in results.iter().zip(VALIDATION) {
        let ours = serde_yaml_ng::from_str::<RelabelConfig>(rule);
        if ours.is_ok() != *prom_ok {
            failures.push(format!(
                "{rule}\n  ours:     {}\n  promtool: {}",
                ours.map(|_| "accepted".to_owned())
                    .unwrap_or_else(|e| e.to_string()),
                prom_text.trim().replace('\n', " | ")
            ));
        }
        if *prom_ok {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "relabel validation vs promtool: {} rules agree ({accepted} accepted, {refused} refused)",
        VALIDATION.len()
    );
}
