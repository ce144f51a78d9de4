//! A real browser for tests: Debian's Chromium, headless, loading loopback pages only. Each
//! run gets a new profile directory and the flags that keep Chromium off the network (no
//! background requests, no component updates, no sync, no QUIC, no proxy, and a host
//! resolver that knows only the loopback names).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// The command that installs the browser (as root; `./scripts/test` runs it when missing).
pub const CHROMIUM_INSTALL: &str = "apt-get install -y chromium";

/// How long one browser run may take.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Headless Chromium.
#[derive(Debug, Clone)]
pub struct Chromium {
    bin: PathBuf,
}

impl Chromium {
    /// Finds `chromium` on `PATH` (Debian installs `/usr/bin/chromium`); fails the test with
    /// the install command when it is missing: these tests run the real browser, never skip.
    pub fn find() -> Chromium {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin")])
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "chromium is not installed: this test loads the page in a real browser; \
                     install it with `{CHROMIUM_INSTALL}` (or run ./scripts/test as root)"
                )
            });
        Chromium { bin }
    }

    /// Loads `url` and returns the DOM as Chromium serialises it once the page has loaded
    /// (`--dump-dom`): what the browser built, not the bytes the server sent.
    pub fn dump_dom(&self, url: &str) -> String {
        let out = self.run(url, &["--window-size=1280,800", "--dump-dom"]);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Loads `url` in a `width`×`height` window and saves a PNG screenshot to `path`;
    /// returns the picture's size as the PNG header gives it.
    pub fn screenshot(&self, url: &str, path: &Path, (width, height): (u32, u32)) -> (u32, u32) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let _ = std::fs::remove_file(path);
        self.run(
            url,
            &[
                &format!("--window-size={width},{height}"),
                "--hide-scrollbars",
                &format!("--screenshot={}", path.display()),
            ],
        );
        let png = std::fs::read(path)
            .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        png_size(&png).unwrap_or_else(|| panic!("{} is not a PNG", path.display()))
    }

    /// Runs the browser on `url` with `extra` flags; its stdout.
    fn run(&self, url: &str, extra: &[&str]) -> Vec<u8> {
        assert!(
            is_loopback_url(url),
            "the browser may only load loopback URLs, not {url}"
        );
        let profile = TempDir::new("chromium");
        let stdout = profile.path().join("stdout");
        let stderr = profile.path().join("stderr");
        let file =
            |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--no-pings",
                "--no-proxy-server",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() < RUN_LIMIT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "chromium did not finish loading {url} within {RUN_LIMIT:?}:\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
            }
        };
        assert!(
            status.success(),
            "chromium failed on {url} ({status}):\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::fs::read(&stdout).unwrap_or_default()
    }
}

/// Whether `url` is an http(s) URL on 127.0.0.0/8, `localhost` or `[::1]`.
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || &png[..8] != SIGNATURE || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls() {
        assert!(is_loopback_url("http://127.0.0.1:9080/"));
        assert!(is_loopback_url("http://127.3.0.1/x"));
        assert!(is_loopback_url("http://localhost:1/?a=b"));
        assert!(is_loopback_url("http://[::1]:80/"));
        assert!(!is_loopback_url("http://10.0.0.1/"));
        assert!(!is_loopback_url("http://example.com/"));
        assert!(!is_loopback_url("http://127.0.0.1@example.com/"));
        assert!(!is_loopback_url("file:///etc/passwd"));
    }

    #[test]
    fn png_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&800u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1280, 800)));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
