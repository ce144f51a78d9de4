//! A resolved HTTP client configuration: authentication and TLS, secrets already read.

/// TLS settings, files already read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate followed by its key (PEM).
    pub identity_pem: Option<Vec<u8>>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// Whether anything differs from the defaults.
    pub fn is_set(&self) -> bool {
        self.ca_pem.is_some() || self.identity_pem.is_some() || self.insecure_skip_verify
    }
}

/// Authentication and TLS of an HTTP client. `Debug` never shows a password or token.
///
/// ```
/// use livetranslate_push::HttpClientConfig;
/// let c = HttpClientConfig {
///     bearer_token: Some("s3cret".into()),
///     ..Default::default()
/// };
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// User name and password.
    pub basic_auth: Option<(String, String)>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// Another `Authorization` scheme and its credentials (Prometheus' `authorization` with
    /// a `type` other than `Bearer`): sent as `Authorization: <scheme> <credentials>`.
    pub authorization: Option<(String, String)>,
    /// TLS settings.
    pub tls: TlsConfig,
}

impl std::fmt::Debug for HttpClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientConfig")
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<secret>"),
            )
            .field(
                "authorization",
                &self.authorization.as_ref().map(|(s, _)| (s, "<secret>")),
            )
            .field("tls", &self.tls)
            .finish()
    }
}

/// An HTTP client that cannot be built, or a push client setting that is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The CA file holds no usable certificate.
    #[error("tls ca_file: {0}")]
    Ca(String),
    /// The client certificate or key is unusable.
    #[error("tls cert_file/key_file: {0}")]
    Identity(String),
    /// TLS settings were given to a build without TLS support (feature `tls`).
    #[error("TLS settings need the `tls` feature of livetranslate-push")]
    TlsUnsupported,
    /// The endpoint URL is unusable (credentials already removed from the message).
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL, redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// A header name or value is invalid.
    #[error("invalid header {0:?}")]
    Header(String),
    /// The Loki tenant is not a valid `X-Scope-OrgID` value.
    #[error("tenant_id: not a valid HTTP header value")]
    Tenant,
    /// reqwest refused the settings.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl HttpClientConfig {
    /// Builds a client with these TLS settings (authentication is added per request, see
    /// [`HttpClientConfig::authorize`]).
    ///
    /// ```
    /// let client = livetranslate_push::HttpClientConfig::default().client(Some("me/1.0"));
    /// assert!(client.is_ok());
    /// ```
    pub fn client(&self, user_agent: Option<&str>) -> Result<reqwest::Client, ClientError> {
        self.client_builder(user_agent)?
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))
    }

    /// A client builder with the user agent and these TLS settings applied, for callers that
    /// set more (redirects, proxies) before building.
    ///
    /// ```
    /// let builder = livetranslate_push::HttpClientConfig::default().client_builder(None)?;
    /// let client = builder.redirect(reqwest::redirect::Policy::none()).build();
    /// assert!(client.is_ok());
    /// # Ok::<(), livetranslate_push::ClientError>(())
    /// ```
    pub fn client_builder(
        &self,
        user_agent: Option<&str>,
    ) -> Result<reqwest::ClientBuilder, ClientError> {
        let mut b = reqwest::Client::builder();
        if let Some(ua) = user_agent {
            b = b.user_agent(ua);
        }
        self.apply_tls(b)
    }

    #[cfg(feature = "tls")]
    fn apply_tls(
        &self,
        mut b: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, ClientError> {
        b = b.danger_accept_invalid_certs(self.tls.insecure_skip_verify);
        if let Some(pem) = &self.tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Ca(e.to_string()))?;
            if certs.is_empty() {
                return Err(ClientError::Ca("no certificate found".to_owned()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(pem) = &self.tls.identity_pem {
            let id = reqwest::Identity::from_pem(pem)
                .map_err(|e| ClientError::Identity(e.to_string()))?;
            b = b.identity(id);
        }
        Ok(b)
    }

    #[cfg(not(feature = "tls"))]
    fn apply_tls(&self, b: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, ClientError> {
        if self.tls.is_set() {
            return Err(ClientError::TlsUnsupported);
        }
        Ok(b)
    }

    /// Adds the configured authentication to a request (basic wins over bearer, bearer over
    /// another scheme; the settings never allow two).
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some((user, pass)) = &self.basic_auth {
            req.basic_auth(user, Some(pass))
        } else if let Some(token) = &self.bearer_token {
            req.bearer_auth(token)
        } else if let Some((scheme, credentials)) = &self.authorization {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("{scheme} {credentials}"))
                    .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
            value.set_sensitive(true);
            req.header(reqwest::header::AUTHORIZATION, value)
        } else {
            req
        }
    }

    /// Whether requests carry credentials.
    pub fn has_auth(&self) -> bool {
        self.basic_auth.is_some() || self.bearer_token.is_some() || self.authorization.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "tls")]
    #[test]
    fn junk_pem_is_refused() {
        let c = HttpClientConfig {
            tls: TlsConfig {
                ca_pem: Some(b"not a certificate\n".to_vec()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(c.client(None), Err(ClientError::Ca(_))));
        let c = HttpClientConfig {
            tls: TlsConfig {
                identity_pem: Some(b"junk".to_vec()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(c.client(None), Err(ClientError::Identity(_))));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_settings_need_the_feature() {
        let c = HttpClientConfig {
            tls: TlsConfig {
                insecure_skip_verify: true,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(c.client(None).err(), Some(ClientError::TlsUnsupported));
    }
}
