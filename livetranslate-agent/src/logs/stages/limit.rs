//! The `limit` stage: a token-bucket rate limit (Go's `x/time/rate` semantics: `burst`
//! tokens at start, refilled at `rate` per second).
//!
//! ```yaml
//! - limit:
//!     rate: 10
//!     burst: 10
//!     drop: true                   # false (default): slow down instead of dropping
//!     by_label_name: namespace     # one bucket per value of this label (needs drop: true)
//!     max_distinct_labels: 10000
//! ```
//!
//! With `drop: false` Promtail blocks the pipeline until a token is free; here the entry
//! goes on and [`super::Pipeline::take_throttle`] tells the caller until when to pause
//! reading (the same back-pressure, without blocking a thread inside the pipeline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::bounded::Generational;
use super::{Cx, Entry, Stage, StageError, Step};

/// `limit:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Entries per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: u64,
    /// Drop entries over the limit (else slow down).
    #[serde(default)]
    pub drop: bool,
    /// One bucket per value of this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_label_name: Option<String>,
    /// Most label values with a bucket (raised to 10000, as Promtail does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_distinct_labels: Option<usize>,
}

/// Promtail's floor for `max_distinct_labels`.
const MIN_DISTINCT_LABELS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + dt * rate).min(burst);
        }
        self.at = Some(now);
    }
}

#[derive(Debug)]
pub(crate) struct LimitStage {
    rate: f64,
    burst: f64,
    drop: bool,
    bucket: Bucket,
    by_label: Option<(String, Generational<Arc<str>, Bucket>)>,
    reason: Arc<str>,
}

impl LimitStage {
    pub(crate) fn new(cfg: &LimitConfig) -> Result<Self, StageError> {
        if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
            return Err(StageError::key(
                "rate",
                "limit stage failed to parse rate or burst: rate must be more than 0",
            ));
        }
        if cfg.burst == 0 {
            return Err(StageError::key(
                "burst",
                "limit stage failed to parse rate or burst: burst must be more than 0",
            ));
        }
        let by_label = match cfg.by_label_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => {
                if !cfg.drop {
                    return Err(StageError::key(
                        "drop",
                        "when rate limiting by label, drop must be true",
                    ));
                }
                let cap = cfg
                    .max_distinct_labels
                    .unwrap_or(0)
                    .max(MIN_DISTINCT_LABELS);
                Some((name.to_owned(), Generational::new(cap)))
            }
            None => None,
        };
        let burst = cfg.burst as f64;
        Ok(LimitStage {
            rate: cfg.rate,
            burst,
            drop: cfg.drop,
            bucket: Bucket {
                tokens: burst,
                at: None,
            },
            by_label,
            reason: Arc::from("ratelimit_drop_stage"),
        })
    }
}

impl Stage for LimitStage {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn process(&mut self, entry: Entry, cx: &mut Cx) -> Step {
        let (rate, burst) = (self.rate, self.burst);
        let bucket = match &mut self.by_label {
            Some((name, buckets)) => match entry.labels().get(name.as_str()) {
                // Entries without the label are not limited.
                None => return Step::Next(entry),
                Some(v) => buckets.get_or_insert_with(v.clone(), || Bucket {
                    tokens: burst,
                    at: None,
                }),
            },
            None => &mut self.bucket,
        };
        bucket.refill(cx.now, rate, burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Step::Next(entry);
        }
        if self.drop {
            return Step::Drop(entry, self.reason.clone());
        }
        // Reserve the token: the caller waits until it is there.
        bucket.tokens -= 1.0;
        let wait = Duration::from_secs_f64((-bucket.tokens / rate).min(86_400.0));
        let until = cx.now + wait;
        cx.throttle = Some(cx.throttle.map_or(until, |t| t.max(until)));
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn stage(yaml: &str) -> LimitStage {
        let cfg: LimitConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
        LimitStage::new(&cfg).expect("stage")
    }

    fn kept(s: &mut LimitStage, at: Instant, e: Entry) -> bool {
        let mut cx = Cx {
            now: at,
            throttle: None,
        };
        matches!(s.process(e, &mut cx), Step::Next(_))
    }

    #[test]
    fn drop_over_rate_then_refill() {
        let mut s = stage("rate: 10\nburst: 5\ndrop: true\n");
        let t0 = Instant::now();
        let passed = (0..20)
            .filter(|_| kept(&mut s, t0, Entry::new("x", 0, labels([]))))
            .count();
        assert_eq!(passed, 5);
        // 100 ms later one token is back (10/s).
        assert!(kept(
            &mut s,
            t0 + Duration::from_millis(100),
            Entry::new("x", 0, labels([]))
        ));
        assert!(!kept(
            &mut s,
            t0 + Duration::from_millis(100),
            Entry::new("x", 0, labels([]))
        ));
        // The bucket never holds more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..20)
                .filter(|_| kept(&mut s, later, Entry::new("x", 0, labels([]))))
                .count(),
            5
        );
    }

    #[test]
    fn by_label_buckets() {
        let mut s = stage("rate: 1\nburst: 2\ndrop: true\nby_label_name: ns\n");
        let t0 = Instant::now();
        let ns = |v: &str| Entry::new("x", 0, labels([("ns", v)]));
        assert_eq!((0..5).filter(|_| kept(&mut s, t0, ns("a"))).count(), 2);
        assert_eq!((0..5).filter(|_| kept(&mut s, t0, ns("b"))).count(), 2);
        assert_eq!(
            (0..5)
                .filter(|_| kept(&mut s, t0, Entry::new("x", 0, labels([]))))
                .count(),
            5
        );
    }

    #[test]
    fn wait_mode_asks_the_caller_to_pause() {
        let mut s = stage("rate: 10\nburst: 1\n");
        let t0 = Instant::now();
        let mut cx = Cx {
            now: t0,
            throttle: None,
        };
        assert!(matches!(
            s.process(Entry::new("x", 0, labels([])), &mut cx),
            Step::Next(_)
        ));
        assert_eq!(cx.throttle, None);
        assert!(matches!(
            s.process(Entry::new("x", 0, labels([])), &mut cx),
            Step::Next(_)
        ));
        assert_eq!(cx.throttle, Some(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn config_errors() {
        for (yaml, key) in [
            ("rate: 0\nburst: 1", "rate"),
            ("rate: 1\nburst: 0", "burst"),
            ("rate: 1\nburst: 1\nby_label_name: ns", "drop"),
        ] {
            let cfg: LimitConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert_eq!(LimitStage::new(&cfg).expect_err(yaml).key, key);
        }
    }
}
