//! The README's metric catalogue is the same as `docs/metrics.md` (which the monitoring
//! checks read), so the two cannot drift apart.

#[test]
fn readme_catalogue_matches_docs_metrics() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/metrics.md")).expect("docs/metrics.md");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let is_metric_row = |l: &&str| {
        l.starts_with("| `")
            && ["| counter |", "| gauge |", "| histogram |"]
                .iter()
                .any(|t| l.contains(t))
    };
    let rows: Vec<&str> = docs.lines().filter(is_metric_row).collect();
    assert!(rows.len() > 40, "catalogue looks empty");
    let missing: Vec<&&str> = rows.iter().filter(|r| !readme.contains(**r)).collect();
    assert!(
        missing.is_empty(),
        "README catalogue differs from docs/metrics.md: {missing:#?}"
    );
    let readme_rows = readme.lines().filter(is_metric_row).count();
    assert_eq!(
        readme_rows,
        rows.len(),
        "README has catalogue rows docs/metrics.md lacks"
    );
}

/// The README's upstream health check is the tested `HealthCheck::http_get` (healthy only on
/// a 2xx answer), not a request whose any answer counts as healthy.
#[test]
fn readme_upstream_health_check_requires_a_2xx_answer() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let section = readme
        .split("### Health checks")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has a Health checks section");
    assert!(
        section.contains("HealthCheck::http_get(\"audio-service\""),
        "the README's upstream check should use HealthCheck::http_get"
    );
    assert!(
        !section.contains(".map(|_| ())"),
        "an upstream check that maps any answer to Ok reports a 503 upstream as healthy"
    );
}
