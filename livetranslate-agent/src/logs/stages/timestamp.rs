//! The `timestamp` stage: sets the entry's timestamp from an extracted value.
//!
//! ```yaml
//! - timestamp:
//!     source: time
//!     format: RFC3339Nano          # a named format, Unix/UnixMs/UnixUs/UnixNs, or a Go layout
//!     fallback_formats: ["02/Jan/2006:15:04:05 -0700"]
//!     location: Europe/Berlin      # for values without an offset
//!     action_on_failure: fudge     # or skip
//! ```
//!
//! As in Promtail: when the value is missing or does not parse, `fudge` (the default) sets the
//! timestamp 1 ns after the last one parsed for the same stream (so order is kept), `skip`
//! leaves the read time. Layouts without a year take the current year (the previous one for
//! December values read in January, the next one for January values read in December).
//! Differences: `location` also applies to the named formats without offset (ANSIC,
//! UnixDate's abbreviations); Go's `Kitchen`, `Stamp*`, `DateTime`, `DateOnly`, `TimeOnly`
//! are known by name too.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::bounded::Generational;
use super::golayout::{Layout, NAMED};
use super::{Cx, Entry, Stage, StageError, Step};
use crate::tz::Zone;
use livetranslate_telemetry::time::civil_from_days;

/// `timestamp:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampConfig {
    /// Extracted value holding the time.
    pub source: String,
    /// How to read it.
    pub format: String,
    /// Formats tried, in order, when `format` fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_formats: Vec<String>,
    /// Zone of values that carry no offset (IANA name, `UTC`, `Local`, or `+02:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `fudge` (default) or `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_on_failure: Option<String>,
}

/// A compiled `format`.
#[derive(Debug, Clone)]
pub(crate) enum Format {
    Layout(Layout),
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
}

impl Format {
    /// Compiles a format: a name Promtail knows, or a Go layout.
    pub(crate) fn new(text: &str) -> Result<Format, String> {
        match text {
            "Unix" => return Ok(Format::Unix),
            "UnixMs" => return Ok(Format::UnixMs),
            "UnixUs" => return Ok(Format::UnixUs),
            "UnixNs" => return Ok(Format::UnixNs),
            _ => {}
        }
        let layout = NAMED
            .iter()
            .find(|(n, _)| *n == text)
            .map_or(text, |(_, l)| *l);
        Layout::new(layout).map(Format::Layout)
    }

    /// Parses `value` to Unix nanoseconds.
    pub(crate) fn parse(&self, value: &str, zone: &Zone) -> Result<i64, String> {
        let int = |s: &str| -> Result<i64, String> {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{value:?} is not an integer"));
            }
            s.parse::<i64>().map_err(|e| format!("{value:?}: {e}"))
        };
        let scaled = |mult: i64| {
            int(value)?
                .checked_mul(mult)
                .ok_or_else(|| format!("{value:?} is out of range"))
        };
        match self {
            Format::Unix => {
                if value.matches('.').count() == 1 {
                    let (s, frac) = value.split_once('.').unwrap_or((value, ""));
                    let secs = int(s)?;
                    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("{value:?} is not a Unix time"));
                    }
                    let digits = &frac[..frac.len().min(9)];
                    let mut nanos: i64 = digits.parse().map_err(|_| format!("{value:?}"))?;
                    for _ in digits.len()..9 {
                        nanos *= 10;
                    }
                    return secs
                        .checked_mul(1_000_000_000)
                        .and_then(|ns| ns.checked_add(nanos))
                        .ok_or_else(|| format!("{value:?} is out of range"));
                }
                scaled(1_000_000_000)
            }
            Format::UnixMs => scaled(1_000_000),
            Format::UnixUs => scaled(1_000),
            Format::UnixNs => scaled(1),
            Format::Layout(l) => l.parse(value, zone, |month| infer_year(month, zone)),
        }
    }
}

/// Promtail's year for a timestamp without one: the current year, except around new year's
/// eve (a December value read in January is last year's, a January value read in December
/// is next year's).
fn infer_year(month: u32, zone: &Zone) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    infer_year_at(month, now + i64::from(zone.offset_at(now)))
}

fn infer_year_at(month: u32, local_now: i64) -> i64 {
    let (year, now_month, _) = civil_from_days(local_now.div_euclid(86_400));
    match (month, now_month) {
        (12, 1) => year - 1,
        (1, 12) => year + 1,
        _ => year,
    }
}

/// Most streams whose last timestamp is remembered for fudging (as Promtail).
const FUDGE_STREAMS: usize = 10_000;

#[derive(Debug)]
pub(crate) struct TimestampStage {
    source: String,
    formats: Vec<Format>,
    zone: Arc<Zone>,
    /// `Some` with `fudge`: the last timestamp per stream.
    last: Option<Generational<u64, i64>>,
}

