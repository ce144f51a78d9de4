//! `format: syslog`: lines of `/var/log/syslog`-style files.
//!
//! Three shapes are recognised, each with or without a leading `<PRI>`:
//!
//! - RFC 3164 as rsyslog writes it to files (`RSYSLOG_TraditionalFileFormat`):
//!   `Nov 30 07:06:09 host prog[pid]: msg` — day space-padded (`Nov  3`), no year, no zone;
//! - rsyslog's high-precision file format (`RSYSLOG_FileFormat`, Debian's default):
//!   `2026-11-30T07:06:09.123456+00:00 host prog[pid]: msg`;
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`, `-` for absent fields,
//!   structured data, an optional UTF-8 BOM before the message.
//!
//! The tag (`prog[pid]:`, `prog:`, `postfix/smtpd[42]:`, `org.gnome.Shell.desktop[7]:`) gives
//! `app` and `pid`. A line that fits none of the shapes is kept whole as the message, with a
//! [`Malformed`] reason; parsing never fails and never panics.
//!
//! **Year and zone of RFC 3164 timestamps.** Such timestamps are written in the local time of
//! the machine that wrote them and carry no year. The zone is [`SyslogConfig::timezone`]:
//! `local` (the default: `TZ`, else `/etc/localtime`, with its daylight-saving rules — in a
//! container, mount the host's `/etc/localtime`), `UTC`, a fixed offset (`+01:00`) or an IANA
//! name (`Europe/Berlin`), loaded by the agent's one zone module, [`crate::tz`]; the date
//! arithmetic is `livetranslate_telemetry::time`'s. The year is the latest one in which the date is at most
//! [`MAX_FUTURE`] ahead of now: a file read on January 1st holding December 31st lines gets
//! last year, a line stamped a minute past midnight by a clock running ahead on December 31st
//! gets next year, and `Feb 29` always lands in a leap year.
//!
//! ```
//! use livetranslate_agent::logs::syslog::SyslogParser;
//! use livetranslate_agent::tz::Zone;
//!
//! let parser = SyslogParser::with_zone(Zone::utc());
//! let now = 1_796_000_000_000_000_000; // 2026-11-30T00:53:20Z
//! let line = parser.parse_at("Nov 30 00:06:09 web-1 sshd[1234]: Accepted publickey", now);
//! assert_eq!(line.host.as_deref(), Some("web-1"));
//! assert_eq!(line.app.as_deref(), Some("sshd"));
//! assert_eq!(line.pid.as_deref(), Some("1234"));
//! assert_eq!(line.message, "Accepted publickey");
//! assert_eq!(line.timestamp_ns, Some(1_795_997_169_000_000_000));
//! assert!(line.malformed.is_none());
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use livetranslate_telemetry::time::{
    civil_from_days, days_from_civil, days_in_month, parse_rfc3339,
};
use serde::Deserialize;

use crate::tz::Zone;

/// An RFC 3164 line dated up to this far after "now" is taken as this year's; later, as last
/// year's. Generous on purpose: a line dated a year back is rejected by Loki as too old, so a
/// writer whose clock or zone is off by hours must still land in the right year.
pub const MAX_FUTURE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Tags longer than this are not tags (the line is read as host + message).
const MAX_TAG_BYTES: usize = 128;

/// `syslog:` settings of an input.
///
/// ```
/// use livetranslate_agent::logs::syslog::SyslogConfig;
///
/// let c: SyslogConfig = serde_yaml_ng::from_str("timezone: Europe/Berlin").unwrap();
/// assert_eq!(c.timezone.as_deref(), Some("Europe/Berlin"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Zone of RFC 3164 timestamps: `local` (default), `UTC`, `+01:00`, or an IANA name.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A zone setting that cannot be used (an unknown IANA name, an invalid offset or zone file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ZoneError {
    /// The setting as written.
    pub setting: String,
    /// Why it cannot be used.
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// The parsed line.

/// Syslog severity (the low three bits of the priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// 0: system is unusable.
    Emergency,
    /// 1: action must be taken immediately.
    Alert,
    /// 2: critical conditions.
    Critical,
    /// 3: error conditions.
    Error,
    /// 4: warning conditions.
    Warning,
    /// 5: normal but significant.
    Notice,
    /// 6: informational.
    Informational,
    /// 7: debug-level messages.
    Debug,
}

impl Severity {
    /// From the numeric code (`0..=7`).
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Severity::Emergency,
            1 => Severity::Alert,
            2 => Severity::Critical,
            3 => Severity::Error,
            4 => Severity::Warning,
            5 => Severity::Notice,
            6 => Severity::Informational,
            7 => Severity::Debug,
            _ => return None,
        })
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The syslog keyword, as rsyslog's `syslogseverity-text` prints it (`err`, `warning`).
    pub fn keyword(self) -> &'static str {
        [
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        ][self as usize]
    }

    /// The value for a `level` label, in the vocabulary of the library's JSON logs and of
    /// Grafana's level detection: `critical`, `error`, `warn`, `info`, `debug`.
    ///
    /// ```
    /// use livetranslate_agent::logs::syslog::Severity;
    /// assert_eq!(Severity::Warning.level(), "warn");
    /// assert_eq!(Severity::Notice.level(), "info");
    /// ```
    pub fn level(self) -> &'static str {
        match self {
            Severity::Emergency | Severity::Alert | Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warn",
            Severity::Notice | Severity::Informational => "info",
            Severity::Debug => "debug",
        }
    }
}

