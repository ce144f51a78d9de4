//! The HTTP server metric families, stored for a cheap per-request path:
//!
//! - the route entry and the (method, status) series are found through per-thread caches
//!   (a hash of the route template: templates are not attacker-controlled), so the common
//!   path takes no lock;
//! - histograms and in-flight counts are sharded per thread ([`crate::registry::sharded`]);
//! - route entries and series live as long as the process (HTTP series are never removed,
//!   as in every Prometheus client), so requests hold plain references, not reference counts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

// The client instrumentation finds the hasher here.
use crate::registry::encode::{self, render_labels, Format};
use crate::registry::fxhash::Fx;
pub(crate) use crate::registry::fxhash::FxHasher;
use crate::registry::sharded::{ShardedCounts, ShardedHistogram};
use crate::registry::{
    check_buckets, read, write, Collect, MetricError, Registry, LATENCY_BUCKETS, SIZE_BUCKETS,
};

use super::route::{RouteRules, METHODS};

pub(crate) const DURATION: &str = "http_server_request_duration_seconds";
pub(crate) const ACTIVE: &str = "http_server_active_requests";
pub(crate) const REQUEST_SIZE: &str = "http_server_request_body_size_bytes";
pub(crate) const RESPONSE_SIZE: &str = "http_server_response_body_size_bytes";

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
    duration_buckets: &'static [f64],
    series: RwLock<Vec<(u8, u16, &'static HttpSeries)>>,
}

/// Route template → entry (`None`: not counted), for one metrics store and route rules.
type RouteMap = HashMap<Box<str>, Option<&'static RouteEntry>, Fx>;

thread_local! {
    /// (metrics store, route rules id) → (route template → entry).
    static ROUTES: RefCell<HashMap<(usize, u64), RouteMap, Fx>> = RefCell::default();
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
            duration: ShardedHistogram::with_exemplars(self.duration_buckets),
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
    duration_buckets: &'static [f64],
}

impl HttpMetrics {
    /// Creates the HTTP metrics (for the life of the process) and registers them for rendering
    /// in `registry`; the request-duration histogram uses `duration_buckets` (checked with
    /// [`check_buckets`]; [`LATENCY_BUCKETS`] by default).
    pub(crate) fn register(
        registry: &Registry,
        duration_buckets: Option<&[f64]>,
    ) -> Result<&'static Self, MetricError> {
        let duration_buckets: &'static [f64] = match duration_buckets {
            None => LATENCY_BUCKETS,
            Some(b) => {
                check_buckets(DURATION, b)?;
                Box::leak(b.to_vec().into_boxed_slice())
            }
        };
        let metrics: &'static HttpMetrics = Box::leak(Box::new(HttpMetrics {
            routes: RwLock::new(HashMap::default()),
            active: Box::leak(Box::default()),
            duration_buckets,
        }));
        registry.register_collector(
            &[DURATION, ACTIVE, REQUEST_SIZE, RESPONSE_SIZE],
            Renderer(metrics),
        )?;
        Ok(metrics)
    }

    /// The entry a request of this route template is counted under, or `None` when `rules`
    /// exclude it.
    #[inline]
    pub(crate) fn route(
        &'static self,
        rules: &RouteRules,
        template: &str,
    ) -> Option<&'static RouteEntry> {
        let id = (self as *const HttpMetrics as usize, rules.id);
        let cached = ROUTES.with(|c| c.borrow().get(&id).and_then(|m| m.get(template)).copied());
        if let Some(e) = cached {
            return e;
        }
        let e = rules.resolve(template).map(|route| self.route_slow(&route));
        ROUTES.with(|c| {
            c.borrow_mut()
                .entry(id)
                .or_default()
                .insert(template.into(), e)
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
                duration_buckets: self.duration_buckets,
                series: RwLock::new(Vec::new()),
            }))
        })
    }

    fn encode(&self, format: Format, const_labels: &str, out: &mut String) {
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
                let unit = if name == DURATION { "seconds" } else { "bytes" };
                encode::write_family_header(out, format, name, help, "histogram", Some(unit));
                for s in &all {
                    let h = pick(s);
                    // Exemplars (the request duration's) are OpenMetrics only.
                    let exemplars = match format {
                        Format::OpenMetrics => h.exemplars(),
                        Format::Text => Vec::new(),
                    };
                    encode::write_histogram_with_exemplars(
                        out,
                        name,
                        &[const_labels, &s.labels],
                        &h.snapshot(),
                        h.bounds(),
                        &exemplars,
                    );
                }
            }
        }
        let seen: Vec<usize> = (0..METHODS.len())
            .filter(|&i| self.active.seen[i].load(Ordering::Relaxed))
            .collect();
        if !seen.is_empty() {
            encode::write_family_header(
                out,
                format,
                ACTIVE,
                "Number of HTTP server requests in flight.",
                "gauge",
                None,
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
        self.0.encode(Format::Text, const_labels, out);
    }

    fn encode_as(&self, format: Format, const_labels: &str, out: &mut String) {
        self.0.encode(format, const_labels, out);
    }
}
