//! Health checks and the `/api/health`, `/api/health/live` and `/api/health/ready` endpoints.
//!
//! Overall status: `unhealthy` (503) when a critical check fails; `degraded` (200) when a
//! non-critical check fails, a check reports degraded, or a check has not run yet; otherwise
//! `healthy` (200).

mod check;
mod handlers;
mod runner;

pub use check::{CheckOutcome, HealthCheck, HealthStatus};
pub(crate) use handlers::routes;
pub(crate) use runner::Health;
pub use runner::{CheckReport, HealthReport};
