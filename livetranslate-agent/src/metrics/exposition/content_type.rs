//! Which parser a response gets, as Prometheus 2.42 chooses (`textparse.New`): the media type of
//! `Content-Type` as Go's `mime.ParseMediaType` reads it. OpenMetrics only for exactly
//! `application/openmetrics-text` (any case, blanks around it) with well-formed parameters; a
//! missing or empty header, any other type, or a header Go cannot parse (a parameter without a
//! value, an unterminated quote, a repeated parameter name, …) gets the text format.

use super::Format;

impl Format {
    /// The parser Prometheus uses for a response with this `Content-Type` header (`None` when
    /// the response has none).
    ///
    /// ```
    /// use livetranslate_agent::metrics::exposition::Format;
    ///
    /// let om = Some("application/openmetrics-text; version=1.0.0; charset=utf-8");
    /// assert_eq!(Format::from_content_type(om), Format::OpenMetrics);
    /// assert_eq!(Format::from_content_type(Some("text/plain; version=0.0.4")), Format::Text);
    /// // Go cannot parse the parameter, so Prometheus falls back to the text parser.
    /// assert_eq!(Format::from_content_type(Some("application/openmetrics-text; version")), Format::Text);
    /// assert_eq!(Format::from_content_type(None), Format::Text);
    /// ```
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type.and_then(media_type) {
            Some(t) if t == "application/openmetrics-text" => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

/// The lower-cased media type of a `Content-Type` value, or `None` where Go's
/// `mime.ParseMediaType` reports an error.
fn media_type(value: &str) -> Option<String> {
    let base = value.split(';').next().unwrap_or_default();
    let media_type = base.to_lowercase().trim().to_owned();
    check_media_type(&media_type)?;
    let mut keys: Vec<String> = Vec::new();
    let mut rest = &value[base.len()..];
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        match parameter(rest) {
            Some((key, after)) => {
                if keys.contains(&key) {
                    return None;
                }
                keys.push(key);
                rest = after;
            }
            // A trailing `;` is allowed, anything else is an error.
            None if rest.trim() == ";" => break,
            None => return None,
        }
    }
    Some(media_type)
}

/// `type` or `type/subtype`, both tokens.
fn check_media_type(s: &str) -> Option<()> {
    let (kind, rest) = token(s);
    if kind.is_empty() {
        return None;
    }
    if rest.is_empty() {
        return Some(());
    }
    let (subtype, rest) = token(rest.strip_prefix('/')?);
    (!subtype.is_empty() && rest.is_empty()).then_some(())
}

/// `; key=value` at the start of `s`: the lower-cased key and what follows.
fn parameter(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix(';')?.trim_start();
    let (key, s) = token(s);
    if key.is_empty() {
        return None;
    }
    let s = s.trim_start().strip_prefix('=')?.trim_start();
    let rest = value(s)?;
    Some((key.to_lowercase(), rest))
}

/// A token or a quoted string at the start of `s`: what follows it.
fn value(s: &str) -> Option<&str> {
    let Some(quoted) = s.strip_prefix('"') else {
        let (v, rest) = token(s);
        return (!v.is_empty()).then_some(rest);
    };
    let bytes = quoted.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return quoted.get(i + 1..),
            b'\\' if bytes.get(i + 1).is_some_and(|&b| is_tspecial(b)) => i += 2,
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// The longest prefix of token characters, and the rest.
fn token(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !(b > 0x20 && b < 0x7f && !is_tspecial(b)))
        .unwrap_or(s.len());
    s.split_at(end)
}

fn is_tspecial(b: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&b)
}
