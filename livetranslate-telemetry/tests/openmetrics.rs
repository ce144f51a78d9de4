//! `/api/metrics` content negotiation: OpenMetrics with exemplars when asked, the text format
//! by default, gzip when accepted.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{builder, send};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use livetranslate_telemetry::context::RequestContext;
use livetranslate_telemetry::registry::encode::Format;
use livetranslate_telemetry::registry::{Collect, Registry};
use tower::ServiceExt;

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Answers with the trace id the handler sees.
async fn trace_id() -> String {
    RequestContext::current()
        .and_then(|c| c.trace_id().map(str::to_owned))
        .unwrap_or_default()
}

fn app(t: &livetranslate_telemetry::Telemetry) -> Router {
    t.router(
        Router::new()
            .route("/api/a", get(trace_id))
            .route("/api/b", get(trace_id)),
    )
}

async fn scrape(app: &Router, headers: &[(&str, &str)]) -> (http::Response<()>, Vec<u8>) {
    let mut req = Request::get("/api/metrics");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (http::Response::from_parts(parts, ()), bytes)
}

/// The exemplar trace ids on the duration buckets of `route`.
fn exemplar_traces(om: &str, route: &str) -> Vec<String> {
    om.lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_bucket{"))
        .filter(|l| l.contains(&format!("http_route=\"{route}\"")))
        .filter_map(|l| l.split(" # {trace_id=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn openmetrics_when_asked_with_exemplars_carrying_the_trace_id() {
    let t = builder("om", &[]).build().expect("telemetry");
    let app = app(&t);
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let req = Request::get("/api/a")
        .header("traceparent", &traceparent)
        .body(Body::empty())
        .expect("request");
    let (_, seen) = send(&app, req).await;
    assert_eq!(seen, TRACE, "the handler sees the incoming trace id");
    // Without a traceparent the library starts a trace; the handler sees its id.
    let (_, generated) = common::get(&app, "/api/b").await;
    assert_eq!(generated.len(), 32);
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(generated, TRACE);

    let (res, body) = scrape(&app, &[("accept", PROMETHEUS_ACCEPT)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let om = String::from_utf8(body).expect("utf-8");
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert_eq!(om.matches("# EOF").count(), 1);
    assert_eq!(exemplar_traces(&om, "/api/a"), [TRACE]);
    assert_eq!(exemplar_traces(&om, "/api/b"), [generated.as_str()]);
    // The exemplar's value lies in its bucket; its timestamp is now-ish.
    let line = om
        .lines()
        .find(|l| l.contains(TRACE))
        .expect("exemplar line");
    let (sample, exemplar) = line.split_once(" # ").expect("exemplar");
    let le: f64 = sample
        .split("le=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .expect("le");
    let mut fields = exemplar.rsplit(' ');
    let ts: f64 = fields.next().and_then(|v| v.parse().ok()).expect("ts");
    let value: f64 = fields.next().and_then(|v| v.parse().ok()).expect("value");
    assert!(value >= 0.0 && value <= le, "{line}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - ts).abs() < 60.0, "{line}");
    // OpenMetrics names: counter families without _total, samples with it; units.
    assert!(om.contains("# TYPE livetranslate_websocket_connections_opened counter\n"));
    assert!(om.contains("\nlivetranslate_websocket_connections_opened_total{service=\"om\","));
    assert!(om.contains("# TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n"));
    assert!(om.contains(
        "# TYPE http_server_request_duration_seconds histogram\n# UNIT http_server_request_duration_seconds seconds\n"
    ));
    assert!(!om.contains("_total counter\n"), "{om}");
    // Only the duration histogram carries exemplars.
    assert!(om
        .lines()
        .filter(|l| l.contains(" # {"))
        .all(|l| l.starts_with("http_server_request_duration_seconds_bucket{")));

    // The default stays the text format, without exemplars.
    for accept in [None, Some("text/plain"), Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let (res, body) = scrape(&app, &headers).await;
        assert_eq!(
            res.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = String::from_utf8(body).expect("utf-8");
        assert!(
            !text.contains("# EOF") && !text.contains(" # {"),
            "{accept:?}"
        );
        assert!(text.contains("# TYPE livetranslate_websocket_connections_opened_total counter\n"));
    }
}

#[tokio::test]
async fn no_request_context_no_exemplars() {
    let t = builder("om2", &[]).build().expect("telemetry");
    let app = Router::new()
        .route("/api/a", get(trace_id))
        .merge(t.routes())
        .layer(t.http_layer().request_id(false));
    let req = Request::get("/api/a")
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .body(Body::empty())
        .expect("request");
    let (_, seen) = send(&app, req).await;
    assert_eq!(seen, "");
    let om = t.render_metrics_as(Format::OpenMetrics);
    assert!(om.contains("http_server_request_duration_seconds_bucket{"));
    assert!(exemplar_traces(&om, "/api/a").is_empty(), "{om}");
}

#[tokio::test]
async fn gzip_when_the_scraper_accepts_it() {
    let t = builder("gz", &[]).build().expect("telemetry");
    let app = app(&t);
    common::get(&app, "/api/a").await;
    for (accept, format) in [
        (None, "text/plain"),
        (Some(PROMETHEUS_ACCEPT), "application/openmetrics-text"),
    ] {
        let mut headers = vec![("accept-encoding", "gzip, deflate")];
        headers.extend(accept.map(|a| ("accept", a)));
        let (res, body) = scrape(&app, &headers).await;
        assert_eq!(res.headers()["content-encoding"], "gzip");
        assert!(res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with(format));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .expect("a gzip body");
        assert!(text.contains("http_server_request_duration_seconds_bucket{"));
        assert!(
            body.len() * 4 < text.len(),
            "{} of {}",
            body.len(),
            text.len()
        );
    }
    for refused in [None, Some("identity"), Some("gzip;q=0")] {
        let headers: Vec<(&str, &str)> = refused
            .map(|e| ("accept-encoding", e))
            .into_iter()
            .collect();
        let (res, body) = scrape(&app, &headers).await;
        assert!(
            !res.headers().contains_key("content-encoding"),
            "{refused:?}"
        );
        assert!(String::from_utf8(body)
            .expect("plain")
            .starts_with("# HELP"));
    }
}

#[test]
fn custom_collectors_are_converted_to_openmetrics() {
    struct Legacy;
    impl Collect for Legacy {
        fn encode(&self, const_labels: &str, out: &mut String) {
            out.push_str(
                "# HELP legacy_events_total Events.\n# TYPE legacy_events_total counter\n",
            );
            out.push_str(&format!("legacy_events_total{{{const_labels}}} 7\n"));
            out.push_str("# HELP legacy_hits Hits, counted without the suffix.\n# TYPE legacy_hits counter\n");
            out.push_str(&format!("legacy_hits{{{const_labels}}} 2\n"));
            out.push_str("# TYPE legacy_mood untyped\n");
            out.push_str(&format!("legacy_mood{{{const_labels}}} 1\n"));
        }
    }
    let registry = Registry::new(&[("service", "legacy")]);
    registry
        .register_collector(
            &["legacy_events_total", "legacy_hits", "legacy_mood"],
            Legacy,
        )
        .expect("collector");
    let om = registry.render_as(Format::OpenMetrics);
    assert_eq!(
        om,
        "# HELP legacy_events Events.\n# TYPE legacy_events counter\n\
         legacy_events_total{service=\"legacy\"} 7\n\
         # HELP legacy_hits Hits, counted without the suffix.\n# TYPE legacy_hits counter\n\
         legacy_hits_total{service=\"legacy\"} 2\n\
         # TYPE legacy_mood unknown\nlegacy_mood{service=\"legacy\"} 1\n# EOF\n"
    );
}
