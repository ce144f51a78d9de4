//! Regular expressions as Prometheus compiles them: Go's RE2 syntax, anchored at both ends
//! (`^(?:…)$`, the pattern text wrapped literally, exactly as `relabel.NewRegexp` does), and
//! Go's `Regexp.Expand` for replacement templates (`$1`, `${1}`, `$name`, `${name}`, `$$`).
//!
//! The pattern is translated from Go's dialect to the `regex` crate's so that both accept the
//! same patterns and match the same text:
//! - `\d`, `\s`, `\w`, `\b` and their negations are ASCII-only in Go (Unicode in `regex`);
//! - Go takes a `{` that does not start a valid repetition, a leading `]`, a `[` inside a
//!   class, `&&`/`--`/`~~` inside a class as literal text; `\Q…\E` quotes;
//! - Go refuses what `regex` would accept: `(?x)`, `(?<name>…)`, nested repetitions (`a**`),
//!   repeat counts over 1000, escapes it does not know (`\Z`, `\<`, `\1`);
//! - Go allows capture names that `regex` refuses (`(?P<1x>…)`, duplicates): groups are
//!   compiled unnamed and the names are kept here for template expansion.

use std::fmt;
use std::sync::OnceLock;

/// Matches nothing (a surrogate code point written as an escape cannot occur in a string).
const NEVER: &str = r"[^\x00-\x{10FFFF}]";

/// Go's POSIX class names (`[[:alpha:]]`), all ASCII, as in `regex`.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's Unicode general categories (`\p{Lu}`); scripts are checked by `regex` itself.
const CATEGORIES: [&str; 38] = [
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs", "Any", "LC",
];

/// A pattern Prometheus would refuse, with Go's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing regexp: {message}")]
pub struct RegexError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong, e.g. ``invalid escape sequence: `\8` ``.
    pub message: String,
}

/// A regular expression in Go's syntax, anchored at both ends as Prometheus anchors relabel
/// regexes: `foo|bar` matches `foo` and `bar`, not `foobar`.
///
/// ```
/// use livetranslate_agent::relabel::Regex;
///
/// let re = Regex::new(r"api_\d+|web").unwrap();
/// assert!(re.is_match("api_12") && re.is_match("web"));
/// assert!(!re.is_match("web2") && !re.is_match("api_٣")); // `\d` is ASCII in Go
/// assert_eq!(re.as_str(), r"api_\d+|web");
/// ```
#[derive(Clone)]
pub struct Regex {
    source: String,
    compiled: regex::Regex,
    /// Go capture names with their group index, in group order (Go allows duplicates).
    names: Vec<(usize, String)>,
    /// The pattern is exactly `(.*)` (the default): any value without `\n` matches whole,
    /// with group 1 = the value. Matched without running the regex.
    match_all_line: bool,
    /// The pattern is plain text alternatives, each possibly ending in `.*` (`up`,
    /// `go_.*|process_.*`, `pod_template_hash|controller_revision_hash`): matched by string
    /// comparison.
    literals: Option<Box<[Alternative]>>,
    /// Text every match starts with (anchored patterns without `|`): a cheap rejection.
    required_prefix: Box<str>,
}

impl Regex {
    /// Compiles `pattern` (Go syntax) anchored as `^(?:pattern)$`.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Regex;
    ///
    /// assert!(Regex::new("(?i)node_[a-z]+").unwrap().is_match("NODE_cpu"));
    /// let err = Regex::new(r"\8").unwrap_err();
    /// assert_eq!(err.to_string(), r"error parsing regexp: invalid escape sequence: `\8`");
    /// ```
    pub fn new(pattern: &str) -> Result<Regex, RegexError> {
        Self::build(pattern, &format!("^(?:{pattern})$"))
    }

    /// Compiles `pattern` (Go syntax) without anchors, as Promtail's `regex` stage uses it.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Regex;
    ///
    /// let re = Regex::new_unanchored(r"level=(?P<level>\w+)").unwrap();
    /// assert!(re.is_match("ts=1 level=info msg=hi"));
    /// ```
    pub fn new_unanchored(pattern: &str) -> Result<Regex, RegexError> {
        Self::build(pattern, pattern)
    }

    fn build(source: &str, full: &str) -> Result<Regex, RegexError> {
        let error = |message: String| RegexError {
            pattern: source.to_owned(),
            message,
        };
        let mut t = Translator {
            src: full,
            pos: 0,
            out: String::with_capacity(full.len() + 8),
            groups: 0,
            names: Vec::new(),
        };
        t.run()
            .map_err(|(code, fragment)| error(format!("{code}: `{fragment}`")))?;
        let compiled = regex::RegexBuilder::new(&t.out)
            .build()
            .map_err(|e| error(rust_regex_message(&e)))?;
        let anchored = full != source;
        Ok(Regex {
            source: source.to_owned(),
            compiled,
            names: t.names,
            match_all_line: full == "^(?:(.*))$",
            literals: anchored.then(|| literal_alternatives(source)).flatten(),
            required_prefix: if anchored {
                required_prefix(source).into()
            } else {
                "".into()
            },
        })
    }

