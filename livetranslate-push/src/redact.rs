//! The one function that makes a URL safe to print.

/// Query parameter names (lower-cased) that hold secrets when they contain any of these.
const SECRET_WORDS: [&str; 9] = [
    "token",
    "password",
    "passwd",
    "secret",
    "key",
    "auth",
    "signature",
    "sig",
    "credential",
];

/// What a redacted query value is replaced with (Prometheus prints a URL's password so).
pub const REDACTED: &str = "xxxxx";

/// `raw` with its `user:password@` removed and the values of query parameters named like
/// secrets (`token`, `access_token`, `password`, `secret`, `api_key`, `auth`, `signature`,
/// `X-Amz-Signature`, …) replaced with `xxxxx`. Works on text that does not parse as a URL
/// too, so it is safe on whatever a user typed.
///
/// ```
/// use livetranslate_push::redact_url;
/// assert_eq!(redact_url("http://u:pw@loki:3100/x?a=1&api_key=s3cret"),
///            "http://loki:3100/x?a=1&api_key=xxxxx");
/// assert_eq!(redact_url("not a url"), "not a url");
/// ```
pub fn redact_url(raw: &str) -> String {
    let (before_fragment, fragment) = match raw.find('#') {
        Some(i) => raw.split_at(i),
        None => (raw, ""),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(raw.len());
    // userinfo: between "//" (normally "://", but also what a typo left of it, or nothing at
    // all for a bare `user:password@host:port`) and the last '@' of the authority.
    let authority_start = base.find("//").map_or(0, |i| i + 2);
    let rest = &base[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    out.push_str(&base[..authority_start]);
    match authority.rfind('@') {
        Some(at) => out.push_str(&authority[at + 1..]),
        None => out.push_str(authority),
    }
    out.push_str(&rest[authority_end..]);
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if is_secret_name(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out.push_str(fragment);
    out
}

fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_goes() {
        assert_eq!(
            redact_url("https://user:hunter2@host:1/p"),
            "https://host:1/p"
        );
        assert_eq!(redact_url("http://user@host/"), "http://host/");
        assert_eq!(redact_url("ftp://u:p@w@host"), "ftp://host");
        // An '@' in the path is not userinfo.
        assert_eq!(redact_url("http://host/a@b"), "http://host/a@b");
        // Not quite URLs: what a user typed still loses its password.
        assert_eq!(redact_url("http//u:pw@host/x"), "http//host/x");
        assert_eq!(redact_url("u:pw@host:9100"), "host:9100");
        assert_eq!(redact_url("[::bad"), "[::bad");
    }

    #[test]
    fn secret_query_values_go() {
        assert_eq!(
            redact_url("http://h/w?token=a&x=1&access_token=b&X-Amz-Signature=c&Password=d#f"),
            "http://h/w?token=xxxxx&x=1&access_token=xxxxx&X-Amz-Signature=xxxxx&Password=xxxxx#f"
        );
        assert_eq!(
            redact_url("http://h/w?flag&apikey="),
            "http://h/w?flag&apikey=xxxxx"
        );
        assert_eq!(redact_url("http://h/w?job=a"), "http://h/w?job=a");
    }
}
