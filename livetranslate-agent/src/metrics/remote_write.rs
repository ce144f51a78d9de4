//! Prometheus remote write 1.0: protobuf `WriteRequest`, snappy block compression, batching
//! by count and age, retries with exponential backoff and jitter.
//!
//! A single sender drains the queue in order, so the samples of a series always reach the
//! remote in timestamp order (Prometheus rejects out-of-order samples).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use tokio::sync::{watch, Notify};

use super::queue::SampleQueue;
use super::{Sample, SampleSink, SeriesLabels};
use crate::config::RemoteWriteConfig;
use crate::internal_events::{AgentMetrics, DropReason};

/// The protobuf messages of remote write 1.0 (`prometheus/prompb`), hand-written.
pub mod proto {
    /// A batch of series.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// One series and its samples.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels sorted by name, `__name__` included.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Samples in timestamp order.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// A label pair.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A sample.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// Groups samples by series (labels sorted by name) with each series' samples in time order.
pub fn build_request(samples: &[Sample]) -> proto::WriteRequest {
    let mut series: BTreeMap<&SeriesLabels, Vec<proto::Sample>> = BTreeMap::new();
    for s in samples {
        series.entry(&s.labels).or_default().push(proto::Sample {
            value: s.value,
            timestamp: s.timestamp_ms,
        });
    }
    let timeseries = series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|s| s.timestamp);
            proto::TimeSeries {
                labels: labels
                    .pairs()
                    .iter()
                    .map(|(n, v)| proto::Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples,
            }
        })
        .collect();
    proto::WriteRequest { timeseries }
}

/// Serializes and snappy-compresses (block format) a request body.
pub fn encode_body(req: &proto::WriteRequest) -> Result<Bytes, snap::Error> {
    let raw = prost::Message::encode_to_vec(req);
    Ok(Bytes::from(snap::raw::Encoder::new().compress_vec(&raw)?))
}

/// Decodes a body produced by [`encode_body`] (used by tests and test receivers).
pub fn decode_body(body: &[u8]) -> Result<proto::WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| e.to_string())?;
    <proto::WriteRequest as prost::Message>::decode(raw.as_slice()).map_err(|e| e.to_string())
}

/// A random number in `[0, 1)` for jitter.
fn jitter_unit() -> f64 {
    let h = std::collections::hash_map::RandomState::new().build_hasher();
    let mut h = h;
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The delay before retry number `attempt` (0-based): exponential from `min` to `max`, with
/// "equal jitter" (between half and all of it).
pub fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let exp = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    exp.mul_f64(0.5 + 0.5 * jitter_unit())
}

/// Parses a `Retry-After` header: delay seconds or an HTTP date (IMF-fixdate), capped at
/// `cap`.
fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = parse_http_date(v)?;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Duration::from_secs(at.saturating_sub(now))
        }
    };
    Some(d.min(cap))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?.strip_suffix(',')?;
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || it.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    // Days since the epoch (H. Hinnant's days_from_civil).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// The remote-write end of the pipeline: a [`SampleSink`] that queues, and the sender task
/// that drains the queue.
pub struct RemoteWriter {
    config: RemoteWriteConfig,
    client: reqwest::Client,
    headers: HeaderMap,
    queue: Arc<dyn SampleQueue>,
    notify: Arc<Notify>,
    metrics: AgentMetrics,
}

impl std::fmt::Debug for RemoteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriter")
            .field("url", &self.config.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The queue side of a [`RemoteWriter`].
#[derive(Clone)]
pub struct QueueSink {
    queue: Arc<dyn SampleQueue>,
    notify: Arc<Notify>,
    metrics: AgentMetrics,
}

impl SampleSink for QueueSink {
    fn push(&self, samples: Vec<Sample>) {
        let dropped = self.queue.push(samples);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "remote-write queue full; dropped the oldest samples"
            );
            self.metrics.samples_dropped(DropReason::QueueFull, dropped);
        }
        self.metrics
            .queue_state(self.queue.len(), self.queue.capacity());
        self.notify.notify_one();
    }
}

enum Outcome {
    Sent,
    Rejected,
    Retry(Option<Duration>),
}