/// Syslog facility (the priority divided by 8): `0..=23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Facility(u8);

impl Facility {
    /// From the numeric code (`0..=23`).
    pub fn from_code(code: u8) -> Option<Self> {
        (code <= 23).then_some(Facility(code))
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The name rsyslog's `syslogfacility-text` prints (`kern`, `auth`, `cron`, `local0`).
    ///
    /// ```
    /// use livetranslate_agent::logs::syslog::Facility;
    /// assert_eq!(Facility::from_code(9).map(|f| f.name()), Some("cron"));
    /// ```
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 24] = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
            "local3", "local4", "local5", "local6", "local7",
        ];
        NAMES[usize::from(self.0)]
    }
}

/// A `<PRI>` value: facility and severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority {
    /// Facility.
    pub facility: Facility,
    /// Severity.
    pub severity: Severity,
}

impl Priority {
    /// From the numeric value (`0..=191`).
    ///
    /// ```
    /// use livetranslate_agent::logs::syslog::{Priority, Severity};
    /// let p = Priority::from_value(34).unwrap();
    /// assert_eq!((p.facility.name(), p.severity), ("auth", Severity::Critical));
    /// ```
    pub fn from_value(value: u16) -> Option<Self> {
        if value > 191 {
            return None;
        }
        Some(Priority {
            facility: Facility::from_code((value / 8) as u8)?,
            severity: Severity::from_code((value % 8) as u8)?,
        })
    }
}

/// Which shape the line had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyslogFormat {
    /// `Nov 30 07:06:09 host tag: msg` (no year, local time).
    Rfc3164,
    /// `2026-11-30T07:06:09.123456+00:00 host tag: msg` (rsyslog's high-precision format).
    Rfc3164HighPrecision,
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
    Rfc5424,
    /// None of them: the whole line is the message.
    Unknown,
}

/// Why a line was not understood (bounded: usable as a metric label value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Malformed {
    /// An empty line.
    #[error("empty line")]
    Empty,
    /// `<` without a valid `<0>`..`<191>`.
    #[error("invalid <PRI>")]
    Priority,
    /// No recognisable timestamp where one must be.
    #[error("no valid timestamp")]
    Timestamp,
    /// An RFC 5424 header with missing fields.
    #[error("incomplete RFC 5424 header")]
    Header,
    /// RFC 5424 structured data that is not well formed.
    #[error("invalid RFC 5424 structured data")]
    StructuredData,
}

impl Malformed {
    /// A short stable name (`empty`, `priority`, `timestamp`, `header`, `structured_data`).
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Empty => "empty",
            Malformed::Priority => "priority",
            Malformed::Timestamp => "timestamp",
            Malformed::Header => "header",
            Malformed::StructuredData => "structured_data",
        }
    }
}

/// One RFC 5424 structured-data element: `[id name="value" ...]`, values unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    /// SD-ID, e.g. `exampleSDID@32473`.
    pub id: String,
    /// Parameters in order.
    pub params: Vec<(String, String)>,
}

/// A parsed syslog line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine {
    /// Timestamp in ns since the Unix epoch (`None`: RFC 5424 `-`, or malformed).
    pub timestamp_ns: Option<i64>,
    /// HOSTNAME.
    pub host: Option<String>,
    /// Program: the tag of RFC 3164, APP-NAME of RFC 5424.
    pub app: Option<String>,
    /// Process id: `[pid]` of the tag, PROCID of RFC 5424 (not always numeric).
    pub pid: Option<String>,
    /// RFC 5424 MSGID.
    pub msgid: Option<String>,
    /// RFC 5424 structured data.
    pub structured_data: Vec<SdElement>,
    /// The message (the whole line when malformed).
    pub message: String,
    /// Facility and severity, when the line carries a `<PRI>`.
    pub priority: Option<Priority>,
    /// The shape that was recognised.
    pub format: SyslogFormat,
    /// Set when the line was not understood; then `message` is the raw line.
    pub malformed: Option<Malformed>,
}

