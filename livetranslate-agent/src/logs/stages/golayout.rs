//! Go's reference-time layouts (`Mon Jan 2 15:04:05 -0700 MST 2006`), parsed the way Go's
//! `time.Parse` / `time.ParseInLocation` read them, compiled once into chunks.
//!
//! Elements: `2006` `06` `January` `Jan` `1` `01` `Monday` `Mon` `2` `_2` `02` `__2` `002`
//! `15` `3` `03` `4` `04` `5` `05` `PM` `pm` `MST` `Z07:00` `Z0700` `Z07` `Z070000`
//! `Z07:00:00` `-07:00` `-0700` `-07` `-070000` `-07:00:00`, fractional seconds `.000` /
//! `.999` (also with `,`), and a fraction in the value after seconds even when the layout has
//! none. A space in the layout matches one or more spaces. Month and day names match
//! case-insensitively. Zone abbreviations (`MST`) are looked up in the zone the layout is
//! parsed in; an abbreviation that zone does not know counts as UTC (Go does the same with
//! its local zone). `GMT+3` and `+03` name their offset.

use crate::tz::Zone;
use livetranslate_telemetry::time::{days_from_civil, days_in_month, is_leap_year as is_leap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// `.000`: exactly n digits.
    FracSecond0(usize),
    /// `.999`: optional, any number of digits.
    FracSecond9,
}

impl Std {
    fn is_frac(self) -> bool {
        matches!(self, Std::FracSecond0(_) | Std::FracSecond9)
    }
    fn is_year(self) -> bool {
        matches!(self, Std::LongYear | Std::Year)
    }
}

