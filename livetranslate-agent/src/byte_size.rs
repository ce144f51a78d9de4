//! Sizes written as Prometheus writes them (`body_size_limit: 10MB`): a number and a unit of
//! `B`, `KB`, `MB`, `GB`, `TB` or the `KiB` … `TiB` spellings, all powers of 1024 (Go's
//! `units.Base2Bytes`), or a plain number of bytes. A leaf: it imports nothing of the agent.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A size in bytes that parses from the forms above.
///
/// ```
/// use livetranslate_agent::byte_size::ByteSize;
/// assert_eq!("10MB".parse::<ByteSize>().unwrap().0, 10 << 20);
/// assert_eq!("512KiB".parse::<ByteSize>().unwrap().0, 512 << 10);
/// assert_eq!("1.5KB".parse::<ByteSize>().unwrap().0, 1536);
/// assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
/// assert!("10 parsecs".parse::<ByteSize>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

/// A size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: expected e.g. 512KB, 10MB, 1GiB or a number of bytes")]
pub struct SizeError(pub String);

const UNITS: [(&str, u32); 9] = [
    ("B", 0),
    ("KB", 10),
    ("KiB", 10),
    ("MB", 20),
    ("MiB", 20),
    ("GB", 30),
    ("GiB", 30),
    ("TB", 40),
    ("TiB", 40),
];

impl std::str::FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<ByteSize, SizeError> {
        let err = || SizeError(s.to_owned());
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = (&t[..split], t[split..].trim());
        if number.is_empty() {
            return Err(err());
        }
        let shift = match unit {
            "" => 0,
            u => UNITS
                .iter()
                .find(|(name, _)| *name == u)
                .map(|&(_, s)| s)
                .ok_or_else(err)?,
        };
        if let Ok(n) = number.parse::<u64>() {
            return n.checked_mul(1u64 << shift).map(ByteSize).ok_or_else(err);
        }
        let x: f64 = number.parse().map_err(|_| err())?;
        let bytes = x * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
            return Err(err());
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            let unit = 1u64 << shift;
            if self.0 >= unit && self.0 % unit == 0 {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 10MB, 512KiB or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(SizeError(v.to_string())))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_powers_of_1024() {
        let p = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("100B"), Ok(100));
        assert_eq!(p("1KB"), Ok(1024));
        assert_eq!(p("2 MiB"), Ok(2 << 20));
        assert_eq!(p("1GB"), Ok(1 << 30));
        assert_eq!(p("1TiB"), Ok(1 << 40));
        assert!(
            p("1kb").is_err(),
            "units are case-sensitive, as in Prometheus"
        );
        assert!(p("MB").is_err());
        assert!(p("-1MB").is_err());
        assert!(p("99999999999TB").is_err());
        assert_eq!(ByteSize(10 << 20).to_string(), "10MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn yaml_numbers_and_strings() {
        let v: Vec<ByteSize> = serde_yaml_ng::from_str("[4096, '1KB', 2MB]").unwrap_or_default();
        assert_eq!(v, [ByteSize(4096), ByteSize(1024), ByteSize(2 << 20)]);
        assert!(serde_yaml_ng::from_str::<ByteSize>("-5").is_err());
    }
}
