//! A body wrapper that counts the bytes that pass through it, for bodies whose size is not
//! known up front (chunked uploads, streamed responses).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::metrics::HttpSeries;

pin_project! {
    /// Counts data bytes into `counter`; when it ends (or is dropped) and `series` is set,
    /// records the total as a response size.
    pub(crate) struct CountingBody<B> {
        #[pin]
        inner: B,
        counter: Arc<AtomicU64>,
        series: Option<&'static HttpSeries>,
        done: bool,
    }

    impl<B> PinnedDrop for CountingBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            finish(this.series, this.counter, this.done);
        }
    }
}

fn finish(series: &mut Option<&'static HttpSeries>, counter: &AtomicU64, done: &mut bool) {
    if !*done {
        *done = true;
        if let Some(s) = series.take() {
            s.response_size
                .observe(counter.load(Ordering::Relaxed) as f64);
        }
    }
}

impl<B> CountingBody<B> {
    pub(crate) fn new(
        inner: B,
        counter: Arc<AtomicU64>,
        series: Option<&'static HttpSeries>,
    ) -> Self {
        CountingBody {
            inner,
            counter,
            series,
            done: false,
        }
    }
}

impl<B: Body> Body for CountingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.counter
                        .fetch_add(data.remaining() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                finish(this.series, this.counter, this.done)
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