/// Go's `nextStdChunk`: the literal prefix, the element, and the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let starts = |i: usize, s: &str| layout.get(i..i + s.len()) == Some(s);
    let lower_at = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_lowercase());
    let digit_at = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    let mut i = 0;
    while i < b.len() {
        let r = |len: usize, std: Std| (&layout[..i], Some(std), &layout[i + len..]);
        match b[i] {
            b'J' if starts(i, "Jan") => {
                if starts(i, "January") {
                    return r(7, Std::LongMonth);
                }
                if !lower_at(i + 3) {
                    return r(3, Std::Month);
                }
            }
            b'M' => {
                if starts(i, "Mon") {
                    if starts(i, "Monday") {
                        return r(6, Std::LongWeekDay);
                    }
                    if !lower_at(i + 3) {
                        return r(3, Std::WeekDay);
                    }
                }
                if starts(i, "MST") {
                    return r(3, Std::Tz);
                }
            }
            b'0' => {
                if let Some(&c) = b.get(i + 1) {
                    if (b'1'..=b'6').contains(&c) {
                        let std = [
                            Std::ZeroMonth,
                            Std::ZeroDay,
                            Std::ZeroHour12,
                            Std::ZeroMinute,
                            Std::ZeroSecond,
                            Std::Year,
                        ][usize::from(c - b'1')];
                        return r(2, std);
                    }
                }
                if starts(i, "002") {
                    return r(3, Std::ZeroYearDay);
                }
            }
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    return r(2, Std::Hour);
                }
                return r(1, Std::NumMonth);
            }
            b'2' => {
                if starts(i, "2006") {
                    return r(4, Std::LongYear);
                }
                return r(1, Std::Day);
            }
            b'_' => {
                if b.get(i + 1) == Some(&b'2') {
                    if starts(i + 1, "2006") {
                        // `_2006` is a literal `_` and a long year.
                        return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                    }
                    return r(2, Std::UnderDay);
                }
                if starts(i, "__2") {
                    return r(3, Std::UnderYearDay);
                }
            }
            b'3' => return r(1, Std::Hour12),
            b'4' => return r(1, Std::Minute),
            b'5' => return r(1, Std::Second),
            b'P' if b.get(i + 1) == Some(&b'M') => return r(2, Std::PM),
            b'p' if b.get(i + 1) == Some(&b'm') => return r(2, Std::Pm),
            b'-' => {
                for (s, std) in [
                    ("-070000", Std::NumSecondsTz),
                    ("-07:00:00", Std::NumColonSecondsTz),
                    ("-0700", Std::NumTz),
                    ("-07:00", Std::NumColonTz),
                    ("-07", Std::NumShortTz),
                ] {
                    if starts(i, s) {
                        return r(s.len(), std);
                    }
                }
            }
            b'Z' => {
                for (s, std) in [
                    ("Z070000", Std::Iso8601SecondsTz),
                    ("Z07:00:00", Std::Iso8601ColonSecondsTz),
                    ("Z0700", Std::Iso8601Tz),
                    ("Z07:00", Std::Iso8601ColonTz),
                    ("Z07", Std::Iso8601ShortTz),
                ] {
                    if starts(i, s) {
                        return r(s.len(), std);
                    }
                }
            }
            b'.' | b',' => {
                if let Some(&ch) = b.get(i + 1) {
                    if ch == b'0' || ch == b'9' {
                        let mut j = i + 1;
                        while j < b.len() && b[j] == ch {
                            j += 1;
                        }
                        if !digit_at(j) {
                            let std = if ch == b'0' {
                                Std::FracSecond0(j - (i + 1))
                            } else {
                                Std::FracSecond9
                            };
                            return (&layout[..i], Some(std), &layout[j..]);
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (layout, None, "")
}

/// A compiled layout.
#[derive(Debug, Clone)]
pub struct Layout {
    text: String,
    chunks: Vec<(String, Option<Std>)>,
    has_year: bool,
    /// RFC 3339 (with or without `.999999999`): canonical values take a fast path.
    rfc3339: bool,
}

/// The named layouts of Go's `time` package.
pub const NAMED: &[(&str, &str)] = &[
    ("ANSIC", "Mon Jan _2 15:04:05 2006"),
    ("UnixDate", "Mon Jan _2 15:04:05 MST 2006"),
    ("RubyDate", "Mon Jan 02 15:04:05 -0700 2006"),
    ("RFC822", "02 Jan 06 15:04 MST"),
    ("RFC822Z", "02 Jan 06 15:04 -0700"),
    ("RFC850", "Monday, 02-Jan-06 15:04:05 MST"),
    ("RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"),
    ("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"),
    ("RFC3339", "2006-01-02T15:04:05Z07:00"),
    ("RFC3339Nano", "2006-01-02T15:04:05.999999999Z07:00"),
    ("Kitchen", "3:04PM"),
    ("Stamp", "Jan _2 15:04:05"),
    ("StampMilli", "Jan _2 15:04:05.000"),
    ("StampMicro", "Jan _2 15:04:05.000000"),
    ("StampNano", "Jan _2 15:04:05.000000000"),
    ("DateTime", "2006-01-02 15:04:05"),
    ("DateOnly", "2006-01-02"),
    ("TimeOnly", "15:04:05"),
];

/// The wall-clock fields a value held, before the zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (0 when the layout has none).
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
    /// 0..1e9.
    pub nanos: u32,
}

/// The zone a value named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ZoneIn<'a> {
    None,
    Utc,
    Offset(i32),
    Abbr(&'a str),
}

impl Layout {
    /// Compiles a layout. Fails when it holds no element at all (Go would then only accept
    /// the literal layout text itself, which is never what is meant).
    pub fn new(text: &str) -> Result<Layout, String> {
        let mut chunks = Vec::new();
        let mut rest = text;
        loop {
            let (prefix, std, suffix) = next_std_chunk(rest);
            chunks.push((prefix.to_owned(), std));
            if std.is_none() {
                break;
            }
            rest = suffix;
        }
        if chunks.iter().all(|(_, s)| s.is_none()) {
            return Err(format!(
                "layout {text:?} has no date or time element: write it with Go's reference time \
                 Mon Jan 2 15:04:05 -0700 MST 2006 (e.g. 2006-01-02T15:04:05Z07:00), or use a \
                 named format (RFC3339, Unix, ...)"
            ));
        }
        let has_year = chunks.iter().any(|(_, s)| s.is_some_and(Std::is_year));
        Ok(Layout {
            text: text.to_owned(),
            chunks,
            has_year,
            rfc3339: matches!(
                text,
                "2006-01-02T15:04:05Z07:00" | "2006-01-02T15:04:05.999999999Z07:00"
            ),
        })
    }

    /// Whether the layout holds a year.
    #[cfg(test)]
    pub fn has_year(&self) -> bool {
        self.has_year
    }

    /// Parses `value` to Unix nanoseconds. A value without zone is read in `zone`; zone
    /// abbreviations are looked up in `zone`. When the layout has no year, `infer_year` gets
    /// the month and returns the year to use (Promtail: the current year, or the neighbouring
    /// one around new year's eve).
    pub fn parse(
        &self,
        value: &str,
        zone: &Zone,
        infer_year: impl FnOnce(u32) -> i64,
    ) -> Result<i64, String> {
        if self.rfc3339 {
            if let Some(ns) = rfc3339_fast(value) {
                return Ok(ns);
            }
        }
        let (mut civil, zin) = self.fields(value)?;
        let mut zin = zin;
        if !self.has_year {
            // Go parses with year 0 (a leap year), Promtail then adds the inferred year with
            // `AddDate`, which rolls February 29 over into March 1 in a common year.
            civil.year = infer_year(civil.month);
            if civil.month == 2 && civil.day == 29 && !is_leap(civil.year) {
                civil.month = 3;
                civil.day = 1;
            }
        }
        let days = days_from_civil(civil.year, civil.month, civil.day);
        let secs = days * 86_400
            + i64::from(civil.hour) * 3600
            + i64::from(civil.minute) * 60
            + i64::from(civil.second);
        let unix = match &mut zin {
            ZoneIn::Utc => secs,
            ZoneIn::Offset(o) => secs - i64::from(*o),
            ZoneIn::None => zone.civil_to_unix(secs),
            ZoneIn::Abbr(name) => match zone.lookup_abbr(name, secs) {
                Some(o) => secs - i64::from(o),
                None => secs - i64::from(abbr_offset(name)),
            },
        };
        unix.checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(i64::from(civil.nanos)))
            .ok_or_else(|| format!("{value:?} is out of range"))
    }

    /// Go's `parse`, up to the fields.
    fn fields<'v>(&self, value: &'v str) -> Result<(Civil, ZoneIn<'v>), String> {
        let bad = |elem: &str, rest: &str| {
            if elem.is_empty() {
                format!(
                    "cannot parse {value:?} as {:?}: unexpected {rest:?}",
                    self.text
                )
            } else {
                format!("cannot parse {rest:?} as {elem:?} (layout {:?})", self.text)
            }
        };
        let range = |what: &str| {
            format!(
                "parsing {value:?} (layout {:?}): {what} out of range",
                self.text
            )
        };
        let mut v = value;
        let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
        let (mut hour, mut minute, mut second, mut nanos) = (0i64, 0i64, 0i64, 0i64);
        let (mut am, mut pm) = (false, false);
        let mut zone = ZoneIn::None;
        for (ci, (prefix, std)) in self.chunks.iter().enumerate() {
            v = skip(v, prefix).ok_or_else(|| bad(prefix, v))?;
            let Some(std) = *std else {
                if !v.is_empty() {
                    return Err(format!(
                        "parsing {value:?} (layout {:?}): extra text {v:?}",
                        self.text
                    ));
                }
                break;
            };
            let elem = std_text(std);
            let hold = v;
            let fail = || bad(elem, hold);
            match std {
                Std::Year => {
                    let p = v.get(..2).ok_or_else(fail)?;
                    let y = atoi(p).ok_or_else(fail)?;
                    year = if y >= 69 { y + 1900 } else { y + 2000 };
                    v = &v[2..];
                }
                Std::LongYear => {
                    if v.len() < 4 || !v.as_bytes()[0].is_ascii_digit() {
                        return Err(fail());
                    }
                    year = atoi(&v[..4]).ok_or_else(fail)?;
                    v = &v[4..];
                }
                Std::Month | Std::LongMonth => {
                    let tab = if std == Std::Month {
                        &SHORT_MONTHS
                    } else {
                        &LONG_MONTHS
                    };
                    let (i, rest) = lookup(tab, v).ok_or_else(fail)?;
                    month = i as i64 + 1;
                    v = rest;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (n, rest) = getnum(v, std == Std::ZeroMonth).ok_or_else(fail)?;
                    if !(1..=12).contains(&n) {
                        return Err(range("month"));
                    }
                    month = n;
                    v = rest;
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let tab = if std == Std::WeekDay {
                        &SHORT_DAYS
                    } else {
                        &LONG_DAYS
                    };
                    v = lookup(tab, v).ok_or_else(fail)?.1;
                }
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay {
                        v = v.strip_prefix(' ').unwrap_or(v);
                    }
                    let (n, rest) = getnum(v, std == Std::ZeroDay).ok_or_else(fail)?;
                    day = n;
                    v = rest;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    if std == Std::UnderYearDay {
                        for _ in 0..2 {
                            v = v.strip_prefix(' ').unwrap_or(v);
                        }
                    }
                    let (n, rest) = getnum3(v, std == Std::ZeroYearDay).ok_or_else(fail)?;
                    yday = n;
                    v = rest;
                }
                Std::Hour => {
                    let (n, rest) = getnum(v, false).ok_or_else(fail)?;
                    if n >= 24 {
                        return Err(range("hour"));
                    }
                    hour = n;
                    v = rest;
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (n, rest) = getnum(v, std == Std::ZeroHour12).ok_or_else(fail)?;
                    if n > 12 {
                        return Err(range("hour"));
                    }
                    hour = n;
                    v = rest;
                }
                Std::Minute | Std::ZeroMinute => {
                    let (n, rest) = getnum(v, std == Std::ZeroMinute).ok_or_else(fail)?;
                    if n >= 60 {
                        return Err(range("minute"));
                    }
                    minute = n;
                    v = rest;
                }
                Std::Second | Std::ZeroSecond => {
                    let (n, rest) = getnum(v, std == Std::ZeroSecond).ok_or_else(fail)?;
                    if n >= 60 {
                        return Err(range("second"));
                    }
                    second = n;
                    v = rest;
                    // A fraction in the value that the layout does not have.
                    let vb = v.as_bytes();
                    if vb.len() >= 2 && matches!(vb[0], b'.' | b',') && vb[1].is_ascii_digit() {
                        let next_is_frac = self
                            .chunks
                            .get(ci + 1)
                            .is_some_and(|(_, s)| s.is_some_and(Std::is_frac));
                        if !next_is_frac {
                            let n = 1 + vb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                            nanos = parse_nanos(&v[..n]).ok_or_else(fail)?;
                            v = &v[n..];
                        }
                    }
                }
                Std::PM | Std::Pm => {
                    let p = v.get(..2).ok_or_else(fail)?;
                    let (amv, pmv) = if std == Std::PM {
                        ("AM", "PM")
                    } else {
                        ("am", "pm")
                    };
                    if p == pmv {
                        pm = true;
                    } else if p == amv {
                        am = true;
                    } else {
                        return Err(fail());
                    }
                    v = &v[2..];
                }
                Std::Iso8601Tz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601ColonSecondsTz
                | Std::NumTz
                | Std::NumSecondsTz
                | Std::NumShortTz
                | Std::NumColonTz
                | Std::NumColonSecondsTz => {
                    let iso = matches!(
                        std,
                        Std::Iso8601Tz
                            | Std::Iso8601SecondsTz
                            | Std::Iso8601ShortTz
                            | Std::Iso8601ColonTz
                            | Std::Iso8601ColonSecondsTz
                    );
                    if iso && v.starts_with('Z') {
                        v = &v[1..];
                        zone = ZoneIn::Utc;
                        continue;
                    }
                    let vb = v.as_bytes();
                    let (h, m, s, len) = match std {
                        Std::Iso8601ColonTz | Std::NumColonTz => {
                            if vb.len() < 6 || vb[3] != b':' {
                                return Err(fail());
                            }
                            (&v[1..3], &v[4..6], "00", 6)
                        }
                        Std::NumShortTz | Std::Iso8601ShortTz => {
                            if vb.len() < 3 {
                                return Err(fail());
                            }
                            (&v[1..3], "00", "00", 3)
                        }
                        Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
                            if vb.len() < 9 || vb[3] != b':' || vb[6] != b':' {
                                return Err(fail());
                            }
                            (&v[1..3], &v[4..6], &v[7..9], 9)
                        }
                        Std::Iso8601SecondsTz | Std::NumSecondsTz => {
                            if vb.len() < 7 {
                                return Err(fail());
                            }
                            (&v[1..3], &v[3..5], &v[5..7], 7)
                        }
                        _ => {
                            if vb.len() < 5 {
                                return Err(fail());
                            }
                            (&v[1..3], &v[3..5], "00", 5)
                        }
                    };
                    let hh = getnum(h, true)
                        .filter(|(_, r)| r.is_empty())
                        .ok_or_else(fail)?
                        .0;
                    let mm = getnum(m, true)
                        .filter(|(_, r)| r.is_empty())
                        .ok_or_else(fail)?
                        .0;
                    let ss = getnum(s, true)
                        .filter(|(_, r)| r.is_empty())
                        .ok_or_else(fail)?
                        .0;
                    let off = ((hh * 60 + mm) * 60 + ss) as i32;
                    zone = match vb[0] {
                        b'+' => ZoneIn::Offset(off),
                        b'-' => ZoneIn::Offset(-off),
                        _ => return Err(fail()),
                    };
                    v = &v[len..];
                }
                Std::Tz => {
                    if v.starts_with("UTC") {
                        zone = ZoneIn::Utc;
                        v = &v[3..];
                        continue;
                    }
                    let n = parse_time_zone(v).ok_or_else(fail)?;
                    zone = ZoneIn::Abbr(&v[..n]);
                    v = &v[n..];
                }
                Std::FracSecond0(n) => {
                    let nd = 1 + n;
                    if v.len() < nd {
                        return Err(fail());
                    }
                    nanos = parse_nanos(v.get(..nd).ok_or_else(fail)?).ok_or_else(fail)?;
                    v = &v[nd..];
                }
                Std::FracSecond9 => {
                    let vb = v.as_bytes();
                    if vb.len() < 2 || !matches!(vb[0], b'.' | b',') || !vb[1].is_ascii_digit() {
                        continue;
                    }
                    let n = 1 + vb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nanos = parse_nanos(&v[..n]).ok_or_else(fail)?;
                    v = &v[n..];
                }
            }
        }
        if pm && hour < 12 {
            hour += 12;
        } else if am && hour == 12 {
            hour = 0;
        }
        if yday >= 0 {
            let mut m = 0i64;
            let mut d = 0i64;
            if is_leap(year) {
                if yday == 31 + 29 {
                    m = 2;
                    d = 29;
                } else if yday > 31 + 29 {
                    yday -= 1;
                }
            }
            if !(1..=365).contains(&yday) {
                return Err(range("day-of-year"));
            }
            if m == 0 {
                m = (yday - 1) / 31 + 1;
                if DAYS_BEFORE[m as usize] < yday {
                    m += 1;
                }
                d = yday - DAYS_BEFORE[m as usize - 1];
            }
            if month >= 0 && month != m {
                return Err(format!(
                    "parsing {value:?}: day-of-year does not match month"
                ));
            }
            month = m;
            if day >= 0 && day != d {
                return Err(format!("parsing {value:?}: day-of-year does not match day"));
            }
            day = d;
        } else {
            if month < 0 {
                month = 1;
            }
            if day < 0 {
                day = 1;
            }
        }
        if day < 1 || day > i64::from(days_in_month(year, month as u32)) {
            return Err(range("day"));
        }
        Ok((
            Civil {
                year,
                month: month as u32,
                day: day as u32,
                hour: hour as u32,
                minute: minute as u32,
                second: second as u32,
                nanos: nanos as u32,
            },
            zone,
        ))
    }
}

