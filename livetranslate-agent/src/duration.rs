//! Durations, parsed once for the whole agent: its own YAML and flags, and the Promtail and
//! Prometheus configurations it reads. Accepted: Go's `time.ParseDuration` syntax (`300ms`,
//! `1.5h`, `2h45m`, `10us`, `0`; units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), Prometheus'
//! `d` and `w`, and plain seconds (`15`, `0.5`). Negative, infinite or overflowing values are
//! refused. Whether zero (or a very long value) makes sense is the setting's business:
//! [`check_range`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration that parses from the forms above (in YAML and on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

/// A duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 15s, 500ms, 1m, 1h30m or plain seconds")]
pub struct DurationError(pub String);

/// Parses a duration (see the module documentation).
///
/// ```
/// use std::time::Duration;
/// use livetranslate_agent::duration::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("-1s").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_owned());
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| err())?;
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    let mut total = Duration::ZERO;
    let mut rest = t.strip_prefix('+').unwrap_or(t);
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_end == 0 || &rest[..num_end] == "." {
            return Err(err());
        }
        let number: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_end..];
        let part = Duration::try_from_secs_f64(number * unit_secs).map_err(|_| err())?;
        total = total.checked_add(part).ok_or_else(err)?;
    }
    Ok(total)
}

/// Checks that `d` lies within `min..=max`; the message (without the setting's name) says the
/// range. Zero is refused by a `min` above zero: a zero poll interval or timeout is a busy loop
/// or a request that can never succeed.
///
/// ```
/// use std::time::Duration;
/// use livetranslate_agent::duration::check_range;
/// let (min, max) = (Duration::from_millis(1), Duration::from_secs(60));
/// assert!(check_range(Duration::from_millis(100), min, max).is_ok());
/// assert_eq!(
///     check_range(Duration::ZERO, min, max).unwrap_err(),
///     "must be between 1ms and 60s (got 0s)"
/// );
/// ```
pub fn check_range(d: Duration, min: Duration, max: Duration) -> Result<(), String> {
    if d < min || d > max {
        return Err(format!(
            "must be between {} and {} (got {})",
            HumanDuration(min),
            HumanDuration(max),
            HumanDuration(d)
        ));
    }
    Ok(())
}

/// One millisecond, for the bounds of [`duration_in`].
pub const MS: Duration = Duration::from_millis(1);
/// One minute.
pub const MINUTE: Duration = Duration::from_secs(60);
/// One hour.
pub const HOUR: Duration = Duration::from_secs(3600);

/// A configured duration: `value` (or `default`), checked against `min..=max` (the message of
/// [`check_range`] when it is not; the caller names the key).
///
/// ```
/// use std::time::Duration;
/// use livetranslate_agent::duration::{duration_in, HumanDuration, HOUR, MS};
/// assert_eq!(duration_in(None, Duration::from_secs(1), (MS, HOUR)), Ok(Duration::from_secs(1)));
/// assert!(duration_in(Some(HumanDuration(Duration::ZERO)), Duration::from_secs(1), (MS, HOUR)).is_err());
/// ```
pub fn duration_in(
    value: Option<HumanDuration>,
    default: Duration,
    (min, max): (Duration, Duration),
) -> Result<Duration, String> {
    let d = value.map_or(default, |d| d.0);
    check_range(d, min, max)?;
    Ok(d)
}

impl std::str::FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns % 1_000_000_000 == 0 {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns % 1_000_000 == 0 {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns % 1000 == 0 {
            write!(f, "{}us", ns / 1000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        let s = match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Str(s) => s,
        };
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let ok = |s: &str| parse_duration(s).map_err(|e| e.to_string());
        assert_eq!(ok("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(ok("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(ok("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(ok("15"), Ok(Duration::from_secs(15)));
        assert_eq!(ok("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(ok("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(ok("1.5s"), Ok(Duration::from_millis(1500)));
        // Go's syntax, as Promtail and Prometheus configurations hold it.
        assert_eq!(ok("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(ok("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(ok("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(ok("300ns"), Ok(Duration::from_nanos(300)));
        assert_eq!(ok("2h45m30.5s"), Ok(Duration::from_millis(9_930_500)));
        assert_eq!(ok("0"), Ok(Duration::ZERO));
        assert_eq!(ok("+5s"), Ok(Duration::from_secs(5)));
        // Prometheus' days and weeks.
        assert_eq!(ok("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(ok("2w"), Ok(Duration::from_secs(1_209_600)));
    }

    #[test]
    fn rejected_forms() {
        for s in [
            "", "s", "15x", "-1", "-1s", "1s5", "abc", "NaN", "inf", "1e999", ".s", "1.s2", "+",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn display() {
        assert_eq!(HumanDuration(Duration::from_secs(15)).to_string(), "15s");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(HumanDuration(Duration::from_micros(10)).to_string(), "10us");
    }
}
