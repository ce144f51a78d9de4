//! Process metrics (`process_*`) read from `/proc` at scrape time, as the Prometheus client
//! libraries export them.

use super::encode::{self, Format, Sample};
use super::Collect;

/// Family names this collector writes.
pub(crate) const NAMES: &[&str] = &[
    "process_cpu_seconds_total",
    "process_max_fds",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
];

/// Values read from `/proc/self`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time_seconds: f64,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

/// Parses `/proc/self/stat`; `ticks` is `_SC_CLK_TCK`, `page` the page size and `boot_time`
/// the `btime` line of `/proc/stat`.
pub(crate) fn parse_stat(
    stat: &str,
    ticks: f64,
    page: f64,
    boot_time: f64,
) -> Option<ProcessStats> {
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    let utime = field(14)?;
    let stime = field(15)?;
    let start_ticks = field(22)?;
    let vsize = field(23)?;
    let rss_pages = field(24)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / ticks,
        resident_bytes: rss_pages * page,
        virtual_bytes: vsize,
        start_time_seconds: boot_time + start_ticks / ticks,
        open_fds: None,
        max_fds: None,
    })
}

fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(f64::INFINITY);
    }
    soft.parse().ok()
}

#[cfg(target_os = "linux")]
fn read_stats() -> Option<ProcessStats> {
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as f64,
        )
    };
    if ticks <= 0.0 || page <= 0.0 {
        return None;
    }
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("btime ")
                .and_then(|v| v.trim().parse::<f64>().ok())
        })?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut stats = parse_stat(&stat, ticks, page, boot_time)?;
    stats.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count().saturating_sub(1) as f64); // minus the directory handle itself
    stats.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_fds(&l));
    Some(stats)
}

#[cfg(not(target_os = "linux"))]
fn read_stats() -> Option<ProcessStats> {
    None
}

/// Writes the `process_*` families (nothing where `/proc` is unavailable).
pub(crate) struct ProcessCollector;

impl Collect for ProcessCollector {
    fn encode(&self, const_labels: &str, out: &mut String) {
        self.encode_as(Format::Text, const_labels, out);
    }

    fn encode_as(&self, format: Format, const_labels: &str, out: &mut String) {
        let Some(s) = read_stats() else { return };
        let labels = [const_labels];
        let mut family = |name: &str, help: &str, kind: &str, v: f64| {
            let unit = ["seconds", "bytes"]
                .into_iter()
                .find(|u| encode::openmetrics_family_name(name, kind).ends_with(u));
            encode::write_family_header(out, format, name, help, kind, unit);
            encode::write_sample(out, name, "", &labels, Sample::Float(v));
        };
        family(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            s.cpu_seconds,
        );
        if let Some(max) = s.max_fds {
            family(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                "gauge",
                max,
            );
        }
        if let Some(open) = s.open_fds {
            family(
                "process_open_fds",
                "Number of open file descriptors.",
                "gauge",
                open,
            );
        }
        family(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            s.resident_bytes,
        );
        family(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            s.start_time_seconds,
        );
        family(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
            s.virtual_bytes,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    3 0 5000 104857600 2560 18446744073709551615";
        let s = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).expect("parse");
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_bytes, 2560.0 * 4096.0);
        assert_eq!(s.virtual_bytes, 104857600.0);
        assert_eq!(s.start_time_seconds, 1_700_000_050.0);
    }

    #[test]
    fn parses_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let s = read_stats().expect("proc");
        assert!(s.resident_bytes > 0.0);
        assert!(s.open_fds.unwrap_or(0.0) >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0);
    }
}
