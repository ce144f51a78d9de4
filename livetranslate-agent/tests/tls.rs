//! HTTPS scrapes: a target whose certificate is signed by a CA given in `tls.ca_file` is
//! scraped; the same target without that CA fails the scrape (up = 0).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Agent;
use livetranslate_test_support::{eventually_async, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A minimal HTTPS server answering every request with `body`; returns its port.
async fn https_target(body: &'static str) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_are_verified_against_the_configured_ca() {
    let dir = TempDir::new("tls");
    let port = https_target("# TYPE tls_ok gauge\ntls_ok 1\n").await;
    let config = dir.path().join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n\
             \x20 - job_name: trusted\n    scheme: https\n    interval: 300ms\n\
             \x20   tls: {{ca_file: '{}'}}\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
             \x20 - job_name: untrusted\n    scheme: https\n    interval: 300ms\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
            fixture("ca.pem")
        ),
    )
    .expect("write config");
    let agent = Agent::start(dir.path(), &["--config", &config.display().to_string()]).await;
    let instance = format!("127.0.0.1:{port}");
    let settled = eventually_async(Duration::from_secs(10), || async {
        let ok = agent
            .metric(
                "livetranslate_agent_target_up",
                &[("job", "trusted"), ("instance", &instance)],
            )
            .await;
        let bad = agent
            .metric(
                "livetranslate_agent_scrape_errors_total",
                &[("job", "untrusted"), ("instance", &instance)],
            )
            .await;
        ok == 1.0 && bad >= 1.0
    })
    .await;
    assert!(settled, "{}", agent.log());
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_target_up",
                &[("job", "untrusted"), ("instance", &instance)]
            )
            .await,
        0.0
    );
    assert_eq!(
        agent
            .metric(
                "livetranslate_agent_scrape_samples_total",
                &[("job", "trusted"), ("instance", &instance)]
            )
            .await
            .min(1.0),
        1.0
    );
}
