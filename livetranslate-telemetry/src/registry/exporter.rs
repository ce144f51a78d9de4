//! The `/api/metrics` handler: renders the [`Registry`] in the format the scraper asks for
//! (`Accept`: OpenMetrics 1.0 or the text format 0.0.4, the default) and gzips it when the
//! scraper accepts that (`Accept-Encoding: gzip`, which Prometheus sends).

use std::io::Write;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;

use super::encode::Format;
use super::Registry;

/// The format a request's `Accept` header asks for: OpenMetrics when
/// `application/openmetrics-text` (version 1.0.0, 0.0.1 or none) has a higher quality than
/// `text/plain` and `*/*`, the text format otherwise.
///
/// ```
/// use livetranslate_telemetry::registry::{encode::Format, exporter::negotiate_format};
/// // What Prometheus 2.x sends:
/// let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate_format(Some(prometheus)), Format::OpenMetrics);
/// assert_eq!(negotiate_format(Some("text/plain")), Format::Text);
/// assert_eq!(negotiate_format(None), Format::Text);
/// ```
pub fn negotiate_format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut openmetrics = 0.0_f32;
    let mut text = 0.0_f32;
    for range in accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0_f32;
        let mut version: Option<String> = None;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.parse().unwrap_or(0.0),
                    "version" => version = Some(v.to_owned()),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text"
                if matches!(version.as_deref(), None | Some("1.0.0") | Some("0.0.1")) =>
            {
                openmetrics = openmetrics.max(q)
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether an `Accept-Encoding` header accepts gzip (`gzip` or `*`, with a quality above 0).
///
/// ```
/// use livetranslate_telemetry::registry::exporter::accepts_gzip;
/// assert!(accepts_gzip(Some("gzip")));
/// assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
/// assert!(!accepts_gzip(Some("gzip;q=0")));
/// assert!(!accepts_gzip(None));
/// ```
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut gzip: Option<f32> = None;
    let mut any: Option<f32> = None;
    for coding in value.split(',') {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map_or(1.0, |q| q.trim().parse().unwrap_or(0.0));
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(gzip.map_or(q, |g: f32| g.max(q))),
            "*" => any = Some(q),
            _ => {}
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// Gzips `body` (fastest level: a scrape-sized exposition shrinks more than tenfold at a
/// fraction of the cost of the default level).
///
/// ```
/// let body = "up 1\n".repeat(100);
/// let zipped = livetranslate_telemetry::registry::exporter::gzip(body.as_bytes()).unwrap();
/// assert!(zipped.starts_with(&[0x1f, 0x8b]) && zipped.len() < body.len());
/// ```
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 8 + 64), Compression::fast());
    enc.write_all(body)?;
    enc.finish()
}

/// The response to a scrape of `registry` with these request headers.
///
/// ```
/// use axum::http::{header, HeaderMap};
/// use livetranslate_telemetry::registry::{exporter::respond, Registry};
/// let registry = Registry::new(&[("service", "demo")]);
/// let mut headers = HeaderMap::new();
/// headers.insert(header::ACCEPT, "application/openmetrics-text; version=1.0.0".parse().unwrap());
/// let res = respond(&registry, &headers);
/// assert!(res.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/openmetrics-text"));
/// ```
pub fn respond(registry: &Registry, headers: &HeaderMap) -> Response {
    let text_of = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    let format = negotiate_format(text_of(header::ACCEPT));
    let body = registry.render_as(format);
    let vary = (
        header::VARY,
        HeaderValue::from_static("accept, accept-encoding"),
    );
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if accepts_gzip(text_of(header::ACCEPT_ENCODING)) {
        match gzip(body.as_bytes()) {
            Ok(zipped) => {
                return (
                    [
                        content_type,
                        vary,
                        (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                    ],
                    zipped,
                )
                    .into_response()
            }
            // Writing into memory does not fail; if it ever did, the plain body still works.
            Err(e) => tracing::warn!(error = %e, "gzip of /api/metrics failed, sent plain"),
        }
    }
    ([content_type, vary], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_decides() {
        assert_eq!(
            negotiate_format(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            negotiate_format(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate_format(Some("application/openmetrics-text;version=2.0.0")),
            Format::Text
        );
        assert_eq!(
            negotiate_format(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(negotiate_format(Some("*/*")), Format::Text);
    }

    #[test]
    fn gzip_round_trips() {
        let body = "metric_total 1\n".repeat(1000);
        let zipped = gzip(body.as_bytes()).expect("gzip");
        assert!(zipped.len() < body.len() / 10);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut out)
            .expect("gunzip");
        assert_eq!(out, body);
    }

    #[test]
    fn gzip_preferences() {
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("*;q=0")));
        assert!(accepts_gzip(Some("GZIP")));
    }
}
