//! Bounded label values for a request: the method (unknown ones collapse to `_OTHER`) and the
//! matched route template (no match collapses to [`UNMATCHED_ROUTE`]).

use axum::extract::MatchedPath;
use http::{Method, Request};

/// The `http_route` value of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `http_request_method` values, in index order.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];

/// Index of `method` in [`METHODS`]; every non-standard method maps to `_OTHER`.
#[inline]
pub(crate) fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => 9,
    }
}

/// The matched route template of a request, as axum's router recorded it.
#[inline]
pub(crate) fn route_of<B>(req: &Request<B>) -> Option<MatchedPath> {
    req.extensions().get::<MatchedPath>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_collapse() {
        let custom = Method::from_bytes(b"PROPFIND").expect("method");
        assert_eq!(METHODS[method_index(&custom)], "_OTHER");
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
    }
}
