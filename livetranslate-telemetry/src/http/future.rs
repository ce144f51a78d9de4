use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use super::service::{finish, RequestMetrics};

/// What the service remembers about a request until its response arrives.
pub(crate) struct RequestState {
    pub start: Instant,
    pub method: usize,
    pub request_id: Option<HeaderValue>,
    pub metrics: Option<RequestMetrics>,
    pub log_path: Option<(http::Uri, Option<axum::extract::MatchedPath>)>,
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
