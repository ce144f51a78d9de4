//! Bounded label values for a request: the method (unknown ones collapse to `_OTHER`) and the
//! matched route template (no match collapses to [`UNMATCHED_ROUTE`]); and which routes are
//! counted, under which `http_route` value ([`RouteRules`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::MatchedPath;
use http::{Method, Request};

/// The `http_route` value of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The library's own endpoints (route patterns as [`HttpLayer::exclude_route`] takes them),
/// not counted in the HTTP metrics unless
/// [`count_own_endpoints`](super::HttpLayer::count_own_endpoints) asks for them.
///
/// [`HttpLayer::exclude_route`]: super::HttpLayer::exclude_route
///
/// ```
/// assert!(livetranslate_telemetry::http::OWN_ROUTES.contains(&"/api/metrics"));
/// ```
pub const OWN_ROUTES: [&str; 3] = ["/api/metrics", "/api/health", "/api/health/*"];

/// Maps a route template to the `http_route` value to count it under.
pub(crate) type RouteGroup = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Which requests the HTTP metrics count and under which `http_route`: route templates
/// excluded (exactly, or by prefix with a trailing `*`) and an optional grouping function.
/// Each configuration has its own id, so per-thread caches never mix two of them.
#[derive(Clone)]
pub(crate) struct RouteRules {
    pub id: u64,
    pub exclude: Vec<String>,
    pub count_own: bool,
    pub group: Option<RouteGroup>,
}

static NEXT_RULES_ID: AtomicU64 = AtomicU64::new(1);

impl Default for RouteRules {
    fn default() -> Self {
        RouteRules {
            id: NEXT_RULES_ID.fetch_add(1, Ordering::Relaxed),
            exclude: Vec::new(),
            count_own: false,
            group: None,
        }
    }
}

impl fmt::Debug for RouteRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteRules")
            .field("exclude", &self.exclude)
            .field("count_own", &self.count_own)
            .field("group", &self.group.as_ref().map(|_| "fn"))
            .finish()
    }
}

/// Whether `template` matches `pattern` (exact, or a prefix when the pattern ends in `*`).
pub(crate) fn route_matches(pattern: &str, template: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => template.starts_with(prefix),
        None => template == pattern,
    }
}

impl RouteRules {
    /// The same rules changed by `f`, under a new id.
    pub(crate) fn changed(&self, f: impl FnOnce(&mut RouteRules)) -> Arc<RouteRules> {
        let mut next = self.clone();
        f(&mut next);
        next.id = NEXT_RULES_ID.fetch_add(1, Ordering::Relaxed);
        Arc::new(next)
    }

    /// The `http_route` value to count a request of this template under, or `None` when it
    /// is not counted. Called once per template and thread (the result is cached).
    pub(crate) fn resolve<'a>(&self, template: &'a str) -> Option<Cow<'a, str>> {
        let own = !self.count_own && OWN_ROUTES.iter().any(|p| route_matches(p, template));
        if own || self.exclude.iter().any(|p| route_matches(p, template)) {
            return None;
        }
        Some(match &self.group {
            Some(group) => Cow::Owned(group(template)),
            None => Cow::Borrowed(template),
        })
    }
}

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
    fn own_routes_are_excluded_unless_asked() {
        let rules = RouteRules::default();
        for own in [
            "/api/metrics",
            "/api/health",
            "/api/health/live",
            "/api/health/db",
        ] {
            assert_eq!(rules.resolve(own), None, "{own}");
        }
        assert_eq!(
            rules.resolve("/api/metrics/x").as_deref(),
            Some("/api/metrics/x")
        );
        let counted = rules.changed(|r| r.count_own = true);
        assert_eq!(
            counted.resolve("/api/health").as_deref(),
            Some("/api/health")
        );
        assert_ne!(counted.id, rules.id);
    }

    #[test]
    fn exclusions_and_groups() {
        let rules = RouteRules::default().changed(|r| {
            r.exclude.push("/internal/*".into());
            r.exclude.push("/debug".into());
            r.group = Some(Arc::new(|t: &str| {
                if t.starts_with("/api/v1/") {
                    "/api/v1/*".into()
                } else {
                    t.into()
                }
            }));
        });
        assert_eq!(rules.resolve("/internal/stats"), None);
        assert_eq!(rules.resolve("/debug"), None);
        assert_eq!(rules.resolve("/debug/x").as_deref(), Some("/debug/x"));
        assert_eq!(
            rules.resolve("/api/v1/users/{id}").as_deref(),
            Some("/api/v1/*")
        );
    }

    #[test]
    fn unknown_methods_collapse() {
        let custom = Method::from_bytes(b"PROPFIND").expect("method");
        assert_eq!(METHODS[method_index(&custom)], "_OTHER");
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
    }
}
