//! Loopback networking: free ports and small HTTP helpers.

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// An async HTTP client with a 5 s timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| panic!("HTTP client: {e}"))
}

/// Runs `fut` to completion on a runtime of its own, on a thread of its own, so the blocking
/// helpers work from plain tests and from inside async tests alike.
pub(crate) fn block_on<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(rt.block_on(fut))
    })
    .join()
    .ok()
    .flatten()
}

/// A blocking GET of a loopback URL, bounded by 10 s: status and body.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    http_get_with(url, &[])
}

/// [`http_get`] with request headers.
pub fn http_get_with(url: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    block_on(async move {
        let mut req = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(10));
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let res = req.send().await.ok()?;
        let status = res.status().as_u16();
        Some((status, res.text().await.ok()?))
    })
    .flatten()
}

/// A blocking POST of a JSON body to a loopback URL: the status.
pub fn http_post_json(url: &str, body: &serde_json::Value) -> Option<u16> {
    let (url, body) = (url.to_owned(), body.to_string());
    block_on(async move {
        let res = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        Some(res.status().as_u16())
    })
    .flatten()
}

/// Waits (blocking, bounded) until `url` answers 2xx; fails the test otherwise.
pub fn wait_http(url: &str, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if matches!(http_get(url), Some((200..=299, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not answer within {limit:?}");
}

/// Polls `url` until it answers 2xx or `within` passes; whether it did.
pub async fn wait_ok(url: &str, within: Duration) -> bool {
    let client = http_client();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `s` percent-encoded for a URL query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
