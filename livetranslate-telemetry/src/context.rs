//! The context of the request being handled (its `x-request-id` and W3C `traceparent`),
//! available to any code running inside the handler, so outbound calls can carry it on.
//!
//! A request that arrives without a valid `traceparent` gets a new one (a random trace id,
//! sampled flag set), so its outbound calls, its exemplars on
//! `http_server_request_duration_seconds` and its log lines (`trace_id`) share one trace id.

use http::{HeaderMap, HeaderValue};

use crate::request_id::{next_random, write_hex, REQUEST_ID_HEADER};

/// The W3C trace context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Identifiers of the request being handled.
///
/// ```
/// use livetranslate_telemetry::context::RequestContext;
/// assert!(RequestContext::current().is_none()); // outside a request
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id.
    pub request_id: Option<HeaderValue>,
    /// The incoming `traceparent`, when it was well-formed.
    pub traceparent: Option<HeaderValue>,
}

tokio::task_local! {
    pub(crate) static CURRENT: Option<RequestContext>;
}

/// Whether `v` is a W3C traceparent: `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero.
pub fn valid_traceparent(v: &[u8]) -> bool {
    let hex = |s: &[u8]| {
        s.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    v.len() == 55
        && v[2] == b'-'
        && v[35] == b'-'
        && v[52] == b'-'
        && hex(&v[0..2])
        && &v[0..2] != b"ff"
        && hex(&v[3..35])
        && v[3..35].iter().any(|b| *b != b'0')
        && hex(&v[36..52])
        && v[36..52].iter().any(|b| *b != b'0')
        && hex(&v[53..55])
}

/// The trace id of a valid `traceparent` (see [`valid_traceparent`]), as a number.
///
/// ```
/// use livetranslate_telemetry::context::trace_id_of;
/// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert_eq!(trace_id_of(tp), Some(0x4bf92f3577b34da6a3ce929d0e0e4736));
/// assert_eq!(trace_id_of(b"garbage"), None);
/// ```
pub fn trace_id_of(traceparent: &[u8]) -> Option<u128> {
    if !valid_traceparent(traceparent) {
        return None;
    }
    traceparent[3..35].iter().try_fold(0u128, |acc, b| {
        let digit = (*b as char).to_digit(16)?;
        Some((acc << 4) | u128::from(digit))
    })
}

/// A new `traceparent` (version 00, random trace and parent ids, sampled) and its trace id.
///
/// ```
/// use livetranslate_telemetry::context::{new_traceparent, trace_id_of};
/// let (id, header) = new_traceparent();
/// assert_eq!(trace_id_of(header.as_bytes()), Some(id));
/// ```
pub fn new_traceparent() -> (u128, HeaderValue) {
    let trace_id = (u128::from(next_random()) << 64) | u128::from(next_random());
    // All-zero ids are invalid; the odds are nil, the guard is free.
    let trace_id = trace_id.max(1);
    let span_id = next_random().max(1);
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-01";
    write_hex(&mut buf[3..19], (trace_id >> 64) as u64);
    write_hex(&mut buf[19..35], trace_id as u64);
    write_hex(&mut buf[36..52], span_id);
    // Hex digits and dashes are always a valid header value.
    let header = HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static(""));
    (trace_id, header)
}

impl RequestContext {
    /// The trace id (32 hex digits) of the request's `traceparent`, to log or show.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use livetranslate_telemetry::context::RequestContext;
    /// let ctx = RequestContext {
    ///     request_id: None,
    ///     traceparent: Some(HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")),
    /// };
    /// assert_eq!(ctx.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// ```
    pub fn trace_id(&self) -> Option<&str> {
        let tp = self.traceparent.as_ref()?;
        if !valid_traceparent(tp.as_bytes()) {
            return None;
        }
        tp.to_str().ok().map(|s| &s[3..35])
    }

    /// The context of the request being handled by this task, if any.
    pub fn current() -> Option<RequestContext> {
        CURRENT.try_with(|c| c.clone()).ok().flatten()
    }

    /// Adds the request id and traceparent to `headers` unless they are set already.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Some(id) = &self.request_id {
            headers
                .entry(REQUEST_ID_HEADER)
                .or_insert_with(|| id.clone());
        }
        if let Some(tp) = &self.traceparent {
            headers
                .entry(TRACEPARENT_HEADER)
                .or_insert_with(|| tp.clone());
        }
    }

    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CURRENT.scope(Some(self), fut).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        assert!(valid_traceparent(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
        ));
        assert!(!valid_traceparent(
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
    }

    #[tokio::test]
    async fn scope_sets_and_inject_does_not_overwrite() {
        let ctx = RequestContext {
            request_id: Some(HeaderValue::from_static("abc")),
            traceparent: None,
        };
        let seen = ctx.clone().scope(async { RequestContext::current() }).await;
        assert_eq!(seen, Some(ctx.clone()));
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("mine"));
        ctx.inject(&mut h);
        assert_eq!(h[REQUEST_ID_HEADER], "mine");
    }
}
