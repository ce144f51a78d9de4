//! How the status page writes times, durations, ages and sizes for people.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// A Unix-ms time as RFC 3339 in UTC with microseconds (as the agent's logs write it).
///
/// ```
/// use livetranslate_agent::status::format::rfc3339;
/// assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123000Z");
/// ```
pub fn rfc3339(ms: i64) -> String {
    let mut out = String::with_capacity(32);
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    livetranslate_telemetry::logging::write_rfc3339(&mut out, at);
    out
}

/// A duration in seconds, short and exact enough: `412µs`, `12.345ms`, `500ms`, `1.234s`,
/// `15s`, `3m 4s`, `2h 3m`, `4d 2h`.
///
/// ```
/// use livetranslate_agent::status::format::duration;
/// assert_eq!(duration(0.012_345), "12.345ms");
/// assert_eq!(duration(0.5), "500ms");
/// assert_eq!(duration(184.0), "3m 4s");
/// ```
pub fn duration(secs: f64) -> String {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    if secs < 0.001 {
        return format!("{:.0}µs", secs * 1e6);
    }
    if secs < 1.0 {
        return format!("{}ms", three_places(secs * 1e3));
    }
    if secs < 60.0 {
        return format!("{}s", three_places(secs));
    }
    let whole = secs as u64;
    let (d, h, m, s) = (
        whole / 86_400,
        whole / 3_600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {s}s")
    }
}

/// `v` with at most three decimals, trailing zeros dropped: `1.5`, `12.345`, `15`.
fn three_places(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// How long before `now_ms` the time `at_ms` was: `1.234s ago` (`just now` under a
/// millisecond or for a time ahead of `now_ms`).
///
/// ```
/// use livetranslate_agent::status::format::ago;
/// assert_eq!(ago(10_000, 8_766), "1.234s ago");
/// assert_eq!(ago(10_000, 9_000), "1s ago");
/// assert_eq!(ago(10_000, 10_000), "just now");
/// ```
pub fn ago(now_ms: i64, at_ms: i64) -> String {
    let ms = now_ms.saturating_sub(at_ms);
    if ms <= 0 {
        return "just now".to_owned();
    }
    format!("{} ago", duration(ms as f64 / 1000.0))
}

/// A byte count in binary units: `812 B`, `12.3 KiB`, `4.0 MiB`.
///
/// ```
/// use livetranslate_agent::status::format::bytes;
/// assert_eq!(bytes(812), "812 B");
/// assert_eq!(bytes(12_595), "12.3 KiB");
/// ```
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A count with thousands separators: `1,234,567`.
///
/// ```
/// use livetranslate_agent::status::format::count;
/// assert_eq!(count(1_234_567), "1,234,567");
/// assert_eq!(count(999), "999");
/// ```
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and its unit, singular for one: `1 line`, `3 samples`.
pub fn count_of(n: u64, unit: &str) -> String {
    let mut out = count(n);
    let _ = write!(out, " {}", if n == 1 { singular(unit) } else { unit });
    out
}

fn singular(unit: &str) -> &str {
    match unit {
        "batches" => "batch",
        u => u.strip_suffix('s').unwrap_or(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration(0.000_412), "412µs");
        assert_eq!(duration(1.5), "1.5s");
        assert_eq!(duration(15.0), "15s");
        assert_eq!(duration(0.010), "10ms");
        assert_eq!(duration(7_380.0), "2h 3m");
        assert_eq!(duration(352_800.0), "4d 2h");
        assert_eq!(duration(f64::NAN), "0µs");
        assert_eq!(bytes(4 * 1024 * 1024), "4.0 MiB");
        assert_eq!(bytes(3 << 40), "3.0 TiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count_of(1, "batches"), "1 batch");
        assert_eq!(count_of(2, "lines"), "2 lines");
        assert_eq!(count_of(1, "lines"), "1 line");
        assert_eq!(ago(5_000, 6_000), "just now");
    }
}