impl RemoteWriter {
    /// A writer for `config` draining `queue`.
    pub fn new(
        config: RemoteWriteConfig,
        queue: Arc<dyn SampleQueue>,
        metrics: AgentMetrics,
        user_agent: &str,
    ) -> Result<Self, crate::config::ConfigError> {
        let client = config.http.client(user_agent)?;
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            "X-Prometheus-Remote-Write-Version",
            HeaderValue::from_static("0.1.0"),
        );
        metrics.queue_state(queue.len(), queue.capacity());
        Ok(RemoteWriter {
            config,
            client,
            headers,
            queue,
            notify: Arc::new(Notify::new()),
            metrics,
        })
    }

    /// The sink scrape loops push into.
    pub fn sink(&self) -> QueueSink {
        QueueSink {
            queue: self.queue.clone(),
            notify: self.notify.clone(),
            metrics: self.metrics.clone(),
        }
    }

    async fn attempt(&self, body: &Bytes) -> Outcome {
        let started = Instant::now();
        let req = self
            .client
            .post(self.config.url.clone())
            .headers(self.headers.clone())
            .timeout(self.config.timeout)
            .body(body.clone());
        let result = self.config.http.authorize(req).send().await;
        let outcome = match result {
            Err(e) => {
                tracing::warn!(url = %self.config.url, error = %e, "remote write failed; will retry");
                Outcome::Retry(None)
            }
            Ok(resp) => {
                let status = resp.status();
                // A server asking for more than a few minutes is capped: the queue keeps
                // filling meanwhile.
                let after = retry_after(resp.headers(), Duration::from_secs(300));
                if status.is_success() {
                    Outcome::Sent
                } else {
                    let text = resp.text().await.unwrap_or_default();
                    let text: String = text.chars().take(512).collect();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        tracing::warn!(%status, body = %text, "remote write throttled; will retry");
                        Outcome::Retry(after)
                    } else if status.is_server_error() {
                        tracing::warn!(%status, body = %text, "remote write failed; will retry");
                        Outcome::Retry(None)
                    } else {
                        tracing::error!(%status, body = %text, "remote write rejected; dropping the batch");
                        Outcome::Rejected
                    }
                }
            }
        };
        self.metrics.request_finished(started.elapsed());
        outcome
    }

    /// Sends one batch, retrying retryable failures until it is delivered or `give_up`
    /// becomes true.
    async fn send_batch(&self, batch: Vec<Sample>, give_up: &mut watch::Receiver<bool>) {
        let n = batch.len();
        let body = match encode_body(&build_request(&batch)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot compress a remote-write batch; dropping it");
                self.metrics.samples_dropped(DropReason::Rejected, n);
                return;
            }
        };
        let mut attempt = 0u32;
        loop {
            match self.attempt(&body).await {
                Outcome::Sent => {
                    self.metrics.samples_sent(n);
                    return;
                }
                Outcome::Rejected => {
                    self.metrics.samples_dropped(DropReason::Rejected, n);
                    return;
                }
                Outcome::Retry(after) => {
                    let delay = after.unwrap_or_else(|| {
                        backoff(
                            attempt,
                            self.config.queue.min_backoff,
                            self.config.queue.max_backoff,
                        )
                    });
                    attempt = attempt.saturating_add(1);
                    self.metrics.samples_retried(n);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = give_up.wait_for(|g| *g) => {
                            tracing::warn!(samples = n, "giving up on an undelivered batch at shutdown");
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Drains the queue until `shutdown` turns true, then sends what is left (stopping early
    /// if `give_up` turns true).
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut give_up: watch::Receiver<bool>,
    ) {
        let max = self.config.queue.max_samples_per_send;
        let deadline = self.config.queue.batch_send_deadline;
        let mut closed = false;
        loop {
            let stopping = closed || *shutdown.borrow();
            let len = self.queue.len();
            let age = self
                .queue
                .oldest_enqueued_at()
                .map(|t| t.elapsed())
                .unwrap_or_default();
            if len > 0 && (stopping || len >= max || age >= deadline) {
                let batch = self.queue.pop(max);
                self.metrics
                    .queue_state(self.queue.len(), self.queue.capacity());
                self.send_batch(batch, &mut give_up).await;
                if *give_up.borrow() {
                    break;
                }
                continue;
            }
            if stopping {
                break;
            }
            let wait = if len > 0 {
                deadline.saturating_sub(age)
            } else {
                deadline
            };
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                r = shutdown.changed() => closed = r.is_err(),
            }
        }
        let left = self.queue.len();
        if left > 0 {
            tracing::warn!(samples = left, "shutdown: samples left unsent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stale_nan;

    fn labels(pairs: &[(&str, &str)]) -> SeriesLabels {
        SeriesLabels::from_map(
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn request_groups_sorts_and_round_trips() {
        let a = labels(&[("__name__", "a"), ("job", "j"), ("Z", "z")]);
        let b = labels(&[("__name__", "b")]);
        let samples = vec![
            Sample {
                labels: a.clone(),
                value: 2.0,
                timestamp_ms: 20,
            },
            Sample {
                labels: b.clone(),
                value: stale_nan(),
                timestamp_ms: 15,
            },
            Sample {
                labels: a.clone(),
                value: 1.0,
                timestamp_ms: 10,
            },
        ];
        let req = build_request(&samples);
        assert_eq!(req.timeseries.len(), 2);
        let ts_a = &req.timeseries[0];
        let names: Vec<&str> = ts_a.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Z", "__name__", "job"]);
        let times: Vec<i64> = ts_a.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, [10, 20]);
        let body = match encode_body(&req) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let back = match decode_body(&body) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(back.timeseries.len(), 2);
        assert_eq!(
            back.timeseries[1].samples[0].value.to_bits(),
            crate::metrics::STALE_NAN_BITS,
            "the staleness bit pattern survives the wire"
        );
    }

    #[test]
    fn snappy_is_the_block_format() {
        let body = match encode_body(&proto::WriteRequest::default()) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        // Block format: a varint length then the data; empty input encodes as one zero byte.
        assert_eq!(&body[..], &[0]);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951825600)
        );
        for bad in [
            "",
            "06 Nov 1994",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            retry_after(&h, Duration::from_secs(300)),
            Some(Duration::from_secs(7))
        );
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("99999"),
        );
        assert_eq!(
            retry_after(&h, Duration::from_secs(300)),
            Some(Duration::from_secs(300))
        );
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(
            retry_after(&h, Duration::from_secs(300)),
            Some(Duration::ZERO)
        );
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h, Duration::from_secs(300)), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 0..40 {
            let d = backoff(attempt, min, max);
            let exp = min.saturating_mul(1u32 << attempt.min(20)).min(max);
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        assert!(backoff(30, min, max) <= max);
    }
}
