//! A table of relabelling cases (in the spirit of Prometheus's `relabel_test.go`; cases and
//! expected results written here, hash values checked with an independent MD5).

use super::*;

/// Input labels, the rules (YAML list), and the expected labels (`None`: dropped).
struct Case {
    name: &'static str,
    input: &'static [(&'static str, &'static str)],
    rules: &'static str,
    want: Option<&'static [(&'static str, &'static str)]>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().copied().collect()
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

const CASES: &[Case] = &[
    // --- replace -------------------------------------------------------------------------
    Case {
        name: "replace with a group into a new label",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch${1}-ch${1}"}]"#,
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    },
    Case {
        name: "replace joins sources with the separator",
        input: ABC,
        rules: r#"[{source_labels: [a, b], regex: "f(.*);(.*)r", target_label: a, replacement: "b${1}${2}m"}]"#,
        want: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz")]),
    },
    Case {
        name: "replace with a custom separator and the default regex",
        input: ABC,
        rules: r#"[{source_labels: [c, a], separator: "::", target_label: d}]"#,
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "baz::foo")]),
    },
    Case {
        name: "replace with a missing source joins an empty string",
        input: ABC,
        rules: r#"[{source_labels: [a, missing, b], target_label: d}]"#,
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "foo;;bar")]),
    },
    Case {
        name: "replace without match changes nothing",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "no-match", target_label: a, replacement: x}]"#,
        want: Some(ABC),
    },
    Case {
        name: "regex is anchored: a prefix match is no match",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "fo", target_label: d, replacement: x}]"#,
        want: Some(ABC),
    },
    Case {
        name: "alternation is anchored as a whole",
        input: &[("a", "xbar")],
        rules: r#"[{source_labels: [a], regex: "foo|bar", target_label: d, replacement: x}]"#,
        want: Some(&[("a", "xbar")]),
    },
    Case {
        name: "an unbalanced pattern is wrapped literally, as Prometheus wraps it",
        input: &[("a", "a-then-anything")],
        rules: r#"[{source_labels: [a], regex: "a)|(b", target_label: d, replacement: hit}]"#,
        want: Some(&[("a", "a-then-anything"), ("d", "hit")]),
    },
    Case {
        name: "replace with an empty result deletes the target",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "foo", target_label: b, replacement: ""}]"#,
        want: Some(&[("a", "foo"), ("c", "baz")]),
    },
    Case {
        name: "replace from a missing source with the default regex sets the constant",
        input: ABC,
        rules: r#"[{target_label: env, replacement: prod}]"#,
        want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("env", "prod")]),
    },
    Case {
        name: "default replacement copies the joined value",
        input: ABC,
        rules: r#"[{source_labels: [b], target_label: a}]"#,
        want: Some(&[("a", "bar"), ("b", "bar"), ("c", "baz")]),
    },
    Case {
        name: "copying a missing label deletes the target",
        input: ABC,
        rules: r#"[{source_labels: [missing], target_label: a}]"#,
        want: Some(&[("b", "bar"), ("c", "baz")]),
    },
    Case {
        name: "the default regex does not match a value with a newline",
        input: &[("a", "two\nlines")],
        rules: r#"[{source_labels: [a], target_label: b}]"#,
        want: Some(&[("a", "two\nlines")]),
    },
    Case {
        name: "(?s) lets the dot match a newline",
        input: &[("a", "two\nlines")],
        rules: r#"[{source_labels: [a], regex: "(?s)(.*)", target_label: b}]"#,
        want: Some(&[("a", "two\nlines"), ("b", "two\nlines")]),
    },
    Case {
        name: "target label from groups",
        input: &[("a", "some-name-value")],
        rules: r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", target_label: "${1}", replacement: "${2}"}]"#,
        want: Some(&[("a", "some-name-value"), ("name", "value")]),
    },
    Case {
        name: "target label template with a suffix",
        input: &[("a", "some-name-value")],
        rules: r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", target_label: "${1}_total", replacement: "$2"}]"#,
        want: Some(&[("a", "some-name-value"), ("name_total", "value")]),
    },
    Case {
        name: "an expanded target that is not a label name changes nothing",
        input: &[("a", "some-9name-value")],
        rules: r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", target_label: "${1}", replacement: "$2"}]"#,
        want: Some(&[("a", "some-9name-value")]),
    },
    Case {
        name: "an expanded target that is empty changes nothing",
        input: &[("a", "x")],
        rules: r#"[{source_labels: [a], regex: "(y)?x", target_label: "$1", replacement: v}]"#,
        want: Some(&[("a", "x")]),
    },
    Case {
        name: "an empty value with a templated target deletes the label named by the template text (none)",
        input: &[("a", "b-"), ("b", "keep")],
        rules: r#"[{source_labels: [a], regex: "(.*)-(.*)", target_label: "$1", replacement: "$2"}]"#,
        want: Some(&[("a", "b-"), ("b", "keep")]),
    },
    Case {
        name: "$1x is the group named 1x (none): empty, so the target is deleted",
        input: &[("a", "foo"), ("b", "old")],
        rules: r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "$1x"}]"#,
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "${1}x is group 1 then x",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "${1}x"}]"#,
        want: Some(&[("a", "foo"), ("b", "fx")]),
    },
    Case {
        name: "$$ is a dollar, $ before a non-name is literal",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "$$1 $- ${1 $"}]"#,
        want: Some(&[("a", "foo"), ("b", "$1 $- ${1 $")]),
    },
    Case {
        name: "named groups by $name and ${name}; $0 is the whole match",
        input: &[("a", "host:9100")],
        rules: r#"[{source_labels: [a], regex: "(?P<host>[^:]+):(?P<port>\\d+)", target_label: b, replacement: "${port}/$host/$0"}]"#,
        want: Some(&[("a", "host:9100"), ("b", "9100/host/host:9100")]),
    },
    Case {
        name: "$01 has a leading zero: a name, not group 1",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "<$01>"}]"#,
        want: Some(&[("a", "foo"), ("b", "<>")]),
    },
    Case {
        name: "a group past the last expands to nothing",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "<$2$10>"}]"#,
        want: Some(&[("a", "foo"), ("b", "<>")]),
    },
    Case {
        name: "a group named 1x is found by $1x",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "(?P<1x>f)oo", target_label: b, replacement: "$1x"}]"#,
        want: Some(&[("a", "foo"), ("b", "f")]),
    },
    Case {
        name: "Go's \\d is ASCII",
        input: &[("a", "٣")],
        rules: r#"[{source_labels: [a], regex: "\\d", target_label: b, replacement: digit}]"#,
        want: Some(&[("a", "٣")]),
    },
    Case {
        name: "(?i) folds the Kelvin sign",
        input: &[("a", "\u{212a}")],
        rules: r#"[{source_labels: [a], regex: "(?i)k", target_label: b, replacement: k}]"#,
        want: Some(&[("a", "\u{212a}"), ("b", "k")]),
    },
    Case {
        name: "{ that is not a repetition is literal",
        input: &[("a", "x{,3}")],
        rules: r#"[{source_labels: [a], regex: "x{,3}", target_label: b, replacement: lit}]"#,
        want: Some(&[("a", "x{,3}"), ("b", "lit")]),
    },
    Case {
        name: "(?U) makes repetitions lazy",
        input: &[("a", "aaa")],
        rules: r#"[{source_labels: [a], regex: "(?U)(a+)(a*)", target_label: b, replacement: "$1|$2"}]"#,
        want: Some(&[("a", "aaa"), ("b", "a|aa")]),
    },
    Case {
        name: "replace can write __address__ (blackbox exporter pattern)",
        input: &[("__address__", "example.org")],
        rules: r#"
- {source_labels: [__address__], target_label: __param_target}
- {source_labels: [__param_target], target_label: instance}
- {target_label: __address__, replacement: "127.0.0.1:9115"}
"#,
        want: Some(&[
            ("__address__", "127.0.0.1:9115"),
            ("__param_target", "example.org"),
            ("instance", "example.org"),
        ]),
    },
    // --- keep / drop -----------------------------------------------------------------------
    Case {
        name: "drop on match",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "f.+", action: drop}]"#,
        want: None,
    },
    Case {
        name: "drop without match keeps",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "f", action: drop}]"#,
        want: Some(ABC),
    },
    Case {
        name: "keep on match",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "f.+", action: keep}]"#,
        want: Some(ABC),
    },
    Case {
        name: "keep without match drops",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "f", action: keep}]"#,
        want: None,
    },
    Case {
        name: "keep on a missing label with a regex matching empty",
        input: ABC,
        rules: r#"[{source_labels: [missing], regex: "", action: keep}]"#,
        want: Some(ABC),
    },
    Case {
        name: "drop with a null regex matches only the empty value",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: ~, action: drop}]"#,
        want: Some(ABC),
    },
    Case {
        name: "keep on joined labels",
        input: ABC,
        rules: r#"[{source_labels: [a, c], separator: "|", regex: "foo\\|baz", action: keep}]"#,
        want: Some(ABC),
    },
    Case {
        name: "rules after a drop do not run",
        input: ABC,
        rules: r#"
- {source_labels: [a], regex: foo, action: drop}
- {target_label: never, replacement: x}
"#,
        want: None,
    },
    // --- keepequal / dropequal -------------------------------------------------------------
    Case {
        name: "keepequal keeps equal",
        input: &[("a", "1"), ("b", "1")],
        rules: r#"[{source_labels: [a], target_label: b, action: keepequal}]"#,
        want: Some(&[("a", "1"), ("b", "1")]),
    },
    Case {
        name: "keepequal drops different",
        input: &[("a", "1"), ("b", "2")],
        rules: r#"[{source_labels: [a], target_label: b, action: keepequal}]"#,
        want: None,
    },
    Case {
        name: "keepequal: two missing labels are equal",
        input: &[("a", "1")],
        rules: r#"[{source_labels: [x], target_label: y, action: keepequal}]"#,
        want: Some(&[("a", "1")]),
    },
    Case {
        name: "dropequal drops equal joined values",
        input: &[("a", "1"), ("b", "2"), ("c", "1;2")],
        rules: r#"[{source_labels: [a, b], target_label: c, action: dropequal}]"#,
        want: None,
    },
    Case {
        name: "dropequal keeps different",
        input: &[("a", "1"), ("b", "2")],
        rules: r#"[{source_labels: [a], target_label: b, action: dropequal}]"#,
        want: Some(&[("a", "1"), ("b", "2")]),
    },
    // --- hashmod ---------------------------------------------------------------------------
    Case {
        name: "hashmod",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], modulus: 1000, target_label: h, action: hashmod}]"#,
        want: Some(&[("a", "foo"), ("h", "696")]),
    },
    Case {
        name: "hashmod modulus 1",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], modulus: 1, target_label: h, action: hashmod}]"#,
        want: Some(&[("a", "foo"), ("h", "0")]),
    },
    Case {
        name: "hashmod on joined values",
        input: &[("a", "a"), ("b", "b")],
        rules: r#"[{source_labels: [a, b], modulus: 10, target_label: h, action: hashmod}]"#,
        want: Some(&[("a", "a"), ("b", "b"), ("h", "4")]),
    },
    Case {
        name: "hashmod of the empty string",
        input: &[("a", "x")],
        rules: r#"[{source_labels: [missing], modulus: 7, target_label: h, action: hashmod}]"#,
        want: Some(&[("a", "x"), ("h", "1")]),
    },
    Case {
        name: "hashmod with a modulus over 2^63",
        input: &[("__address__", "host-1:80")],
        rules: r#"[{source_labels: [__address__], modulus: 9223372036854775813, target_label: h, action: hashmod}]"#,
        want: Some(&[("__address__", "host-1:80"), ("h", "3735137142493017366")]),
    },
    Case {
        name: "hashmod sharding keeps the target in its shard",
        input: &[("__address__", "127.0.0.1:9100")],
        rules: r#"
- {source_labels: [__address__], modulus: 3, target_label: __tmp_hash, action: hashmod}
- {source_labels: [__tmp_hash], regex: "1", action: keep}
"#,
        want: Some(&[("__address__", "127.0.0.1:9100"), ("__tmp_hash", "1")]),
    },
    Case {
        name: "hashmod sharding drops the target from other shards",
        input: &[("__address__", "127.0.0.1:9100")],
        rules: r#"
- {source_labels: [__address__], modulus: 3, target_label: __tmp_hash, action: hashmod}
- {source_labels: [__tmp_hash], regex: "0|2", action: keep}
"#,
        want: None,
    },
    // --- labelmap --------------------------------------------------------------------------
    Case {
        name: "labelmap copies with a new name",
        input: &[("__meta_pod_label_app", "api"), ("__meta_pod_label_tier", "web"), ("job", "j")],
        rules: r#"[{action: labelmap, regex: "__meta_pod_label_(.+)"}]"#,
        want: Some(&[
            ("__meta_pod_label_app", "api"),
            ("__meta_pod_label_tier", "web"),
            ("app", "api"),
            ("job", "j"),
            ("tier", "web"),
        ]),
    },
    Case {
        name: "labelmap overwrites an existing label",
        input: &[("__meta_job", "new"), ("job", "old")],
        rules: r#"[{action: labelmap, regex: "__meta_(.+)"}]"#,
        want: Some(&[("__meta_job", "new"), ("job", "new")]),
    },
    Case {
        name: "labelmap with a template replacement, new names not mapped again",
        input: &[("a", "1"), ("b", "2")],
        rules: r#"[{action: labelmap, regex: "(.*)", replacement: "${1}_copy"}]"#,
        want: Some(&[("a", "1"), ("a_copy", "1"), ("b", "2"), ("b_copy", "2")]),
    },
    Case {
        name: "labelmap: two names mapping to one, the later in name order wins",
        input: &[("x_a", "first"), ("y_a", "second")],
        rules: r#"[{action: labelmap, regex: "[xy]_(a)"}]"#,
        want: Some(&[("a", "second"), ("x_a", "first"), ("y_a", "second")]),
    },
    Case {
        name: "labelmap: the later wins even when the earlier wrote the current value",
        input: &[("a", "2"), ("x_a", "1"), ("y_a", "2")],
        rules: r#"[{action: labelmap, regex: "[xy]_(a)"}]"#,
        want: Some(&[("a", "2"), ("x_a", "1"), ("y_a", "2")]),
    },
    Case {
        name: "labelmap regex is anchored on the name",
        input: &[("x__meta_a", "1")],
        rules: r#"[{action: labelmap, regex: "__meta_(.+)"}]"#,
        want: Some(&[("x__meta_a", "1")]),
    },
    // --- labeldrop / labelkeep -------------------------------------------------------------
    Case {
        name: "labeldrop",
        input: ABC,
        rules: r#"[{action: labeldrop, regex: "a|c"}]"#,
        want: Some(&[("b", "bar")]),
    },
    Case {
        name: "labeldrop is anchored",
        input: ABC,
        rules: r#"[{action: labeldrop, regex: "a.+"}]"#,
        want: Some(ABC),
    },
    Case {
        name: "labelkeep",
        input: ABC,
        rules: r#"[{action: labelkeep, regex: "a|c"}]"#,
        want: Some(&[("a", "foo"), ("c", "baz")]),
    },
    Case {
        name: "labelkeep of nothing leaves an empty set (not a drop)",
        input: ABC,
        rules: r#"[{action: labelkeep, regex: "z"}]"#,
        want: Some(&[]),
    },
    // --- lowercase / uppercase -------------------------------------------------------------
    Case {
        name: "lowercase",
        input: &[("a", "AbCd"), ("b", "EfG")],
        rules: r#"[{source_labels: [a, b], separator: "-", target_label: l, action: lowercase}]"#,
        want: Some(&[("a", "AbCd"), ("b", "EfG"), ("l", "abcd-efg")]),
    },
    Case {
        name: "uppercase, Go's one-to-one mapping",
        input: &[("a", "straße ǆ")],
        rules: r#"[{source_labels: [a], target_label: u, action: uppercase}]"#,
        want: Some(&[("a", "straße ǆ"), ("u", "STRAßE Ǆ")]),
    },
    Case {
        name: "lowercase of a missing label deletes the target",
        input: &[("l", "x")],
        rules: r#"[{source_labels: [missing], target_label: l, action: lowercase}]"#,
        want: Some(&[]),
    },
    Case {
        name: "uppercase into a literal $ target (2.42 accepts and writes it as is)",
        input: &[("a", "x")],
        rules: r#"[{source_labels: [a], target_label: "$1", action: uppercase}]"#,
        want: Some(&[("$1", "X"), ("a", "x")]),
    },
    // --- sequences -------------------------------------------------------------------------
    Case {
        name: "each rule sees the previous rule's output",
        input: &[("a", "foo")],
        rules: r#"
- {source_labels: [a], target_label: b, replacement: "$1-1"}
- {source_labels: [b], target_label: c, replacement: "$1-2"}
- {source_labels: [c], regex: "foo-1-2", action: keep}
- {action: labeldrop, regex: "a|b"}
"#,
        want: Some(&[("c", "foo-1-2")]),
    },
    Case {
        name: "no rules",
        input: ABC,
        rules: "[]",
        want: Some(ABC),
    },
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for case in CASES {
        let rules: Vec<RelabelConfig> = match serde_yaml_ng::from_str(case.rules) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: rules do not parse: {e}", case.name));
                continue;
            }
        };
        let got = apply(labels(case.input), &rules);
        let want = case.want.map(labels);
        if got != want {
            failures.push(format!("{}:\n  got  {got:?}\n  want {want:?}", case.name));
        }
        // The in-place form agrees.
        let mut l = labels(case.input);
        let kept = apply_mut(&mut l, &rules);
        if kept != want.is_some() || (kept && Some(&l) != want.as_ref()) {
            failures.push(format!("{}: apply_mut disagrees", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sharding_splits_without_overlap_or_gap() {
    let shards: Vec<Vec<RelabelConfig>> = (0..3)
        .map(|i| RelabelConfig::sharding(i, 3).unwrap())
        .collect();
    let mut per_shard = [0usize; 3];
    for n in 0..300 {
        let target: Labels = [("__address__", format!("10.0.{}.{}:9100", n / 250, n % 250))]
            .into_iter()
            .collect();
        let owners: Vec<usize> = (0..3)
            .filter(|&i| apply(target.clone(), &shards[i]).is_some())
            .collect();
        assert_eq!(owners.len(), 1, "{target:?} kept by {owners:?}");
        per_shard[owners[0]] += 1;
    }
    // Not asserted exactly (it is a hash), but no shard is starved.
    assert!(per_shard.iter().all(|&n| n > 60), "{per_shard:?}");
}

#[test]
fn labels_from_promtail_style_maps() {
    let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(
        r#"
- {source_labels: [__path__], regex: "/var/log/(.+)\\.log", target_label: app}
- {source_labels: [__path__], regex: ".*/debug\\.log", action: drop}
"#,
    )
    .unwrap();
    let target: std::collections::BTreeMap<String, String> =
        [("__path__", "/var/log/translation.log"), ("job", "varlogs")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let out: std::collections::BTreeMap<String, String> =
        apply(Labels::from(target.clone()), &rules).unwrap().into();
    assert_eq!(out.get("app").map(String::as_str), Some("translation"));
    let mut debug = target;
    debug.insert("__path__".into(), "/var/log/debug.log".into());
    assert!(apply(Labels::from(debug), &rules).is_none());
}
