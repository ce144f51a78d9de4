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
use super::future::{MaybeScoped, RequestBytes, RequestMetrics, RequestState, ResponseFuture};
use super::metrics::HttpMetrics;
use super::route::{method_index, route_of, RouteRules, UNMATCHED_ROUTE};
use crate::context::{new_traceparent, trace_id_of, RequestContext, CURRENT, TRACEPARENT_HEADER};
use crate::request_id::{RequestId, REQUEST_ID_HEADER};

/// What the middleware does, as configured on the [`HttpLayer`](super::HttpLayer).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub metrics: Option<&'static HttpMetrics>,
    pub request_id: bool,
    pub access_log: bool,
    pub routes: Arc<RouteRules>,
}

/// The service made by [`HttpLayer`](super::HttpLayer).
///
/// ```
/// use livetranslate_telemetry::http::{HttpLayer, HttpService};
/// use tower_layer::Layer;
/// let svc: HttpService<()> = HttpLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct HttpService<S> {
    inner: S,
    settings: Settings,
}

impl<S> HttpService<S> {
    pub(crate) fn new(inner: S, settings: Settings) -> Self {
        HttpService { inner, settings }
    }
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
        let settings = &self.settings;

        let request_id = if settings.request_id {
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
        // The trace context comes with the request context: the incoming one when valid,
        // a new one otherwise.
        let (traceparent, trace_id) = match &request_id {
            Some(_) => trace_context(req.headers().get(TRACEPARENT_HEADER)),
            None => (None, 0),
        };

        let span = if settings.access_log {
            tracing::info_span!(
                "request",
                request_id = request_id.as_ref().map(RequestId::as_str),
                trace_id = traceparent
                    .as_ref()
                    .and_then(|t| t.to_str().ok())
                    .and_then(|t| t.get(3..35)),
            )
        } else {
            tracing::Span::none()
        };
        let log_path = (settings.access_log
            && tracing::enabled!(target: "access", tracing::Level::INFO))
        .then(|| (req.uri().clone(), route_of(&req)));

        let metrics = settings
            .metrics
            .and_then(|m| m.route(&settings.routes, route_str(&req)))
            .map(|route| {
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
            traceparent,
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
                trace_id,
                metrics,
                log_path,
            },
            span,
        )
    }
}

/// The request's `traceparent` and trace id: the incoming header when it is valid, a new
/// one otherwise.
#[inline]
fn trace_context(incoming: Option<&HeaderValue>) -> (Option<HeaderValue>, u128) {
    match incoming.and_then(|v| trace_id_of(v.as_bytes()).map(|id| (v, id))) {
        Some((v, id)) => (Some(v.clone()), id),
        None => {
            let (id, v) = new_traceparent();
            (Some(v), id)
        }
    }
}

/// The route template axum matched, or the constant for unmatched requests.
#[inline]
fn route_str<B>(req: &Request<B>) -> &str {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |m| m.as_str())
}
