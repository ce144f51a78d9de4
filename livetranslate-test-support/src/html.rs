//! HTML documents checked by a real validator: HTML Tidy (Debian's `tidy`, HTML5-aware), which
//! reports unknown elements and attributes, misnested or unclosed elements, duplicate ids and
//! content not allowed where it stands.

use std::io::Write;
use std::process::{Command, Stdio};

/// The command that installs the validator (as root; `./scripts/test` runs it when missing).
pub const TIDY_INSTALL: &str = "apt-get install -y tidy";

/// Fails the test with Tidy's report unless `html` passes without an error or a warning.
/// Fails with the install command when Tidy is missing: the check is never skipped.
pub fn assert_valid_html(html: &str) {
    let mut child = Command::new("tidy")
        .args([
            "-quiet",
            "-errors",
            "--show-warnings",
            "yes",
            "--gnu-emacs",
            "yes",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run tidy ({e}): this test validates the HTML with HTML Tidy; install it \
                 with `{TIDY_INSTALL}` (or run ./scripts/test as root)"
            )
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(html.as_bytes())
            .unwrap_or_else(|e| panic!("cannot feed tidy: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("tidy: {e}"));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "HTML Tidy finds problems ({}):\n{report}",
        out.status
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_documents_pass_and_broken_ones_fail() {
        let ok = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head>\
                  <body><main><p>a <time datetime=\"2026-01-01T00:00:00.000Z\">now</time></p></main></body></html>\n";
        assert_valid_html(ok);
        let broken = ok.replace("<p>a", "<table><p>a");
        assert!(std::panic::catch_unwind(|| assert_valid_html(&broken)).is_err());
    }
}