    /// The pattern as written (without the anchors).
    ///
    /// ```
    /// use livetranslate_agent::relabel::Regex;
    ///
    /// assert_eq!(Regex::new("a|b").unwrap().as_str(), "a|b");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the regex matches `haystack` (as a whole, for an anchored regex).
    ///
    /// ```
    /// use livetranslate_agent::relabel::Regex;
    ///
    /// let re = Regex::new("(.*)").unwrap();
    /// assert!(re.is_match("any value"));
    /// assert!(!re.is_match("two\nlines")); // `.` does not match `\n` in Go either
    /// ```
    pub fn is_match(&self, haystack: &str) -> bool {
        if self.match_all_line {
            return !haystack.contains('\n');
        }
        if let Some(alternatives) = &self.literals {
            return alternatives.iter().any(|alt| {
                if alt.any_tail {
                    haystack
                        .strip_prefix(&*alt.text)
                        .is_some_and(|rest| !rest.contains('\n'))
                } else {
                    haystack == &*alt.text
                }
            });
        }
        haystack.starts_with(&*self.required_prefix) && self.compiled.is_match(haystack)
    }

    /// The capture groups of the first match, or `None`.
    pub(crate) fn captures<'h>(&self, haystack: &'h str) -> Option<Captures<'h>> {
        if self.match_all_line {
            return (!haystack.contains('\n')).then_some(Captures::Whole(haystack));
        }
        // A cheap rejection first: most values do not match, and capture slots cost an
        // allocation.
        if !self.is_match(haystack) {
            return None;
        }
        let mut locs = self.compiled.capture_locations();
        self.compiled.captures_read(&mut locs, haystack)?;
        Some(Captures::Locations { haystack, locs })
    }

    /// Number of capture groups (not counting the whole match).
    fn group_count(&self) -> usize {
        self.compiled.captures_len().saturating_sub(1)
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Regex {}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Regex").field(&self.source).finish()
    }
}

impl fmt::Display for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The groups of one match.
pub(crate) enum Captures<'h> {
    /// `(.*)` matched: groups 0 and 1 are the whole haystack.
    Whole(&'h str),
    /// Any other regex.
    Locations {
        haystack: &'h str,
        locs: regex::CaptureLocations,
    },
}

impl<'h> Captures<'h> {
    /// The text of group `i`, if it took part in the match.
    fn group(&self, i: usize) -> Option<&'h str> {
        match self {
            Captures::Whole(h) => (i <= 1).then_some(*h),
            Captures::Locations { haystack, locs } => {
                locs.get(i).and_then(|(s, e)| haystack.get(s..e))
            }
        }
    }
}

/// A replacement template (`replacement`, or a `target_label` with `$`), parsed once against
/// its regex with Go's `Regexp.Expand` rules:
/// - `$$` is `$`; `$1` / `${1}` a group by number; `$name` / `${name}` a group by name;
/// - a name is the longest run of letters, digits and `_`: `$1x` is the group named `1x`
///   (usually none, so empty), `${1}x` is group 1 then `x`; `$01` is the group named `01`;
/// - a group that does not exist or did not take part expands to nothing;
/// - a `$` not followed by a name (`$-`, `${1`, a final `$`) stays a literal `$`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    /// The first of these groups that took part in the match (several when a Go name is
    /// used by more than one group).
    Group(Vec<usize>),
}

impl Template {
    pub(crate) fn parse(template: &str, regex: &Regex) -> Template {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                text.push('$');
                rest = after;
                continue;
            }
            let Some((name, number, after)) = extract_name(rest) else {
                text.push('$');
                continue;
            };
            rest = after;
            let groups: Vec<usize> = match number {
                Some(n) if n <= regex.group_count() => vec![n],
                Some(_) => Vec::new(),
                None => regex
                    .names
                    .iter()
                    .filter(|(_, n)| n == name)
                    .map(|(i, _)| *i)
                    .collect(),
            };
            if !groups.is_empty() {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group(groups));
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Template { pieces }
    }

    /// The expansion when it does not depend on the match.
    pub(crate) fn constant(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// Appends the expansion for `caps` to `out`.
    pub(crate) fn expand_into(&self, caps: &Captures<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(groups) => {
                    if let Some(s) = groups.iter().find_map(|&g| caps.group(g)) {
                        out.push_str(s);
                    }
                }
            }
        }
    }

    /// The expansion for `caps`.
    pub(crate) fn expand(&self, caps: &Captures<'_>) -> String {
        let mut out = String::new();
        self.expand_into(caps, &mut out);
        out
    }
}

/// Go's metacharacters.
const META: &[char] = &[
    '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
];

