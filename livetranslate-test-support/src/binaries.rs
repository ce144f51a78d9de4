//! Binaries of the workspace, brought up to date before a test runs them (a test run of one
//! target does not rebuild the others, and a stale binary would test old code).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The target profile directory the running test binary was built into
/// (`<target>/<profile>`; test binaries live in its `deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("no target profile dir above {}", exe.display()))
}

/// `cargo build --quiet <args>` in the workspace root; fails the test if it fails.
pub fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The profile of this test binary (`cargo test --release` runs release binaries).
    let profile: &[&str] = if cfg!(debug_assertions) {
        &[]
    } else {
        &["--release"]
    };
    let status = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .args(profile)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo build: {e}"));
    assert!(status.success(), "cargo build {args:?} failed");
}

/// The binary of an example of the root package, up to date.
pub fn example(name: &str) -> PathBuf {
    cargo_build(&["-p", "livetranslate", "--example", name]);
    let bin = target_dir().join("examples").join(name);
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// The agent binary, up to date.
pub fn agent_binary() -> PathBuf {
    cargo_build(&["-p", "livetranslate-agent", "--bin", "livetranslate-agent"]);
    let bin = target_dir().join("livetranslate-agent");
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// Starts an example service on a free port (`PORT`) with extra environment variables and
/// its stdout going to `stdout`; does not wait for it.
pub fn spawn_example(
    name: &str,
    env: &[(&str, &str)],
    stdout: std::process::Stdio,
) -> (crate::ChildGuard, u16) {
    let port = crate::free_port();
    let mut cmd = Command::new(example(name));
    cmd.env("PORT", port.to_string())
        .env_remove("LOG_FILE")
        .env_remove("RUST_LOG")
        .stdout(stdout)
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (crate::ChildGuard::spawn(&mut cmd, name), port)
}

/// Starts an example service on a free port with extra environment variables and waits
/// (up to 30 s) until `/api/health/live` answers.
pub fn start_example(name: &str, env: &[(&str, &str)]) -> (crate::ChildGuard, u16) {
    let (guard, port) = spawn_example(name, env, std::process::Stdio::null());
    crate::wait_http(
        &format!("http://127.0.0.1:{port}/api/health/live"),
        std::time::Duration::from_secs(30),
    );
    (guard, port)
}
