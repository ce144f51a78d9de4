//! The HTTP server metric families, stored for a cheap per-request path: one read-locked
//! lookup of the route (hashed with a fast non-cryptographic hash: route templates are not
//! attacker-controlled) and a short scan for (method, status).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::metrics::encode::{self, render_labels};
use crate::metrics::{
    read, write, Collect, Histogram, Metric, MetricError, Registry, LATENCY_BUCKETS, SIZE_BUCKETS,
};

use super::route::METHODS;

pub(crate) const DURATION: &str = "http_server_request_duration_seconds";
pub(crate) const ACTIVE: &str = "http_server_active_requests";
pub(crate) const REQUEST_SIZE: &str = "http_server_request_body_size_bytes";
pub(crate) const RESPONSE_SIZE: &str = "http_server_response_body_size_bytes";

/// FxHash (as used in rustc): a multiply-rotate hash, fast on short keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The three histograms of one (method, route, status) label set.
#[derive(Debug)]
pub(crate) struct HttpSeries {
    pub duration: Histogram,
    pub request_size: Histogram,
    pub response_size: Histogram,
    labels: String,
}

/// In-flight request counts per method (integers: one atomic add per change).
#[derive(Debug, Default)]
pub(crate) struct ActiveRequests {
    counts: [AtomicI64; METHODS.len()],
    seen: [AtomicBool; METHODS.len()],
}

/// The series of one route template.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    route: Box<str>,
    active: Arc<ActiveRequests>,
    series: RwLock<Vec<(u8, u16, Arc<HttpSeries>)>>,
}

impl RouteEntry {
    /// Counts a request of this method as in flight.
    #[inline]
    pub(crate) fn start(&self, method: usize) {
        let a = &*self.active;
        if !a.seen[method].load(Ordering::Relaxed) {
            a.seen[method].store(true, Ordering::Relaxed);
        }
        a.counts[method].fetch_add(1, Ordering::Relaxed);
    }

    /// Ends an in-flight request of this method.
    #[inline]
    pub(crate) fn end(&self, method: usize) {
        self.active.counts[method].fetch_sub(1, Ordering::Relaxed);
    }

    /// Runs `f` on the series for this method index and status, created on first use.
    #[inline]
    pub(crate) fn with_series<R>(
        &self,
        method: usize,
        status: u16,
        f: impl FnOnce(&Arc<HttpSeries>) -> R,
    ) -> R {
        let m = method as u8;
        if let Some((_, _, s)) = read(&self.series)
            .iter()
            .find(|(sm, ss, _)| *sm == m && *ss == status)
        {
            return f(s);
        }
        f(&self.series(method, status))
    }

    /// The series for this method index and status, created if missing.
    #[cold]
    fn series(&self, method: usize, status: u16) -> Arc<HttpSeries> {
        let m = method as u8;
        let mut series = write(&self.series);
        if let Some((_, _, s)) = series.iter().find(|(sm, ss, _)| *sm == m && *ss == status) {
            return s.clone();
        }
        let code = status.to_string();
        let labels = render_labels([
            ("http_request_method", METHODS[method]),
            ("http_route", &*self.route),
            ("http_response_status_code", code.as_str()),
        ]);
        let s = Arc::new(HttpSeries {
            duration: Histogram::new(LATENCY_BUCKETS),
            request_size: Histogram::new(SIZE_BUCKETS),
            response_size: Histogram::new(SIZE_BUCKETS),
            labels,
        });
        series.push((m, status, s.clone()));
        s
    }
}

/// Selects one of the three histograms of a series.
type PickHistogram = fn(&HttpSeries) -> &Histogram;

/// All HTTP server metrics of one registry.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    routes: RwLock<HashMap<Box<str>, Arc<RouteEntry>, BuildHasherDefault<FxHasher>>>,
    active: Arc<ActiveRequests>,
}

impl HttpMetrics {
    /// Creates the HTTP metrics and registers them for rendering in `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Arc<Self>, MetricError> {
        let metrics = Arc::new(HttpMetrics {
            routes: RwLock::new(HashMap::default()),
            active: Arc::default(),
        });
        registry.register_collector(
            &[DURATION, ACTIVE, REQUEST_SIZE, RESPONSE_SIZE],
            Renderer(metrics.clone()),
        )?;
        Ok(metrics)
    }

    /// The entry of a route template.
    #[inline]
    pub(crate) fn route(&self, route: &str) -> Arc<RouteEntry> {
        if let Some(e) = read(&self.routes).get(route) {
            return e.clone();
        }
        write(&self.routes)
            .entry(route.into())
            .or_insert_with(|| {
                Arc::new(RouteEntry {
                    route: route.into(),
                    active: self.active.clone(),
                    series: RwLock::new(Vec::new()),
                })
            })
            .clone()
    }

    fn encode(&self, const_labels: &str, out: &mut String) {
        let mut all: Vec<Arc<HttpSeries>> = Vec::new();
        {
            let routes = read(&self.routes);
            let mut entries: Vec<&Arc<RouteEntry>> = routes.values().collect();
            entries.sort_by(|a, b| a.route.cmp(&b.route));
            for e in entries {
                let mut s: Vec<(u8, u16, Arc<HttpSeries>)> = read(&e.series).clone();
                s.sort_by_key(|(m, st, _)| (*m, *st));
                all.extend(s.into_iter().map(|(_, _, s)| s));
            }
        }
        let families: [(&str, &str, PickHistogram); 3] = [
            (
                DURATION,
                "Duration of HTTP server requests, until the response head is sent.",
                |s| &s.duration,
            ),
            (REQUEST_SIZE, "Size of HTTP server request bodies.", |s| {
                &s.request_size
            }),
            (RESPONSE_SIZE, "Size of HTTP server response bodies.", |s| {
                &s.response_size
            }),
        ];
        for (name, help, pick) in families {
            if all.is_empty() {
                continue;
            }
            encode::write_header(out, name, help, "histogram");
            for s in &all {
                pick(s).encode_series(name, &[const_labels, &s.labels], out);
            }
        }
        let seen: Vec<usize> = (0..METHODS.len())
            .filter(|&i| self.active.seen[i].load(Ordering::Relaxed))
            .collect();
        if !seen.is_empty() {
            encode::write_header(
                out,
                ACTIVE,
                "Number of HTTP server requests in flight.",
                "gauge",
            );
            for i in seen {
                let label = render_labels([("http_request_method", METHODS[i])]);
                let n = self.active.counts[i].load(Ordering::Relaxed);
                encode::write_sample(
                    out,
                    ACTIVE,
                    "",
                    &[const_labels, &label],
                    encode::Sample::Float(n as f64),
                );
            }
        }
    }
}

struct Renderer(Arc<HttpMetrics>);

impl Collect for Renderer {
    fn encode(&self, const_labels: &str, out: &mut String) {
        self.0.encode(const_labels, out);
    }
}
