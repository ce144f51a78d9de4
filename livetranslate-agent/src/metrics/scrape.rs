//! Scraping one target: fetch, parse, attach target labels, synthesize `up` /
//! `scrape_duration_seconds` / `scrape_samples_scraped`, and emit staleness markers for series
//! that disappeared.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use tokio::sync::watch;

use super::exposition::{self, Format, ParsedSample};
use super::{stale_nan, Sample, SampleSink, SeriesLabels};
use crate::internal_events::AgentMetrics;
use livetranslate_push::HttpClientConfig;

/// The `Accept` header of every scrape.
pub const ACCEPT_HEADER: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

/// Largest scrape body accepted.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Everything needed to scrape one target.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The `job` label.
    pub job: String,
    /// The `instance` label.
    pub instance: String,
    /// The full URL scraped.
    pub url: String,
    /// Labels added to every series of the target (`job`, `instance`, standard labels,
    /// target-group labels), sorted by name.
    pub labels: BTreeMap<String, String>,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
    /// Keep scraped labels on conflict.
    pub honor_labels: bool,
    /// Client with the job's TLS settings.
    pub client: reqwest::Client,
    /// Authentication.
    pub http: HttpClientConfig,
}

impl TargetSpec {
    /// A stable identity: job, URL and labels.
    pub fn key(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}|{}|{}", self.job, self.url, labels.join(","))
    }
}

/// What the status page shows about a target.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    /// The `job` label.
    pub job: String,
    /// The `instance` label.
    pub instance: String,
    /// The URL.
    pub url: String,
    /// Whether the latest scrape succeeded (`None` before the first one).
    pub up: Option<bool>,
    /// When the latest scrape started (Unix ms).
    pub last_scrape_ms: Option<i64>,
    /// How long it took.
    pub last_duration: Option<Duration>,
    /// Samples in the latest scrape.
    pub samples: usize,
    /// The latest error, if the latest scrape failed.
    pub last_error: Option<String>,
    /// The labels added to every series of the target (see [`TargetSpec::labels`]).
    pub labels: BTreeMap<String, String>,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
}

/// Status of every running target, keyed by [`TargetSpec::key`].
pub type StatusBoard = Arc<Mutex<BTreeMap<String, TargetStatus>>>;

