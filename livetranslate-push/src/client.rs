//! The push client: one endpoint, its fixed headers and credentials, one attempt at a time or
//! the whole retry loop.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::backoff::{backoff, RetryPolicy};
use crate::http_client::{ClientError, HttpClientConfig};
use crate::redact::redact_url;
use crate::response::Attempt;

/// Builds a [`PushClient`].
#[derive(Debug, Clone)]
pub struct PushClientBuilder {
    url: String,
    http: HttpClientConfig,
    headers: HeaderMap,
    user_agent: Option<String>,
    timeout: Option<Duration>,
    error: Option<ClientError>,
}

/// POSTs bodies to one endpoint. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct PushClient {
    http: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    auth: HttpClientConfig,
    timeout: Option<Duration>,
}

/// What [`PushClient::push`] reports while it works (for metrics and logs).
#[derive(Debug)]
pub enum PushEvent<'a> {
    /// An attempt finished.
    Attempted {
        /// How it went.
        attempt: &'a Attempt,
        /// How long the request took.
        elapsed: Duration,
    },
    /// The body will be sent again after `delay`.
    Retrying {
        /// Retries so far, this one included.
        retries: u32,
        /// The wait (the server's `Retry-After`, or the jittered backoff).
        delay: Duration,
        /// Why: the failed attempt, described.
        reason: &'a str,
    },
}

/// What became of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The server accepted it.
    Sent,
    /// The server refused it for good.
    Rejected {
        /// The status.
        status: StatusCode,
        /// The server's reason.
        reason: String,
    },
    /// [`RetryPolicy::max_retries`] ran out.
    GaveUp {
        /// Retries made.
        retries: u32,
        /// The last failure.
        reason: String,
    },
    /// The cancellation future completed before the body was accepted.
    Cancelled,
}

impl PushClientBuilder {
    /// Authentication and TLS.
    pub fn http(mut self, http: HttpClientConfig) -> Self {
        self.http = http;
        self
    }

    /// A header sent with every request (content type, encoding, protocol version, …).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ClientError> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::Header(name.to_owned()))?;
        let v = HeaderValue::from_str(value).map_err(|_| ClientError::Header(name.to_owned()))?;
        self.headers.insert(n, v);
        Ok(self)
    }

    /// Loki's tenant (`X-Scope-OrgID`), checked with [`crate::loki::tenant_header`].
    pub fn tenant_id(mut self, tenant: Option<&str>) -> Self {
        if let Some(t) = tenant {
            match crate::loki::tenant_header(t) {
                Ok(v) => {
                    self.headers.insert(crate::loki::TENANT_HEADER, v);
                }
                Err(e) => self.error = Some(e),
            }
        }
        self
    }

    /// The `User-Agent`.
    pub fn user_agent(mut self, ua: &str) -> Self {
        self.user_agent = Some(ua.to_owned());
        self
    }

    /// A bound on each request (connect, send, answer).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The client. Fails on an unusable URL, header, tenant or TLS setting.
    pub fn build(self) -> Result<PushClient, ClientError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let url = Url::parse(self.url.trim()).map_err(|e| ClientError::Url {
            url: redact_url(&self.url),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(ClientError::Url {
                url: redact_url(&self.url),
                reason: "must be an http or https URL with a host".to_owned(),
            });
        }
        let http = self.http.client(self.user_agent.as_deref())?;
        Ok(PushClient {
            http,
            url,
            headers: self.headers,
            auth: self.http,
            timeout: self.timeout,
        })
    }
}

