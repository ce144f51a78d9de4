//! Debian's `promtool`, run on text the tests produce.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::process::require;

/// What `promtool check metrics` prints for `exposition` (stdout and stderr together); empty
/// when the text is clean.
///
/// ```no_run
/// let lint = livetranslate_test_support::promtool_check_metrics("# TYPE x counter\nx_total 1\n");
/// assert!(lint.trim().is_empty(), "{lint}");
/// ```
pub fn promtool_check_metrics(exposition: &str) -> String {
    let mut child = Command::new(require("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(exposition.as_bytes())
            .unwrap_or_else(|e| panic!("promtool stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool output: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
