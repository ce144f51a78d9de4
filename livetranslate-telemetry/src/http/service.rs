use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use tower_service::Service;

use super::body::CountingBody;
use super::future::{MaybeScoped, RequestState, ResponseFuture};
use super::layer::HttpLayer;
use super::route::{method_index, route_of, METHODS, UNMATCHED_ROUTE};
use crate::context::{valid_traceparent, RequestContext, CURRENT, TRACEPARENT_HEADER};
use crate::request_id::{RequestId, REQUEST_ID_HEADER};

/// The service made by [`HttpLayer`].
///
/// ```
/// use livetranslate_telemetry::http::{HttpLayer, HttpService};
/// use tower_layer::Layer;
/// let svc: HttpService<()> = HttpLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct HttpService<S> {
    pub(crate) inner: S,
    pub(crate) layer: HttpLayer,
}

impl<S, ResBody> Service<Request<Body>> for HttpService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<MaybeScoped<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let start = Instant::now();
        let method = method_index(req.method());

        let request_id = if self.layer.request_id {
            let id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(RequestId::from_incoming)
                .unwrap_or_else(RequestId::generate);
            req.headers_mut()
                .insert(REQUEST_ID_HEADER, id.header_value().clone());
            req.extensions_mut().insert(id.clone());
            Some(id)
        } else {
            None
        };

        let span = if self.layer.access_log {
            tracing::info_span!(
                "request",
                request_id = request_id.as_ref().map(RequestId::as_str),
            )
        } else {
            tracing::Span::none()
        };
        let log_path = (self.layer.access_log
            && tracing::enabled!(target: "access", tracing::Level::INFO))
        .then(|| (req.uri().clone(), route_of(&req)));

        let metrics = self.layer.metrics.as_ref().map(|m| {
            let route = m.route(route_str(&req));
            route.start(method);
            let request_bytes = match req.body().size_hint().exact() {
                Some(n) => RequestBytes::Known(n),
                None => {
                    let counter = Arc::new(AtomicU64::new(0));
                    let body = std::mem::take(req.body_mut());
                    *req.body_mut() = Body::new(CountingBody::new(body, counter.clone(), None));
                    RequestBytes::Counted(counter)
                }
            };
            RequestMetrics {
                route,
                method,
                request_bytes,
            }
        });

        // Handlers (and outbound calls they make) see the request's id and trace context.
        let context = request_id.as_ref().map(|id| RequestContext {
            request_id: Some(id.header_value().clone()),
            traceparent: req
                .headers()
                .get(TRACEPARENT_HEADER)
                .filter(|v| valid_traceparent(v.as_bytes()))
                .cloned(),
        });
        let inner = {
            let _entered = span.enter();
            let fut = self.inner.call(req);
            match context {
                Some(ctx) => MaybeScoped::Scoped {
                    fut: CURRENT.scope(Some(ctx), fut),
                },
                None => MaybeScoped::Plain { fut },
            }
        };
        ResponseFuture::new(
            inner,
            RequestState {
                start,
                method,
                request_id: request_id.map(|id| id.0),
                metrics,
                log_path,
            },
            span,
        )
    }
}

/// How the request body's size is known.
pub(crate) enum RequestBytes {
    /// From `Content-Length` or a complete body.
    Known(u64),
    /// Counted as the handler reads a streamed body.
    Counted(Arc<AtomicU64>),
}

/// The metrics state of one request; dropping it (response sent or request cancelled) ends
/// the request's in-flight count.
pub(crate) struct RequestMetrics {
    pub route: &'static super::metrics::RouteEntry,
    pub method: usize,
    pub request_bytes: RequestBytes,
}

impl Drop for RequestMetrics {
    fn drop(&mut self) {
        self.route.end(self.method);
    }
}

/// The route template axum matched, or the constant for unmatched requests.
#[inline]
fn route_str<B>(req: &Request<B>) -> &str {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |m| m.as_str())
}

/// Finishes a response: records metrics, sets the request id header, writes the access log.
pub(crate) fn finish<ResBody>(
    state: RequestState,
    res: Response<ResBody>,
    span: &tracing::Span,
) -> Response<Body>
where
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    let elapsed = state.start.elapsed();
    let status = res.status().as_u16();
    let (mut parts, body) = res.into_parts();
    if let Some(id) = state.request_id {
        parts
            .headers
            .entry(REQUEST_ID_HEADER)
            .or_insert_with(|| id as HeaderValue);
    }
    let response_size = body.size_hint().exact();
    let mut request_size = None;
    let body = match state.metrics {
        Some(m) => {
            let req_bytes = match &m.request_bytes {
                RequestBytes::Known(n) => *n,
                RequestBytes::Counted(c) => c.load(std::sync::atomic::Ordering::Relaxed),
            };
            request_size = Some(req_bytes);
            let series = m.route.series(state.method, status);
            series.duration.observe(elapsed.as_secs_f64());
            series.request_size.observe(req_bytes as f64);
            match response_size {
                Some(n) => {
                    series.response_size.observe(n as f64);
                    Body::new(body)
                }
                None => Body::new(CountingBody::new(
                    body,
                    Arc::new(AtomicU64::new(0)),
                    Some(series),
                )),
            }
        }
        None => Body::new(body),
    };
    if let Some((uri, matched)) = state.log_path {
        let route = matched.as_ref().map_or(UNMATCHED_ROUTE, |m| m.as_str());
        let path = uri.path();
        tracing::info!(
            target: "access",
            parent: span,
            method = METHODS[state.method],
            route = route,
            path = path,
            status = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            request_bytes = request_size,
            response_bytes = response_size,
            "request completed"
        );
    }
    Response::from_parts(parts, body)
}
