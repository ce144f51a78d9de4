//! HTTP client settings as a configuration file writes them (Prometheus' and Promtail's
//! `basic_auth`, `bearer_token`, `bearer_token_file`, `tls`), and their resolution: secret
//! files read, mutually exclusive choices checked, TLS material loaded and tried.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::http_client::{ClientError, HttpClientConfig};

/// `basic_auth:`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSettings {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<String>,
    /// File holding the password (trailing newline stripped).
    pub password_file: Option<PathBuf>,
}

/// `authorization:` (Prometheus' form: `type` defaults to `Bearer`; the credentials inline or
/// in a file).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationSettings {
    /// The scheme (`Bearer` when not given).
    #[serde(rename = "type")]
    pub scheme: Option<String>,
    /// The credentials.
    pub credentials: Option<String>,
    /// File holding the credentials (trailing newline stripped).
    pub credentials_file: Option<PathBuf>,
}

impl AuthorizationSettings {
    /// Reads the credentials and adds them to `config`, refusing what Prometheus refuses: a
    /// `Basic` type (that is `basic_auth`), both `credentials` and `credentials_file`, and
    /// another kind of authentication already set. Errors name the key relative to the block
    /// holding `authorization`.
    ///
    /// ```
    /// use livetranslate_push::{AuthorizationSettings, HttpClientConfig};
    /// let mut c = HttpClientConfig::default();
    /// AuthorizationSettings { scheme: Some("Token".into()), credentials: Some("t".into()), ..Default::default() }
    ///     .apply_to(&mut c)
    ///     .unwrap();
    /// assert_eq!(c.authorization, Some(("Token".to_owned(), "t".to_owned())));
    /// let mut c = HttpClientConfig::default();
    /// AuthorizationSettings { credentials: Some("t".into()), ..Default::default() }.apply_to(&mut c).unwrap();
    /// assert_eq!(c.bearer_token.as_deref(), Some("t"));
    /// ```
    pub fn apply_to(self, config: &mut HttpClientConfig) -> Result<(), SettingsError> {
        if config.has_auth() {
            return Err(err(
                "authorization",
                "authorization cannot be combined with basic_auth or bearer_token(_file)",
            ));
        }
        let scheme = self
            .scheme
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Bearer".to_owned());
        if scheme.eq_ignore_ascii_case("basic") {
            return Err(err(
                "authorization.type",
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            ));
        }
        if scheme.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "authorization.type",
                "not a valid authorization scheme",
            ));
        }
        let credentials = match (self.credentials, self.credentials_file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "authorization.credentials_file",
                    "set authorization credentials or credentials_file, not both",
                ))
            }
            (Some(c), None) => c,
            (None, Some(f)) => read_secret("authorization.credentials_file", &f)?,
            (None, None) => String::new(),
        };
        if reqwest::header::HeaderValue::from_str(&credentials).is_err() {
            return Err(err(
                "authorization.credentials",
                "the credentials are not a valid HTTP header value",
            ));
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            config.bearer_token = Some(credentials);
        } else {
            config.authorization = Some((scheme, credentials));
        }
        Ok(())
    }
}

/// `tls:`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the CA certificates to trust (in addition to the built-in roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM client key.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The HTTP client settings of one endpoint, as written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HttpClientSettings {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuthSettings>,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS.
    pub tls: Option<TlsSettings>,
}

/// A setting that cannot be used. `key` is the setting's path relative to the block the
/// settings were written in (`tls.ca_file`, `basic_auth.password_file`, `bearer_token`), so a
/// caller can prefix its own path and point at the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingsError {
    /// The setting, relative to its block.
    pub key: &'static str,
    /// What is wrong (names the file when one could not be read).
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        key,
        message: message.into(),
    }
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, SettingsError> {
    std::fs::read(path).map_err(|e| err(key, format!("{}: {e}", path.display())))
}