impl TimestampStage {
    pub(crate) fn new(cfg: &TimestampConfig) -> Result<Self, StageError> {
        if cfg.source.is_empty() {
            return Err(StageError::key(
                "source",
                "timestamp source value is required",
            ));
        }
        if cfg.format.is_empty() {
            return Err(StageError::key("format", "timestamp format is required"));
        }
        let mut formats = vec![Format::new(&cfg.format).map_err(|e| StageError::key("format", e))?];
        for (i, f) in cfg.fallback_formats.iter().enumerate() {
            formats.push(
                Format::new(f).map_err(|e| StageError::key(format!("fallback_formats[{i}]"), e))?,
            );
        }
        let zone = match &cfg.location {
            Some(l) => Zone::load(l).map_err(|e| StageError::key("location", e))?,
            None => Zone::utc(),
        };
        let last = match cfg.action_on_failure.as_deref() {
            None | Some("fudge") => Some(Generational::new(FUDGE_STREAMS)),
            Some("skip") => None,
            Some(other) => {
                return Err(StageError::key(
                    "action_on_failure",
                    format!(
                        "invalid action on failure {other:?} (supported values are [skip fudge])"
                    ),
                ))
            }
        };
        Ok(TimestampStage {
            source: cfg.source.clone(),
            formats,
            zone,
            last,
        })
    }

    /// The timestamp parsed from the entry, if any format reads it.
    fn parse(&self, entry: &Entry) -> Option<i64> {
        let text = entry.extracted_text(&self.source)?;
        self.formats
            .iter()
            .find_map(|f| f.parse(&text, &self.zone).ok())
    }
}

