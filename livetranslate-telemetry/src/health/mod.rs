//! Health checks and the `/api/health`, `/api/health/live`, `/api/health/ready` and
//! `/api/health/{group}` endpoints.
//!
//! Overall status: `unhealthy` (503) when a critical check fails; `degraded` (200) when a
//! non-critical check fails, a check reports degraded, or a check has not run yet; otherwise
//! `healthy` (200).
//!
//! Readiness (`/api/health/ready`, for a Kubernetes readiness probe or a load balancer): 503
//! while a critical check fails, while the application says it is not ready
//! ([`Telemetry::set_ready`](crate::Telemetry::set_ready)), and from the moment a shutdown
//! begins (SIGTERM in [`Telemetry::serve`](crate::Telemetry::serve)); 200 otherwise.
//! Liveness (`/api/health/live`) is 200 while the process serves requests.
//!
//! Named groups ([`HealthGroup`]) serve a subset of the checks on `/api/health/{group}`.

mod check;
mod group;
mod handlers;
mod runner;

pub use check::{CheckError, CheckOutcome, HealthCheck, HealthStatus};
pub use group::{HealthGroup, InvalidHealthGroup};
pub(crate) use handlers::routes;
pub(crate) use runner::{resolve_groups, Health};
pub use runner::{CheckReport, HealthReport};
