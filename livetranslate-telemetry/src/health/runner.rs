//! Runs every check on its own background task and keeps the latest result, so the
//! endpoints answer at once whatever the checks are doing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::check::{CheckOutcome, HealthCheck, HealthStatus};
use super::group::{HealthGroup, InvalidHealthGroup};
use crate::labels::StandardLabels;
use crate::registry::{read, write, Counter, Family, Gauge, MetricError, Registry};

/// The latest result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Its status.
    pub status: HealthStatus,
    /// Whether it is critical.
    pub critical: bool,
    /// How long the latest run took, in milliseconds.
    pub latency_ms: f64,
    /// Why it is not healthy, when it is not.
    pub message: Option<String>,
    /// When it last ran (RFC 3339), if it has.
    pub last_checked: Option<String>,
    /// Failed runs in a row.
    pub consecutive_failures: u64,
}

/// The service's health as `/api/health` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// `service` label.
    pub service: String,
    /// `version` label.
    pub version: String,
    /// `environment` label.
    pub environment: String,
    /// `cluster` label.
    pub cluster: String,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// When this report was made (RFC 3339).
    pub timestamp: String,
    /// One entry per check, by name.
    pub checks: std::collections::BTreeMap<String, CheckReport>,
}

impl HealthReport {
    /// Whether every critical check has passed (healthy or degraded) at least in its latest run.
    pub fn ready(&self) -> bool {
        self.checks.values().all(|c| {
            !c.critical || matches!(c.status, HealthStatus::Healthy | HealthStatus::Degraded)
        })
    }
}

struct CheckSlot {
    check: HealthCheck,
    report: RwLock<CheckReport>,
    status_gauges: [Gauge; 4],
    failures: Counter,
    duration: Gauge,
}

const STATUSES: [HealthStatus; 4] = [
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Unhealthy,
    HealthStatus::Pending,
];

/// A group with its members (indices into the checks).
pub(crate) struct ResolvedGroup {
    pub(crate) group: HealthGroup,
    members: Vec<usize>,
}

/// Checks every group against the registered checks; group names must be unique.
pub(crate) fn resolve_groups(
    groups: Vec<HealthGroup>,
    checks: &[HealthCheck],
) -> Result<Vec<ResolvedGroup>, InvalidHealthGroup> {
    let names: Vec<&str> = checks.iter().map(HealthCheck::name).collect();
    let mut out: Vec<ResolvedGroup> = Vec::with_capacity(groups.len());
    for group in groups {
        if out.iter().any(|g| g.group.name == group.name) {
            return Err(InvalidHealthGroup {
                group: group.name,
                reason: "two groups have this name".to_owned(),
            });
        }
        let members = group.resolve(&names)?;
        out.push(ResolvedGroup { group, members });
    }
    Ok(out)
}

/// Why `/api/health/ready` answers 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// A shutdown has begun (SIGTERM): the load balancer should stop sending requests.
    ShuttingDown,
    /// The application said so with `Telemetry::set_ready(false)`.
    Application,
    /// These critical checks fail.
    FailingChecks(Vec<String>),
}

/// Shared state of the health system.
pub(crate) struct Health {
    labels: StandardLabels,
    started: Instant,
    slots: Vec<CheckSlot>,
    overall: [Gauge; 3],
    groups: Vec<ResolvedGroup>,
    app_ready: AtomicBool,
    shutting_down: AtomicBool,
}

fn rfc3339(t: SystemTime) -> String {
    let mut s = String::with_capacity(32);
    crate::logging::write_rfc3339(&mut s, t);
    s
}

impl Health {
    pub(crate) fn new(
        labels: StandardLabels,
        checks: Vec<HealthCheck>,
        groups: Vec<ResolvedGroup>,
        registry: &Registry,
    ) -> Result<Arc<Self>, MetricError> {
        let status_family: Family<Gauge> = registry.gauge(
            "livetranslate_health_check_status",
            "1 for the health check's current status, 0 for the others.",
            &["check", "critical", "status"],
        )?;
        let failures = registry.counter(
            "livetranslate_health_check_failures_total",
            "Health check runs that ended unhealthy (error, timeout or panic).",
            &["check", "critical"],
        )?;
        let duration = registry.gauge(
            "livetranslate_health_check_duration_seconds",
            "Duration of the latest run of the health check.",
            &["check"],
        )?;
        let overall_family = registry.gauge(
            "livetranslate_health_status",
            "1 for the service's current overall health status, 0 for the others.",
            &["status"],
        )?;
        let mut slots = Vec::with_capacity(checks.len());
        for check in checks {
            let critical = if check.critical { "true" } else { "false" };
            let g = |s: HealthStatus| status_family.with(&[&check.name, critical, s.as_str()]);
            let status_gauges = [
                g(STATUSES[0])?,
                g(STATUSES[1])?,
                g(STATUSES[2])?,
                g(STATUSES[3])?,
            ];
            status_gauges[3].set(1.0);
            slots.push(CheckSlot {
                failures: failures.with(&[&check.name, critical])?,
                duration: duration.with(&[&check.name])?,
                report: RwLock::new(CheckReport {
                    status: HealthStatus::Pending,
                    critical: check.critical,
                    latency_ms: 0.0,
                    message: Some("not run yet".to_owned()),
                    last_checked: None,
                    consecutive_failures: 0,
                }),
                status_gauges,
                check,
            });
        }
        let overall = [
            overall_family.with(&["healthy"])?,
            overall_family.with(&["degraded"])?,
            overall_family.with(&["unhealthy"])?,
        ];
        let health = Arc::new(Health {
            labels,
            started: Instant::now(),
            slots,
            overall,
            groups,
            app_ready: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
        });
        health.update_overall();
        Ok(health)
    }

