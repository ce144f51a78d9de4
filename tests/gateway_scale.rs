//! The gateway example at the design's WebSocket limit: 10,000 idle connections open on
//! loopback, the gauge at 10,000, connection 10,001 refused (and not counted as a session),
//! everything back to 0 after closing; prints the gateway's resident memory per connection.
//!
//! `cargo test --test gateway_scale -- --nocapture` prints the figures (BENCHMARKS.md).

use std::time::{Duration, Instant};

use livetranslate_test_support::binaries::start_example;
use livetranslate_test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 10_000;
/// Handshakes in flight at once (below the listen backlog).
const CONCURRENCY: usize = 256;
/// What an idle connection may cost the gateway at most.
const MAX_BYTES_PER_CONNECTION: f64 = 32.0 * 1024.0;

/// Raises this process's open-file limit to `need` (the gateway started from it inherits
/// it): 10,000 client sockets here, 10,000 server sockets there, each plus slack.
fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim),
            0,
            "getrlimit"
        );
        if lim.rlim_cur >= need {
            return;
        }
        assert!(
            lim.rlim_max >= need,
            "the hard open-file limit is {}; this test needs {need} (ulimit -Hn)",
            lim.rlim_max
        );
        lim.rlim_cur = need;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
    }
}

/// A WebSocket handshake on a raw socket: the response's status code, and the socket (kept
/// open, idle, by the caller).
async fn handshake(port: u16) -> std::io::Result<(u16, TcpStream)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let code = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, s))
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = http_get(&format!("http://127.0.0.1:{port}/api/metrics"))?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_metric(port: u16, name: &str, want: f64) {
    let got = eventually(Duration::from_secs(60), || {
        (metric(port, name) == Some(want)).then_some(())
    });
    assert!(
        got.is_some(),
        "{name} is {:?}, expected {want}",
        metric(port, name)
    );
}

#[test]
fn ten_thousand_idle_websockets_fit_and_the_next_one_is_refused() {
    raise_fd_limit(LIMIT as u64 + 1_024);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (gateway, port) = start_example(
        "orchestration-service",
        &[
            ("WEBSOCKET_MAX_CONNECTIONS", &LIMIT.to_string()),
            ("AUDIO_SERVICE_URL", &dead),
            ("TRANSLATION_SERVICE_URL", &dead),
            ("RUST_LOG", "warn"),
        ],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Warm up (threads, allocator arenas, the metrics' first series), then the baseline.
    rt.block_on(async {
        for _ in 0..20 {
            let (code, s) = handshake(port).await.expect("warm-up handshake");
            assert_eq!(code, 101);
            drop(s);
        }
    });
    wait_metric(port, "livetranslate_websocket_connections", 0.0);
    let before_kib = gateway.rss_kib();

    let start = Instant::now();
    let sockets = rt.block_on(async {
        let mut sockets = Vec::with_capacity(LIMIT);
        let mut pending = tokio::task::JoinSet::new();
        let mut started = 0;
        while sockets.len() < LIMIT {
            while started < LIMIT && pending.len() < CONCURRENCY {
                pending.spawn(handshake(port));
                started += 1;
            }
            let (code, s) = pending
                .join_next()
                .await
                .expect("a handshake in flight")
                .expect("task")
                .expect("handshake");
            assert_eq!(code, 101, "connection {} refused", sockets.len() + 1);
            sockets.push(s);
        }
        sockets
    });
    let opened_in = start.elapsed();
    wait_metric(port, "livetranslate_websocket_connections", LIMIT as f64);
    wait_metric(port, "livetranslate_sessions_active", LIMIT as f64);
    // Let the sessions settle into their idle state before measuring.
    std::thread::sleep(Duration::from_secs(1));
    let open_kib = gateway.rss_kib();
    let per_connection = (open_kib.saturating_sub(before_kib) * 1024) as f64 / LIMIT as f64;
    println!(
        "gateway RSS: {:.1} MiB before, {:.1} MiB with {LIMIT} idle WebSockets open: \
         {:.1} KiB per connection (opened in {:.1} s)",
        before_kib as f64 / 1024.0,
        open_kib as f64 / 1024.0,
        per_connection / 1024.0,
        opened_in.as_secs_f64()
    );

    // Connection 10,001 is refused, and is no session.
    let (code, _refused) = rt.block_on(handshake(port)).expect("handshake 10,001");
    assert_eq!(code, 503, "connection {} must be refused", LIMIT + 1);
    assert_eq!(
        metric(port, "livetranslate_websocket_connections_rejected_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(port, "livetranslate_sessions_created_total"),
        Some(LIMIT as f64 + 20.0),
        "a refused connection is not a created session"
    );
    assert_eq!(
        metric(port, "livetranslate_websocket_connections"),
        Some(LIMIT as f64)
    );

    // Every connection closed: everything back to 0.
    drop(sockets);
    wait_metric(port, "livetranslate_websocket_connections", 0.0);
    wait_metric(port, "livetranslate_sessions_active", 0.0);
    assert!(
        per_connection < MAX_BYTES_PER_CONNECTION,
        "an idle connection costs {:.1} KiB (at most {} KiB)",
        per_connection / 1024.0,
        MAX_BYTES_PER_CONNECTION / 1024.0
    );
}
