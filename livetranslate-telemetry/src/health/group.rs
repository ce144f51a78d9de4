//! Named health groups, served on `/api/health/{group}`: a subset of the checks with its own
//! status, like Spring Boot Actuator's health groups (`management.endpoint.health.group.*`).
//!
//! - Membership: `include` names checks (`"*"`: every check), `exclude` removes some; a
//!   check may be in any number of groups and is still run once.
//! - Status: the group's members aggregate like `/api/health` does: `unhealthy` when a
//!   critical member fails; `degraded` when a non-critical member fails, a member reports
//!   degraded or has not run yet; otherwise `healthy`.
//! - HTTP status: `unhealthy` answers 503 and the others 200, unless the group maps a status
//!   otherwise (Actuator's `status.http-mapping`).
//! - Details: the members' reports are shown unless `show_details(false)` (then only the
//!   status, for a group polled from outside).

use std::collections::BTreeSet;

use http::StatusCode;

use super::HealthStatus;

/// Group names the fixed endpoints use.
const RESERVED: [&str; 2] = ["live", "ready"];

/// A named group of health checks, served on `/api/health/{name}`.
///
/// ```
/// use livetranslate_telemetry::health::{HealthCheck, HealthGroup, HealthStatus};
/// use livetranslate_telemetry::Telemetry;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # let _guard = rt.enter();
/// let telemetry = Telemetry::builder("orchestration")
///     .health_check(HealthCheck::new("postgres", || async { Ok(()) }))
///     .health_check(HealthCheck::new("redis", || async { Ok(()) }).critical(false))
///     .health_check(HealthCheck::new("audio-service", || async { Ok(()) }))
///     // GET /api/health/storage: postgres and redis only; degraded counts as down here.
///     .health_group(
///         HealthGroup::new("storage")
///             .include("postgres")
///             .include("redis")
///             .http_status(HealthStatus::Degraded, livetranslate_telemetry::axum::http::StatusCode::SERVICE_UNAVAILABLE),
///     )
///     // GET /api/health/public: every check but the upstream, status only.
///     .health_group(HealthGroup::new("public").include("*").exclude("audio-service").show_details(false))
/// #   .install_logging(false)
///     .build()
///     .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct HealthGroup {
    pub(crate) name: String,
    include: Vec<String>,
    exclude: Vec<String>,
    pub(crate) show_details: bool,
    http_status: Vec<(HealthStatus, StatusCode)>,
}

/// A health group that cannot be served as configured.
///
/// ```
/// use livetranslate_telemetry::health::{HealthCheck, HealthGroup};
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # let _guard = rt.enter();
/// let err = livetranslate_telemetry::Telemetry::builder("doc")
///     .install_logging(false)
///     .health_check(HealthCheck::new("db", || async { Ok(()) }))
///     .health_group(HealthGroup::new("storage").include("postgres"))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("no health check called \"postgres\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid health group {group:?}: {reason}")]
pub struct InvalidHealthGroup {
    /// The group's name.
    pub group: String,
    /// What is wrong with it.
    pub reason: String,
}

impl HealthGroup {
    /// An empty group called `name` (letters, digits, `-` and `_`; not `live` or `ready`,
    /// which are fixed endpoints).
    pub fn new(name: impl Into<String>) -> Self {
        HealthGroup {
            name: name.into(),
            include: Vec::new(),
            exclude: Vec::new(),
            show_details: true,
            http_status: Vec::new(),
        }
    }

    /// Adds the check called `check` to the group (`"*"`: every check).
    pub fn include(mut self, check: impl Into<String>) -> Self {
        self.include.push(check.into());
        self
    }

    /// Leaves the check called `check` out (after `include("*")`).
    pub fn exclude(mut self, check: impl Into<String>) -> Self {
        self.exclude.push(check.into());
        self
    }

