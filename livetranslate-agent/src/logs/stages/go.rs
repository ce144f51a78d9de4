//! Go conventions that Promtail's configuration inherits: string literals (`strconv.Unquote`),
//! byte sizes (`humanize.ParseBytes`), and mapstructure's "weak" decoding of scalars into
//! strings. Durations are the agent's one parser, [`crate::duration`], which reads Go's
//! syntax.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Unquotes a Go string literal: `"..."` with Go escapes, or a raw `` `...` `` string.
/// Returns the value and the number of bytes of `s` the literal took.
pub fn unquote_prefix(s: &str) -> Result<(String, usize), String> {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b'`') => match s[1..].find('`') {
            Some(end) => Ok((s[1..1 + end].replace('\r', ""), end + 2)),
            None => Err("unterminated raw string".to_owned()),
        },
        Some(b'"') => {
            let mut out = String::new();
            let mut chars = s[1..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => return Ok((out, i + 2)),
                    '\n' => return Err("newline in string".to_owned()),
                    '\\' => {
                        let (_, e) = chars
                            .next()
                            .ok_or_else(|| "unterminated string".to_owned())?;
                        match e {
                            'a' => out.push('\u{7}'),
                            'b' => out.push('\u{8}'),
                            'f' => out.push('\u{c}'),
                            'n' => out.push('\n'),
                            'r' => out.push('\r'),
                            't' => out.push('\t'),
                            'v' => out.push('\u{b}'),
                            '\\' => out.push('\\'),
                            '"' => out.push('"'),
                            '\'' => return Err("invalid escape \\' in a \"...\" string".to_owned()),
                            'x' | 'u' | 'U' => {
                                let n = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let mut v = 0u32;
                                for _ in 0..n {
                                    let (_, h) = chars
                                        .next()
                                        .ok_or_else(|| "unterminated escape".to_owned())?;
                                    v = v * 16
                                        + h.to_digit(16)
                                            .ok_or_else(|| format!("invalid escape digit {h:?}"))?;
                                }
                                if e == 'x' {
                                    // A byte; only ASCII keeps the string valid UTF-8.
                                    if v > 0x7f {
                                        return Err(format!(
                                            "\\x{v:02x} is not valid UTF-8 on its own"
                                        ));
                                    }
                                }
                                out.push(char::from_u32(v).ok_or_else(|| {
                                    format!("escape \\{e}{v:x} is not a valid character")
                                })?);
                            }
                            '0'..='7' => {
                                let mut v = e.to_digit(8).unwrap_or(0);
                                for _ in 0..2 {
                                    let (_, o) = chars
                                        .next()
                                        .ok_or_else(|| "unterminated escape".to_owned())?;
                                    v = v * 8
                                        + o.to_digit(8)
                                            .ok_or_else(|| format!("invalid octal digit {o:?}"))?;
                                }
                                if v > 0x7f {
                                    return Err(format!("octal escape {v:o} is not valid UTF-8"));
                                }
                                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                            }
                            other => return Err(format!("unknown escape sequence \\{other}")),
                        }
                    }
                    c => out.push(c),
                }
            }
            Err("unterminated string".to_owned())
        }
        _ => Err("expected a quoted string".to_owned()),
    }
}

/// Parses a byte size as Promtail does (go-humanize `ParseBytes`): `1024`, `8KB` (1000s),
/// `8KiB` (1024s), `1.5 MB`, case-insensitive.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("invalid byte size {s:?} (e.g. 512, 8KB, 8KiB, 1.5MB)");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(t.len());
    let number: f64 = t[..split].replace(',', "").parse().map_err(|_| err())?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        _ => return Err(err()),
    };
    let v = number * mult;
    if !v.is_finite() || v < 0.0 || v >= u64::MAX as f64 {
        return Err(err());
    }
    Ok(v as u64)
}

/// Deserializes a string from any YAML scalar (`500` → `"500"`, `true` → `"true"`), as
/// mapstructure's weak decoding does for Promtail's `drop`, `limit`, `multiline` stages.
pub fn weak_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(WeakString)
}

/// [`weak_string`] for optional fields (`null` → `None`).
pub fn weak_string_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string, a number, a boolean or nothing")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            weak_string(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

struct WeakString;

impl Visitor<'_> for WeakString {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number or a boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A map whose values are weak strings or null (`static_labels`).
pub fn weak_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, Option<String>>, D::Error> {
    struct M;
    impl<'de> Visitor<'de> for M {
        type Value = std::collections::BTreeMap<String, Option<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of names to values")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = std::collections::BTreeMap::new();
            while let Some(k) = m.next_key::<String>()? {
                let v = m.next_value::<WeakOpt>()?;
                out.insert(k, v.0);
            }
            Ok(out)
        }
    }
    struct WeakOpt(Option<String>);
    impl<'de> serde::Deserialize<'de> for WeakOpt {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            weak_string_opt(d).map(WeakOpt)
        }
    }
    d.deserialize_map(M)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_string_literals() {
        assert_eq!(unquote_prefix(r#""a\"b" rest"#), Ok(("a\"b".to_owned(), 6)));
        assert_eq!(
            unquote_prefix(r#""\t\u00e9\x41\101""#).map(|v| v.0),
            Ok("\té\u{41}A".to_owned())
        );
        assert_eq!(unquote_prefix("`a\\d+`x"), Ok(("a\\d+".to_owned(), 6)));
        assert!(unquote_prefix(r#""open"#).is_err());
        assert!(unquote_prefix(r#""\q""#).is_err());
        assert!(unquote_prefix("x").is_err());
    }

    #[test]
    fn humanize_byte_sizes() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("8KB"), Ok(8000));
        assert_eq!(parse_bytes("8kib"), Ok(8192));
        assert_eq!(parse_bytes("1.5 MB"), Ok(1_500_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5XB").is_err());
    }
}
