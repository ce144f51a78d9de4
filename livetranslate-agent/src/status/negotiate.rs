//! Which view of the status page a request gets: `?format=html|text|json` when given, else
//! proactive negotiation on `Accept` (RFC 9110 §12.5.1): for each view the most specific
//! matching media range gives its quality; the highest quality wins, and a tie goes to the
//! first of text, HTML, JSON. So a browser (`text/html,…,*/*;q=0.8`) gets HTML, while curl
//! (`*/*`) and a request without `Accept` get the plain text that reads well in a terminal
//! and that scripts have always grepped.

/// A view of the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The plain-text page.
    Text,
    /// The HTML page.
    Html,
    /// The snapshot as JSON.
    Json,
}

/// In the order ties are broken.
const VIEWS: [View; 3] = [View::Text, View::Html, View::Json];

impl View {
    /// The media type matched against `Accept`.
    pub fn media_type(self) -> (&'static str, &'static str) {
        match self {
            View::Text => ("text", "plain"),
            View::Html => ("text", "html"),
            View::Json => ("application", "json"),
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            View::Text => "text/plain; charset=utf-8",
            View::Html => "text/html; charset=utf-8",
            View::Json => "application/json",
        }
    }

    fn from_param(value: &str) -> Option<View> {
        match value.to_ascii_lowercase().as_str() {
            "text" | "txt" | "plain" => Some(View::Text),
            "html" => Some(View::Html),
            "json" => Some(View::Json),
            _ => None,
        }
    }
}

/// Why no view was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `?format=` names no view (answered with 400).
    #[error("unknown format {0:?}: use format=html, format=text or format=json")]
    UnknownFormat(String),
    /// `Accept` allows none of the views (answered with 406).
    #[error("none of text/plain, text/html or application/json is acceptable; ask for one in Accept, or use ?format=html|text|json")]
    NotAcceptable,
}

/// The view for a request's query string and `Accept` header.
///
/// ```
/// use livetranslate_agent::status::negotiate::{choose, View};
/// let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
/// assert_eq!(choose(None, Some(chrome)), Ok(View::Html));
/// assert_eq!(choose(None, Some("*/*")), Ok(View::Text));
/// assert_eq!(choose(None, None), Ok(View::Text));
/// assert_eq!(choose(Some("format=json"), Some(chrome)), Ok(View::Json));
/// assert!(choose(None, Some("image/png")).is_err());
/// ```
pub fn choose(query: Option<&str>, accept: Option<&str>) -> Result<View, Refused> {
    if let Some(value) = query.and_then(format_param) {
        return View::from_param(value).ok_or_else(|| Refused::UnknownFormat(value.to_owned()));
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(View::Text);
    };
    let ranges: Vec<Range<'_>> = accept.split(',').filter_map(Range::parse).collect();
    let mut best: Option<(View, u16)> = None;
    for view in VIEWS {
        let q = quality(&ranges, view.media_type());
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((view, q));
        }
    }
    best.map(|(v, _)| v).ok_or(Refused::NotAcceptable)
}

/// The value of the first `format` parameter of a query string.
fn format_param(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "format").then_some(v)
    })
}

/// One media range: type, subtype and quality in thousandths.
#[derive(Debug, PartialEq, Eq)]
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    q: u16,
}

impl<'a> Range<'a> {
    /// Parses one element of `Accept`; `None` for a malformed one (left out, as if absent).
    fn parse(element: &'a str) -> Option<Range<'a>> {
        let mut parts = element.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let (kind, subtype) = (kind.trim(), subtype.trim());
        if kind.is_empty() || subtype.is_empty() || (kind == "*" && subtype != "*") {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = qvalue(value.trim())?;
            }
        }
        Some(Range { kind, subtype, q })
    }

    /// How specifically the range matches `(kind, subtype)`: 2 exactly, 1 by type, 0 for
    /// `*/*`; `None` when it does not match.
    fn specificity(&self, (kind, subtype): (&str, &str)) -> Option<u8> {
        if self.kind == "*" {
            return Some(0);
        }
        if !self.kind.eq_ignore_ascii_case(kind) {
            return None;
        }
        if self.subtype == "*" {
            return Some(1);
        }
        self.subtype.eq_ignore_ascii_case(subtype).then_some(2)
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The quality `ranges` give a media type: that of its most specific matching range, 0 when
/// none matches.
fn quality(ranges: &[Range<'_>], media: (&str, &str)) -> u16 {
    ranges
        .iter()
        .filter_map(|r| r.specificity(media).map(|s| (s, r.q)))
        .max_by_key(|(s, _)| *s)
        .map_or(0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    #[test]
    fn browsers_get_html_and_terminals_text() {
        assert_eq!(choose(None, Some(FIREFOX)), Ok(View::Html));
        assert_eq!(choose(None, Some("*/*")), Ok(View::Text));
        assert_eq!(choose(None, Some("")), Ok(View::Text));
        assert_eq!(choose(None, Some("text/*")), Ok(View::Text));
        assert_eq!(choose(None, Some("text/plain")), Ok(View::Text));
        assert_eq!(choose(None, Some("text/html")), Ok(View::Html));
        assert_eq!(choose(None, Some("application/json")), Ok(View::Json));
        assert_eq!(choose(None, Some("APPLICATION/JSON")), Ok(View::Json));
    }

    #[test]
    fn qualities_decide_and_the_most_specific_range_wins() {
        assert_eq!(
            choose(None, Some("text/plain;q=0.5, text/html")),
            Ok(View::Html)
        );
        assert_eq!(
            choose(None, Some("text/html;q=0.4, text/plain;q=0.5")),
            Ok(View::Text)
        );
        // text/plain is refused outright although text/* is welcome.
        assert_eq!(
            choose(None, Some("text/*;q=0.9, text/plain;q=0")),
            Ok(View::Html)
        );
        assert_eq!(
            choose(None, Some("*/*;q=0.1, application/json;q=0.2")),
            Ok(View::Json)
        );
        assert_eq!(
            choose(
                None,
                Some("text/plain; charset=utf-8; q=0.7, text/html ; Q=0.6")
            ),
            Ok(View::Text)
        );
        // A Prometheus scraper's Accept still reads text.
        assert_eq!(
            choose(
                None,
                Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
            ),
            Ok(View::Text)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(choose(None, Some("image/png")), Err(Refused::NotAcceptable));
        assert_eq!(choose(None, Some("*/*;q=0")), Err(Refused::NotAcceptable));
        assert_eq!(
            choose(Some("format=xml"), None),
            Err(Refused::UnknownFormat("xml".into()))
        );
        assert_eq!(
            choose(Some("format="), None),
            Err(Refused::UnknownFormat(String::new()))
        );
    }

    #[test]
    fn the_format_parameter_overrides_accept() {
        assert_eq!(choose(Some("format=text"), Some(FIREFOX)), Ok(View::Text));
        assert_eq!(choose(Some("x=1&format=HTML"), Some("*/*")), Ok(View::Html));
        assert_eq!(choose(Some("formats=json"), None), Ok(View::Text));
    }

    #[test]
    fn malformed_ranges_are_left_out() {
        for bad in [
            "text",
            "*/html",
            "text/html;q=2",
            "text/html;q=0.1234",
            "text/html;q=x",
        ] {
            assert_eq!(Range::parse(bad), None, "{bad}");
        }
        assert_eq!(choose(None, Some("text/html;q=2, */*")), Ok(View::Text));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("1.001"), None);
    }
}
