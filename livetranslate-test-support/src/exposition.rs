//! Looking up samples in Prometheus text exposition output (what `/api/metrics` and the
//! agent's `/metrics` serve), for assertions.

/// Sample lines of `name` (exact metric name, any labels).
///
/// ```
/// let text = "# TYPE a_total counter\na_total{x=\"1\"} 3\na_total_extra 1\n";
/// assert_eq!(livetranslate_test_support::exposition::samples(text, "a_total"), ["a_total{x=\"1\"} 3"]);
/// ```
pub fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of the single sample of `name` whose line contains every one of `labels`
/// (fails the test when several match).
///
/// ```
/// let text = "a{x=\"1\"} 3\na{x=\"2\"} 4\n";
/// assert_eq!(livetranslate_test_support::exposition::value(text, "a", &["x=\"2\""]), Some(4.0));
/// ```
pub fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let matching: Vec<&str> = samples(text, name)
        .into_iter()
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .collect();
    assert!(
        matching.len() <= 1,
        "ambiguous {name} {labels:?}: {matching:?}"
    );
    matching
        .first()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
