//! What is particular to Loki's push endpoint: the URL (a base URL gets the push path) and
//! the tenant header.

use reqwest::header::HeaderValue;
use reqwest::Url;

use crate::http_client::ClientError;
use crate::redact::redact_url;

/// The push path appended to a Loki base URL.
pub const PUSH_PATH: &str = "/loki/api/v1/push";

/// The header that carries Loki's tenant.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// A Loki push endpoint parsed from a base or push URL.
#[derive(Clone, PartialEq, Eq)]
pub struct PushUrl {
    /// The push URL (`…/loki/api/v1/push`), without credentials.
    pub url: String,
    /// `user:password@` from the URL, if present.
    pub basic_auth: Option<(String, String)>,
}

impl std::fmt::Debug for PushUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushUrl")
            .field("url", &self.url)
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// Parses a Loki base URL (`http://loki:3100`) or full push URL, as Promtail's `url` and
/// Grafana's Loki data source take them; credentials in it are moved out. The error message
/// never contains the credentials.
///
/// ```
/// use livetranslate_push::loki::push_url;
/// let u = push_url("http://a:b@loki:3100").unwrap();
/// assert_eq!(u.url, "http://loki:3100/loki/api/v1/push");
/// assert_eq!(u.basic_auth, Some(("a".into(), "b".into())));
/// assert_eq!(push_url("http://gw:8080/tenant-a/").unwrap().url,
///            "http://gw:8080/tenant-a/loki/api/v1/push");
/// assert!(push_url("loki:3100").is_err());
/// ```
pub fn push_url(raw: &str) -> Result<PushUrl, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("scheme must be http or https".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    let basic_auth = (!url.username().is_empty()).then(|| {
        (
            url.username().to_owned(),
            url.password().unwrap_or("").to_owned(),
        )
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with(PUSH_PATH) {
        url.set_path(&format!("{path}{PUSH_PATH}"));
    }
    Ok(PushUrl {
        url: url.to_string(),
        basic_auth,
    })
}

/// [`push_url`] with its error as a [`ClientError`] naming the redacted URL.
pub fn parse_push_url(raw: &str) -> Result<PushUrl, ClientError> {
    push_url(raw).map_err(|reason| ClientError::Url {
        url: redact_url(raw),
        reason,
    })
}

/// Checks a tenant id (`X-Scope-OrgID`) once, for every path that sends one.
///
/// ```
/// assert!(livetranslate_push::loki::tenant_header("team-a").is_ok());
/// assert!(livetranslate_push::loki::tenant_header("a\nb").is_err());
/// ```
pub fn tenant_header(tenant: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(tenant).map_err(|_| ClientError::Tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_push_urls() {
        let u = push_url("https://loki.example/loki/api/v1/push").expect("url");
        assert_eq!(u.url, "https://loki.example/loki/api/v1/push");
        assert_eq!(u.basic_auth, None);
        let u = push_url("http://u@loki:3100/").expect("url");
        assert_eq!(u.basic_auth, Some(("u".into(), String::new())));
        for bad in ["loki:3100", "ftp://loki", "http://", "not a url"] {
            assert!(push_url(bad).is_err(), "{bad}");
        }
        let e = parse_push_url("ftp://user:hunter2@host").expect_err("scheme");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{:?}", push_url("http://u:pw@h").expect("url")).contains("pw"));
    }
}
