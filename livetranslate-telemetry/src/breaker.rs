//! A per-upstream circuit breaker (closed, open, half-open; trips on consecutive failures or
//! a failure rate) whose state, transitions and rejected calls are exported as
//! `livetranslate_circuit_breaker_*` metrics.
//!
//! Get one with [`Telemetry::circuit_breaker`](crate::Telemetry::circuit_breaker), or use the
//! one inside [`Telemetry::upstream`](crate::Telemetry::upstream) (feature `client`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::registry::{Counter, Family, Gauge, MetricError, Registry};

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are rejected until the open interval ends.
    Open,
    /// A limited number of probe calls decide between closing and re-opening.
    HalfOpen,
}

impl BreakerState {
    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

/// When a [`CircuitBreaker`] trips and recovers.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long an open breaker rejects calls before letting a probe through.
    pub open_for: Duration,
    /// Concurrent probe calls allowed while half-open.
    pub half_open_max_calls: u32,
    /// Successful probes needed to close again.
    pub success_threshold: u32,
    /// Also open when, over the last `window` calls (and at least `min_calls`), this share
    /// of them failed (e.g. `Some(0.5)`); `None`: only consecutive failures trip.
    pub failure_rate: Option<f64>,
    /// Calls the failure rate is computed over (at most 64).
    pub window: u32,
    /// Calls needed in the window before the rate can trip.
    pub min_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
            half_open_max_calls: 1,
            success_threshold: 1,
            failure_rate: None,
            window: 20,
            min_calls: 10,
        }
    }
}

#[derive(Debug)]
enum Inner {
    /// `history`: one bit per recent call, newest in bit 0, 1 = failed.
    Closed {
        failures: u32,
        history: u64,
        calls: u32,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        in_flight: u32,
        successes: u32,
    },
}

impl Inner {
    fn state(&self) -> BreakerState {
        match self {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug)]
struct BreakerShared {
    upstream: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
    state_gauges: [Gauge; 3],
    transitions: Family<Counter>,
    rejected: Counter,
}

/// A per-upstream circuit breaker whose state and transitions are exported as
/// `livetranslate_circuit_breaker_*` metrics.
///
/// ```
/// use livetranslate_telemetry::breaker::{BreakerConfig, BreakerState};
/// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
/// let breaker = telemetry.circuit_breaker("audio", BreakerConfig { failure_threshold: 2, ..Default::default() }).unwrap();
/// breaker.try_acquire().unwrap().failure();
/// breaker.try_acquire().unwrap().failure();
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.try_acquire().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreaker(Arc<BreakerShared>);

/// Returned by [`CircuitBreaker::try_acquire`] while the breaker is open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker for {upstream} is open")]
pub struct BreakerOpen {
    /// The upstream's name.
    pub upstream: String,
}

/// Permission for one call; report its outcome with [`success`](Self::success) or
/// [`failure`](Self::failure). Dropping it unreported (a cancelled call) counts as neither.
#[derive(Debug)]
#[must_use = "report the call's outcome with success() or failure()"]
pub struct BreakerPermit {
    breaker: CircuitBreaker,
    probe: bool,
    done: bool,
}

impl BreakerPermit {
    /// The call succeeded.
    pub fn success(mut self) {
        self.done = true;
        self.breaker.on_result(self.probe, true);
    }

    /// The call failed.
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.on_result(self.probe, false);
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.release_probe();
        }
    }
}

/// The breaker metric families, shared by all breakers of a service.
#[derive(Clone, Debug)]
pub(crate) struct BreakerMetrics {
    state: Family<Gauge>,
    transitions: Family<Counter>,
    rejected: Family<Counter>,
}

impl BreakerMetrics {
    pub(crate) fn new(registry: &Registry) -> Result<Self, MetricError> {
        Ok(BreakerMetrics {
            state: registry.gauge(
                "livetranslate_circuit_breaker_state",
                "1 for the circuit breaker's current state (closed, open, half_open), 0 for the others.",
                &["upstream", "state"],
            )?,
            transitions: registry.counter(
                "livetranslate_circuit_breaker_transitions_total",
                "Circuit breaker state changes.",
                &["upstream", "from", "to"],
            )?,
            rejected: registry.counter(
                "livetranslate_circuit_breaker_rejected_calls_total",
                "Calls refused because the circuit breaker was open.",
                &["upstream"],
            )?,
        })
    }
}