fn read_secret(key: &'static str, path: &Path) -> Result<String, SettingsError> {
    let bytes = read_file(key, path)?;
    let s =
        String::from_utf8(bytes).map_err(|_| err(key, format!("{}: not UTF-8", path.display())))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

impl HttpClientSettings {
    /// Reads the secret and TLS files and checks the combination; the TLS material is tried
    /// by building a client, so a bad certificate fails here rather than at the first request.
    ///
    /// ```
    /// use livetranslate_push::{BasicAuthSettings, HttpClientSettings};
    /// let both = HttpClientSettings {
    ///     basic_auth: Some(BasicAuthSettings { username: "u".into(), ..Default::default() }),
    ///     bearer_token: Some("t".into()),
    ///     ..Default::default()
    /// };
    /// let e = both.resolve().unwrap_err();
    /// assert_eq!(e.key, "basic_auth");
    /// ```
    pub fn resolve(self) -> Result<HttpClientConfig, SettingsError> {
        let bearer_token = match (self.bearer_token, self.bearer_token_file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "bearer_token_file",
                    "set bearer_token or bearer_token_file, not both",
                ))
            }
            (Some(t), None) => Some(t),
            (None, Some(f)) => Some(read_secret("bearer_token_file", &f)?),
            (None, None) => None,
        };
        let mut out = HttpClientConfig {
            bearer_token,
            ..Default::default()
        };
        if let Some(b) = self.basic_auth {
            if out.bearer_token.is_some() {
                return Err(err(
                    "basic_auth",
                    "basic_auth and a bearer token are mutually exclusive",
                ));
            }
            let pass = match (b.password, b.password_file) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        "basic_auth.password_file",
                        "set basic_auth password or password_file, not both",
                    ))
                }
                (Some(p), None) => p,
                (None, Some(f)) => read_secret("basic_auth.password_file", &f)?,
                (None, None) => String::new(),
            };
            out.basic_auth = Some((b.username, pass));
        }
        if let Some(t) = self.tls {
            out.tls.insecure_skip_verify = t.insecure_skip_verify;
            if let Some(ca) = t.ca_file {
                out.tls.ca_pem = Some(read_file("tls.ca_file", &ca)?);
            }
            match (t.cert_file, t.key_file) {
                (Some(c), Some(k)) => {
                    let mut pem = read_file("tls.cert_file", &c)?;
                    pem.push(b'\n');
                    pem.extend(read_file("tls.key_file", &k)?);
                    out.tls.identity_pem = Some(pem);
                }
                (None, None) => {}
                (Some(_), None) => {
                    return Err(err(
                        "tls.cert_file",
                        "tls cert_file and key_file go together",
                    ))
                }
                (None, Some(_)) => {
                    return Err(err(
                        "tls.key_file",
                        "tls cert_file and key_file go together",
                    ))
                }
            }
        }
        match out.client(None) {
            Ok(_) => Ok(out),
            Err(ClientError::Ca(m)) => Err(err("tls.ca_file", format!("tls ca_file: {m}"))),
            Err(ClientError::Identity(m)) => {
                Err(err("tls.cert_file", format!("tls cert_file/key_file: {m}")))
            }
            Err(e) => Err(err("tls", e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("lt-push-{tag}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        Dir(d)
    }

    #[test]
    fn secrets_come_from_files_without_their_newline() {
        let d = dir("secret");
        let token = d.0.join("token");
        let pass = d.0.join("pass");
        std::fs::write(&token, "t0ken\n").expect("write");
        std::fs::write(&pass, "pw\r\n").expect("write");
        let c = HttpClientSettings {
            bearer_token_file: Some(token),
            ..Default::default()
        }
        .resolve();
        assert_eq!(c.map(|c| c.bearer_token), Ok(Some("t0ken".to_owned())));
        let c = HttpClientSettings {
            basic_auth: Some(BasicAuthSettings {
                username: "u".into(),
                password: None,
                password_file: Some(pass),
            }),
            ..Default::default()
        }
        .resolve();
        assert_eq!(
            c.map(|c| c.basic_auth),
            Ok(Some(("u".to_owned(), "pw".to_owned())))
        );
    }

    #[test]
    fn exclusive_and_paired_settings() {
        let e = HttpClientSettings {
            bearer_token: Some("a".into()),
            bearer_token_file: Some("/x".into()),
            ..Default::default()
        }
        .resolve();
        assert_eq!(e.map_err(|e| e.key), Err("bearer_token_file"));
        let e = HttpClientSettings {
            tls: Some(TlsSettings {
                cert_file: Some("/x".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .resolve();
        assert!(e.is_err_and(|e| e.key == "tls.cert_file" && e.message.contains("go together")));
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = HttpClientSettings {
            tls: Some(TlsSettings {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .resolve();
        assert!(e.is_err_and(
            |e| e.key == "tls.ca_file" && e.to_string().contains("/nonexistent/ca.pem")
        ));
    }
}