/// A failed scrape.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// Connection error, timeout or unreadable body.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The target answered with a non-2xx status.
    #[error("server returned HTTP {0}")]
    Status(u16),
    /// The body exceeds [`MAX_BODY_BYTES`].
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The scrape did not finish within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The body is not a valid exposition.
    #[error("malformed exposition: {0}")]
    Parse(#[from] exposition::ParseError),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Fetches and parses one scrape started at `scrape_ts` (Unix ms): the samples Prometheus would
/// store of it (duplicate, out-of-order and out-of-bounds samples are skipped and logged).
pub async fn fetch(spec: &TargetSpec, scrape_ts: i64) -> Result<Vec<ParsedSample>, ScrapeError> {
    let work = async {
        let req = spec
            .client
            .get(&spec.url)
            .header(ACCEPT, ACCEPT_HEADER)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", spec.timeout.as_secs_f64()),
            );
        let mut resp = spec.http.authorize(req).send().await?;
        if !resp.status().is_success() {
            return Err(ScrapeError::Status(resp.status().as_u16()));
        }
        let format = Format::from_content_type(
            resp.headers()
                .get(CONTENT_TYPE)
                .and_then(|v: &HeaderValue| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ScrapeError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let scraped = exposition::parse_scrape(&body, format, scrape_ts)?;
        if scraped.skips.total() > 0 {
            let reasons: Vec<String> = scraped
                .skips
                .iter()
                .map(|(reason, n)| format!("{reason}={n}"))
                .collect();
            tracing::warn!(job = %spec.job, instance = %spec.instance, skipped = %reasons.join(","), "samples skipped as Prometheus skips them");
        }
        Ok(scraped.samples)
    };
    match tokio::time::timeout(spec.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ScrapeError::Timeout(spec.timeout)),
    }
}

/// Attaches the target labels to a scraped sample's labels, as Prometheus does: with
/// `honor_labels` a scraped label wins; otherwise the target label wins and the scraped one
/// is kept as `exported_<name>`. Empty values are dropped.
pub fn merge_labels(
    name: &str,
    scraped: &[(String, String)],
    target: &BTreeMap<String, String>,
    honor_labels: bool,
) -> SeriesLabels {
    let mut map: BTreeMap<String, String> = scraped
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    map.insert("__name__".to_owned(), name.to_owned());
    for (k, v) in target {
        match map.get(k) {
            Some(_) if honor_labels => {}
            Some(existing) => {
                let existing = existing.clone();
                let mut exported = format!("exported_{k}");
                while map.contains_key(&exported) {
                    exported = format!("exported_{exported}");
                }
                map.insert(exported, existing);
                map.insert(k.clone(), v.clone());
            }
            None => {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    SeriesLabels::from_map(map)
}

/// The series produced by one scrape, and the state carried to the next.
#[derive(Debug, Default)]
pub struct ScrapeState {
    seen: HashSet<SeriesLabels>,
}

impl ScrapeState {
    /// Turns a scrape result into the samples to ship: the scraped samples with target
    /// labels, the synthetic series, and staleness markers for series seen last time but not
    /// now. Returns the samples and how many were scraped.
    pub fn assemble(
        &mut self,
        spec: &TargetSpec,
        result: &Result<Vec<ParsedSample>, ScrapeError>,
        scrape_ts: i64,
        duration: Duration,
    ) -> (Vec<Sample>, usize) {
        let mut out = Vec::new();
        let mut current = HashSet::new();
        let scraped = match result {
            Ok(parsed) => {
                out.reserve(parsed.len() + 3);
                let mut latest: HashMap<SeriesLabels, i64> = HashMap::new();
                for p in parsed {
                    let labels = merge_labels(&p.name, &p.labels, &spec.labels, spec.honor_labels);
                    let timestamp_ms = p.timestamp_ms.unwrap_or(scrape_ts);
                    // A series twice in one scrape keeps only later timestamps, as Prometheus
                    // does (the parser already did this for the scraped labels; target labels
                    // can still merge two series into one).
                    if latest.get(&labels).is_some_and(|&t| timestamp_ms <= t) {
                        continue;
                    }
                    latest.insert(labels.clone(), timestamp_ms);
                    current.insert(labels.clone());
                    out.push(Sample {
                        labels,
                        value: p.value,
                        timestamp_ms,
                    });
                }
                parsed.len()
            }
            Err(_) => 0,
        };
        let up = if result.is_ok() { 1.0 } else { 0.0 };
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", duration.as_secs_f64()),
            ("scrape_samples_scraped", scraped as f64),
        ] {
            let labels = merge_labels(name, &[], &spec.labels, false);
            current.insert(labels.clone());
            out.push(Sample {
                labels,
                value,
                timestamp_ms: scrape_ts,
            });
        }
        for gone in self.seen.difference(&current) {
            out.push(Sample {
                labels: gone.clone(),
                value: stale_nan(),
                timestamp_ms: scrape_ts,
            });
        }
        self.seen = current;
        (out, scraped)
    }

    /// Staleness markers for every series seen in the latest scrape (the target went away).
    pub fn all_stale(&mut self, ts: i64) -> Vec<Sample> {
        self.seen
            .drain()
            .map(|labels| Sample {
                labels,
                value: stale_nan(),
                timestamp_ms: ts,
            })
            .collect()
    }
}

/// Why a scrape loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep running.
    Run,
    /// The target was removed: mark its series stale.
    Removed,
    /// The agent shuts down: just stop.
    Shutdown,
}

/// Everything a scrape loop reports to.
#[derive(Clone)]
pub struct ScrapeContext {
    /// Where samples go.
    pub sink: Arc<dyn SampleSink>,
    /// Agent metrics.
    pub metrics: AgentMetrics,
    /// Status page data.
    pub status: StatusBoard,
}

/// Scrapes `spec` every interval until `stop` changes from [`Stop::Run`].
pub async fn run_loop(spec: TargetSpec, ctx: ScrapeContext, mut stop: watch::Receiver<Stop>) {
    let key = spec.key();
    if let Ok(mut board) = ctx.status.lock() {
        board.insert(
            key.clone(),
            TargetStatus {
                job: spec.job.clone(),
                instance: spec.instance.clone(),
                url: spec.url.clone(),
                labels: spec.labels.clone(),
                interval: spec.interval,
                timeout: spec.timeout,
                ..TargetStatus::default()
            },
        );
    }
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = ScrapeState::default();
    let reason = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            s = stop.wait_for(|s| *s != Stop::Run) => break s.map_or(Stop::Shutdown, |s| *s),
        }
        let started = Instant::now();
        let ts = now_ms();
        // A stop request does not wait for a slow scrape to time out.
        let result = tokio::select! {
            r = fetch(&spec, ts) => r,
            s = stop.wait_for(|s| *s != Stop::Run) => break s.map_or(Stop::Shutdown, |s| *s),
        };
        let duration = started.elapsed();
        let (samples, scraped) = state.assemble(&spec, &result, ts, duration);
        ctx.metrics
            .scrape_finished(&spec.job, &spec.instance, result.is_ok(), scraped);
        if let Err(e) = &result {
            tracing::warn!(job = %spec.job, instance = %spec.instance, url = %spec.url, error = %e, "scrape failed");
        } else {
            tracing::debug!(job = %spec.job, instance = %spec.instance, samples = scraped, "scraped");
        }
        if let Ok(mut board) = ctx.status.lock() {
            if let Some(st) = board.get_mut(&key) {
                st.up = Some(result.is_ok());
                st.last_scrape_ms = Some(ts);
                st.last_duration = Some(duration);
                st.samples = scraped;
                st.last_error = result.as_ref().err().map(ToString::to_string);
            }
        }
        ctx.sink.push(samples);
    };
    if reason == Stop::Removed {
        let stale = state.all_stale(now_ms());
        tracing::info!(job = %spec.job, instance = %spec.instance, series = stale.len(), "target removed; marking its series stale");
        ctx.sink.push(stale);
        ctx.metrics.target_removed(&spec.job, &spec.instance);
    }
    if let Ok(mut board) = ctx.status.lock() {
        board.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::is_stale_nan;

    fn target_labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn scraped(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spec() -> TargetSpec {
        TargetSpec {
            job: "j".into(),
            instance: "127.0.0.1:1".into(),
            url: "http://127.0.0.1:1/metrics".into(),
            labels: target_labels(&[("job", "j"), ("instance", "127.0.0.1:1"), ("cluster", "c")]),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            honor_labels: false,
            client: reqwest::Client::new(),
            http: HttpClientConfig::default(),
        }
    }

    #[test]
    fn target_labels_win_and_scraped_ones_are_exported() {
        let l = merge_labels(
            "m",
            &scraped(&[
                ("job", "inner"),
                ("exported_job", "x"),
                ("a", "1"),
                ("e", ""),
            ]),
            &target_labels(&[("job", "outer"), ("instance", "i")]),
            false,
        );
        assert_eq!(l.get("job"), Some("outer"));
        assert_eq!(l.get("exported_exported_job"), Some("inner"));
        assert_eq!(l.get("exported_job"), Some("x"));
        assert_eq!(l.get("instance"), Some("i"));
        assert_eq!(l.get("a"), Some("1"));
        assert_eq!(l.get("e"), None);
        assert_eq!(l.metric_name(), "m");
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let l = merge_labels(
            "m",
            &scraped(&[("service", "audio")]),
            &target_labels(&[("service", "agent"), ("job", "j")]),
            true,
        );
        assert_eq!(l.get("service"), Some("audio"));
        assert_eq!(l.get("exported_service"), None);
        assert_eq!(l.get("job"), Some("j"));
    }

    fn parsed(name: &str, v: f64) -> ParsedSample {
        ParsedSample {
            name: name.into(),
            labels: vec![],
            value: v,
            timestamp_ms: None,
            exemplar: None,
        }
    }

    #[test]
    fn synthetic_series_and_staleness() {
        let spec = spec();
        let mut st = ScrapeState::default();
        let (out, n) = st.assemble(
            &spec,
            &Ok(vec![parsed("a", 1.0), parsed("b", 2.0), parsed("a", 9.0)]),
            1000,
            Duration::from_millis(5),
        );
        assert_eq!(n, 3);
        let names: Vec<&str> = out.iter().map(|s| s.labels.metric_name()).collect();
        assert_eq!(
            names,
            [
                "a",
                "b",
                "up",
                "scrape_duration_seconds",
                "scrape_samples_scraped"
            ]
        );
        assert_eq!(out[0].value, 1.0, "first of a duplicate series is kept");
        assert_eq!(out[2].value, 1.0);
        assert_eq!(out[4].value, 3.0);
        assert_eq!(out[0].labels.get("cluster"), Some("c"));

        // "b" vanished: it gets a staleness marker at the new scrape's timestamp.
        let (out, _) = st.assemble(&spec, &Ok(vec![parsed("a", 2.0)]), 2000, Duration::ZERO);
        let stale: Vec<&Sample> = out.iter().filter(|s| is_stale_nan(s.value)).collect();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].labels.metric_name(), "b");
        assert_eq!(stale[0].timestamp_ms, 2000);

        // The target fails: "a" goes stale, up = 0.
        let (out, n) = st.assemble(&spec, &Err(ScrapeError::Status(500)), 3000, Duration::ZERO);
        assert_eq!(n, 0);
        let up = out.iter().find(|s| s.labels.metric_name() == "up");
        assert_eq!(up.map(|s| s.value), Some(0.0));
        assert!(out
            .iter()
            .any(|s| s.labels.metric_name() == "a" && is_stale_nan(s.value)));

        // Removed: every remaining series (the synthetic ones) goes stale.
        let stale = st.all_stale(4000);
        assert_eq!(stale.len(), 3);
        assert!(stale
            .iter()
            .all(|s| is_stale_nan(s.value) && s.timestamp_ms == 4000));
    }

    #[test]
    fn a_series_twice_keeps_only_later_timestamps() {
        let at = |v: f64, ts: i64| ParsedSample {
            timestamp_ms: Some(ts),
            ..parsed("a", v)
        };
        let mut st = ScrapeState::default();
        let (out, _) = st.assemble(
            &spec(),
            &Ok(vec![at(1.0, 10), at(2.0, 20), at(3.0, 15), at(4.0, 20)]),
            1000,
            Duration::ZERO,
        );
        let a: Vec<(i64, f64)> = out
            .iter()
            .filter(|s| s.labels.metric_name() == "a")
            .map(|s| (s.timestamp_ms, s.value))
            .collect();
        assert_eq!(a, [(10, 1.0), (20, 2.0)]);
    }

    #[test]
    fn explicit_timestamps_are_kept() {
        let mut st = ScrapeState::default();
        let mut p = parsed("a", 1.0);
        p.timestamp_ms = Some(42);
        let (out, _) = st.assemble(&spec(), &Ok(vec![p]), 1000, Duration::ZERO);
        assert_eq!(out[0].timestamp_ms, 42);
        assert_eq!(out[1].timestamp_ms, 1000);
    }
}