    /// Starts one background task per check on the current tokio runtime. Tasks stop when
    /// the last handle to the health state is dropped.
    pub(crate) fn spawn(self: &Arc<Self>, interval: Duration, rt: &tokio::runtime::Handle) {
        for idx in 0..self.slots.len() {
            let weak = Arc::downgrade(self);
            rt.spawn(run_loop(weak, idx, interval));
        }
    }

    fn record(&self, idx: usize, outcome: CheckOutcome, latency: Duration) {
        let slot = &self.slots[idx];
        slot.duration.set(latency.as_secs_f64());
        let failed = outcome.status == HealthStatus::Unhealthy;
        if failed {
            slot.failures.inc();
        }
        {
            let mut r = write(&slot.report);
            if r.status != outcome.status {
                if failed {
                    tracing::warn!(check = %slot.check.name, reason = outcome.message.as_deref().unwrap_or(""), "health check failing");
                } else {
                    tracing::info!(check = %slot.check.name, status = outcome.status.as_str(), "health check status changed");
                }
            }
            r.consecutive_failures = if failed {
                r.consecutive_failures + 1
            } else {
                0
            };
            r.status = outcome.status;
            r.message = outcome.message;
            r.latency_ms = latency.as_secs_f64() * 1000.0;
            r.last_checked = Some(rfc3339(SystemTime::now()));
        }
        for (g, s) in slot.status_gauges.iter().zip(STATUSES) {
            g.set(if s == outcome.status { 1.0 } else { 0.0 });
        }
        self.update_overall();
    }

    /// The status of `slots` together: unhealthy when a critical one fails, degraded when
    /// any other is not healthy, else healthy.
    fn aggregate<'a>(slots: impl Iterator<Item = &'a CheckSlot>) -> HealthStatus {
        let mut status = HealthStatus::Healthy;
        for slot in slots {
            match (read(&slot.report).status, slot.check.critical) {
                (HealthStatus::Unhealthy, true) => return HealthStatus::Unhealthy,
                (HealthStatus::Healthy, _) => {}
                _ => status = HealthStatus::Degraded,
            }
        }
        status
    }

    fn overall_status(&self) -> HealthStatus {
        Self::aggregate(self.slots.iter())
    }

    /// The group called `name`: its definition, status and members' reports.
    pub(crate) fn group(
        &self,
        name: &str,
    ) -> Option<(
        &HealthGroup,
        HealthStatus,
        std::collections::BTreeMap<String, CheckReport>,
    )> {
        let g = self.groups.iter().find(|g| g.group.name == name)?;
        let members = || g.members.iter().map(|&i| &self.slots[i]);
        let status = Self::aggregate(members());
        let checks = members()
            .map(|s| (s.check.name.clone(), read(&s.report).clone()))
            .collect();
        Some((&g.group, status, checks))
    }

    /// Marks the application ready or not (`Telemetry::set_ready`).
    pub(crate) fn set_ready(&self, ready: bool) {
        if self.app_ready.swap(ready, Ordering::AcqRel) != ready {
            tracing::info!(ready, "readiness set by the application");
        }
    }

    /// From now on `/api/health/ready` answers 503 (a shutdown has begun).
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether the service should receive traffic, and if not, why.
    pub(crate) fn readiness(&self) -> Result<(), NotReady> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(NotReady::ShuttingDown);
        }
        if !self.app_ready.load(Ordering::Acquire) {
            return Err(NotReady::Application);
        }
        let failing: Vec<String> = self
            .slots
            .iter()
            .filter(|s| {
                s.check.critical
                    && !matches!(
                        read(&s.report).status,
                        HealthStatus::Healthy | HealthStatus::Degraded
                    )
            })
            .map(|s| s.check.name.clone())
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(NotReady::FailingChecks(failing))
        }
    }

    fn update_overall(&self) {
        let status = self.overall_status();
        for (g, s) in self.overall.iter().zip(STATUSES) {
            g.set(if s == status { 1.0 } else { 0.0 });
        }
    }

    /// The current report, built from the latest results (never waits on a check).
    pub(crate) fn report(&self) -> HealthReport {
        let checks = self
            .slots
            .iter()
            .map(|s| (s.check.name.clone(), read(&s.report).clone()))
            .collect();
        HealthReport {
            status: self.overall_status(),
            service: self.labels.service.clone(),
            version: self.labels.version.clone(),
            environment: self.labels.environment.clone(),
            cluster: self.labels.cluster.clone(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            timestamp: rfc3339(SystemTime::now()),
            checks,
        }
    }
}

/// Runs one check once: on its own task (so a panic is caught) with its timeout (a hung
/// check is aborted at its next await point).
pub(crate) async fn run_once(check: &HealthCheck) -> CheckOutcome {
    let mut task = tokio::spawn((check.run)());
    match tokio::time::timeout(check.timeout, &mut task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_owned());
            CheckOutcome::unhealthy(format!("check panicked: {msg}"))
        }
        Ok(Err(_)) => CheckOutcome::unhealthy("check was cancelled"),
        Err(_) => {
            task.abort();
            CheckOutcome::unhealthy(format!(
                "check timed out after {:.3}s",
                check.timeout.as_secs_f64()
            ))
        }
    }
}

async fn run_loop(health: Weak<Health>, idx: usize, interval: Duration) {
    loop {
        let Some(check) = health.upgrade().map(|h| h.slots[idx].check.clone()) else {
            return;
        };
        let start = Instant::now();
        let outcome = run_once(&check).await;
        let latency = start.elapsed();
        match health.upgrade() {
            Some(h) => h.record(idx, outcome, latency),
            None => return,
        }
        tokio::time::sleep(interval).await;
    }
}
