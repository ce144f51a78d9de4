//! Line formats: the library's JSON lines (the fast path: timestamp and promoted fields read
//! without building a document), syslog lines ([`super::syslog`]: timestamp, `host`, `app`
//! and `level` labels) and raw text. Docker json-file and CRI lines are unwrapped by
//! the pipeline stages of the same name ([`super::stages`]), the one implementation that
//! Promtail configurations use too; here they pass as raw text. Parsing never fails a line:
//! what cannot be parsed is shipped as raw text and counted as malformed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::labels::{clean_label_value, Promoted};
use super::syslog::SyslogParser;

/// The format of an input's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line (timestamp and level taken from it).
    #[default]
    Json,
    /// Docker's json-file driver: `{"log": "...\n", "stream": "stdout", "time": "..."}`
    /// (unwrapped by the `docker` stage).
    Docker,
    /// The CRI log format: `<time> <stream> <P|F> <content>` (unwrapped by the `cri` stage).
    Cri,
    /// Plain text.
    Raw,
    /// `/var/log/syslog`-style lines: RFC 3164 as rsyslog writes them, rsyslog's
    /// high-precision format, RFC 5424 (see [`super::syslog`]).
    Syslog,
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Timestamp carried by the line, in ns since the Unix epoch.
    pub timestamp_ns: Option<i64>,
    /// The text to ship.
    pub line: String,
    /// Extra labels from the line (promoted fields).
    pub labels: Vec<(&'static str, String)>,
    /// The line did not have the expected structure (shipped raw).
    pub malformed: bool,
}

impl Parsed {
    fn raw(line: String, malformed: bool) -> Self {
        Parsed {
            timestamp_ns: None,
            line,
            labels: Vec::new(),
            malformed,
        }
    }
}

pub use livetranslate_telemetry::time::parse_rfc3339;

/// Epoch numbers: seconds, milliseconds, microseconds or nanoseconds, by magnitude.
fn epoch_number(v: f64) -> Option<i64> {
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let ns = if v > 1e17 {
        v
    } else if v > 1e14 {
        v * 1e3
    } else if v > 1e11 {
        v * 1e6
    } else {
        v * 1e9
    };
    (ns < 9.2e18).then_some(ns as i64)
}

/// The fields the JSON parser looks for.
struct Wanted<'p> {
    promote: &'p [String],
}

#[derive(Default)]
struct Found<'a> {
    timestamp: Option<i64>,
    promoted: Vec<(usize, Cow<'a, str>)>,
}

