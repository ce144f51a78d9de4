//! The HTTP server metric families, stored for a cheap per-request path:
//!
//! - the route entry and the (method, status) series are found through per-thread caches
//!   (a hash of the route template: templates are not attacker-controlled), so the common
//!   path takes no lock;
//! - histograms and in-flight counts are sharded per thread ([`crate::metrics::sharded`]);
//! - route entries and series live as long as the process (HTTP series are never removed,
//!   as in every Prometheus client), so requests hold plain references, not reference counts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use crate::metrics::encode::{self, render_labels};
use crate::metrics::sharded::{ShardedCounts, ShardedHistogram};
use crate::metrics::{read, write, Collect, MetricError, Registry, LATENCY_BUCKETS, SIZE_BUCKETS};

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
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// The three histograms of one (method, route, status) label set.
#[derive(Debug)]
pub(crate) struct HttpSeries {
    pub duration: ShardedHistogram,
    pub request_size: ShardedHistogram,
    pub response_size: ShardedHistogram,
    labels: String,
}

/// In-flight requests per method, and which methods have been seen.
#[derive(Debug, Default)]
struct ActiveRequests {
    counts: ShardedCounts<{ METHODS.len() }>,
    seen: [AtomicBool; METHODS.len()],
}

/// The series of one route template.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    route: Box<str>,
    active: &'static ActiveRequests,
    series: RwLock<Vec<(u8, u16, &'static HttpSeries)>>,
}

/// Route template → entry, for one metrics store.
type RouteMap = HashMap<Box<str>, &'static RouteEntry, Fx>;

thread_local! {
    /// (metrics store, route template) → entry.
    static ROUTES: RefCell<HashMap<usize, RouteMap, Fx>> = RefCell::default();
    /// (route entry, method, status) → series.
    static SERIES: RefCell<HashMap<(usize, u8, u16), &'static HttpSeries, Fx>> = RefCell::default();
}

impl RouteEntry {
    /// Counts a request of this method as in flight.
    #[inline]
    pub(crate) fn start(&self, method: usize) {
        let a = self.active;
        if !a.seen[method].load(Ordering::Relaxed) {
            a.seen[method].store(true, Ordering::Relaxed);
        }
        a.counts.add(method, 1);
    }

    /// Ends an in-flight request of this method.
    #[inline]
    pub(crate) fn end(&self, method: usize) {
        self.active.counts.add(method, -1);
    }

    /// The series for this method index and status, created on first use.
    #[inline]
    pub(crate) fn series(&'static self, method: usize, status: u16) -> &'static HttpSeries {
        let key = (self as *const RouteEntry as usize, method as u8, status);
        if let Some(s) = SERIES.with(|c| c.borrow().get(&key).copied()) {
            return s;
        }
        let s = self.series_slow(method, status);
        SERIES.with(|c| c.borrow_mut().insert(key, s));
        s
    }

    #[cold]
    fn series_slow(&self, method: usize, status: u16) -> &'static HttpSeries {
        let m = method as u8;
        let find = |v: &[(u8, u16, &'static HttpSeries)]| {
            v.iter()
                .find(|(sm, ss, _)| *sm == m && *ss == status)
                .map(|(_, _, s)| *s)
        };
        if let Some(s) = find(&read(&self.series)) {
            return s;
        }
        let mut series = write(&self.series);
        if let Some(s) = find(&series) {
            return s;
        }
        let code = status.to_string();
        let labels = render_labels([
            ("http_request_method", METHODS[method]),
            ("http_route", &*self.route),
            ("http_response_status_code", code.as_str()),
        ]);
        let s: &'static HttpSeries = Box::leak(Box::new(HttpSeries {
            duration: ShardedHistogram::new(LATENCY_BUCKETS),
            request_size: ShardedHistogram::new(SIZE_BUCKETS),
            response_size: ShardedHistogram::new(SIZE_BUCKETS),
            labels,
        }));
        series.push((m, status, s));
        s
    }
}

/// All HTTP server metrics of one registry.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    routes: RwLock<HashMap<Box<str>, &'static RouteEntry, Fx>>,
    active: &'static ActiveRequests,
}

impl HttpMetrics {
    /// Creates the HTTP metrics (for the life of the process) and registers them for rendering
    /// in `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<&'static Self, MetricError> {
        let metrics: &'static HttpMetrics = Box::leak(Box::new(HttpMetrics {
            routes: RwLock::new(HashMap::default()),
            active: Box::leak(Box::default()),
        }));
        registry.register_collector(
            &[DURATION, ACTIVE, REQUEST_SIZE, RESPONSE_SIZE],
            Renderer(metrics),
        )?;
        Ok(metrics)
    }

    /// The entry of a route template.
    #[inline]
    pub(crate) fn route(&'static self, route: &str) -> &'static RouteEntry {
        let id = self as *const HttpMetrics as usize;
        let cached = ROUTES.with(|c| c.borrow().get(&id).and_then(|m| m.get(route)).copied());
        if let Some(e) = cached {
            return e;
        }
        let e = self.route_slow(route);
        ROUTES.with(|c| {
            c.borrow_mut()
                .entry(id)
                .or_default()
                .insert(route.into(), e)
        });
        e
    }

    #[cold]
    fn route_slow(&self, route: &str) -> &'static RouteEntry {
        if let Some(e) = read(&self.routes).get(route) {
            return e;
        }
        write(&self.routes).entry(route.into()).or_insert_with(|| {
            Box::leak(Box::new(RouteEntry {
                route: route.into(),
                active: self.active,
                series: RwLock::new(Vec::new()),
            }))
        })
    }

    fn encode(&self, const_labels: &str, out: &mut String) {
        let mut all: Vec<&'static HttpSeries> = Vec::new();
        {
            let routes = read(&self.routes);
            let mut entries: Vec<&&'static RouteEntry> = routes.values().collect();
            entries.sort_by(|a, b| a.route.cmp(&b.route));
            for e in entries {
                let mut s = read(&e.series).clone();
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
        if !all.is_empty() {
            for (name, help, pick) in families {
                encode::write_header(out, name, help, "histogram");
                for s in &all {
                    let h = pick(s);
                    encode::write_histogram(
                        out,
                        name,
                        &[const_labels, &s.labels],
                        &h.snapshot(),
                        h.bounds(),
                    );
                }
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
                let n = self.active.counts.sum(i);
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

/// Selects one of the three histograms of a series.
type PickHistogram = fn(&HttpSeries) -> &ShardedHistogram;

struct Renderer(&'static HttpMetrics);

impl Collect for Renderer {
    fn encode(&self, const_labels: &str, out: &mut String) {
        self.0.encode(const_labels, out);
    }
}