impl CircuitBreaker {
    pub(crate) fn new(
        metrics: &BreakerMetrics,
        upstream: &str,
        config: BreakerConfig,
    ) -> Result<Self, MetricError> {
        let gauge = |s: BreakerState| metrics.state.with(&[upstream, s.as_str()]);
        let state_gauges = [gauge(STATES[0])?, gauge(STATES[1])?, gauge(STATES[2])?];
        state_gauges[BreakerState::Closed.index()].set(1.0);
        Ok(CircuitBreaker(Arc::new(BreakerShared {
            upstream: upstream.to_owned(),
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                half_open_max_calls: config.half_open_max_calls.max(1),
                success_threshold: config.success_threshold.max(1),
                ..config
            },
            inner: Mutex::new(Inner::Closed {
                failures: 0,
                history: 0,
                calls: 0,
            }),
            state_gauges,
            transitions: metrics.transitions.clone(),
            rejected: metrics.rejected.with(&[upstream])?,
        })))
    }

    /// The upstream this breaker guards.
    pub fn upstream(&self) -> &str {
        &self.0.upstream
    }

    /// The current state (an expired open interval reads as half-open).
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match &*inner {
            Inner::Open { until } if Instant::now() >= *until => BreakerState::HalfOpen,
            other => other.state(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn transition(&self, inner: &mut Inner, next: Inner) {
        let (from, to) = (inner.state(), next.state());
        *inner = next;
        if from != to {
            self.0.state_gauges[from.index()].set(0.0);
            self.0.state_gauges[to.index()].set(1.0);
            if let Ok(c) = self
                .0
                .transitions
                .with(&[&self.0.upstream, from.as_str(), to.as_str()])
            {
                c.inc();
            }
            tracing::warn!(upstream = %self.0.upstream, from = from.as_str(), to = to.as_str(), "circuit breaker state change");
        }
    }

    /// Asks to make a call: `Err` while open (counted as rejected).
    pub fn try_acquire(&self) -> Result<BreakerPermit, BreakerOpen> {
        let mut inner = self.lock();
        if let Inner::Open { until } = &*inner {
            if Instant::now() >= *until {
                self.transition(
                    &mut inner,
                    Inner::HalfOpen {
                        in_flight: 0,
                        successes: 0,
                    },
                );
            }
        }
        let probe = match &mut *inner {
            Inner::Closed { .. } => false,
            Inner::HalfOpen { in_flight, .. } if *in_flight < self.0.config.half_open_max_calls => {
                *in_flight += 1;
                true
            }
            Inner::HalfOpen { .. } | Inner::Open { .. } => {
                self.0.rejected.inc();
                return Err(BreakerOpen {
                    upstream: self.0.upstream.clone(),
                });
            }
        };
        Ok(BreakerPermit {
            breaker: self.clone(),
            probe,
            done: false,
        })
    }

    fn on_result(&self, probe: bool, ok: bool) {
        let mut inner = self.lock();
        let config = &self.0.config;
        let next = match (&mut *inner, ok) {
            (
                Inner::Closed {
                    failures,
                    history,
                    calls,
                },
                ok,
            ) => {
                *failures = if ok { 0 } else { *failures + 1 };
                *history = (*history << 1) | u64::from(!ok);
                let window = config.window.clamp(1, 64);
                *calls = (*calls + 1).min(window);
                let mask = if window == 64 {
                    u64::MAX
                } else {
                    (1u64 << window) - 1
                };
                let failed = (*history & mask).count_ones();
                let rate_trips = config.failure_rate.is_some_and(|r| {
                    *calls >= config.min_calls.max(1) && f64::from(failed) / f64::from(*calls) >= r
                });
                (*failures >= config.failure_threshold || rate_trips).then(|| Inner::Open {
                    until: Instant::now() + config.open_for,
                })
            }
            (
                Inner::HalfOpen {
                    in_flight,
                    successes,
                },
                true,
            ) if probe => {
                *in_flight = in_flight.saturating_sub(1);
                *successes += 1;
                (*successes >= config.success_threshold).then_some(Inner::Closed {
                    failures: 0,
                    history: 0,
                    calls: 0,
                })
            }
            (Inner::HalfOpen { .. }, false) if probe => Some(Inner::Open {
                until: Instant::now() + config.open_for,
            }),
            // A call admitted in an earlier state finishing late does not decide anything.
            _ => None,
        };
        if let Some(next) = next {
            self.transition(&mut inner, next);
        }
    }

    fn release_probe(&self) {
        if let Inner::HalfOpen { in_flight, .. } = &mut *self.lock() {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    /// Runs `call` through the breaker: rejected while open, and its `Result` recorded.
    ///
    /// ```
    /// # use livetranslate_telemetry::breaker::{BreakerConfig, CallError};
    /// # let telemetry = livetranslate_telemetry::Telemetry::builder("doc").install_logging(false).build().unwrap();
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let breaker = telemetry.circuit_breaker("translation", BreakerConfig::default()).unwrap();
    /// let r: Result<u32, CallError<&str>> = rt.block_on(breaker.call(async { Ok(7) }));
    /// assert_eq!(r.unwrap(), 7);
    /// ```
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(CallError::Open)?;
        match call.await {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.failure();
                Err(CallError::Failed(e))
            }
        }
    }
}

/// The outcome of a failed [`CircuitBreaker::call`].
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker was open; the call was not made.
    #[error(transparent)]
    Open(BreakerOpen),
    /// The call was made and failed.
    #[error("upstream call failed: {0}")]
    Failed(E),
}
