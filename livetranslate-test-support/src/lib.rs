//! Test helpers for every crate of the workspace, written once (a dev-dependency only):
//!
//! - [`TempDir`]: a unique directory removed on drop.
//! - [`free_port`], [`http_get`], [`http_post_json`], [`wait_http`], [`wait_ok`],
//!   [`http_client`]: loopback networking (the blocking helpers work inside async tests too).
//! - [`ChildGuard`], [`require`]: child processes that die with the test, programs on PATH.
//! - [`binaries`]: up-to-date example and agent binaries.
//! - [`Prometheus`]: a real Prometheus on a free port, with query helpers.
//! - [`loki::LokiStandIn`]: a protocol-faithful Loki stand-in that counts as Loki stores.
//! - [`Chromium`]: a real headless browser for pages served on loopback (DOM, screenshots);
//!   [`assert_valid_html`]: HTML checked by HTML Tidy.
//! - [`netns::NetNs`]: a network namespace with a veth link to it, whose link can be cut
//!   (a network that silently drops packets, not a refused connection). Root only.
//! - [`eventually`], [`eventually_async`]: bounded polling.
//! - [`exposition`]: samples and values in Prometheus text output.
//! - [`parse_json_strict`]: JSON that refuses a repeated key.
//! - [`promtool_check_metrics`]: `promtool check metrics` on an exposition.
//!
//! Nothing here contacts an address outside 127.0.0.0/8, but the link-local addresses of a
//! network namespace the test creates itself.

pub mod binaries;
pub mod browser;
mod eventually;
pub mod exposition;
pub mod html;
mod json;
pub mod loki;
mod net;
pub mod netns;
mod process;
pub mod prometheus;
mod promtool;
mod temp;

pub use browser::Chromium;
pub use eventually::{eventually, eventually_async, POLL};
pub use html::assert_valid_html;
pub use json::parse_json_strict;
pub use net::{
    free_port, http_client, http_get, http_get_with, http_post_json, urlencode, wait_http, wait_ok,
};
pub use process::{require, ChildGuard, ProcUsage};
pub use prometheus::{value_of, Prometheus};
pub use promtool::promtool_check_metrics;
pub use temp::TempDir;