/// One alternative of a plain-text pattern: `text`, or `text.*` (`any_tail`).
#[derive(Debug, Clone)]
struct Alternative {
    text: Box<str>,
    any_tail: bool,
}

/// `text|text.*|…` with no other metacharacter → the alternatives; `None` otherwise.
fn literal_alternatives(source: &str) -> Option<Box<[Alternative]>> {
    source
        .split('|')
        .map(|alt| {
            let (text, any_tail) = match alt.strip_suffix(".*") {
                Some(t) => (t, true),
                None => (alt, false),
            };
            (!text.contains(META)).then(|| Alternative {
                text: text.into(),
                any_tail,
            })
        })
        .collect()
}

/// The literal text an anchored match of `source` must start with ("" if unknown).
fn required_prefix(source: &str) -> &str {
    if source.contains('|') {
        return "";
    }
    let end = source.find(META).unwrap_or(source.len());
    match source[end..].chars().next() {
        // The last character is optional or repeated: leave it out.
        Some('?' | '*' | '{') => match source[..end].char_indices().next_back() {
            Some((i, _)) => &source[..i],
            None => "",
        },
        _ => &source[..end],
    }
}

/// Go's `extract`: a leading `name` or `{name}` (the `$` already removed), the group number
/// if the name is a number without a leading zero, and the rest.
fn extract_name(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, s) = match s.strip_prefix('{') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let len = name_len(s);
    if len == 0 {
        return None;
    }
    let (name, mut rest) = s.split_at(len);
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    let mut number: Option<u64> = Some(0);
    for b in name.bytes() {
        number = match number {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => Some(n * 10 + u64::from(b - b'0')),
            _ => None,
        };
    }
    if name.len() > 1 && name.starts_with('0') {
        number = None;
    }
    Some((name, number.and_then(|n| usize::try_from(n).ok()), rest))
}

/// Length of the leading run of Unicode letters, decimal digits and `_` (Go's
/// `unicode.IsLetter || unicode.IsDigit || '_'`).
fn name_len(s: &str) -> usize {
    static NAME: OnceLock<Option<regex::Regex>> = OnceLock::new();
    match NAME.get_or_init(|| regex::Regex::new(r"^[\p{L}\p{Nd}_]+").ok()) {
        Some(re) => re.find(s).map_or(0, |m| m.end()),
        None => s
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(s.len(), |(i, _)| i),
    }
}

/// The useful line of a `regex` crate error (its last, `error: …`).
fn rust_regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(&text);
    line.trim_start_matches("error:").trim().to_owned()
}

type TResult<'a> = Result<(), (&'static str, &'a str)>;

/// Go pattern → `regex` crate pattern.
struct Translator<'a> {
    src: &'a str,
    pos: usize,
    out: String,
    groups: usize,
    names: Vec<(usize, String)>,
}