impl SyslogLine {
    fn raw(line: &str, why: Malformed) -> Self {
        SyslogLine {
            timestamp_ns: None,
            host: None,
            app: None,
            pid: None,
            msgid: None,
            structured_data: Vec::new(),
            message: line.to_owned(),
            priority: None,
            format: SyslogFormat::Unknown,
            malformed: Some(why),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parser.

/// Parses syslog lines; holds the zone RFC 3164 timestamps are read in.
#[derive(Debug, Clone)]
pub struct SyslogParser {
    zone: Arc<Zone>,
}

impl SyslogParser {
    /// A parser for an input's `syslog:` settings (loads the zone once).
    ///
    /// ```
    /// use livetranslate_agent::logs::syslog::{SyslogConfig, SyslogParser};
    /// let p = SyslogParser::new(&SyslogConfig { timezone: Some("+02:00".into()) }).unwrap();
    /// assert_eq!(p.zone().offset_at(0), 7200);
    /// assert!(SyslogParser::new(&SyslogConfig { timezone: Some("Mars/Olympus".into()) }).is_err());
    /// ```
    pub fn new(config: &SyslogConfig) -> Result<Self, ZoneError> {
        let name = match config.timezone.as_deref().map(str::trim) {
            None | Some("" | "local" | "Local") => "Local",
            Some("UTC" | "utc" | "Z" | "GMT") => "UTC",
            Some(name) => name,
        };
        let zone = Zone::load(name).map_err(|reason| ZoneError {
            setting: config.timezone.clone().unwrap_or_default(),
            reason,
        })?;
        Ok(SyslogParser { zone })
    }

    /// A parser reading RFC 3164 timestamps in `zone`.
    pub fn with_zone(zone: Arc<Zone>) -> Self {
        SyslogParser { zone }
    }

    /// The zone RFC 3164 timestamps are read in.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// Parses one line (without its newline), inferring RFC 3164 years from the clock.
    pub fn parse(&self, line: &str) -> SyslogLine {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.parse_at(line, now)
    }

    /// Parses one line as if the time were `now_ns` (ns since the epoch).
    pub fn parse_at(&self, line: &str, now_ns: i64) -> SyslogLine {
        let text = line.strip_suffix('\r').unwrap_or(line);
        if text.trim().is_empty() {
            return SyslogLine::raw(line, Malformed::Empty);
        }
        let (priority, rest) = if text.starts_with('<') {
            match parse_pri(text) {
                Some((p, rest)) => (Some(p), rest),
                None => return SyslogLine::raw(line, Malformed::Priority),
            }
        } else {
            (None, text)
        };
        let result = match (priority, rfc5424_version(rest)) {
            (Some(p), Some(after_version)) => parse_5424(p, after_version),
            _ => self.parse_3164(priority, rest, now_ns),
        };
        result.unwrap_or_else(|why| SyslogLine::raw(line, why))
    }

    fn parse_3164(
        &self,
        priority: Option<Priority>,
        s: &str,
        now_ns: i64,
    ) -> Result<SyslogLine, Malformed> {
        let (timestamp_ns, format, rest) = if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            let end = s.find(' ').unwrap_or(s.len());
            let ts = parse_rfc3339(&s[..end]).ok_or(Malformed::Timestamp)?;
            (ts, SyslogFormat::Rfc3164HighPrecision, &s[end..])
        } else {
            let (stamp, used) = parse_bsd_timestamp(s).ok_or(Malformed::Timestamp)?;
            let ts = self.resolve(&stamp, now_ns).ok_or(Malformed::Timestamp)?;
            (ts, SyslogFormat::Rfc3164, &s[used..])
        };
        let rest = rest.trim_start_matches(' ');
        let first_end = rest.find(' ').unwrap_or(rest.len());
        let first = &rest[..first_end];
        let (host, body) = if first.is_empty() || looks_like_tag(first) {
            (None, rest)
        } else {
            let after = &rest[first_end..];
            (
                Some(first.to_owned()),
                after.strip_prefix(' ').unwrap_or(after),
            )
        };
        let (app, pid, message) = split_tag(body);
        Ok(SyslogLine {
            timestamp_ns: Some(timestamp_ns),
            host,
            app: app.map(str::to_owned),
            pid: pid.map(str::to_owned),
            msgid: None,
            structured_data: Vec::new(),
            message: message.to_owned(),
            priority,
            format,
            malformed: None,
        })
    }

    /// The UTC time of a year-less local timestamp: the latest year in which it is at most
    /// [`MAX_FUTURE`] ahead of `now_ns`.
    fn resolve(&self, t: &BsdTimestamp, now_ns: i64) -> Option<i64> {
        let (month, day) = (t.month, t.day);
        let local_secs_in = |year: i64| -> Option<i64> {
            (day <= days_in_month(year, month)).then(|| {
                days_from_civil(year, month, day) * 86_400
                    + i64::from(t.hour) * 3600
                    + i64::from(t.minute) * 60
                    + i64::from(t.second)
            })
        };
        if let Some(year) = t.year {
            let utc = self.zone.civil_to_unix(local_secs_in(year)?);
            return utc.checked_mul(1_000_000_000)?.checked_add(t.nanos);
        }
        let now_secs = now_ns.div_euclid(1_000_000_000);
        let limit = now_secs.saturating_add(MAX_FUTURE.as_secs() as i64);
        let now_local = now_secs + i64::from(self.zone.offset_at(now_secs));
        let (this_year, _, _) = civil_from_days(now_local.div_euclid(86_400));
        // Next year first (a clock running ahead across New Year), then back far enough to
        // reach a leap year for Feb 29 (at most 8 years apart, around 2100).
        for year in (this_year - 8..=this_year + 1).rev() {
            let Some(local) = local_secs_in(year) else {
                continue;
            };
            let utc = self.zone.civil_to_unix(local);
            if utc <= limit {
                return utc.checked_mul(1_000_000_000)?.checked_add(t.nanos);
            }
        }
        None
    }
}

/// `<PRI>`: 1–3 digits, no leading zero (except `<0>`), at most 191.
fn parse_pri(s: &str) -> Option<(Priority, &str)> {
    let close = s.bytes().take(5).position(|c| c == b'>')?;
    let digits = s.get(1..close)?;
    if digits.is_empty()
        || digits.len() > 3
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    let value: u16 = digits.parse().ok()?;
    Some((Priority::from_value(value)?, &s[close + 1..]))
}

/// After `<PRI>`: `1 ` (RFC 5424's VERSION, 1–2 digits, then a space) → what follows it.
fn rfc5424_version(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    ((1..=2).contains(&digits) && b[0] != b'0' && b.get(digits) == Some(&b' '))
        .then(|| &s[digits + 1..])
}

/// Whether the first word after the timestamp is a tag (`prog:`, `prog[12]:`), i.e. the
/// line has no HOSTNAME.
fn looks_like_tag(word: &str) -> bool {
    word.ends_with(':') || (word.contains('[') && word.ends_with("]:"))
}

/// `prog[pid]: msg` / `prog: msg` → (app, pid, msg); anything else → (None, None, whole).
fn split_tag(s: &str) -> (Option<&str>, Option<&str>, &str) {
    let none = (None, None, s);
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate().take(MAX_TAG_BYTES) {
        match c {
            b':' if i > 0 => {
                let msg = &s[i + 1..];
                return (Some(&s[..i]), None, msg.strip_prefix(' ').unwrap_or(msg));
            }
            b'[' if i > 0 => {
                let Some(len) = s[i + 1..].find(']') else {
                    return none;
                };
                let pid = &s[i + 1..i + 1 + len];
                if pid.is_empty() || pid.len() > MAX_TAG_BYTES || pid.contains(' ') {
                    return none;
                }
                let mut after = &s[i + 2 + len..];
                if let Some(a) = after.strip_prefix(':') {
                    after = a;
                } else if !(after.is_empty() || after.starts_with(' ')) {
                    return none;
                }
                return (
                    Some(&s[..i]),
                    Some(pid),
                    after.strip_prefix(' ').unwrap_or(after),
                );
            }
            b' ' | b'\t' | b':' | b'[' | b']' => return none,
            _ => {}
        }
    }
    none
}

/// `Mmm dd hh:mm:ss[.frac]` or `Mmm dd yyyy hh:mm:ss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BsdTimestamp {
    year: Option<i64>,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: i64,
}

/// Parses the RFC 3164 timestamp at the start of `s`; returns it and the bytes used.
fn parse_bsd_timestamp(s: &str) -> Option<(BsdTimestamp, usize)> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let b = s.as_bytes();
    let mon = b.get(0..3)?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| m[..] == mon[..])? as u32 + 1;
    let mut i = 3;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1; // `Nov  3`
    }
    let day_digits = b[i..]
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if day_digits == 0 {
        return None;
    }
    let day = number(&b[i..i + day_digits])? as u32;
    i += day_digits;
    if b.get(i) != Some(&b' ') || !(1..=31).contains(&day) {
        return None;
    }
    i += 1;
    let mut year = None;
    if b.get(i + 4) == Some(&b' ') && b.get(i..i + 4)?.iter().all(u8::is_ascii_digit) {
        year = Some(number(&b[i..i + 4])?);
        i += 5;
    }
    let t = b.get(i..i + 8)?;
    if t[2] != b':' || t[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (number(&t[0..2])?, number(&t[3..5])?, number(&t[6..8])?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    i += 8;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        let (n, used) = fraction(&b[i + 1..])?;
        nanos = n;
        i += 1 + used;
    }
    if i < b.len() && b[i] != b' ' {
        return None;
    }
    Some((
        BsdTimestamp {
            year,
            month,
            day,
            hour: hour as u32,
            minute: minute as u32,
            // A leap second is folded into the next second, as in RFC 3339 parsing.
            second: second as u32,
            nanos,
        },
        i,
    ))
}