impl Stage for TimestampStage {
    fn name(&self) -> &'static str {
        "timestamp"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let parsed = self.parse(&entry);
        if let Some(last) = &mut self.last {
            let key = entry.stream_key();
            match parsed {
                Some(ts) => {
                    entry.timestamp_ns = ts;
                    last.insert(key, ts);
                }
                None => {
                    if let Some(&prev) = last.get(&key) {
                        entry.timestamp_ns = prev.saturating_add(1);
                        last.insert(key, entry.timestamp_ns);
                    }
                }
            }
        } else if let Some(ts) = parsed {
            entry.timestamp_ns = ts;
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::super::Value;
    use super::*;
    use livetranslate_telemetry::time::days_from_civil;

    const NS: i64 = 1_000_000_000;

    fn stage(yaml: &str) -> TimestampStage {
        let cfg: TimestampConfig = serde_yaml_ng::from_str(yaml).expect("config");
        TimestampStage::new(&cfg).expect("stage")
    }

    fn run(stage: &mut TimestampStage, value: Option<&str>, read_ts: i64, stream: &str) -> i64 {
        let mut e = Entry::new("line", read_ts, labels([("stream", stream)]));
        if let Some(v) = value {
            e.set_extracted(&Arc::from("time"), Value::from(v));
        }
        match stage.process(e, &mut Cx::default()) {
            Step::Next(e) => e.timestamp_ns,
            _ => panic!("timestamp never drops"),
        }
    }

    #[test]
    fn named_formats() {
        let cases = [
            ("ANSIC", "Tue Nov 14 22:13:20 2023", 1_700_000_000 * NS),
            (
                "UnixDate",
                "Tue Nov 14 22:13:20 UTC 2023",
                1_700_000_000 * NS,
            ),
            (
                "RubyDate",
                "Tue Nov 14 23:13:20 +0100 2023",
                1_700_000_000 * NS,
            ),
            ("RFC822", "14 Nov 23 22:13 UTC", 1_699_999_980 * NS),
            ("RFC822Z", "14 Nov 23 22:13 -0000", 1_699_999_980 * NS),
            (
                "RFC850",
                "Tuesday, 14-Nov-23 22:13:20 UTC",
                1_700_000_000 * NS,
            ),
            (
                "RFC1123",
                "Tue, 14 Nov 2023 22:13:20 GMT",
                1_700_000_000 * NS,
            ),
            (
                "RFC1123Z",
                "Tue, 14 Nov 2023 22:13:20 +0000",
                1_700_000_000 * NS,
            ),
            ("RFC3339", "2023-11-14T22:13:20Z", 1_700_000_000 * NS),
            (
                "RFC3339Nano",
                "2023-11-14T22:13:20.000000123Z",
                1_700_000_000 * NS + 123,
            ),
            ("Unix", "1700000000", 1_700_000_000 * NS),
            ("Unix", "1700000000.25", 1_700_000_000 * NS + 250_000_000),
            ("UnixMs", "1700000000123", 1_700_000_000_123_000_000),
            ("UnixUs", "1700000000123456", 1_700_000_000_123_456_000),
            ("UnixNs", "1700000000123456789", 1_700_000_000_123_456_789),
            ("DateTime", "2023-11-14 22:13:20", 1_700_000_000 * NS),
        ];
        for (format, value, want) in cases {
            let f = Format::new(format).expect(format);
            assert_eq!(
                f.parse(value, &Zone::fixed("UTC", 0)),
                Ok(want),
                "{format} {value}"
            );
        }
        assert!(Format::new("UnixMs")
            .expect("f")
            .parse("1.5", &Zone::fixed("UTC", 0))
            .is_err());
        assert!(Format::new("Unix")
            .expect("f")
            .parse("abc", &Zone::fixed("UTC", 0))
            .is_err());
    }

    #[test]
    fn promtail_doc_example_with_location() {
        // From Promtail's docs: a log in Europe/London local time.
        let mut s = stage("source: time\nformat: \"2006-01-02 15:04:05\"\nlocation: \"+01:00\"\n");
        assert_eq!(
            run(&mut s, Some("2023-11-14 23:13:20"), 0, "a"),
            1_700_000_000 * NS
        );
    }

    #[test]
    fn fallback_formats_are_tried_in_order() {
        let mut s = stage(
            "source: time\nformat: RFC3339\nfallback_formats: [UnixMs, \"02/Jan/2006:15:04:05 -0700\"]\n",
        );
        assert_eq!(
            run(&mut s, Some("1700000000000"), 0, "a"),
            1_700_000_000 * NS
        );
        assert_eq!(
            run(&mut s, Some("14/Nov/2023:22:13:20 +0000"), 0, "a"),
            1_700_000_000 * NS
        );
    }

    #[test]
    fn fudge_keeps_order_per_stream_and_skip_keeps_read_time() {
        let mut s = stage("source: time\nformat: RFC3339\n");
        // Nothing parsed yet for the stream: the read time stays.
        assert_eq!(run(&mut s, Some("garbage"), 42, "a"), 42);
        assert_eq!(
            run(&mut s, Some("2023-11-14T22:13:20Z"), 42, "a"),
            1_700_000_000 * NS
        );
        assert_eq!(run(&mut s, None, 42, "a"), 1_700_000_000 * NS + 1);
        assert_eq!(run(&mut s, Some("bad"), 42, "a"), 1_700_000_000 * NS + 2);
        // Another stream has no last timestamp.
        assert_eq!(run(&mut s, Some("bad"), 42, "b"), 42);
        let mut skip = stage("source: time\nformat: RFC3339\naction_on_failure: skip\n");
        assert_eq!(
            run(&mut skip, Some("2023-11-14T22:13:20Z"), 42, "a"),
            1_700_000_000 * NS
        );
        assert_eq!(run(&mut skip, Some("bad"), 42, "a"), 42);
    }

    #[test]
    fn year_inference_around_new_year() {
        let jan = days_from_civil(2024, 1, 3) * 86_400;
        let dec = days_from_civil(2023, 12, 30) * 86_400;
        let jun = days_from_civil(2024, 6, 1) * 86_400;
        assert_eq!(infer_year_at(12, jan), 2023);
        assert_eq!(infer_year_at(1, dec), 2024);
        assert_eq!(infer_year_at(6, jun), 2024);
        assert_eq!(infer_year_at(12, jun), 2024);
        // Through the stage: a syslog stamp takes the current year.
        let mut s = stage("source: time\nformat: Jan _2 15:04:05\n");
        let ts = run(&mut s, Some("Jun  1 00:00:00"), 0, "a");
        let year = livetranslate_telemetry::time::year_of_unix(ts / NS);
        let now_year = livetranslate_telemetry::time::year_of_unix(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
        assert!((now_year - 1..=now_year + 1).contains(&year));
    }

    #[test]
    fn config_errors_name_the_key() {
        for (yaml, key) in [
            ("source: time\nformat: yyyy-MM-dd\n", "format"),
            (
                "source: time\nformat: RFC3339\nfallback_formats: [nonsense]\n",
                "fallback_formats[0]",
            ),
            (
                "source: time\nformat: RFC3339\nlocation: Nowhere/Atlantis\n",
                "location",
            ),
            (
                "source: time\nformat: RFC3339\naction_on_failure: ignore\n",
                "action_on_failure",
            ),
            ("source: \"\"\nformat: RFC3339\n", "source"),
        ] {
            let cfg: TimestampConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            let err = TimestampStage::new(&cfg).expect_err(yaml);
            assert_eq!(err.key, key, "{yaml}: {err}");
        }
        assert!(
            serde_yaml_ng::from_str::<TimestampConfig>("source: a\nformat: b\nfromat: c\n")
                .is_err()
        );
    }
}