impl<'a> Translator<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn from(&self, start: usize) -> &'a str {
        &self.src[start..self.pos]
    }

    fn run(&mut self) -> TResult<'a> {
        // Start of the previous token if it was a repetition operator (Go refuses `a**`).
        let mut last_repeat: Option<usize> = None;
        while let Some(c) = self.peek() {
            let start = self.pos;
            let mut repeat = None;
            match c {
                '\\' => self.escape()?,
                '[' => self.class()?,
                '(' => self.group()?,
                '*' | '+' | '?' => {
                    self.bump();
                    if self.peek() == Some('?') {
                        self.bump();
                    }
                    if let Some(prev) = last_repeat {
                        return Err(("invalid nested repetition operator", self.from(prev)));
                    }
                    self.out.push_str(self.from(start));
                    repeat = Some(start);
                }
                '{' => match parse_repeat(self.rest()) {
                    Some((len, min, max)) => {
                        self.pos += len;
                        if !(0..=1000).contains(&min) || max > 1000 || (max >= 0 && min > max) {
                            return Err(("invalid repeat count", self.from(start)));
                        }
                        if self.peek() == Some('?') {
                            self.bump();
                        }
                        if let Some(prev) = last_repeat {
                            return Err(("invalid nested repetition operator", self.from(prev)));
                        }
                        self.out.push_str(self.from(start));
                        repeat = Some(start);
                    }
                    None => {
                        self.bump();
                        self.out.push_str(r"\{");
                    }
                },
                ']' => {
                    self.bump();
                    self.out.push_str(r"\]");
                }
                '}' => {
                    self.bump();
                    self.out.push_str(r"\}");
                }
                _ => {
                    self.bump();
                    self.out.push(c);
                }
            }
            last_repeat = repeat;
        }
        Ok(())
    }

    /// `(`: a capture group, a named one, or flags.
    fn group(&mut self) -> TResult<'a> {
        let start = self.pos;
        self.bump();
        if self.peek() != Some('?') {
            self.groups += 1;
            self.out.push('(');
            return Ok(());
        }
        if let Some(after) = self.rest().strip_prefix("?P<") {
            let Some(end) = after.find('>') else {
                return Err(("invalid named capture", &self.src[start..]));
            };
            let name = &after[..end];
            self.pos += 3 + end + 1;
            if name.is_empty() || !name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()) {
                return Err(("invalid named capture", self.from(start)));
            }
            // Prometheus 2.42's Go accepts a name used twice; `$name` takes the first group
            // of that name that took part in the match.
            self.groups += 1;
            self.names.push((self.groups, name.to_owned()));
            self.out.push('(');
            return Ok(());
        }
        self.bump(); // '?'
                     // Go's parsePerlFlags: flags i, m, s, U; one '-' that must be followed by a flag.
        let mut state: [Option<bool>; 4] = [None; 4];
        let mut negated = false;
        let mut saw_flag = false;
        while let Some(c) = self.bump() {
            match c {
                'i' | 'm' | 's' | 'U' => {
                    let i = "imsU".find(c).unwrap_or(0);
                    state[i] = Some(!negated);
                    saw_flag = true;
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    let mut flags: String = "imsU"
                        .chars()
                        .zip(state)
                        .filter(|(_, s)| *s == Some(true))
                        .map(|(c, _)| c)
                        .collect();
                    let off: String = "imsU"
                        .chars()
                        .zip(state)
                        .filter(|(_, s)| *s == Some(false))
                        .map(|(c, _)| c)
                        .collect();
                    if !off.is_empty() {
                        flags.push('-');
                        flags.push_str(&off);
                    }
                    if c == ':' {
                        self.out.push_str("(?");
                        self.out.push_str(&flags);
                        self.out.push(':');
                    } else if !flags.is_empty() {
                        self.out.push_str("(?");
                        self.out.push_str(&flags);
                        self.out.push(')');
                    }
                    return Ok(());
                }
                _ => break,
            }
        }
        Err(("invalid or unsupported Perl syntax", self.from(start)))
    }

    /// A backslash outside a class.
    fn escape(&mut self) -> TResult<'a> {
        let start = self.pos;
        self.bump();
        let Some(c) = self.peek() else {
            return Err(("trailing backslash at end of expression", ""));
        };
        match c {
            'A' | 'z' => {
                self.bump();
                self.out.push('\\');
                self.out.push(c);
            }
            'b' | 'B' => {
                self.bump();
                self.out
                    .push_str(if c == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" });
            }
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                self.bump();
                let (set, negated) = perl_class(c);
                self.out.push_str(if negated { "[^" } else { "[" });
                self.out.push_str(set);
                self.out.push(']');
            }
            'p' | 'P' => {
                self.pos = start;
                let class = self.unicode_class()?;
                self.out.push_str(&class);
            }
            'Q' => {
                self.bump();
                let rest = self.rest();
                let (quoted, used) = match rest.find(r"\E") {
                    Some(i) => (&rest[..i], i + 2),
                    None => (rest, rest.len()),
                };
                for ch in quoted.chars() {
                    push_literal(&mut self.out, u32::from(ch));
                }
                self.pos += used;
            }
            _ => {
                let code = self.escaped_char(start)?;
                push_literal(&mut self.out, code);
            }
        }
        Ok(())
    }

    /// Go's parseEscape for a single character (after the backslash, at `self.pos`):
    /// octal, hex, `\a\f\n\r\t\v`, or ASCII punctuation.
    fn escaped_char(&mut self, start: usize) -> Result<u32, (&'static str, &'a str)> {
        const BAD: &str = "invalid escape sequence";
        let Some(c) = self.bump() else {
            return Err(("trailing backslash at end of expression", ""));
        };
        match c {
            '0'..='7' => {
                // A single non-zero digit would be a backreference, which Go refuses.
                if c != '0' && !matches!(self.peek(), Some('0'..='7')) {
                    return Err((BAD, self.from(start)));
                }
                let mut v = u32::from(c) - u32::from('0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.bump();
                            v = v * 8 + (u32::from(d) - u32::from('0'));
                        }
                        _ => break,
                    }
                }
                Ok(v)
            }
            'x' => {
                let Some(first) = self.bump() else {
                    return Err((BAD, self.from(start)));
                };
                if first == '{' {
                    let mut v: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(d) = self.bump() else {
                            return Err((BAD, self.from(start)));
                        };
                        if d == '}' {
                            break;
                        }
                        let Some(h) = d.to_digit(16) else {
                            return Err((BAD, self.from(start)));
                        };
                        v = v * 16 + h;
                        if v > 0x10FFFF {
                            return Err((BAD, self.from(start)));
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return Err((BAD, self.from(start)));
                    }
                    return Ok(v);
                }
                let second = self.bump();
                match (first.to_digit(16), second.and_then(|s| s.to_digit(16))) {
                    (Some(x), Some(y)) => Ok(x * 16 + y),
                    _ => Err((BAD, self.from(start))),
                }
            }
            'a' => Ok(7),
            'f' => Ok(0x0C),
            'n' => Ok(0x0A),
            'r' => Ok(0x0D),
            't' => Ok(0x09),
            'v' => Ok(0x0B),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(u32::from(c)),
            _ => Err((BAD, self.from(start))),
        }
    }

    /// `\pL`, `\p{Greek}`, `\P{^Lu}` at `self.pos` → `\p{…}` / `\P{…}`.
    fn unicode_class(&mut self) -> Result<String, (&'static str, &'a str)> {
        const BAD: &str = "invalid character class range";
        let start = self.pos;
        self.bump(); // '\'
        let mut negated = self.bump() == Some('P');
        let name_start = self.pos;
        let name = match self.bump() {
            Some('{') => {
                let rest = self.rest();
                let Some(end) = rest.find('}') else {
                    return Err((BAD, &self.src[start..]));
                };
                self.pos += end + 1;
                &rest[..end]
            }
            Some(_) => &self.src[name_start..self.pos],
            None => return Err((BAD, self.from(start))),
        };
        let name = match name.strip_prefix('^') {
            Some(n) => {
                negated = !negated;
                n
            }
            None => name,
        };
        // Go knows "Any", the general categories and the scripts, spelled exactly so
        // (`Greek`, `Old_Italic`); `regex` is looser, so refuse other spellings here.
        let script_like = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name
                .split('_')
                .all(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
            && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
        if !(CATEGORIES.contains(&name) || script_like) {
            return Err((BAD, self.from(start)));
        }
        Ok(format!("\\{}{{{name}}}", if negated { 'P' } else { 'p' }))
    }

    /// A bracketed class at `self.pos`.
    fn class(&mut self) -> TResult<'a> {
        const MISSING: &str = "missing closing ]";
        let start = self.pos;
        self.bump();
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.bump();
            out.push('^');
        }
        let mut first = true;
        loop {
            match self.peek() {
                None => return Err((MISSING, &self.src[start..])),
                Some(']') if !first => {
                    self.bump();
                    break;
                }
                _ => {}
            }
            first = false;
            let rest = self.rest();
            if let Some(inner) = rest.strip_prefix("[:") {
                if let Some(end) = inner.find(":]") {
                    let whole = &rest[..end + 4];
                    let name = inner[..end].strip_prefix('^').unwrap_or(&inner[..end]);
                    if !POSIX_CLASSES.contains(&name) {
                        return Err(("invalid character class range", whole));
                    }
                    out.push_str(whole);
                    self.pos += whole.len();
                    continue;
                }
            }
            if rest.starts_with(r"\p") || rest.starts_with(r"\P") {
                out.push_str(&self.unicode_class()?);
                continue;
            }
            if let Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) =
                rest.strip_prefix('\\').and_then(|r| r.chars().next())
            {
                self.pos += 2;
                let (set, negated) = perl_class(c);
                if negated {
                    out.push_str("[^");
                    out.push_str(set);
                    out.push(']');
                } else {
                    out.push_str(set);
                }
                continue;
            }
            let range_start = self.pos;
            let lo = self.class_char(start)?;
            let mut hi = lo;
            let rest = self.rest();
            if rest.len() >= 2 && rest.starts_with('-') && !rest[1..].starts_with(']') {
                self.bump();
                hi = self.class_char(start)?;
                if hi < lo {
                    return Err(("invalid character class range", self.from(range_start)));
                }
            }
            push_class_range(&mut out, lo, hi);
        }
        out.push(']');
        self.out.push_str(&out);
        Ok(())
    }

    /// One character inside a class (literal or escaped).
    fn class_char(&mut self, class_start: usize) -> Result<u32, (&'static str, &'a str)> {
        match self.peek() {
            None => Err(("missing closing ]", &self.src[class_start..])),
            Some('\\') => {
                let start = self.pos;
                self.bump();
                self.escaped_char(start)
            }
            Some(c) => {
                self.bump();
                Ok(u32::from(c))
            }
        }
    }
}