/// Decimal digits → value (all bytes must be digits).
fn number(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Fractional-second digits (at least one) → (nanoseconds, digits used).
fn fraction(b: &[u8]) -> Option<(i64, usize)> {
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut nanos = 0i64;
    for &c in b.iter().take(digits.min(9)) {
        nanos = nanos * 10 + i64::from(c - b'0');
    }
    for _ in digits..9 {
        nanos *= 10;
    }
    Some((nanos, digits))
}

/// `TIMESTAMP HOST APP PROCID MSGID SD [MSG]` (after `<PRI>1 `).
fn parse_5424(priority: Priority, s: &str) -> Result<SyslogLine, Malformed> {
    let mut rest = s;
    let mut fields: [Option<&str>; 5] = [None; 5];
    for field in &mut fields {
        let end = rest.find(' ').ok_or(Malformed::Header)?;
        let value = &rest[..end];
        if value.is_empty() {
            return Err(Malformed::Header);
        }
        *field = (value != "-").then_some(value);
        rest = &rest[end + 1..];
    }
    let [timestamp, host, app, procid, msgid] = fields;
    let timestamp_ns = match timestamp {
        None => None,
        Some(t) => Some(parse_rfc3339(t).ok_or(Malformed::Timestamp)?),
    };
    let (structured_data, rest) = parse_structured_data(rest)?;
    let message = match rest {
        "" => "",
        r => r.strip_prefix(' ').ok_or(Malformed::StructuredData)?,
    };
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Ok(SyslogLine {
        timestamp_ns,
        host: host.map(str::to_owned),
        app: app.map(str::to_owned),
        pid: procid.map(str::to_owned),
        msgid: msgid.map(str::to_owned),
        structured_data,
        message: message.to_owned(),
        priority: Some(priority),
        format: SyslogFormat::Rfc5424,
        malformed: None,
    })
}

/// `-` or one or more `[id name="value"...]` → (elements, rest after them).
fn parse_structured_data(s: &str) -> Result<(Vec<SdElement>, &str), Malformed> {
    if let Some(rest) = s.strip_prefix('-') {
        return Ok((Vec::new(), rest));
    }
    let bad = Malformed::StructuredData;
    let mut elements = Vec::new();
    let mut rest = s;
    while let Some(body) = rest.strip_prefix('[') {
        let id_end = body.find([' ', ']', '=', '"']).ok_or(bad)?;
        let id = &body[..id_end];
        if id.is_empty() || body.as_bytes()[id_end] == b'=' || body.as_bytes()[id_end] == b'"' {
            return Err(bad);
        }
        let mut element = SdElement {
            id: id.to_owned(),
            params: Vec::new(),
        };
        let mut r = &body[id_end..];
        loop {
            if let Some(after) = r.strip_prefix(']') {
                r = after;
                break;
            }
            r = r.strip_prefix(' ').ok_or(bad)?;
            let eq = r.find('=').ok_or(bad)?;
            let name = &r[..eq];
            if name.is_empty() || name.contains([' ', ']', '"']) {
                return Err(bad);
            }
            r = r[eq + 1..].strip_prefix('"').ok_or(bad)?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let close = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\' | ']'))) => value.push(c),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err(bad),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => return Err(bad),
                }
            };
            element.params.push((name.to_owned(), value));
            r = &r[close + 1..];
        }
        elements.push(element);
        rest = r;
    }
    if elements.is_empty() {
        return Err(bad);
    }
    Ok((elements, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1_000_000_000;

    /// ns since the epoch of a UTC date-time.
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * NS
    }

    fn utc() -> SyslogParser {
        SyslogParser::with_zone(Zone::utc())
    }

    fn ok(p: &SyslogParser, line: &str, now: i64) -> SyslogLine {
        let parsed = p.parse_at(line, now);
        assert_eq!(parsed.malformed, None, "{line:?}: {parsed:?}");
        parsed
    }

    /// (host, app, pid, message).
    type Fields<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

    fn fields(l: &SyslogLine) -> Fields<'_> {
        (
            l.host.as_deref(),
            l.app.as_deref(),
            l.pid.as_deref(),
            l.message.as_str(),
        )
    }

    #[test]
    fn rfc3164_lines_rsyslog_writes() {
        let p = utc();
        let now = at(2026, 11, 30, 12, 0, 0);
        let cases: &[(&str, Fields, i64)] = &[
            (
                "Nov 30 07:06:09 web-1 kernel: [ 1234.567890] EXT4-fs (sda1): mounted filesystem with ordered data mode",
                (Some("web-1"), Some("kernel"), None, "[ 1234.567890] EXT4-fs (sda1): mounted filesystem with ordered data mode"),
                at(2026, 11, 30, 7, 6, 9),
            ),
            (
                "Nov 30 07:06:10 web-1 systemd[1]: Started Session 42 of User root.",
                (Some("web-1"), Some("systemd"), Some("1"), "Started Session 42 of User root."),
                at(2026, 11, 30, 7, 6, 10),
            ),
            (
                "Nov 30 07:17:01 web-1 CRON[23456]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
                (Some("web-1"), Some("CRON"), Some("23456"), "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)"),
                at(2026, 11, 30, 7, 17, 1),
            ),
            (
                "Nov  3 08:09:10 web-1 sshd[1234]: Accepted publickey for deploy from 10.0.0.5 port 50122 ssh2: ED25519 SHA256:AbC",
                (Some("web-1"), Some("sshd"), Some("1234"), "Accepted publickey for deploy from 10.0.0.5 port 50122 ssh2: ED25519 SHA256:AbC"),
                at(2026, 11, 3, 8, 9, 10),
            ),
            (
                "Nov 30 07:06:09 mail-1 postfix/smtpd[4242]: connect from unknown[192.0.2.10]",
                (Some("mail-1"), Some("postfix/smtpd"), Some("4242"), "connect from unknown[192.0.2.10]"),
                at(2026, 11, 30, 7, 6, 9),
            ),
            (
                "Nov 30 07:06:09 desk org.gnome.Shell.desktop[2345]: Window manager warning: Overwriting existing binding",
                (Some("desk"), Some("org.gnome.Shell.desktop"), Some("2345"), "Window manager warning: Overwriting existing binding"),
                at(2026, 11, 30, 7, 6, 9),
            ),
            (
                "Nov 30 07:06:09 web-1 rsyslogd: [origin software=\"rsyslogd\" swVersion=\"8.2302.0\"] start",
                (Some("web-1"), Some("rsyslogd"), None, "[origin software=\"rsyslogd\" swVersion=\"8.2302.0\"] start"),
                at(2026, 11, 30, 7, 6, 9),
            ),
            (
                // No tag: the message is everything after the host.
                "Nov 30 07:06:09 web-1 last message repeated 3 times",
                (Some("web-1"), None, None, "last message repeated 3 times"),
                at(2026, 11, 30, 7, 6, 9),
            ),
            (
                // `(sd-pam)` and a tag directly followed by the message.
                "Nov 30 07:06:09 web-1 (sd-pam)[991]: pam_unix(systemd-user:session): session closed",
                (Some("web-1"), Some("(sd-pam)"), Some("991"), "pam_unix(systemd-user:session): session closed"),
                at(2026, 11, 30, 7, 6, 9),
            ),
            (
                "Nov 30 07:06:09.250 web-1 app[7]: fractional seconds",
                (Some("web-1"), Some("app"), Some("7"), "fractional seconds"),
                at(2026, 11, 30, 7, 6, 9) + 250_000_000,
            ),
            (
                "Nov 30 2025 07:06:09 switch-3 lldp: explicit year",
                (Some("switch-3"), Some("lldp"), None, "explicit year"),
                at(2025, 11, 30, 7, 6, 9),
            ),
        ];
        for (line, want, ts) in cases {
            let l = ok(&p, line, now);
            assert_eq!(fields(&l), *want, "{line}");
            assert_eq!(l.timestamp_ns, Some(*ts), "{line}");
            assert_eq!(l.format, SyslogFormat::Rfc3164, "{line}");
            assert_eq!(l.priority, None, "{line}");
        }
    }

    #[test]
    fn rsyslog_high_precision_format() {
        let p = utc();
        let l = ok(
            &p,
            "2026-11-30T07:06:09.123456+01:00 web-1 systemd[1]: Starting Daily apt upgrade and clean activities...",
            0,
        );
        assert_eq!(l.format, SyslogFormat::Rfc3164HighPrecision);
        assert_eq!(
            fields(&l),
            (
                Some("web-1"),
                Some("systemd"),
                Some("1"),
                "Starting Daily apt upgrade and clean activities..."
            )
        );
        assert_eq!(
            l.timestamp_ns,
            Some(at(2026, 11, 30, 6, 6, 9) + 123_456_000)
        );
        // The same with a priority, as RSYSLOG_ForwardFormat writes it.
        let f = ok(
            &p,
            "<86>2026-11-30T07:06:09.5Z web-1 sudo: pam_unix(sudo:session): session opened",
            0,
        );
        let pri = f.priority.expect("priority");
        assert_eq!(
            (pri.facility.name(), pri.severity),
            ("authpriv", Severity::Informational)
        );
        assert_eq!(f.app.as_deref(), Some("sudo"));
        assert_eq!(
            f.timestamp_ns,
            Some(at(2026, 11, 30, 7, 6, 9) + 500_000_000)
        );
    }

    #[test]
    fn rfc3164_with_priority_and_without_host() {
        let p = utc();
        let now = at(2026, 11, 30, 0, 0, 0);
        // RFC 3164's own example.
        let l = ok(
            &p,
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            now,
        );
        let pri = l.priority.expect("priority");
        assert_eq!((pri.facility.code(), pri.severity.code()), (4, 2));
        assert_eq!(pri.severity.level(), "critical");
        assert_eq!(
            fields(&l),
            (
                Some("mymachine"),
                Some("su"),
                None,
                "'su root' failed for lonvick on /dev/pts/8"
            )
        );
        assert_eq!(l.timestamp_ns, Some(at(2026, 10, 11, 22, 14, 15)));
        // Sent straight to a file by a local logger: no HOSTNAME.
        let n = ok(&p, "<13>Nov 29 10:00:00 myscript[77]: hello", now);
        assert_eq!(fields(&n), (None, Some("myscript"), Some("77"), "hello"));
        let n = ok(&p, "<0>Nov 29 10:00:00 kernel: panic", now);
        assert_eq!(n.priority.map(|p| p.severity), Some(Severity::Emergency));
    }

    #[test]
    fn rfc5424_with_and_without_structured_data() {
        let p = utc();
        let l = ok(
            &p,
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
            0,
        );
        assert_eq!(l.format, SyslogFormat::Rfc5424);
        assert_eq!(
            fields(&l),
            (
                Some("mymachine.example.com"),
                Some("evntslog"),
                None,
                "An application event log entry..."
            )
        );
        assert_eq!(l.msgid.as_deref(), Some("ID47"));
        assert_eq!(
            l.timestamp_ns,
            Some(at(2003, 10, 11, 22, 14, 15) + 3_000_000)
        );
        let pri = l.priority.expect("priority");
        assert_eq!(
            (pri.facility.name(), pri.severity),
            ("local4", Severity::Notice)
        );
        assert_eq!(
            l.structured_data,
            vec![SdElement {
                id: "exampleSDID@32473".into(),
                params: vec![
                    ("iut".into(), "3".into()),
                    ("eventSource".into(), "Application".into()),
                    ("eventID".into(), "1011".into()),
                ],
            }]
        );

        let n = ok(
            &p,
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            0,
        );
        assert_eq!(
            fields(&n),
            (
                Some("192.0.2.1"),
                Some("myproc"),
                Some("8710"),
                "%% It's time to make the do-nuts."
            )
        );
        assert_eq!(n.timestamp_ns, Some(at(2003, 8, 24, 12, 14, 15) + 3_000));
        assert!(n.structured_data.is_empty() && n.msgid.is_none());

        // Two elements, escapes, no message.
        let sd = ok(
            &p,
            "<14>1 2026-11-30T07:06:09Z h app 42 - [a@1 q=\"say \\\"hi\\\" \\] \\\\ \\n\"][b@2 x=\"\"]",
            0,
        );
        assert_eq!(sd.message, "");
        assert_eq!(sd.structured_data.len(), 2);
        assert_eq!(sd.structured_data[0].params[0].1, "say \"hi\" ] \\ \\n");
        assert_eq!(
            sd.structured_data[1].params,
            vec![("x".into(), String::new())]
        );

        // Every field NILVALUE.
        let nil = ok(&p, "<14>1 - - - - - - only a message", 0);
        assert_eq!(fields(&nil), (None, None, None, "only a message"));
        assert_eq!(nil.timestamp_ns, None);
    }

    #[test]
    fn malformed_lines_are_kept_whole_with_a_reason() {
        let p = utc();
        let cases = [
            ("", Malformed::Empty),
            ("   ", Malformed::Empty),
            ("just some text", Malformed::Timestamp),
            ("<999>Nov 30 07:06:09 h a: m", Malformed::Priority),
            ("<013>Nov 30 07:06:09 h a: m", Malformed::Priority),
            ("<abc>Nov 30 07:06:09 h a: m", Malformed::Priority),
            ("<13", Malformed::Priority),
            ("Foo 30 07:06:09 h a: m", Malformed::Timestamp),
            ("Nov 32 07:06:09 h a: m", Malformed::Timestamp),
            ("Nov 30 25:06:09 h a: m", Malformed::Timestamp),
            ("Feb 30 07:06:09 h a: m", Malformed::Timestamp),
            ("2026-13-30T07:06:09Z h a: m", Malformed::Timestamp),
            ("<13>1 2026-11-30T07:06:09Z host", Malformed::Header),
            ("<13>1 yesterday h a p m - msg", Malformed::Timestamp),
            (
                "<13>1 2026-11-30T07:06:09Z h a p m [unterminated x=\"1\"",
                Malformed::StructuredData,
            ),
            (
                "<13>1 2026-11-30T07:06:09Z h a p m [id x=1] msg",
                Malformed::StructuredData,
            ),
            (
                "<13>1 2026-11-30T07:06:09Z h a p m nosd msg",
                Malformed::StructuredData,
            ),
            (
                "<13>1 2026-11-30T07:06:09Z h a p m [id]msg",
                Malformed::StructuredData,
            ),
        ];
        for (line, why) in cases {
            let l = p.parse_at(line, at(2026, 11, 30, 12, 0, 0));
            assert_eq!(l.malformed, Some(why), "{line:?}");
            assert_eq!(l.message, line);
            assert_eq!(l.format, SyslogFormat::Unknown);
            assert!(l.timestamp_ns.is_none() && l.host.is_none() && l.app.is_none());
        }
        assert_eq!(Malformed::StructuredData.as_str(), "structured_data");
    }

    #[test]
    fn year_is_inferred_across_new_year_and_for_feb_29() {
        let p = utc();
        let ts = |line: &str, now: i64| ok(&p, line, now).timestamp_ns;
        // Read on January 1st: December lines are last year's.
        let jan1 = at(2027, 1, 1, 0, 5, 0);
        assert_eq!(
            ts("Dec 31 23:59:59 h a: m", jan1),
            Some(at(2026, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            ts("Jan  1 00:04:00 h a: m", jan1),
            Some(at(2027, 1, 1, 0, 4, 0))
        );
        // A writer a minute ahead across New Year: next year.
        let dec31 = at(2026, 12, 31, 23, 59, 30);
        assert_eq!(
            ts("Jan  1 00:00:30 h a: m", dec31),
            Some(at(2027, 1, 1, 0, 0, 30))
        );
        // A few days ahead is still this year; more is last year.
        let mar5 = at(2028, 3, 5, 0, 0, 0);
        assert_eq!(
            ts("Mar 10 00:00:00 h a: m", mar5),
            Some(at(2028, 3, 10, 0, 0, 0))
        );
        assert_eq!(
            ts("Mar 20 00:00:00 h a: m", mar5),
            Some(at(2027, 3, 20, 0, 0, 0))
        );
        // Feb 29 goes to the latest leap year that is not in the future.
        assert_eq!(
            ts("Feb 29 12:00:00 h a: m", at(2026, 3, 1, 0, 0, 0)),
            Some(at(2024, 2, 29, 12, 0, 0))
        );
        assert_eq!(
            ts("Feb 29 12:00:00 h a: m", at(2028, 2, 29, 13, 0, 0)),
            Some(at(2028, 2, 29, 12, 0, 0))
        );
        assert_eq!(
            ts("Feb 29 12:00:00 h a: m", at(2101, 1, 1, 0, 0, 0)),
            Some(at(2096, 2, 29, 12, 0, 0))
        );
        // Feb 28 right after a leap day is this year's.
        assert_eq!(
            ts("Feb 28 12:00:00 h a: m", at(2028, 3, 1, 0, 0, 0)),
            Some(at(2028, 2, 28, 12, 0, 0))
        );
    }

    #[test]
    fn rfc3164_times_are_read_in_the_configured_zone() {
        let now = at(2026, 12, 1, 0, 0, 0);
        let plus1 = SyslogParser::new(&SyslogConfig {
            timezone: Some("+01:00".into()),
        })
        .expect("fixed offset");
        assert_eq!(
            ok(&plus1, "Nov 30 07:06:09 h a: m", now).timestamp_ns,
            Some(at(2026, 11, 30, 6, 6, 9))
        );
        // Debian's tzdata is installed where this runs; the test fails if it is not.
        let berlin = SyslogParser::new(&SyslogConfig {
            timezone: Some("Europe/Berlin".into()),
        })
        .expect("tzdata: /usr/share/zoneinfo/Europe/Berlin");
        // Summer: +02:00; winter: +01:00.
        assert_eq!(
            ok(&berlin, "Jul 14 12:00:00 h a: m", now).timestamp_ns,
            Some(at(2026, 7, 14, 10, 0, 0))
        );
        assert_eq!(
            ok(&berlin, "Nov 14 12:00:00 h a: m", now).timestamp_ns,
            Some(at(2026, 11, 14, 11, 0, 0))
        );
        // RFC 3339 and RFC 5424 stamps carry their own offset: the zone does not apply.
        assert_eq!(
            ok(&berlin, "2026-07-14T12:00:00Z h a: m", now).timestamp_ns,
            Some(at(2026, 7, 14, 12, 0, 0))
        );
        for bad in ["Mars/Olympus", "../etc/passwd", "/etc/localtime", "+25:00"] {
            assert!(
                SyslogParser::new(&SyslogConfig {
                    timezone: Some(bad.into())
                })
                .is_err(),
                "{bad}"
            );
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn word() -> impl Strategy<Value = String> {
            "[A-Za-z][A-Za-z0-9_./-]{0,20}"
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_text_never_panics(line in any::<String>(), now in any::<i64>()) {
                let l = utc().parse_at(&line, now);
                if l.malformed.is_some() {
                    prop_assert_eq!(l.message, line);
                }
            }

            #[test]
            fn syslog_looking_text_never_panics(
                line in "(<[0-9]{1,4}>)?(1 )?([A-Z][a-z]{2} [ 0-9][0-9] [0-9:. ]{0,12}|[0-9T:.+Z-]{0,32})[ -~\\[\\]\"=\u{feff}]{0,60}",
                now in any::<i64>(),
            ) {
                let l = utc().parse_at(&line, now);
                if l.malformed.is_some() {
                    prop_assert_eq!(l.message, line);
                }
            }

            #[test]
            fn written_rfc3164_lines_read_back(
                month in 1u32..=12, day in 1u32..=28, h in 0u32..24, mi in 0u32..60, s in 0u32..60,
                host in word(), app in word(), pid in proptest::option::of(1u32..4_000_000),
                msg in "[ -~]{0,80}",
            ) {
                const M: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
                let tag = match pid { Some(p) => format!("{app}[{p}]"), None => app.clone() };
                let line = format!("{} {day:>2} {h:02}:{mi:02}:{s:02} {host} {tag}: {msg}", M[month as usize - 1]);
                let now = at(2026, 6, 15, 12, 0, 0);
                let this_year = at(2026, month, day, h.into(), mi.into(), s.into());
                let want = if this_year <= now + MAX_FUTURE.as_secs() as i64 * NS {
                    this_year
                } else {
                    at(2025, month, day, h.into(), mi.into(), s.into())
                };
                let l = utc().parse_at(&line, now);
                prop_assert_eq!(l.malformed, None);
                prop_assert_eq!(l.host.as_deref(), Some(host.as_str()));
                prop_assert_eq!(l.app.as_deref(), Some(app.as_str()));
                prop_assert_eq!(l.pid, pid.map(|p| p.to_string()));
                prop_assert_eq!(l.message, msg);
                prop_assert_eq!(l.timestamp_ns, Some(want));
            }
        }
    }
}
