//! Joins multi-line entries (stack traces): a line matching the start-of-entry pattern
//! begins a new entry; other lines are appended to the current one, up to a line limit and a
//! time limit.

use std::time::{Duration, Instant};

use regex::Regex;
use serde::Deserialize;

use crate::duration::HumanDuration;

/// `multiline:` settings of an input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regular expression matching the first line of an entry.
    pub first_line: String,
    /// Most lines joined into one entry (default 500).
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    /// Longest time an entry waits for more lines (default 3s).
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

fn default_max_lines() -> usize {
    500
}

fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}

impl PartialEq for MultilineConfig {
    fn eq(&self, other: &Self) -> bool {
        self.first_line == other.first_line
            && self.max_lines == other.max_lines
            && self.max_wait.0 == other.max_wait.0
    }
}

/// A compiled [`MultilineConfig`].
#[derive(Debug, Clone)]
pub struct Multiline {
    first_line: Regex,
    max_lines: usize,
    max_wait: Duration,
}

impl Multiline {
    /// Compiles the pattern.
    pub fn new(config: &MultilineConfig) -> Result<Self, regex::Error> {
        Ok(Multiline {
            first_line: Regex::new(&config.first_line)?,
            max_lines: config.max_lines.max(1),
            max_wait: config.max_wait.0,
        })
    }
}

/// An entry being assembled: its first line's metadata `T` and the joined text.
#[derive(Debug)]
pub struct Pending<T> {
    /// Metadata of the first line.
    pub first: T,
    /// Joined text.
    pub text: String,
    /// Lines joined so far.
    pub lines: usize,
    /// When the first line arrived.
    pub since: Instant,
}

/// Per-file joining state.
#[derive(Debug)]
pub struct Joiner<T> {
    rule: Multiline,
    pending: Option<Pending<T>>,
}

impl<T> Joiner<T> {
    /// A joiner applying `rule`.
    pub fn new(rule: Multiline) -> Self {
        Joiner {
            rule,
            pending: None,
        }
    }

    /// Feeds one line; returns the entry it completed, if any, and whether that entry
    /// includes this line (it does when the line limit was reached; otherwise this line
    /// started the next entry).
    pub fn push(&mut self, line: &str, meta: T) -> Option<(Pending<T>, bool)> {
        let starts = self.rule.first_line.is_match(line);
        match &mut self.pending {
            Some(p) if !starts && p.lines < self.rule.max_lines => {
                p.text.push('\n');
                p.text.push_str(line);
                p.lines += 1;
                if p.lines >= self.rule.max_lines {
                    return self.pending.take().map(|p| (p, true));
                }
                None
            }
            _ => {
                let fresh = Pending {
                    first: meta,
                    text: line.to_owned(),
                    lines: 1,
                    since: Instant::now(),
                };
                if self.rule.max_lines == 1 {
                    // Every line is a whole entry: nothing is ever left pending.
                    return Some((fresh, true));
                }
                self.pending.replace(fresh).map(|p| (p, false))
            }
        }
    }

    /// Takes the pending entry, whatever its age (a file is closing).
    pub fn take(&mut self) -> Option<Pending<T>> {
        self.pending.take()
    }

    /// The pending entry if it has waited longer than the limit.
    pub fn expired(&mut self, now: Instant) -> Option<Pending<T>> {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| now.duration_since(p.since) >= self.rule.max_wait)
        {
            self.pending.take()
        } else {
            None
        }
    }

    /// Whether an entry is pending.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joiner(max_lines: usize, wait_ms: u64) -> Joiner<u32> {
        Joiner::new(
            Multiline::new(&MultilineConfig {
                first_line: r"^\d{4}-".to_owned(),
                max_lines,
                max_wait: HumanDuration(Duration::from_millis(wait_ms)),
            })
            .expect("regex"),
        )
    }

    #[test]
    fn joins_stack_traces() {
        let mut j = joiner(10, 1000);
        assert!(j.push("2026-01-01 ERROR boom", 1).is_none());
        assert!(j.push("  at a()", 2).is_none());
        assert!(j.push("  at b()", 3).is_none());
        let (done, included) = j.push("2026-01-01 INFO next", 4).expect("first entry done");
        assert!(!included);
        assert_eq!(done.text, "2026-01-01 ERROR boom\n  at a()\n  at b()");
        assert_eq!(done.first, 1);
        assert_eq!(done.lines, 3);
    }

    #[test]
    fn max_lines_and_max_wait_flush() {
        let mut j = joiner(2, 0);
        j.push("2026 x", 1);
        let (done, included) = j.push(" cont", 2).expect("max lines");
        assert_eq!(done.lines, 2);
        assert!(included);
        j.push("2026-01 y", 3);
        assert!(j
            .expired(Instant::now() + Duration::from_millis(1))
            .is_some());
        assert!(!j.has_pending());
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        let cfg = MultilineConfig {
            first_line: "([".to_owned(),
            max_lines: 1,
            max_wait: HumanDuration(Duration::from_secs(1)),
        };
        assert!(Multiline::new(&cfg).is_err());
    }
}
