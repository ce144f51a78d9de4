//! The HTTP server behind [`Telemetry::serve`](crate::Telemetry::serve): one accept loop per
//! listener (the main one and, if configured, the management one), HTTP/1.1 connections
//! with upgrades (WebSockets), a header-read timeout, and the shutdown lifecycle:
//!
//! 1. SIGTERM: `/api/health/ready` answers 503 at once, and everything keeps being served for
//!    the drain period, so that the load balancer (a Kubernetes Service's endpoints) stops
//!    sending new requests before the listener closes. SIGINT (Ctrl-C) skips the drain, and a
//!    second signal cuts it short.
//! 2. The listeners close; every connection finishes the request in progress (keep-alive
//!    connections close after it), bounded by the shutdown timeout; then the rest are closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::config::ServerConfig;
use crate::health::Health;
use crate::Error;

/// A bound listener and what it serves.
pub(crate) struct Listening {
    /// `main` or `management` (the `listener` field of the `listening` log line).
    pub(crate) name: &'static str,
    /// The bound address (the real port when 0 was asked for).
    pub(crate) addr: SocketAddr,
    listener: TcpListener,
    router: Router,
}

/// Binds `addr` for `router`.
pub(crate) async fn bind(
    name: &'static str,
    addr: SocketAddr,
    router: Router,
) -> Result<Listening, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    Ok(Listening {
        name,
        addr,
        listener,
        router,
    })
}

/// What the connections are told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request in progress, then close.
    Closing,
    /// Close now.
    Abort,
}

/// The signals that stop `serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Terminate,
    Interrupt,
}

impl Signal {
    fn as_str(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        }
    }
}

/// SIGTERM and SIGINT, listened to from the start of `serve` (a signal arriving before its
/// handler is installed would kill the process without a clean shutdown).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.term) => Signal::Terminate,
                _ = recv(&mut self.int) => Signal::Interrupt,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

/// Serves every listener until a shutdown signal, running the shutdown lifecycle described
/// in the module documentation.
pub(crate) async fn serve(
    listeners: Vec<Listening>,
    config: &ServerConfig,
    health: Arc<Health>,
) -> Result<(), Error> {
    let mut signals = Signals::install();
    let drain = config.drain_period;
    run(listeners, config, async move {
        let signal = signals.next().await;
        health.begin_shutdown();
        if signal == Signal::Terminate && !drain.is_zero() {
            tracing::info!(
                signal = signal.as_str(),
                drain_seconds = drain.as_secs_f64(),
                "shutdown: readiness now answers 503; serving on while load balancers drain"
            );
            tokio::select! {
                _ = tokio::time::sleep(drain) => {}
                s = signals.next() => {
                    tracing::warn!(signal = s.as_str(), "second signal: drain cut short");
                }
            }
        } else {
            tracing::info!(
                signal = signal.as_str(),
                "shutdown: readiness now answers 503"
            );
        }
    })
    .await;
    Ok(())
}

/// Serves every listener until `stop` resolves, then closes them gracefully.
pub(crate) async fn run(
    listeners: Vec<Listening>,
    config: &ServerConfig,
    stop: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    let (phase_tx, phase) = watch::channel(Phase::Serving);
    // Every connection task holds a sender: `recv` answers `None` once they are all gone.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let accept_loops: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            tracing::info!(addr = %l.addr, listener = l.name, "listening");
            tokio::spawn(accept_loop(l, http.clone(), phase.clone(), open_tx.clone()))
        })
        .collect();
    drop(open_tx);
    stop.await;
    phase_tx.send_replace(Phase::Closing);
    for l in accept_loops {
        let _ = l.await;
    }
    if tokio::time::timeout(config.shutdown_timeout, open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_seconds = config.shutdown_timeout.as_secs_f64(),
            "requests still in progress at the shutdown timeout: closing their connections"
        );
        phase_tx.send_replace(Phase::Abort);
        let _ = tokio::time::timeout(Duration::from_secs(1), open_rx.recv()).await;
    }
}

async fn accept_loop(
    l: Listening,
    http: Arc<http1::Builder>,
    mut phase: watch::Receiver<Phase>,
    open: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            r = l.listener.accept() => r,
            _ = phase.wait_for(|p| *p != Phase::Serving) => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(connection(
                    stream,
                    l.router.clone(),
                    http.clone(),
                    phase.clone(),
                    open.clone(),
                ));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::error!(error = %e, listener = l.name, "cannot accept connections");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = phase.wait_for(|p| *p != Phase::Serving) => return,
                }
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn connection(
    stream: TcpStream,
    router: Router,
    http: Arc<http1::Builder>,
    mut phase: watch::Receiver<Phase>,
    _open: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    let conn = http
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
        .with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        if !closing && *phase.borrow_and_update() == Phase::Closing {
            closing = true;
            conn.as_mut().graceful_shutdown();
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                return;
            }
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Abort {
                    return;
                }
            }
        }
    }
}