/// Canonical RFC 3339 (`2006-01-02T15:04:05[.frac](Z|±07:00)`), the form nearly every
/// value has; anything else (`,` fractions, one-digit hours Go also accepts) goes through
/// the general parser, which gives the same result for these.
fn rfc3339_fast(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || hour >= 24 || min >= 60 || sec >= 60 {
        return None;
    }
    if day < 1 || day > i64::from(days_in_month(year, month as u32)) {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits.min(9)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

const DAYS_BEFORE: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn std_text(std: Std) -> &'static str {
    match std {
        Std::LongMonth => "January",
        Std::Month => "Jan",
        Std::NumMonth => "1",
        Std::ZeroMonth => "01",
        Std::LongWeekDay => "Monday",
        Std::WeekDay => "Mon",
        Std::Day => "2",
        Std::UnderDay => "_2",
        Std::ZeroDay => "02",
        Std::UnderYearDay => "__2",
        Std::ZeroYearDay => "002",
        Std::Hour => "15",
        Std::Hour12 => "3",
        Std::ZeroHour12 => "03",
        Std::Minute => "4",
        Std::ZeroMinute => "04",
        Std::Second => "5",
        Std::ZeroSecond => "05",
        Std::LongYear => "2006",
        Std::Year => "06",
        Std::PM => "PM",
        Std::Pm => "pm",
        Std::Tz => "MST",
        Std::Iso8601Tz => "Z0700",
        Std::Iso8601SecondsTz => "Z070000",
        Std::Iso8601ShortTz => "Z07",
        Std::Iso8601ColonTz => "Z07:00",
        Std::Iso8601ColonSecondsTz => "Z07:00:00",
        Std::NumTz => "-0700",
        Std::NumSecondsTz => "-070000",
        Std::NumShortTz => "-07",
        Std::NumColonTz => "-07:00",
        Std::NumColonSecondsTz => "-07:00:00",
        Std::FracSecond0(_) => ".000",
        Std::FracSecond9 => ".999",
    }
}

/// Go's `skip`: literal layout text; a space matches one or more spaces.
fn skip<'v>(mut value: &'v str, mut prefix: &str) -> Option<&'v str> {
    while let Some(&p) = prefix.as_bytes().first() {
        if p == b' ' {
            if value.as_bytes().first().is_some_and(|&c| c != b' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        if value.as_bytes().first() != Some(&p) {
            return None;
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Some(value)
}

fn atoi(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    if !b.get(1).is_some_and(u8::is_ascii_digit) {
        if fixed {
            return None;
        }
        return Some((i64::from(b[0] - b'0'), &s[1..]));
    }
    Some((
        i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'),
        &s[2..],
    ))
}

/// Go's `getnum3`: one to three digits (exactly three when `fixed`).
fn getnum3(s: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    let n = b.iter().take(3).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || (fixed && n != 3) {
        return None;
    }
    Some((atoi(&s[..n])?, &s[n..]))
}

/// Case-insensitive prefix match against a table of names.
fn lookup<'v>(tab: &[&str], v: &'v str) -> Option<(usize, &'v str)> {
    tab.iter().enumerate().find_map(|(i, name)| {
        let p = v.get(..name.len())?;
        p.eq_ignore_ascii_case(name).then(|| (i, &v[name.len()..]))
    })
}

/// `.123` / `,123` → nanoseconds (digits past the ninth are dropped).
fn parse_nanos(s: &str) -> Option<i64> {
    let digits = s.get(1..)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d = &digits[..digits.len().min(9)];
    let mut ns: i64 = d.parse().ok()?;
    for _ in d.len()..9 {
        ns *= 10;
    }
    Some(ns)
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `v`.
fn parse_time_zone(v: &str) -> Option<usize> {
    let b = v.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if v.starts_with("ChST") || v.starts_with("MeST") {
        return Some(4);
    }
    if let Some(rest) = v.strip_prefix("GMT") {
        return Some(3 + signed_offset_len(rest));
    }
    if b[0] == b'+' || b[0] == b'-' {
        let n = signed_offset_len(v);
        return (n > 0).then_some(n);
    }
    let upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if b[3] == b'T' || v.starts_with("WITA") => Some(4),
        5 if b[4] == b'T' => Some(5),
        _ => None,
    }
}

/// Go's `parseSignedOffset`: `+3`, `-10` (hours, at most 23).
fn signed_offset_len(v: &str) -> usize {
    let b = v.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || atoi(&v[1..1 + n]).is_none_or(|h| h > 23) {
        return 0;
    }
    1 + n
}

/// The offset an abbreviation names when the zone does not know it: `GMT+3`, `+03`, else 0.
fn abbr_offset(name: &str) -> i32 {
    let signed = name.strip_prefix("GMT").unwrap_or(name);
    let (sign, digits) = match signed.as_bytes().first() {
        Some(b'+') => (1, &signed[1..]),
        Some(b'-') => (-1, &signed[1..]),
        _ => return 0,
    };
    atoi(digits).map_or(0, |h| sign * (h as i32) * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1_000_000_000;

    fn parse(layout: &str, value: &str) -> Result<i64, String> {
        Layout::new(layout)?.parse(value, &Zone::fixed("UTC", 0), |_| 2023)
    }

    #[test]
    fn layout_table() {
        // (layout, value, expected Unix seconds, expected nanos)
        let cases: &[(&str, &str, i64, i64)] = &[
            (
                "2006-01-02T15:04:05Z07:00",
                "2023-11-14T22:13:20Z",
                1_700_000_000,
                0,
            ),
            (
                "2006-01-02T15:04:05Z07:00",
                "2023-11-14T23:13:20+01:00",
                1_700_000_000,
                0,
            ),
            // A fraction the layout does not have is still read.
            (
                "2006-01-02T15:04:05Z07:00",
                "2023-11-14T22:13:20.5Z",
                1_700_000_000,
                500_000_000,
            ),
            (
                "2006-01-02T15:04:05.999999999Z07:00",
                "2023-11-14T22:13:20.123456789Z",
                1_700_000_000,
                123_456_789,
            ),
            (
                "2006-01-02T15:04:05.999999999Z07:00",
                "2023-11-14T22:13:20Z",
                1_700_000_000,
                0,
            ),
            (
                "2006-01-02 15:04:05.000",
                "2023-11-14 22:13:20.120",
                1_700_000_000,
                120_000_000,
            ),
            (
                "2006-01-02 15:04:05,000",
                "2023-11-14 22:13:20,120",
                1_700_000_000,
                120_000_000,
            ),
            (
                "2006-01-02T15:04:05-0700",
                "2023-11-14T15:13:20-0700",
                1_700_000_000,
                0,
            ),
            (
                "2006-01-02T15:04:05-07",
                "2023-11-14T15:13:20-07",
                1_700_000_000,
                0,
            ),
            (
                "Mon Jan _2 15:04:05 2006",
                "Tue Nov 14 22:13:20 2023",
                1_700_000_000,
                0,
            ),
            (
                "Mon Jan _2 15:04:05 2006",
                "Wed Nov  1 22:13:20 2023",
                1_698_876_800,
                0,
            ),
            (
                "Mon, 02 Jan 2006 15:04:05 -0700",
                "Tue, 14 Nov 2023 22:13:20 +0000",
                1_700_000_000,
                0,
            ),
            (
                "Monday, 02-Jan-06 15:04:05 MST",
                "Tuesday, 14-Nov-23 22:13:20 UTC",
                1_700_000_000,
                0,
            ),
            (
                "02 Jan 06 15:04 MST",
                "14 Nov 23 22:13 GMT",
                1_699_999_980,
                0,
            ),
            (
                "02 Jan 06 15:04 MST",
                "14 Nov 23 23:13 GMT+1",
                1_699_999_980,
                0,
            ),
            // An unknown abbreviation counts as UTC, as in Go.
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Tue Nov 14 22:13:20 XYZ 2023",
                1_700_000_000,
                0,
            ),
            (
                "January 2, 2006 3:04:05 PM",
                "November 14, 2023 10:13:20 PM",
                1_700_000_000,
                0,
            ),
            (
                "January 2, 2006 3:04:05 pm",
                "november 14, 2023 10:13:20 pm",
                1_700_000_000,
                0,
            ),
            (
                "Jan 2, 2006 03:04:05 PM",
                "Nov 14, 2023 12:13:20 AM",
                1_699_920_800,
                0,
            ),
            ("02/01/2006 15:04", "14/11/2023 22:13", 1_699_999_980, 0),
            ("2006-002 15:04:05", "2023-318 22:13:20", 1_700_000_000, 0),
            ("06-1-2 3:4:5PM", "23-11-14 10:13:20PM", 1_700_000_000, 0),
            // Spaces in the layout match runs of spaces.
            (
                "2006-01-02  15:04:05",
                "2023-11-14 22:13:20",
                1_700_000_000,
                0,
            ),
            ("20060102150405", "20231114221320", 1_700_000_000, 0),
            ("2006-01-02", "2023-11-14", 1_699_920_000, 0),
        ];
        for (layout, value, secs, nanos) in cases {
            assert_eq!(
                parse(layout, value),
                Ok(secs * NS + nanos),
                "{layout} / {value}"
            );
        }
    }

    #[test]
    fn rfc3339_fast_path_agrees_with_the_general_parser() {
        let general = |v: &str| {
            let l = Layout::new("2006-01-02T15:04:05.999999999Z07:00").expect("layout");
            l.fields(v).ok().map(|(c, z)| {
                let secs = days_from_civil(c.year, c.month, c.day) * 86_400
                    + i64::from(c.hour) * 3600
                    + i64::from(c.minute) * 60
                    + i64::from(c.second);
                let off = match z {
                    ZoneIn::Utc => 0,
                    ZoneIn::Offset(o) => i64::from(o),
                    _ => panic!("{v}: no zone"),
                };
                (secs - off) * NS + i64::from(c.nanos)
            })
        };
        for v in [
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.5Z",
            "2023-11-14T22:13:20.123456789123Z",
            "2024-02-29T00:00:00+14:00",
            "1969-12-31T23:59:59.999-00:30",
            "2023-11-14T22:13:20.Z",
            "2023-02-29T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14t22:13:20Z",
            "2023-11-14T22:13:20,5Z",
        ] {
            let fast = rfc3339_fast(v);
            if fast.is_some() {
                assert_eq!(fast, general(v), "{v}");
            }
            let l = Layout::new("2006-01-02T15:04:05.999999999Z07:00").expect("layout");
            assert_eq!(
                l.parse(v, &Zone::fixed("UTC", 0), |_| 0).ok(),
                general(v),
                "{v}"
            );
        }
    }

    #[test]
    fn layout_errors() {
        for (layout, value) in [
            ("2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20"),
            ("2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20Zjunk"),
            ("2006-01-02", "2023-02-30"),
            ("2006-01-02", "2023-13-01"),
            ("15:04", "24:00"),
            ("2006-01-02 15:04:05.000", "2023-11-14 22:13:20.12"),
            ("Jan 2", "Foo 2"),
            ("02 Jan", "2 Nov"),
            ("3PM", "3XM"),
            ("2006-002", "2023-366"),
        ] {
            assert!(parse(layout, value).is_err(), "{layout} / {value}");
        }
        assert!(Layout::new("yyyy-MM-dd").is_err());
    }

    #[test]
    fn year_less_layouts_take_the_inferred_year() {
        let l = Layout::new("Jan _2 15:04:05").expect("layout");
        assert!(!l.has_year());
        let z = Zone::fixed("UTC", 0);
        assert_eq!(
            l.parse("Nov 14 22:13:20", &z, |m| {
                assert_eq!(m, 11);
                2023
            }),
            Ok(1_700_000_000 * NS)
        );
        // February 29 in a common year rolls over to March 1 (Go's AddDate).
        let feb = Layout::new("01-02").expect("layout");
        assert_eq!(
            feb.parse("02-29", &z, |_| 2023),
            Ok(days_from_civil(2023, 3, 1) * 86_400 * NS)
        );
        assert_eq!(
            feb.parse("02-29", &z, |_| 2024),
            Ok(days_from_civil(2024, 2, 29) * 86_400 * NS)
        );
    }

    #[test]
    fn zones_apply_to_values_without_offset() {
        let l = Layout::new("2006-01-02 15:04:05").expect("layout");
        let plus2 = Zone::fixed("+02:00", 7200);
        assert_eq!(
            l.parse("2023-11-15 00:13:20", &plus2, |_| 0),
            Ok(1_700_000_000 * NS)
        );
        // A value with an offset ignores the zone.
        let l = Layout::new("2006-01-02 15:04:05 -0700").expect("layout");
        assert_eq!(
            l.parse("2023-11-14 22:13:20 +0000", &plus2, |_| 0),
            Ok(1_700_000_000 * NS)
        );
        if let Ok(ny) = Zone::load("America/New_York") {
            let l = Layout::new("2006-01-02 15:04:05 MST").expect("layout");
            // EST / EDT resolved in the configured zone.
            assert_eq!(
                l.parse("2023-11-14 17:13:20 EST", &ny, |_| 0),
                Ok(1_700_000_000 * NS)
            );
            assert_eq!(
                l.parse("2023-07-14 18:13:20 EDT", &ny, |_| 0),
                Ok(1_689_372_800 * NS)
            );
            let l = Layout::new("2006-01-02 15:04:05").expect("layout");
            assert_eq!(
                l.parse("2023-07-14 18:13:20", &ny, |_| 0),
                Ok(1_689_372_800 * NS)
            );
        }
    }
}
