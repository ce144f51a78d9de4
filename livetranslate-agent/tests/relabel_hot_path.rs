//! The per-sample path of `metric_relabel_configs`:
//!
//! - `no_allocation_when_no_rule_changes_anything` (a test): rule sets that leave a sample
//!   as it is allocate nothing (counted by a global allocator on this thread);
//! - `measure_ns_per_apply` (ignored; a measurement, nothing asserted on speed): prints the
//!   cost per sample. Run it in release:
//!   `cargo test --release -p livetranslate-agent --test relabel_hot_path -- --ignored --nocapture`
//!   With `RELABEL_ONLY=<scenario> RELABEL_ITERS=<n>` it runs one scenario n times untimed,
//!   for instruction counts under `valgrind --tool=callgrind` (two n, take the difference).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use livetranslate_agent::relabel::{self, Labels, RelabelConfig};

/// Counts the allocations of the threads that ask for it.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
            }
        });
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
            }
        });
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|a| a.get())
}

fn sample() -> Labels {
    [
        ("__name__", "http_server_requests_total"),
        ("cluster", "eu-1"),
        ("environment", "production"),
        ("instance", "audio:5001"),
        ("job", "audio"),
        ("method", "GET"),
        ("path", "/api/health"),
        ("service", "audio"),
        ("status", "200"),
        ("version", "1.2.3"),
    ]
    .into_iter()
    .collect()
}

/// A typical `metric_relabel_configs` that keeps this sample as it is.
const TYPICAL: &str = r#"
- {source_labels: [__name__], regex: "go_.*|process_.*|promhttp_.*", action: drop}
- {action: labeldrop, regex: "pod_template_hash|controller_revision_hash"}
- {source_labels: [path], regex: "/api/v1/users/\\d+", target_label: path, replacement: "/api/v1/users/:id"}
- {source_labels: [__name__, le], regex: ".+_bucket;(0\\.005|0\\.01)", action: drop}
- {source_labels: [__name__], regex: "http_.*|lt_.*", action: keep}
- {source_labels: [environment], regex: "prod|production", target_label: environment, replacement: production}
- {source_labels: [status], regex: "(5)\\d\\d", target_label: status_class, replacement: "${1}xx"}
"#;

/// The same with a rule that rewrites this sample's path (allocates: the new value).
const CHANGING: &str = r#"
- {source_labels: [__name__], regex: "go_.*|process_.*|promhttp_.*", action: drop}
- {source_labels: [path], regex: "/api/(.*)", target_label: path, replacement: "/$1/"}
- {source_labels: [__name__], regex: "http_.*|lt_.*", action: keep}
"#;

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn no_allocation_when_no_rule_changes_anything() {
    let typical = rules(TYPICAL);
    let mut l = sample();
    let mut kept = false;
    // Steady state: each regex builds its per-thread match cache on first use.
    relabel::apply_mut(&mut sample(), &typical);
    let n = allocations(|| kept = relabel::apply_mut(&mut l, &typical));
    assert!(kept);
    assert_eq!(l, sample(), "the typical set leaves this sample as it is");
    assert_eq!(n, 0, "allocations for a rule set that changes nothing");

    // Setting a label to the value it already has, hashmod to the same shard, keepequal.
    let more = rules(
        r#"
- {source_labels: [job], target_label: service, replacement: audio}
- {source_labels: [job], target_label: service, action: keepequal}
- {source_labels: [method, status], separator: " ", regex: "GET 200", action: keep}
"#,
    );
    relabel::apply_mut(&mut sample(), &more);
    let n = allocations(|| kept = relabel::apply_mut(&mut l, &more));
    assert!(kept, "{l:?}");
    assert_eq!(n, 0);

    // A rule that changes something does allocate (the counter works).
    let changing = rules(CHANGING);
    let n = allocations(|| kept = relabel::apply_mut(&mut l, &changing));
    assert!(kept && l.get("path") == Some("/health/"), "{l:?}");
    assert!(n > 0);
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn measure_ns_per_apply() {
    // The fastest of many short batches: on a shared machine, preemption only ever adds.
    const BATCH: u32 = 20_000;
    const BATCHES: u32 = 100;
    let time = |what: &str, mut f: Box<dyn FnMut()>| -> f64 {
        if let Ok(only) = std::env::var("RELABEL_ONLY") {
            if what.starts_with(&only) {
                let n: u32 = std::env::var("RELABEL_ITERS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000);
                for _ in 0..n {
                    f();
                }
            }
            return 0.0;
        }
        for _ in 0..BATCH {
            f();
        }
        let mut best = f64::INFINITY;
        for _ in 0..BATCHES {
            let start = Instant::now();
            for _ in 0..BATCH {
                f();
            }
            best = best.min(start.elapsed().as_nanos() as f64 / f64::from(BATCH));
        }
        println!("{what:<58} {best:>8.1} ns");
        best
    };
    let empty: Vec<RelabelConfig> = Vec::new();
    let typical = rules(TYPICAL);
    let changing = rules(CHANGING);
    let mut l = sample();
    time(
        "no rules (apply_mut)",
        Box::new(move || {
            black_box(relabel::apply_mut(black_box(&mut l), black_box(&empty)));
        }),
    );
    let mut l = sample();
    let t = typical.clone();
    time(
        "typical metric_relabel set, 7 rules, nothing changes",
        Box::new(move || {
            black_box(relabel::apply_mut(black_box(&mut l), black_box(&t)));
        }),
    );
    let s = sample();
    let clone = time(
        "(clone of the 10-label sample, for reference)",
        Box::new(move || {
            black_box(black_box(&s).clone());
        }),
    );
    let s = sample();
    let changed = time(
        "clone + 3 rules, one rewrites `path`",
        Box::new(move || {
            let mut l = black_box(&s).clone();
            black_box(relabel::apply_mut(&mut l, black_box(&changing)));
        }),
    );
    println!("{:<58} {:>8.1} ns", "  → the rules alone", changed - clone);
    let pairs: Vec<(String, String)> = sample().into_vec();
    let sorted = time(
        "clone of the sample's pairs (reference)",
        Box::new({
            let pairs = pairs.clone();
            move || {
                black_box(black_box(&pairs).clone());
            }
        }),
    );
    let built = time(
        "clone + Labels::from_pairs (already sorted)",
        Box::new(move || {
            black_box(Labels::from_pairs(black_box(&pairs).clone()));
        }),
    );
    println!("{:<58} {:>8.1} ns", "  → from_pairs alone", built - sorted);
}
