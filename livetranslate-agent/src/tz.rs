//! Time zones, the agent's one zone module (a leaf: it imports nothing of the agent): the
//! pipeline `timestamp` stage's `location` and every other reader of local times use it.
//! There is no bundled database: IANA names are read from the system's compiled zoneinfo files (TZif, as Go's `time.LoadLocation`
//! does: `$ZONEINFO`, then `/usr/share/zoneinfo` and the other usual places), including the
//! POSIX TZ rule in their footer that covers times after the last listed transition (the
//! "slim" files of recent distributions hold little else). Fixed offsets (`+02:00`, `-0530`,
//! `+05`) and `UTC` need no files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One local-time type of a zone: its UTC offset and abbreviation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalType {
    offset: i32,
    abbr: String,
    is_dst: bool,
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posix {
    std: LocalType,
    dst: Option<(LocalType, Rule, Rule)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Day {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(u32),
    /// `n`: day 0..=365, counting February 29.
    Julian0(u32),
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeek(u32, u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    day: Day,
    /// Seconds after local midnight (may be negative or over 24h).
    time: i64,
}

/// A time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    /// Transition instants (Unix seconds), ascending.
    transitions: Vec<i64>,
    /// Index into `types` for each transition.
    type_of: Vec<usize>,
    types: Vec<LocalType>,
    footer: Option<Posix>,
}

/// What is in effect at an instant: the offset and the span it holds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// Seconds east of UTC.
    pub offset: i32,
    /// The abbreviation (`CEST`).
    pub abbr: &'a str,
    /// First instant of the span.
    pub start: i64,
    /// First instant after the span.
    pub end: i64,
}

impl Zone {
    /// UTC.
    pub fn utc() -> Arc<Zone> {
        Arc::new(Zone::fixed("UTC", 0))
    }

    /// A zone with one fixed offset.
    pub fn fixed(name: &str, offset: i32) -> Zone {
        Zone {
            name: name.to_owned(),
            transitions: Vec::new(),
            type_of: Vec::new(),
            types: vec![LocalType {
                offset,
                abbr: name.to_owned(),
                is_dst: false,
            }],
            footer: None,
        }
    }

