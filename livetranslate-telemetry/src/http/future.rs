use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use super::body::CountingBody;
use super::metrics::RouteEntry;
use super::route::{METHODS, UNMATCHED_ROUTE};
use crate::registry::sharded::exemplar_time;
use crate::request_id::REQUEST_ID_HEADER;

/// What the service remembers about a request until its response arrives.
pub(crate) struct RequestState {
    pub start: Instant,
    pub method: usize,
    pub request_id: Option<HeaderValue>,
    /// The request's trace id (0: none), for the duration histogram's exemplar.
    pub trace_id: u128,
    pub metrics: Option<RequestMetrics>,
    pub log_path: Option<(http::Uri, Option<axum::extract::MatchedPath>)>,
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
    pub route: &'static RouteEntry,
    pub method: usize,
    pub request_bytes: RequestBytes,
}

impl Drop for RequestMetrics {
    fn drop(&mut self) {
        self.route.end(self.method);
    }
}

pin_project! {
    /// The response future of [`HttpService`](super::HttpService).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: Option<RequestState>,
        span: tracing::Span,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, state: RequestState, span: tracing::Span) -> Self {
        ResponseFuture {
            inner,
            state: Some(state),
            span,
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _entered = this.span.enter();
            this.inner.poll(cx)
        };
        let result = match polled {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        Poll::Ready(match (result, this.state.take()) {
            (Ok(res), Some(state)) => Ok(finish(state, res, this.span)),
            (Ok(res), None) => Ok(res.map(Body::new)),
            (Err(e), _) => Err(e),
        })
    }
}

/// Finishes a response: records metrics, sets the request id header, writes the access log.
fn finish<ResBody>(
    state: RequestState,
    res: Response<ResBody>,
    span: &tracing::Span,
) -> Response<Body>
where
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    let end = Instant::now();
    let elapsed = end.saturating_duration_since(state.start);
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
            let secs = elapsed.as_secs_f64();
            if state.trace_id == 0 {
                series.duration.observe(secs);
            } else {
                series
                    .duration
                    .observe_with_exemplar(secs, state.trace_id, exemplar_time(end));
            }
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

pin_project! {
    /// The inner service's future, run inside the request's context when it has one.
    /// (Each variant holds the future as `fut`.)
    #[project = MaybeScopedProj]
    #[allow(missing_docs)]
    pub enum MaybeScoped<F> {
        /// With a request context (outbound calls can carry its ids).
        Scoped {
            #[pin]
            fut: tokio::task::futures::TaskLocalFuture<Option<crate::context::RequestContext>, F>,
        },
        /// Without one (request ids turned off).
        Plain {
            #[pin]
            fut: F,
        },
    }
}

impl<F: Future> Future for MaybeScoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            MaybeScopedProj::Scoped { fut } => fut.poll(cx),
            MaybeScopedProj::Plain { fut } => fut.poll(cx),
        }
    }
}
