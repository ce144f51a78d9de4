//! Child processes and the programs they run.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What a process uses, from `/proc/<pid>/stat` and `/proc/<pid>/status` (Linux).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcUsage {
    /// User + system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size now (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

impl ProcUsage {
    /// The usage of process `pid`; `None` when it is gone or `/proc` does not say.
    ///
    /// ```
    /// let me = livetranslate_test_support::ProcUsage::of(std::process::id()).unwrap();
    /// assert!(me.peak_rss_bytes >= me.rss_bytes && me.rss_bytes > 0);
    /// ```
    pub fn of(pid: u32) -> Option<ProcUsage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which may hold spaces and parentheses.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
        let ticks = 100.0; // USER_HZ on Linux
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        Some(ProcUsage {
            cpu_seconds: (utime + stime) / ticks,
            rss_bytes: kib("VmRSS:")? * 1024,
            peak_rss_bytes: kib("VmHWM:")? * 1024,
        })
    }
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    /// The process, until it is stopped.
    pub child: Option<Child>,
    /// What it is, for messages.
    pub name: String,
}

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child, name: &str) -> Self {
        ChildGuard {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// Spawns `cmd`, failing the test with a clear message if it cannot start.
    pub fn spawn(cmd: &mut Command, name: &str) -> Self {
        match cmd.spawn() {
            Ok(c) => ChildGuard::new(c, name),
            Err(e) => panic!("cannot start {name}: {e}"),
        }
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `grace`; the exit status
    /// when it exited on its own.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `signal` (`libc::SIGTERM`, …) to the process.
    pub fn signal(&self, signal: i32) {
        let Some(id) = self.id() else {
            panic!("{} is not running", self.name);
        };
        let pid = libc::pid_t::try_from(id).unwrap_or_else(|e| panic!("pid {id}: {e}"));
        // SAFETY: kill(2) with a pid this test started and has not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits (bounded) until the process exits: its status, `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process's resident set size in KiB (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let Some(id) = self.id() else {
            panic!("{} is not running", self.name);
        };
        ProcUsage::of(id)
            .unwrap_or_else(|| panic!("no usage in /proc/{id}"))
            .rss_bytes
            / 1024
    }

    /// The exit status if it has exited (without waiting).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of `program` on PATH; fails the test with the command that installs it when it
/// is missing (`./scripts/test` installs them as root).
pub fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: these tests run the real thing; install it with \
                 `apt-get install -y prometheus prometheus-alertmanager` (or run ./scripts/test as root)"
            )
        })
}