/// A JSON value read as text: strings as they are, numbers and booleans as written.
struct TextValue<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for TextValue<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Owned(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(TextValue(Some(Cow::Borrowed(if v {
                    "true"
                } else {
                    "false"
                }))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(TextValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TextValue(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TextValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, 'p> DeserializeSeed<'de> for Wanted<'p> {
    type Value = Found<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'p>(&'p [String]);
        impl<'de, 'p> Visitor<'de> for V<'p> {
            type Value = Found<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut found = Found::default();
                while let Some(key) = m.next_key::<Cow<'de, str>>()? {
                    let is_ts = matches!(&*key, "timestamp" | "time" | "ts" | "@timestamp");
                    let promoted = self.0.iter().position(|p| *p == *key);
                    if !is_ts && promoted.is_none() {
                        m.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let TextValue(value) = m.next_value()?;
                    let Some(value) = value else { continue };
                    if is_ts && found.timestamp.is_none() {
                        found.timestamp = parse_rfc3339(&value)
                            .or_else(|| value.parse::<f64>().ok().and_then(epoch_number));
                    }
                    if let Some(i) = promoted {
                        found.promoted.push((i, value));
                    }
                }
                Ok(found)
            }
        }
        d.deserialize_map(V(self.promote))
    }
}

/// The longest value a promoted label may have (longer values are cut).
pub const MAX_LABEL_VALUE: usize = 128;

/// A promoted field's value as a label value: at most [`MAX_LABEL_VALUE`] bytes, control
/// characters (a newline, a tab, an escape sequence) replaced by spaces, `level` lowercased.
fn label_value(v: &str, lowercase: bool) -> String {
    let mut cut = v.len().min(MAX_LABEL_VALUE);
    while !v.is_char_boundary(cut) {
        cut -= 1;
    }
    let clean = clean_label_value(&v[..cut]);
    if lowercase {
        clean.to_lowercase()
    } else {
        clean.into_owned()
    }
}

/// Parses lines of one format.
#[derive(Debug, Clone)]
pub struct Parser {
    format: Format,
    /// JSON fields promoted to labels (a fixed, configured set).
    promote: Vec<String>,
    /// The same names as `'static` label names.
    promote_names: Vec<&'static str>,
    /// The syslog parser (its zone) of a `format: syslog` input.
    syslog: Option<SyslogParser>,
}

impl Parser {
    /// A parser for `format` promoting the JSON fields `promote` (e.g. `level`) to labels.
    pub fn new(format: Format, promote: &[String]) -> Self {
        Parser {
            format,
            promote: promote.to_vec(),
            // Label names live for the agent's lifetime; leaking the few configured names
            // once lets every parsed line borrow them.
            promote_names: promote
                .iter()
                .map(|p| &*Box::leak(p.clone().into_boxed_str()))
                .collect(),
            syslog: None,
        }
    }

    /// A parser of syslog lines read with `syslog` (its zone for RFC 3164 timestamps).
    pub fn syslog(syslog: SyslogParser) -> Self {
        Parser {
            syslog: Some(syslog),
            ..Parser::new(Format::Syslog, &[])
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Parses one line (without its newline).
    pub fn parse(&self, line: String) -> Parsed {
        match self.format {
            Format::Json => self.parse_json(line),
            Format::Syslog => {
                let (timestamp_ns, labels, malformed) = self.syslog_meta(&line);
                Parsed {
                    timestamp_ns,
                    line,
                    labels,
                    malformed,
                }
            }
            Format::Raw | Format::Docker | Format::Cri => Parsed::raw(line, false),
        }
    }

    /// The timestamp and promoted labels of a JSON line (for an entry that went through
    /// pipeline stages first), and whether it was malformed. Not JSON for other formats.
    pub fn meta(&self, text: &str) -> (Option<i64>, Promoted, bool) {
        match self.format {
            Format::Json => match self.json_meta(text) {
                Ok((ts, labels)) => (ts, labels, false),
                Err(()) => (None, Vec::new(), true),
            },
            Format::Syslog => self.syslog_meta(text),
            _ => (None, Vec::new(), false),
        }
    }

    /// A syslog line's timestamp, its `host`, `app` and `level` (severity, when the line has
    /// a priority) labels, and whether it was not understood. The line itself is shipped as
    /// written: pid, tag and message stay in it, as Promtail ships a file's lines.
    fn syslog_meta(&self, text: &str) -> (Option<i64>, Promoted, bool) {
        let Some(parser) = &self.syslog else {
            return (None, Vec::new(), false);
        };
        let l = parser.parse(text);
        let mut labels: Promoted = Vec::with_capacity(3);
        for (name, value) in [("host", &l.host), ("app", &l.app)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty() && *v != "-") {
                labels.push((name, label_value(v, false)));
            }
        }
        if let Some(p) = l.priority {
            labels.push(("level", p.severity.level().to_owned()));
        }
        (l.timestamp_ns, labels, l.malformed.is_some())
    }

    fn json_meta(&self, text: &str) -> Result<(Option<i64>, Promoted), ()> {
        let mut de = serde_json::Deserializer::from_str(text);
        let found = Wanted {
            promote: &self.promote,
        }
        .deserialize(&mut de)
        .and_then(|f| de.end().map(|()| f))
        .map_err(|_| ())?;
        let labels = found
            .promoted
            .iter()
            .map(|(i, v)| {
                (
                    self.promote_names[*i],
                    label_value(v, self.promote[*i] == "level"),
                )
            })
            .collect();
        Ok((found.timestamp, labels))
    }

    fn parse_json(&self, line: String) -> Parsed {
        match self.json_meta(&line) {
            Ok((timestamp_ns, labels)) => Parsed {
                timestamp_ns,
                labels,
                line,
                malformed: false,
            },
            Err(()) => Parsed::raw(line, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        for bad in [
            "",
            "2023-13-01T00:00:00Z",
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20.Z",
            "garbage-in-here-long",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_takes_timestamp_level_and_only_promoted_fields() {
        let p = Parser::new(Format::Json, &["level".to_owned(), "service".to_owned()]);
        let line = r#"{"timestamp":"2023-11-14T22:13:20Z","level":"ERROR","service":"audio","message":"x","request_id":"abc","fields":{"a":1}}"#;
        let parsed = p.parse(line.to_owned());
        assert_eq!(parsed.timestamp_ns, Some(1_700_000_000_000_000_000));
        assert_eq!(
            parsed.labels,
            vec![
                ("level", "error".to_owned()),
                ("service", "audio".to_owned())
            ]
        );
        assert_eq!(parsed.line, line);
        assert!(!parsed.malformed);
        let epoch = p.parse(r#"{"ts":1700000000.5}"#.to_owned());
        assert_eq!(epoch.timestamp_ns, Some(1_700_000_000_500_000_000));
    }

    #[test]
    fn malformed_json_is_shipped_raw() {
        let p = Parser::new(Format::Json, &["level".to_owned()]);
        for bad in [
            "{not json",
            "[1,2]",
            "{\"a\":1} trailing",
            "\u{0}\u{1}binary",
        ] {
            let parsed = p.parse(bad.to_owned());
            assert!(parsed.malformed, "{bad}");
            assert_eq!(parsed.line, bad);
            assert_eq!(parsed.timestamp_ns, None);
        }
    }

    #[test]
    fn control_characters_never_reach_a_label_value() {
        let p = Parser::new(Format::Json, &["level".to_owned(), "service".to_owned()]);
        let parsed = p.parse(r#"{"level":"WARN\nx","service":"a\tb\u001b[31m"}"#.to_owned());
        assert_eq!(
            parsed.labels,
            vec![
                ("level", "warn x".to_owned()),
                ("service", "a b [31m".to_owned())
            ]
        );
    }
}