/// Go's ASCII Perl classes: the members (for inside a class) and whether negated.
fn perl_class(c: char) -> (&'static str, bool) {
    match c {
        'd' => ("0-9", false),
        'D' => ("0-9", true),
        's' => (r"\t\n\f\r ", false),
        'S' => (r"\t\n\f\r ", true),
        'w' => ("0-9A-Za-z_", false),
        _ => ("0-9A-Za-z_", true),
    }
}

/// Go's `parseRepeat`: `{n}`, `{n,}`, `{n,m}` at the start of `s` → (bytes used, min, max),
/// max -1 for `{n,}`, min -1 when a number is too large (Go's sentinels). `None` when `s`
/// does not start with a repetition: Go then takes the `{` literally.
fn parse_repeat(s: &str) -> Option<(usize, i64, i64)> {
    let body = s.strip_prefix('{')?;
    let (mut min, rest) = parse_int(body)?;
    let (max, rest) = match rest.strip_prefix(',') {
        None => (min, rest),
        Some(r) => match r.strip_prefix('}') {
            Some(_) => (-1, r),
            None => {
                let (max, r) = parse_int(r)?;
                if max < 0 {
                    min = -1;
                }
                (max, r)
            }
        },
    };
    let rest = rest.strip_prefix('}')?;
    Some((s.len() - rest.len(), min, max))
}

