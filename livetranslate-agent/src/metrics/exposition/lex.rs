//! Lexical pieces both formats share: character classes, quoted label values and their escapes,
//! and numbers read the way Prometheus 2.42 reads them (it is written in Go: values and
//! OpenMetrics timestamps go through `strconv.ParseFloat`, text-format timestamps through
//! `strconv.ParseInt`).

use std::borrow::Cow;

/// The bits of the NaN Prometheus stores for every NaN it parses.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// A blank of the text format (OpenMetrics allows only single spaces).
pub fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The first byte of a metric name: `[a-zA-Z_:]`.
pub fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

/// The first byte of a label name: `[a-zA-Z_]`.
pub fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// The index after the metric name starting at `start` (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn metric_name_end(s: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_' || s[i] == b':') {
        i += 1;
    }
    i
}

/// The index after the label name starting at `start` (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn label_name_end(s: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
        i += 1;
    }
    i
}

/// The index of the first byte at or after `i` that is not a blank.
pub fn skip_blanks(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_blank(s[i]) {
        i += 1;
    }
    i
}

/// Why a quoted label value does not end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteError {
    /// No closing quote before the end of the line.
    Unterminated,
    /// A backslash right before a line break.
    EscapedLineBreak,
}

impl QuoteError {
    /// A message for a parse error.
    pub fn message(self) -> &'static str {
        match self {
            QuoteError::Unterminated => "label value without a closing quote",
            QuoteError::EscapedLineBreak => "backslash before a line break in a label value",
        }
    }
}

/// Scans the quoted label value whose opening quote is at `open`. Returns the index of the
/// closing quote and whether the value contains a backslash.
///
/// As in Prometheus's lexer a backslash takes the next byte with it whatever it is (NUL bytes
/// between the two are skipped), except a line break.
pub fn scan_quoted(s: &[u8], open: usize) -> Result<(usize, bool), QuoteError> {
    let mut escaped = false;
    let mut i = open + 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Ok((i, escaped)),
            b'\\' => {
                escaped = true;
                i += 1;
                while i < s.len() && s[i] == 0 {
                    i += 1;
                }
                match s.get(i) {
                    None => return Err(QuoteError::Unterminated),
                    Some(b'\n') => return Err(QuoteError::EscapedLineBreak),
                    Some(_) => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    Err(QuoteError::Unterminated)
}

/// Calls `piece` with consecutive parts of `raw` with the label-value escapes undone the way
/// Prometheus undoes them: `\\` → `\`, `\"` → `"`, `\n` → line break, and any other backslash
/// stays as it is (`\z` is the two characters `\z`).
pub fn unescape_pieces<'a>(raw: &'a str, mut piece: impl FnMut(&'a str)) {
    let bytes = raw.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            let replacement = match bytes[i + 1] {
                b'\\' => "\\",
                b'"' => "\"",
                b'n' => "\n",
                _ => {
                    i += 1;
                    continue;
                }
            };
            // Both bytes are ASCII, so these are character boundaries.
            piece(raw.get(start..i).unwrap_or_default());
            piece(replacement);
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    piece(raw.get(start..).unwrap_or_default());
}

/// `raw` with the label-value escapes undone (see [`unescape_pieces`]); borrowed when it has
/// no backslash.
pub fn unescape(raw: &str, escaped: bool) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    unescape_pieces(raw, |p| out.push_str(p));
    Cow::Owned(out)
}

/// Parses a float as Prometheus 2.42 does: Go's `strconv.ParseFloat` without hexadecimal
/// mantissas or `_` separators. Accepts decimal notation, `inf` / `infinity` with an optional
/// sign and `nan` without one (any case). `None` for anything else, and for a finite spelling
/// too large for an f64 (Go reports it out of range). NaN comes back as Prometheus's NaN.
pub fn parse_float(text: &str) -> Option<f64> {
    let s = text.as_bytes();
    let (negative, signed, body) = match s.first()? {
        b'+' => (false, true, &s[1..]),
        b'-' => (true, true, &s[1..]),
        _ => (false, false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !signed && body.eq_ignore_ascii_case(b"nan") {
        return Some(f64::from_bits(NORMAL_NAN_BITS));
    }
    // digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ], with a digit in the mantissa.
    let mut i = 0;
    let mut digits = 0;
    while i < body.len() && body[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && body[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        if i < body.len() && (body[i] == b'+' || body[i] == b'-') {
            i += 1;
        }
        let exponent = i;
        while i < body.len() && body[i].is_ascii_digit() {
            i += 1;
        }
        if i == exponent {
            return None;
        }
    }
    if i != body.len() {
        return None;
    }
    // Plain ASCII decimal from here on; Rust rounds it exactly as Go does.
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses a text-format timestamp (ASCII digits only, as the lexer takes them) as Go's
/// `strconv.ParseInt`: `None` when it does not fit in an i64.
pub fn parse_digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Converts an OpenMetrics timestamp in seconds to milliseconds as Prometheus 2.42 does:
/// `int64(seconds * 1000)` in Go, which truncates toward zero and, on the amd64 Prometheus
/// runs on, yields the smallest i64 for anything outside the i64 range.
pub fn seconds_to_ms(seconds: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    let ms = seconds * 1000.0;
    if (-LIMIT..LIMIT).contains(&ms) {
        ms.trunc() as i64
    } else {
        i64::MIN
    }
}

/// A short, printable rendering of the input at `i` for error messages.
pub fn show(s: &[u8], i: usize) -> String {
    match s.get(i..) {
        None | Some([]) => "the end of the line".to_owned(),
        Some(rest) => {
            let take = rest.len().min(16);
            let text = String::from_utf8_lossy(&rest[..take]);
            let more = if rest.len() > take { "…" } else { "" };
            format!("{:?}{more}", text)
        }
    }
}
