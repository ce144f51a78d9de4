//! Shared helpers for the in-process tests.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Request, Response};
use http_body_util::BodyExt;
use livetranslate_telemetry::{Telemetry, TelemetryBuilder};
use tower::ServiceExt;

/// A builder that ignores the process environment and installs no global logger.
pub fn builder(service: &str, env: &[(&str, &str)]) -> TelemetryBuilder {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Telemetry::builder(service)
        .version("1.2.3")
        .environment("test")
        .cluster("test-cluster")
        .install_logging(false)
        .env_lookup(move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

pub async fn send(app: &Router, req: Request<Body>) -> (Response<()>, String) {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub async fn get(app: &Router, uri: &str) -> (Response<()>, String) {
    send(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

/// Sample lines of `name` (exact metric name, any labels) in an exposition.
pub fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of the single sample of `name` whose line contains every one of `labels`.
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
