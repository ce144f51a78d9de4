//! Helpers of the library's in-process tests (the generic ones come from
//! `livetranslate-test-support`).
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
