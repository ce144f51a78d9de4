//! Tower middleware for axum routers: OpenTelemetry-named HTTP server metrics with bounded
//! labels (and exemplars carrying the request's trace id), `x-request-id`, a W3C trace
//! context, a request span and the access log.
//!
//! | series | labels |
//! |---|---|
//! | `http_server_request_duration_seconds` (histogram) | `http_request_method`, `http_route`, `http_response_status_code` |
//! | `http_server_request_body_size_bytes` (histogram) | same |
//! | `http_server_response_body_size_bytes` (histogram) | same |
//! | `http_server_active_requests` (gauge) | `http_request_method` |
//!
//! `http_route` is the matched route template (`/api/users/{id}`) or `unmatched`, never the
//! raw path; non-standard methods collapse to `_OTHER`. The library's own endpoints
//! ([`OWN_ROUTES`]) are not counted unless asked; [`HttpLayer`] can exclude other routes and
//! group templates under one `http_route` value.

mod body;
mod future;
mod layer;
pub(crate) mod metrics;
pub(crate) mod route;
mod service;

pub use future::{MaybeScoped, ResponseFuture};
pub use layer::HttpLayer;
pub use route::{OWN_ROUTES, UNMATCHED_ROUTE};
pub use service::HttpService;