impl PushClient {
    /// A builder for `url` (credentials belong in [`PushClientBuilder::http`], not the URL).
    pub fn builder(url: impl Into<String>) -> PushClientBuilder {
        PushClientBuilder {
            url: url.into(),
            http: HttpClientConfig::default(),
            headers: HeaderMap::new(),
            user_agent: None,
            timeout: None,
            error: None,
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The same client (sharing its connection pool) sending Loki's tenant `tenant`
    /// instead of the configured one: Promtail's `tenant` pipeline stage routes entries by
    /// tenant this way.
    ///
    /// ```
    /// use livetranslate_push::PushClient;
    /// let c = PushClient::builder("http://127.0.0.1:3100/loki/api/v1/push").build().unwrap();
    /// assert!(c.with_tenant_id("team-b").is_ok());
    /// assert!(c.with_tenant_id("bad\ntenant").is_err());
    /// ```
    pub fn with_tenant_id(&self, tenant: &str) -> Result<PushClient, ClientError> {
        let value = crate::loki::tenant_header(tenant)?;
        let mut c = self.clone();
        c.headers.insert(crate::loki::TENANT_HEADER, value);
        Ok(c)
    }

    /// One attempt, classified (`Retry-After` capped at `retry_after_cap`).
    pub async fn send(&self, body: Bytes, retry_after_cap: Duration) -> Attempt {
        let mut req = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body);
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        Attempt::classify(self.auth.authorize(req).send().await, retry_after_cap).await
    }

    /// Sends `body` until the server accepts or rejects it, retries run out, or `cancel`
    /// completes (checked before every wait, so an already-completed `cancel` allows exactly
    /// one attempt). Retries wait for the server's `Retry-After` when it sent one (up to
    /// [`RetryPolicy::retry_after_cap`]), otherwise for the jittered exponential backoff.
    /// `on_event` sees every attempt and every retry.
    pub async fn push<C, F>(
        &self,
        body: Bytes,
        policy: &RetryPolicy,
        cancel: C,
        mut on_event: F,
    ) -> PushOutcome
    where
        C: Future,
        F: FnMut(PushEvent<'_>),
    {
        tokio::pin!(cancel);
        let mut retries = 0u32;
        loop {
            let started = Instant::now();
            let attempt = self.send(body.clone(), policy.retry_after_cap).await;
            on_event(PushEvent::Attempted {
                attempt: &attempt,
                elapsed: started.elapsed(),
            });
            let retry_after = match attempt {
                Attempt::Sent { .. } => return PushOutcome::Sent,
                Attempt::Rejected { status, reason } => {
                    return PushOutcome::Rejected { status, reason }
                }
                Attempt::Retry { retry_after, .. } => retry_after,
            };
            let reason = attempt.describe();
            if policy.max_retries.is_some_and(|max| retries >= max) {
                return PushOutcome::GaveUp { retries, reason };
            }
            let delay = retry_after
                .unwrap_or_else(|| backoff(retries, policy.min_backoff, policy.max_backoff));
            retries += 1;
            on_event(PushEvent::Retrying {
                retries,
                delay,
                reason: &reason,
            });
            tokio::select! {
                biased;
                _ = &mut cancel => return PushOutcome::Cancelled,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback HTTP server answering the scripted raw responses in turn (the last one
    /// forever) and recording every request head.
    async fn server(script: Vec<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let n = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let i = n.fetch_add(1, Ordering::SeqCst).min(script.len() - 1);
                let answer = script[i];
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let mut got = Vec::new();
                    loop {
                        let Ok(k) = s.read(&mut buf).await else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..k]);
                        let text = String::from_utf8_lossy(&got).to_string();
                        if let Some(head_end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .and_then(|v| v.trim().parse::<usize>().ok())
                                })
                                .unwrap_or(0);
                            if got.len() >= head_end + 4 + len {
                                seen.lock().expect("lock").push(text[..head_end].to_owned());
                                break;
                            }
                        }
                    }
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (format!("http://{addr}/push"), seen)
    }

    const OK: &str = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
    const THROTTLED: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\ncontent-length: 29\r\nconnection: close\r\n\r\nIngestion rate limit exceeded";
    const DOWN: &str =
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops";
    const BAD: &str = "HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\nconnection: close\r\n\r\nentry too far behind";

    fn policy(max_retries: Option<u32>) -> RetryPolicy {
        RetryPolicy {
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_retries,
            retry_after_cap: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn retries_until_sent_with_headers_tenant_and_auth() {
        let (url, seen) = server(vec![THROTTLED, DOWN, OK]).await;
        let client = PushClient::builder(url)
            .header("content-type", "application/x-protobuf")
            .and_then(|b| b.header("content-encoding", "snappy"))
            .map(|b| {
                b.tenant_id(Some("team-a"))
                    .user_agent("test/1")
                    .timeout(Duration::from_secs(5))
                    .http(HttpClientConfig {
                        bearer_token: Some("tok".into()),
                        ..Default::default()
                    })
            })
            .and_then(PushClientBuilder::build)
            .expect("client");
        let mut events = Vec::new();
        let out = client
            .push(
                Bytes::from_static(b"body"),
                &policy(None),
                std::future::pending::<()>(),
                |e| {
                    events.push(match e {
                        PushEvent::Attempted { attempt, .. } => attempt.describe(),
                        PushEvent::Retrying { retries, .. } => format!("retry {retries}"),
                    })
                },
            )
            .await;
        assert_eq!(out, PushOutcome::Sent);
        assert_eq!(
            events,
            [
                "429 Too Many Requests: Ingestion rate limit exceeded",
                "retry 1",
                "500 Internal Server Error: oops",
                "retry 2",
                "204 No Content"
            ]
        );
        let heads = seen.lock().expect("lock").clone();
        assert_eq!(heads.len(), 3);
        for h in &heads {
            let h = h.to_ascii_lowercase();
            assert!(h.contains("x-scope-orgid: team-a"), "{h}");
            assert!(h.contains("authorization: bearer tok"), "{h}");
            assert!(h.contains("content-encoding: snappy"), "{h}");
            assert!(h.contains("user-agent: test/1"), "{h}");
        }
    }

    #[tokio::test]
    async fn a_rejection_is_final_and_carries_the_reason() {
        let (url, seen) = server(vec![BAD]).await;
        let client = PushClient::builder(url).build().expect("client");
        let out = client
            .push(
                Bytes::new(),
                &policy(None),
                std::future::pending::<()>(),
                |_| {},
            )
            .await;
        assert_eq!(
            out,
            PushOutcome::Rejected {
                status: StatusCode::BAD_REQUEST,
                reason: "entry too far behind".into()
            }
        );
        assert_eq!(seen.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn retries_run_out_and_cancellation_stops_the_loop() {
        let (url, seen) = server(vec![DOWN]).await;
        let client = PushClient::builder(url).build().expect("client");
        let out = client
            .push(
                Bytes::new(),
                &policy(Some(2)),
                std::future::pending::<()>(),
                |_| {},
            )
            .await;
        assert!(
            matches!(out, PushOutcome::GaveUp { retries: 2, ref reason } if reason.contains("oops")),
            "{out:?}"
        );
        assert_eq!(seen.lock().expect("lock").len(), 3);
        let out = client
            .push(Bytes::new(), &policy(None), std::future::ready(()), |_| {})
            .await;
        assert_eq!(out, PushOutcome::Cancelled);
        assert_eq!(seen.lock().expect("lock").len(), 4, "exactly one attempt");
    }

    #[tokio::test]
    async fn connection_errors_are_retried() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let client = PushClient::builder(format!("http://127.0.0.1:{port}/push"))
            .build()
            .expect("client");
        let mut reasons = Vec::new();
        let out = client
            .push(
                Bytes::new(),
                &policy(Some(1)),
                std::future::pending::<()>(),
                |e| {
                    if let PushEvent::Retrying { reason, .. } = e {
                        reasons.push(reason.to_owned());
                    }
                },
            )
            .await;
        assert!(
            matches!(out, PushOutcome::GaveUp { retries: 1, .. }),
            "{out:?}"
        );
        assert_eq!(reasons.len(), 1);
        assert!(!reasons[0].is_empty());
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            PushClient::builder("http://x/")
                .tenant_id(Some("a\nb"))
                .build(),
            Err(ClientError::Tenant)
        ));
        assert!(matches!(
            PushClient::builder("ftp://u:hunter2@x/").build(),
            Err(ClientError::Url { url, .. }) if !url.contains("hunter2")
        ));
        assert!(PushClient::builder("http://x/")
            .header("bad header", "v")
            .is_err());
    }
}