    /// Whether the response lists the members' reports (default `true`) or only the status.
    pub fn show_details(mut self, show: bool) -> Self {
        self.show_details = show;
        self
    }

    /// Answers `code` when the group's status is `status` (by default `unhealthy` answers 503
    /// and every other status 200).
    pub fn http_status(mut self, status: HealthStatus, code: StatusCode) -> Self {
        self.http_status.retain(|(s, _)| *s != status);
        self.http_status.push((status, code));
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The HTTP status the group answers with when its status is `status`.
    pub(crate) fn status_code(&self, status: HealthStatus) -> StatusCode {
        self.http_status
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, c)| *c)
            .unwrap_or(if status == HealthStatus::Unhealthy {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            })
    }

    /// The indices (into `checks`) of the members; an error for a bad name, an unknown
    /// check or an empty group.
    pub(crate) fn resolve(&self, checks: &[&str]) -> Result<Vec<usize>, InvalidHealthGroup> {
        let err = |reason: String| InvalidHealthGroup {
            group: self.name.clone(),
            reason,
        };
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(err(
                "a group name is 1 to 64 letters, digits, '-' or '_'".to_owned()
            ));
        }
        if RESERVED.contains(&self.name.as_str()) {
            return Err(err(format!(
                "/api/health/{} is a fixed endpoint; choose another name",
                self.name
            )));
        }
        let known = |name: &str| name == "*" || checks.contains(&name);
        if let Some(unknown) = self.include.iter().chain(&self.exclude).find(|n| !known(n)) {
            return Err(err(format!(
                "there is no health check called {unknown:?} (checks: {})",
                checks.join(", ")
            )));
        }
        let all = self.include.iter().any(|n| n == "*");
        let excluded: BTreeSet<&str> = self.exclude.iter().map(String::as_str).collect();
        let members: Vec<usize> = checks
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                (all || self.include.iter().any(|n| n == *name)) && !excluded.contains(*name)
            })
            .map(|(i, _)| i)
            .collect();
        if members.is_empty() {
            return Err(err("it includes no health check".to_owned()));
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKS: [&str; 3] = ["db", "cache", "audio"];

    #[test]
    fn membership() {
        let g = HealthGroup::new("storage").include("db").include("cache");
        assert_eq!(g.resolve(&CHECKS), Ok(vec![0, 1]));
        let g = HealthGroup::new("most").include("*").exclude("audio");
        assert_eq!(g.resolve(&CHECKS), Ok(vec![0, 1]));
        let g = HealthGroup::new("all").include("*");
        assert_eq!(g.resolve(&CHECKS), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn bad_groups_are_refused_with_the_reason() {
        for (group, needle) in [
            (
                HealthGroup::new("db").include("postgres"),
                "no health check called \"postgres\"",
            ),
            (HealthGroup::new("ready").include("db"), "fixed endpoint"),
            (HealthGroup::new("live").include("db"), "fixed endpoint"),
            (HealthGroup::new("a/b").include("db"), "letters, digits"),
            (HealthGroup::new("").include("db"), "letters, digits"),
            (HealthGroup::new("none"), "includes no health check"),
            (
                HealthGroup::new("x")
                    .include("*")
                    .exclude("db")
                    .exclude("cache")
                    .exclude("audio"),
                "includes no",
            ),
        ] {
            let err = group.resolve(&CHECKS).expect_err(&group.name).to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn http_status_mapping() {
        let g = HealthGroup::new("g");
        assert_eq!(
            g.status_code(HealthStatus::Unhealthy),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(g.status_code(HealthStatus::Degraded), StatusCode::OK);
        assert_eq!(g.status_code(HealthStatus::Healthy), StatusCode::OK);
        let g = g
            .http_status(HealthStatus::Degraded, StatusCode::SERVICE_UNAVAILABLE)
            .http_status(HealthStatus::Unhealthy, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            g.status_code(HealthStatus::Degraded),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            g.status_code(HealthStatus::Unhealthy),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
