//! A health check: an async closure with a name, a timeout and a criticality.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// The status of one check or of the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working with reduced function.
    Degraded,
    /// Not working.
    Unhealthy,
    /// Not run yet (only for checks).
    Pending,
}

impl HealthStatus {
    /// The lowercase name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Pending => "pending",
        }
    }
}

/// The error a check closure returns: any error converts into it with `?` (as do `String`
/// and `&str`, with `.into()`).
///
/// ```
/// use livetranslate_telemetry::health::CheckError;
/// fn parse(s: &str) -> Result<(), CheckError> {
///     let n: u32 = s.parse()?;
///     if n == 0 {
///         return Err("zero workers".into());
///     }
///     Ok(())
/// }
/// assert!(parse("4").is_ok() && parse("0").is_err() && parse("x").is_err());
/// ```
pub type CheckError = Box<dyn std::error::Error + Send + Sync>;

/// What one run of a check found.
///
/// A check closure returns a `CheckOutcome`, a [`HealthStatus`], or a
/// `Result<(), CheckError>` (`Ok` is healthy; `Err` is unhealthy, with the error and its
/// causes as the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The status.
    pub status: HealthStatus,
    /// An optional human-readable explanation.
    pub message: Option<String>,
}

impl CheckOutcome {
    /// Healthy, no message.
    pub fn healthy() -> Self {
        CheckOutcome {
            status: HealthStatus::Healthy,
            message: None,
        }
    }

    /// Degraded, with a reason.
    pub fn degraded(message: impl Into<String>) -> Self {
        CheckOutcome {
            status: HealthStatus::Degraded,
            message: Some(message.into()),
        }
    }

    /// Unhealthy, with a reason.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        CheckOutcome {
            status: HealthStatus::Unhealthy,
            message: Some(message.into()),
        }
    }
}

impl From<HealthStatus> for CheckOutcome {
    fn from(status: HealthStatus) -> Self {
        CheckOutcome {
            status,
            message: None,
        }
    }
}

/// One `Result` type only, so that `|| async { Ok(()) }` needs no annotation: the compiler
/// infers the error type from this single impl.
impl From<Result<(), CheckError>> for CheckOutcome {
    fn from(r: Result<(), CheckError>) -> Self {
        match r {
            Ok(()) => CheckOutcome::healthy(),
            Err(e) => {
                // The causes too: "error sending request" alone does not say why.
                let mut message = e.to_string();
                let mut source = e.source();
                while let Some(cause) = source {
                    let text = cause.to_string();
                    if !message.contains(&text) {
                        message.push_str(": ");
                        message.push_str(&text);
                    }
                    source = cause.source();
                }
                CheckOutcome::unhealthy(message)
            }
        }
    }
}

pub(crate) type CheckFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckOutcome> + Send>> + Send + Sync>;

/// A named async health check, run in the background every `HEALTH_CHECK_INTERVAL`.
///
/// Critical by default (a failure makes the service unhealthy and `/api/health` answer 503);
/// a non-critical failure only degrades it. A run that exceeds its timeout (5 s by default) or
/// panics counts as unhealthy.
///
/// ```
/// use std::time::Duration;
/// use livetranslate_telemetry::health::HealthCheck;
/// let check = HealthCheck::new("disk", || async {
///     std::fs::metadata("/")?; // any error converts with `?`
///     Ok(())
/// })
/// .timeout(Duration::from_secs(2))
/// .critical(false);
/// assert_eq!(check.name(), "disk");
/// ```
#[derive(Clone)]
pub struct HealthCheck {
    pub(crate) name: String,
    pub(crate) critical: bool,
    pub(crate) timeout: Duration,
    pub(crate) run: CheckFn,
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HealthCheck {
    /// A critical check with a 5 s timeout. The closure returns (a future of) a
    /// `Result<(), CheckError>`, a [`CheckOutcome`] or a [`HealthStatus`]; the error type of
    /// `Ok(())` needs no annotation:
    ///
    /// ```
    /// use livetranslate_telemetry::health::{CheckOutcome, HealthCheck, HealthStatus};
    /// let always = HealthCheck::new("always", || async { Ok(()) });
    /// let parsed = HealthCheck::new("config", || async {
    ///     let n: u32 = "42".parse()?;
    ///     if n > 100 {
    ///         return Err(format!("{n} is too many").into());
    ///     }
    ///     Ok(())
    /// });
    /// let queue = HealthCheck::new("queue", || async { CheckOutcome::degraded("backlog 900") });
    /// let cache = HealthCheck::new("cache", || async { HealthStatus::Healthy });
    /// # let _ = (always, parsed, queue, cache);
    /// ```
    pub fn new<F, Fut, O>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: Into<CheckOutcome>,
    {
        let check = Arc::new(check);
        HealthCheck {
            name: name.into(),
            critical: true,
            timeout: Duration::from_secs(5),
            run: Arc::new(move || {
                let fut = check();
                Box::pin(async move { fut.await.into() })
            }),
        }
    }

    /// Whether a failure makes the whole service unhealthy (default `true`).
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// How long one run may take before it counts as failed (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