/// Go's `parseInt`: digits without a leading zero; -1 when the value reaches 1e8.
fn parse_int(s: &str) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let mut n: i64 = 0;
    for b in s[..digits].bytes() {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some((n, &s[digits..]))
}

/// A literal character outside a class.
fn push_literal(out: &mut String, code: u32) {
    match char::from_u32(code) {
        Some(c) => {
            use std::fmt::Write;
            let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
        }
        None => out.push_str(NEVER),
    }
}

/// A character or range inside a class; surrogate code points (which no string contains)
/// are left out.
fn push_class_range(out: &mut String, lo: u32, hi: u32) {
    use std::fmt::Write;
    let surrogate = |c: u32| (0xD800..=0xDFFF).contains(&c);
    let lo = if surrogate(lo) { 0xE000 } else { lo };
    let hi = if surrogate(hi) { 0xD7FF } else { hi };
    if lo > hi {
        out.push_str(NEVER);
    } else if lo == hi {
        let _ = write!(out, "\\x{{{lo:X}}}");
    } else {
        let _ = write!(out, "\\x{{{lo:X}}}-\\x{{{hi:X}}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
    }

    fn err(p: &str) -> String {
        match Regex::new(p) {
            Ok(r) => panic!("{p:?} compiled to {:?}", r.compiled.as_str()),
            Err(e) => e.message,
        }
    }

    #[test]
    fn anchored_like_prometheus() {
        assert!(re("foo").is_match("foo"));
        assert!(!re("foo").is_match("foobar") && !re("foo").is_match("xfoo"));
        assert!(!re("foo|bar").is_match("foobar"));
        assert!(re("foo|bar").is_match("bar"));
        // The pattern text is wrapped literally, as Prometheus does: an unbalanced `)`
        // splits the anchors over two alternatives.
        let odd = re("a)|(b");
        assert!(odd.is_match("a-anything") && odd.is_match("anything-b"));
        assert!(!odd.is_match("xyz"));
        assert!(re("").is_match("") && !re("").is_match("x"));
        assert!(re("").as_str().is_empty());
    }

    #[test]
    fn go_ascii_perl_classes() {
        assert!(re(r"\d+").is_match("0123456789"));
        assert!(!re(r"\d").is_match("٣"));
        assert!(!re(r"\w").is_match("é") && re(r"\W").is_match("é"));
        assert!(!re(r"\s").is_match("\u{a0}") && re(r"\s").is_match("\x0c"));
        assert!(!re(r"\s").is_match("\x0b"), "Go's \\s has no \\v");
        assert!(re(r"[\d\s]+").is_match("1 2\t3"));
        assert!(re(r"[^\d]").is_match("٣") && re(r"[\D]").is_match("٣"));
        assert!(re(r"[a\W]").is_match("é"));
        assert!(re(r".*\bfoo\b.*").is_match("a foo b"));
        assert!(
            re(r".*\bfoo\b.*").is_match("éfooé"),
            "é is not a word char in Go"
        );
        assert!(re(r"a\Bb").is_match("ab"));
    }

    #[test]
    fn unicode_groups_and_case_folding() {
        assert!(re(r"\pL+").is_match("héllo"));
        assert!(re(r"\p{Greek}+").is_match("αβγ") && !re(r"\p{Greek}").is_match("a"));
        assert!(re(r"\P{Greek}").is_match("a") && re(r"\p{^Greek}").is_match("a"));
        assert!(re(r"[\p{Lu}]").is_match("É"));
        assert!(
            re("(?i)k").is_match("\u{212a}"),
            "Kelvin sign folds to k, as in Go"
        );
        assert!(re(r"(?i)\x{41}").is_match("a"));
        assert!(re("[[:alpha:]]+").is_match("abc") && !re("[[:alpha:]]").is_match("é"));
        assert!(re("[[:^digit:]]").is_match("a"));
        assert_eq!(
            err(r"\p{sc=Greek}"),
            r"invalid character class range: `\p{sc=Greek}`"
        );
        assert_eq!(
            err(r"\p{greek}"),
            r"invalid character class range: `\p{greek}`"
        );
        assert_eq!(err("[[:foo:]]"), "invalid character class range: `[:foo:]`");
    }

    #[test]
    fn go_literal_text_that_rust_would_parse() {
        assert!(re("x{,3}").is_match("x{,3}"));
        assert!(re("{").is_match("{") && re("a{b").is_match("a{b"));
        assert!(re("a{01}").is_match("a{01}"));
        assert!(re("}").is_match("}") && re("]").is_match("]"));
        assert!(re("[]a]+").is_match("]a") && re("[^]a]").is_match("b"));
        assert!(re("[[]").is_match("["));
        assert!(re("[a&&b]+").is_match("a&b") && re("[a~~b]").is_match("~"));
        assert_eq!(err("[a--]"), "invalid character class range: `a--`");
        assert!(re("[a-]").is_match("-") && re("[-a]").is_match("-"));
        assert!(re("[a-b-c]+").is_match("a-c"));
        assert!(re(r"[\d-z]+").is_match("1-z"));
        assert!(re(r"\Qa.b\E+").is_match("a.bb") && !re(r"\Qa.b\E").is_match("axb"));
        assert!(re(r"\_\@\ \<\>").is_match("_@ <>"));
        assert!(re(r"\12\x41\x{263a}\0").is_match("\nA☺\0"));
        assert!(re(r"[\x00-\x{10FFFF}]").is_match("☺"));
        assert!(!re(r"[^\x00-\x{10FFFF}]").is_match("a"));
        assert!(!re(r"\x{D800}").is_match("\u{FFFD}"));
        assert!(re(r"[\x{D000}-\x{E000}]").is_match("\u{D7FF}"));
        assert!(re(r"\b{start}").is_match("{start}") || !re(r"x\b{start}").is_match("x"));
    }

    #[test]
    fn go_refusals() {
        assert_eq!(err(r"\8"), r"invalid escape sequence: `\8`");
        assert_eq!(err(r"\1"), r"invalid escape sequence: `\1`");
        assert_eq!(err(r"\Z"), r"invalid escape sequence: `\Z`");
        assert_eq!(err(r"[\b]"), r"invalid escape sequence: `\b`");
        assert_eq!(err(r"\x{110000}"), r"invalid escape sequence: `\x{110000`");
        assert_eq!(err("(?x)a"), "invalid or unsupported Perl syntax: `(?x`");
        assert_eq!(err("(?<n>a)"), "invalid or unsupported Perl syntax: `(?<`");
        assert_eq!(err("(?i-)a"), "invalid or unsupported Perl syntax: `(?i-)`");
        assert_eq!(err("(?--i)a"), "invalid or unsupported Perl syntax: `(?--`");
        assert_eq!(err("(?P<>a)"), "invalid named capture: `(?P<>`");
        assert_eq!(err("(?P<a-b>a)"), "invalid named capture: `(?P<a-b>`");
        assert_eq!(err("a**"), "invalid nested repetition operator: `**`");
        assert_eq!(err("a*??"), "invalid nested repetition operator: `*??`");
        assert_eq!(
            err("a{2}{3}"),
            "invalid nested repetition operator: `{2}{3}`"
        );
        assert_eq!(err("a{1001}"), "invalid repeat count: `{1001}`");
        assert_eq!(err("a{2,1}"), "invalid repeat count: `{2,1}`");
        assert_eq!(err("a{1,1001}"), "invalid repeat count: `{1,1001}`");
        assert_eq!(err("[z-a]"), "invalid character class range: `z-a`");
        assert!(err("[a").starts_with("missing closing ]"));
        assert!(!err("(").is_empty() && !err("())").is_empty() && !err("a\\").is_empty());
        assert!(!err("*").is_empty() && !err("|*").is_empty());
    }

    #[test]
    fn multibyte_text_after_escapes() {
        assert_eq!(err(r"\pé"), r"invalid character class range: `\pé`");
        assert_eq!(err(r"\é"), r"invalid escape sequence: `\é`");
        assert_eq!(err(r"[\é]"), r"invalid escape sequence: `\é`");
        assert!(err(r"\xé").starts_with("invalid escape sequence"));
        assert!(err(r"\x{é}").starts_with("invalid escape sequence"));
        assert!(re("é{2}").is_match("éé") && re("[é-ê]").is_match("ê"));
    }

    #[test]
    fn shortcuts() {
        let lits = |p: &str| literal_alternatives(p).map(|a| a.len());
        assert_eq!(lits("up"), Some(1));
        assert_eq!(lits("go_.*|process_.*|up|"), Some(4));
        assert_eq!(lits("a.b"), None);
        assert_eq!(lits("a.*b"), None);
        assert_eq!(lits("(?i)a"), None);
        assert_eq!(required_prefix("/api/v1/users/\\d+"), "/api/v1/users/");
        assert_eq!(required_prefix("abc?"), "ab");
        assert_eq!(required_prefix("abc{2}"), "ab");
        assert_eq!(required_prefix("abé*"), "ab");
        assert_eq!(required_prefix("abc+"), "abc");
        assert_eq!(required_prefix("a|b"), "");
        assert_eq!(required_prefix("(?i)abc"), "");
        let r = re("go_.*|up");
        assert!(r.is_match("go_gc") && r.is_match("up") && r.is_match("go_"));
        assert!(!r.is_match("upx") && !r.is_match("xgo_") && !r.is_match("go_\n"));
        assert!(re("a|").is_match("") && re("").is_match(""));
        // Unanchored regexes take no shortcut.
        assert!(Regex::new_unanchored("up")
            .map(|r| r.is_match("xupx"))
            .unwrap_or(false));
    }

    proptest::proptest! {
        // The shortcuts decide as the regex does.
        #[test]
        fn shortcuts_agree_with_the_regex(
            pattern in r"([a-c_]{0,3}(\.\*)?\|?){0,4}|[a-c]{0,3}[?*+]?[a-c.]{0,2}",
            value in "[a-c_\n.*|]{0,6}",
        ) {
            if let Ok(r) = Regex::new(&pattern) {
                proptest::prop_assert_eq!(
                    r.is_match(&value),
                    r.compiled.is_match(&value),
                    "pattern {:?} value {:?}", pattern, value
                );
            }
        }

        // Any pattern and template: an answer, never a panic; a compiled regex runs.
        #[test]
        fn never_panics(
            pattern in r"[-a-zé(){}\[\]\\|*+?^$.:<>=!PpQEdxb0-9,&~ ]{0,24}",
            template in "[$a-z1{}é_0 -]{0,12}",
            value in "[a-zé0-9 {}]{0,12}",
        ) {
            for r in [Regex::new(&pattern), Regex::new_unanchored(&pattern)].into_iter().flatten() {
                let t = Template::parse(&template, &r);
                if let Some(c) = r.captures(&value) {
                    let _ = t.expand(&c);
                }
                let _ = r.is_match(&value);
            }
        }
    }

    #[test]
    fn go_acceptances() {
        for p in [
            "(?)a",
            "(?i-m:a)",
            "(?ii)a",
            "(?i-i)A",
            "(?P<1x>a)",
            "(?P<n>a)(?P<n>b)",
            "a{1000}",
            "a{2,}",
            "(?U)a+",
            "(?s).",
            "^*a",
            r"\A\z",
        ] {
            re(p);
        }
        assert!(!re("(?i-i)A").is_match("a"));
        assert!(re("(?s)a.b").is_match("a\nb") && !re("a.b").is_match("a\nb"));
    }

    fn expand(pattern: &str, template: &str, value: &str) -> Option<String> {
        let r = re(pattern);
        let t = Template::parse(template, &r);
        r.captures(value).map(|c| t.expand(&c))
    }

    #[test]
    fn go_expand_rules() {
        let e = |t: &str| expand("(?P<name>a+)(b*)(?P<1x>c?)", t, "aabbc").unwrap_or_default();
        assert_eq!(e("$1"), "aa");
        assert_eq!(e("${1}x"), "aax");
        assert_eq!(e("$1x"), "c", "`$1x` is the group named 1x");
        assert_eq!(e("$2x"), "", "no group named 2x");
        assert_eq!(e("$$1"), "$1");
        assert_eq!(e("$0"), "aabbc");
        assert_eq!(e("$01"), "", "leading zero: a name, not a number");
        assert_eq!(e("$name-$2"), "aa-bb");
        assert_eq!(e("${name}_x"), "aa_x");
        assert_eq!(e("$name_x"), "", "the name runs to the end of the word");
        assert_eq!(e("$9"), "");
        assert_eq!(e("$"), "$");
        assert_eq!(e("a$-b"), "a$-b");
        assert_eq!(e("${1"), "${1");
        assert_eq!(e("${}"), "${}");
        assert_eq!(e("$é"), "");
        assert_eq!(e("${1}${2}$3"), "aabbc");
        assert_eq!(e("$999999999"), "");
        assert_eq!(e("$9999999999"), "");
        // Duplicate names: the first group of that name that took part.
        assert_eq!(
            expand("(?P<n>a)|(?P<n>b)", "[$n]", "b").as_deref(),
            Some("[b]")
        );
        // A group that did not take part is empty.
        assert_eq!(expand("(a)|(b)", "<$1|$2>", "b").as_deref(), Some("<|b>"));
        // The default regex without running it.
        assert_eq!(expand("(.*)", "$0/$1/$2", "v").as_deref(), Some("v/v/"));
        assert_eq!(expand("(.*)", "$1", "a\nb"), None);
    }

    #[test]
    fn constant_templates() {
        let r = re("(.*)");
        assert_eq!(Template::parse("abc", &r).constant(), Some("abc"));
        assert_eq!(Template::parse("a$$b", &r).constant(), Some("a$b"));
        assert_eq!(Template::parse("", &r).constant(), Some(""));
        assert_eq!(Template::parse("$2", &r).constant(), Some(""));
        assert_eq!(Template::parse("$1", &r).constant(), None);
    }
}