    /// Loads a zone by name: `UTC`, `Local`, an IANA name (`Europe/Berlin`), or a fixed
    /// offset (`+02:00`, `-0530`, `+05`).
    pub fn load(name: &str) -> Result<Arc<Zone>, String> {
        if name.is_empty() || name == "UTC" {
            return Ok(Zone::utc());
        }
        if let Some(offset) = parse_fixed(name) {
            return Ok(Arc::new(Zone::fixed(name, offset)));
        }
        if name == "Local" {
            return load_local().map(Arc::new);
        }
        if name.starts_with('/') || name.contains("..") || name.contains('\\') {
            return Err(format!("invalid location {name:?}: not a zone name"));
        }
        for dir in zone_dirs() {
            let path = dir.join(name);
            if let Ok(bytes) = std::fs::read(&path) {
                return parse_tzif(name, &bytes)
                    .map(Arc::new)
                    .map_err(|e| format!("location {name:?}: {}: {e}", path.display()));
            }
        }
        Err(format!(
            "unknown location {name:?}: no such zone in the system's time zone database \
             (looked in {}; install the tzdata package, or use a fixed offset such as +02:00)",
            zone_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The offset in effect at `unix` and the span it holds for (Go's `Location.lookup`).
    pub fn lookup(&self, unix: i64) -> Lookup<'_> {
        if self.transitions.is_empty() || unix < self.transitions[0] {
            if self.transitions.is_empty() {
                if let Some(p) = &self.footer {
                    return p.lookup(unix);
                }
            }
            let t = self.first_type();
            return Lookup {
                offset: t.offset,
                abbr: &t.abbr,
                start: i64::MIN,
                end: self.transitions.first().copied().unwrap_or(i64::MAX),
            };
        }
        let i = self.transitions.partition_point(|&t| t <= unix) - 1;
        let t = &self.types[self.type_of[i]];
        let end = self.transitions.get(i + 1).copied().unwrap_or(i64::MAX);
        if i + 1 == self.transitions.len() {
            if let Some(p) = &self.footer {
                let l = p.lookup(unix);
                return Lookup {
                    start: l.start.max(self.transitions[i]),
                    ..l
                };
            }
        }
        Lookup {
            offset: t.offset,
            abbr: &t.abbr,
            start: self.transitions[i],
            end,
        }
    }

    /// Go's `lookupFirstZone`: the type in effect before the first transition.
    fn first_type(&self) -> &LocalType {
        if !self.type_of.contains(&0) {
            return &self.types[0];
        }
        if let Some(&first) = self.type_of.first() {
            if self.types[first].is_dst {
                if let Some(t) = self.types[..first].iter().rev().find(|t| !t.is_dst) {
                    return t;
                }
            }
        }
        self.types
            .iter()
            .find(|t| !t.is_dst)
            .unwrap_or(&self.types[0])
    }

    /// The offset of the abbreviation `abbr` around `unix` (Go's `Location.lookupName`):
    /// first a type of that name in effect at that time, else any type of that name.
    pub fn lookup_abbr(&self, abbr: &str, unix: i64) -> Option<i32> {
        let footer_types = self
            .footer
            .iter()
            .flat_map(|p| std::iter::once(&p.std).chain(p.dst.as_ref().map(|(d, _, _)| d)));
        let all: Vec<&LocalType> = self.types.iter().chain(footer_types).collect();
        for t in &all {
            if t.abbr == abbr {
                let l = self.lookup(unix - i64::from(t.offset));
                if l.abbr == t.abbr {
                    return Some(l.offset);
                }
            }
        }
        all.iter().find(|t| t.abbr == abbr).map(|t| t.offset)
    }

    /// Unix seconds of a civil (wall-clock) time in this zone, as Go's `time.Date` resolves
    /// it (in a gap or an overlap the choice follows Go: the offset in effect just before).
    pub fn civil_to_unix(&self, civil_secs: i64) -> i64 {
        let l = self.lookup(civil_secs);
        let mut offset = l.offset;
        if offset != 0 {
            let utc = civil_secs - i64::from(offset);
            if utc < l.start || utc >= l.end {
                offset = self.lookup(utc).offset;
            }
        }
        civil_secs - i64::from(offset)
    }

    /// The offset at `unix`.
    pub fn offset_at(&self, unix: i64) -> i32 {
        self.lookup(unix).offset
    }
}

/// `+02:00`, `-0530`, `+05` → seconds east of UTC.
fn parse_fixed(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || s[1..].matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 || (s.contains(':') && digits.len() != 4) {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn zone_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(z) = std::env::var("ZONEINFO") {
        if !z.is_empty() && Path::new(&z).is_dir() {
            dirs.push(PathBuf::from(z));
        }
    }
    for d in [
        "/usr/share/zoneinfo",
        "/usr/share/lib/zoneinfo",
        "/usr/lib/locale/TZ",
        "/etc/zoneinfo",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

fn load_local() -> Result<Zone, String> {
    match std::env::var("TZ") {
        Ok(tz) if tz.is_empty() => Ok(Zone::fixed("UTC", 0)),
        Ok(tz) => {
            let name = tz.strip_prefix(':').unwrap_or(&tz);
            if let Ok(z) = Zone::load(name) {
                return Ok(Zone {
                    name: "Local".to_owned(),
                    ..(*z).clone()
                });
            }
            if let Some(p) = parse_posix(name) {
                return Ok(Zone {
                    name: "Local".to_owned(),
                    transitions: Vec::new(),
                    type_of: Vec::new(),
                    types: vec![p.std.clone()],
                    footer: Some(p),
                });
            }
            Ok(Zone::fixed("UTC", 0))
        }
        Err(_) => match std::fs::read("/etc/localtime") {
            Ok(bytes) => parse_tzif("Local", &bytes),
            Err(_) => Ok(Zone::fixed("UTC", 0)),
        },
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or_else(|| "truncated TZif data".to_owned())?;
        self.pos += n;
        Ok(s)
    }
    fn be32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Parses a compiled TZif file (RFC 8536), preferring its 64-bit part and footer.
fn parse_tzif(name: &str, bytes: &[u8]) -> Result<Zone, String> {
    let mut r = Reader { b: bytes, pos: 0 };
    let (version, counts) = header(&mut r)?;
    let mut time_size = 4;
    if version >= b'2' {
        // Skip the 32-bit block and read the 64-bit one.
        let [isutc, isstd, leap, time, typ, chars] = counts;
        r.take(time * 4 + time + typ * 6 + chars + leap * 8 + isstd + isutc)?;
        let (_, c2) = header(&mut r)?;
        time_size = 8;
        return body(name, &mut r, c2, time_size, true);
    }
    body(name, &mut r, counts, time_size, false)
}

fn header(r: &mut Reader<'_>) -> Result<(u8, [usize; 6]), String> {
    if r.take(4)? != b"TZif" {
        return Err("not a TZif file".to_owned());
    }
    let version = r.take(1)?[0];
    r.take(15)?;
    let mut counts = [0usize; 6];
    for c in &mut counts {
        *c = r.be32()? as usize;
    }
    Ok((if version == 0 { b'1' } else { version }, counts))
}

fn body(
    name: &str,
    r: &mut Reader<'_>,
    counts: [usize; 6],
    time_size: usize,
    has_footer: bool,
) -> Result<Zone, String> {
    let [isutc, isstd, leap, time, typ, chars] = counts;
    if typ == 0 {
        return Err("TZif data without local time types".to_owned());
    }
    let mut transitions = Vec::with_capacity(time);
    for _ in 0..time {
        let s = r.take(time_size)?;
        let t = if time_size == 8 {
            i64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
        } else {
            i64::from(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        };
        transitions.push(t);
    }
    let type_of: Vec<usize> = r.take(time)?.iter().map(|&i| usize::from(i)).collect();
    let mut raw_types = Vec::with_capacity(typ);
    for _ in 0..typ {
        let s = r.take(6)?;
        let offset = i32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        raw_types.push((offset, s[4] != 0, usize::from(s[5])));
    }
    let abbrs = r.take(chars)?;
    r.take(leap * (time_size + 4) + isstd + isutc)?;
    let types = raw_types
        .into_iter()
        .map(|(offset, is_dst, idx)| {
            let end = abbrs[idx.min(abbrs.len())..]
                .iter()
                .position(|&b| b == 0)
                .map_or(abbrs.len(), |p| idx + p);
            LocalType {
                offset,
                abbr: String::from_utf8_lossy(abbrs.get(idx..end).unwrap_or_default()).into_owned(),
                is_dst,
            }
        })
        .collect::<Vec<_>>();
    if type_of.iter().any(|&i| i >= types.len()) {
        return Err("TZif transition refers to a missing type".to_owned());
    }
    let mut footer = None;
    if has_footer {
        let rest = &r.b[r.pos..];
        if rest.first() == Some(&b'\n') {
            if let Some(end) = rest[1..].iter().position(|&b| b == b'\n') {
                let s = String::from_utf8_lossy(&rest[1..1 + end]).into_owned();
                if !s.is_empty() {
                    footer = parse_posix(&s);
                }
            }
        }
    }
    Ok(Zone {
        name: name.to_owned(),
        transitions,
        type_of,
        types,
        footer,
    })
}

/// Parses a POSIX TZ string.
fn parse_posix(s: &str) -> Option<Posix> {
    let mut p = PosixParser { s, i: 0 };
    let std_abbr = p.abbr()?;
    let std_off = -p.offset()?;
    let std = LocalType {
        offset: std_off,
        abbr: std_abbr,
        is_dst: false,
    };
    if p.done() {
        return Some(Posix { std, dst: None });
    }
    let dst_abbr = p.abbr()?;
    let dst_off = if p.peek() == Some(',') || p.done() {
        std_off + 3600
    } else {
        -p.offset()?
    };
    let dst = LocalType {
        offset: dst_off,
        abbr: dst_abbr,
        is_dst: true,
    };
    if p.done() {
        // No rule: the US rules POSIX falls back to.
        let start = Rule {
            day: Day::MonthWeek(3, 2, 0),
            time: 7200,
        };
        let end = Rule {
            day: Day::MonthWeek(11, 1, 0),
            time: 7200,
        };
        return Some(Posix {
            std,
            dst: Some((dst, start, end)),
        });
    }
    p.eat(',')?;
    let start = p.rule()?;
    p.eat(',')?;
    let end = p.rule()?;
    if !p.done() {
        return None;
    }
    Some(Posix {
        std,
        dst: Some((dst, start, end)),
    })
}

struct PosixParser<'a> {
    s: &'a str,
    i: usize,
}

impl PosixParser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }
    fn eat(&mut self, c: char) -> Option<()> {
        (self.peek()? == c).then(|| self.i += c.len_utf8())
    }
    fn abbr(&mut self) -> Option<String> {
        let rest = &self.s[self.i..];
        if let Some(r) = rest.strip_prefix('<') {
            let end = r.find('>')?;
            self.i += end + 2;
            return Some(r[..end].to_owned());
        }
        let end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if end < 3 {
            return None;
        }
        self.i += end;
        Some(rest[..end].to_owned())
    }
    fn number(&mut self) -> Option<i64> {
        let rest = &self.s[self.i..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        self.i += end;
        rest[..end].parse().ok()
    }
    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn hms(&mut self) -> Option<i64> {
        let mut sign = 1;
        if self.peek() == Some('-') {
            sign = -1;
            self.i += 1;
        } else if self.peek() == Some('+') {
            self.i += 1;
        }
        let mut secs = self.number()? * 3600;
        if self.eat(':').is_some() {
            secs += self.number()? * 60;
            if self.eat(':').is_some() {
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }
    fn offset(&mut self) -> Option<i32> {
        i32::try_from(self.hms()?).ok()
    }
    fn rule(&mut self) -> Option<Rule> {
        let day = match self.peek()? {
            'J' => {
                self.i += 1;
                Day::Julian1(u32::try_from(self.number()?).ok()?)
            }
            'M' => {
                self.i += 1;
                let m = self.number()?;
                self.eat('.')?;
                let w = self.number()?;
                self.eat('.')?;
                let d = self.number()?;
                if !(1..=12).contains(&m) || !(1..=5).contains(&w) || d > 6 {
                    return None;
                }
                Day::MonthWeek(m as u32, w as u32, d as u32)
            }
            _ => Day::Julian0(u32::try_from(self.number()?).ok()?),
        };
        let time = if self.eat('/').is_some() {
            self.hms()?
        } else {
            7200
        };
        Some(Rule { day, time })
    }
}

impl Posix {
    fn lookup(&self, unix: i64) -> Lookup<'_> {
        let Some((dst, start, end)) = &self.dst else {
            return Lookup {
                offset: self.std.offset,
                abbr: &self.std.abbr,
                start: i64::MIN,
                end: i64::MAX,
            };
        };
        let year = livetranslate_telemetry::time::year_of_unix(unix + i64::from(self.std.offset));
        // Transitions of this year in UTC: the start is given in standard local time, the
        // end in daylight local time.
        let mut spans = Vec::with_capacity(6);
        for y in [year - 1, year, year + 1] {
            let s = rule_instant(y, start) - i64::from(self.std.offset);
            let e = rule_instant(y, end) - i64::from(dst.offset);
            spans.push((s, true));
            spans.push((e, false));
        }
        spans.sort_by_key(|&(t, _)| t);
        let idx = spans.partition_point(|&(t, _)| t <= unix);
        let (span_start, is_dst) = if idx == 0 {
            (i64::MIN, !spans[0].1)
        } else {
            spans[idx - 1]
        };
        let span_end = spans.get(idx).map_or(i64::MAX, |&(t, _)| t);
        let t = if is_dst { dst } else { &self.std };
        Lookup {
            offset: t.offset,
            abbr: &t.abbr,
            start: span_start,
            end: span_end,
        }
    }
}

/// Local seconds (from the epoch, as if UTC) at which `rule` fires in `year`.
fn rule_instant(year: i64, rule: &Rule) -> i64 {
    use livetranslate_telemetry::time::{days_from_civil, is_leap_year as is_leap};
    let jan1 = days_from_civil(year, 1, 1);
    let day = match rule.day {
        Day::Julian1(n) => {
            let mut d = i64::from(n) - 1;
            if is_leap(year) && n >= 60 {
                d += 1;
            }
            jan1 + d
        }
        Day::Julian0(n) => jan1 + i64::from(n),
        Day::MonthWeek(m, w, d) => {
            let first = days_from_civil(year, m, 1);
            // 1970-01-01 was a Thursday (4).
            let wd_first = (first + 4).rem_euclid(7);
            let mut day = first + (i64::from(d) - wd_first).rem_euclid(7) + (i64::from(w) - 1) * 7;
            let len = i64::from(livetranslate_telemetry::time::days_in_month(year, m));
            while day - first >= len {
                day -= 7;
            }
            day
        }
    };
    day * 86_400 + rule.time
}

#[cfg(test)]
mod tests {
    use super::*;
    use livetranslate_telemetry::time::days_from_civil;

    fn unix(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn fixed_offsets() {
        assert_eq!(parse_fixed("+02:00"), Some(7200));
        assert_eq!(parse_fixed("-0530"), Some(-19800));
        assert_eq!(parse_fixed("+05"), Some(18000));
        assert_eq!(parse_fixed("+5"), None);
        assert_eq!(parse_fixed("+25:00"), None);
        let z = Zone::load("-03:00").expect("fixed");
        assert_eq!(z.civil_to_unix(0), 3 * 3600);
    }

    #[test]
    fn posix_rules_give_european_summer_time() {
        let p = parse_posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("parses");
        // 2030 (beyond most fat files): DST from 31 March 01:00 UTC to 27 October 01:00 UTC.
        assert_eq!(p.lookup(unix(2030, 3, 31, 0, 59)).offset, 3600);
        assert_eq!(p.lookup(unix(2030, 3, 31, 1, 0)).offset, 7200);
        assert_eq!(p.lookup(unix(2030, 3, 31, 1, 0)).abbr, "CEST");
        assert_eq!(p.lookup(unix(2030, 10, 27, 0, 59)).offset, 7200);
        assert_eq!(p.lookup(unix(2030, 10, 27, 1, 0)).offset, 3600);
        let us = parse_posix("EST5EDT,M3.2.0,M11.1.0").expect("parses");
        assert_eq!(us.lookup(unix(2031, 7, 1, 12, 0)).offset, -4 * 3600);
        assert_eq!(us.lookup(unix(2031, 1, 1, 12, 0)).offset, -5 * 3600);
        let fixed = parse_posix("<+03>-3").expect("parses");
        assert_eq!(fixed.lookup(0).offset, 3 * 3600);
        assert_eq!(fixed.lookup(0).abbr, "+03");
        assert!(parse_posix("X").is_none());
    }

    #[test]
    fn system_zoneinfo_when_present() {
        // The machine's tzdata (Debian's tzdata package); skipped where it is missing.
        let Ok(berlin) = Zone::load("Europe/Berlin") else {
            eprintln!("no system zoneinfo; skipped");
            return;
        };
        assert_eq!(berlin.offset_at(unix(2023, 1, 15, 12, 0)), 3600);
        assert_eq!(berlin.offset_at(unix(2023, 7, 15, 12, 0)), 7200);
        assert_eq!(berlin.offset_at(unix(2045, 7, 15, 12, 0)), 7200);
        // 2023-03-26 02:30 local does not exist: Go resolves it with the offset before the gap.
        let civil = unix(2023, 3, 26, 2, 30);
        assert_eq!(berlin.civil_to_unix(civil), civil - 3600);
        assert_eq!(
            berlin.lookup_abbr("CEST", unix(2023, 7, 1, 0, 0)),
            Some(7200)
        );
        assert_eq!(
            berlin.lookup_abbr("CET", unix(2023, 7, 1, 0, 0)),
            Some(3600)
        );
        assert_eq!(berlin.lookup_abbr("EST", 0), None);
        assert!(Zone::load("Nowhere/Atlantis").is_err());
        assert!(Zone::load("../etc/passwd").is_err());
    }
}
