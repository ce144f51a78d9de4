//! Errors found while validating a parsed configuration, naming where the bad value came
//! from: a key path in the YAML file (`logs.inputs[1].multiline.first_line`), which the
//! configuration loader turns into `file:line:column`, or a command-line flag. A leaf: it
//! imports nothing of the agent, so every component can report errors in its own terms.

use std::fmt;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// The path of a key in the YAML file, e.g. `scrape_configs[0].timeout`.
///
/// ```
/// use livetranslate_agent::validate::KeyPath;
/// let p = KeyPath::root().key("logs").key("inputs").index(1).key("multiline");
/// assert_eq!(p.to_string(), "logs.inputs[1].multiline");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The document itself.
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// This path followed by a mapping key (which may itself be dotted, `tls.ca_file`).
    pub fn key(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.extend(key.split('.').map(|k| Segment::Key(k.to_owned())));
        p
    }

    /// This path followed by a sequence index.
    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// The steps.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A key of the YAML file.
    Key(KeyPath),
    /// A command-line flag (or its environment variable).
    Flag(&'static str),
}

/// A value that is out of range, malformed or inconsistent.
///
/// ```
/// use livetranslate_agent::validate::{KeyPath, ValidationError};
/// let e = ValidationError::at(KeyPath::root().key("logs.max_line_bytes"), "must be more than 0");
/// assert_eq!(e.to_string(), "logs.max_line_bytes: must be more than 0");
/// assert_eq!(ValidationError::flag("--listen", "bad").to_string(), "--listen: bad");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Where.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl ValidationError {
    /// A bad value at `path` in the file.
    pub fn at(path: KeyPath, message: impl Into<String>) -> Self {
        ValidationError {
            origin: Origin::Key(path),
            message: message.into(),
        }
    }

    /// A bad flag value.
    pub fn flag(flag: &'static str, message: impl Into<String>) -> Self {
        ValidationError {
            origin: Origin::Flag(flag),
            message: message.into(),
        }
    }

    /// The key path, when the value came from the file.
    pub fn path(&self) -> Option<&KeyPath> {
        match &self.origin {
            Origin::Key(p) => Some(p),
            Origin::Flag(_) => None,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Key(p) if p.segments().is_empty() => f.write_str(&self.message),
            Origin::Key(p) => write!(f, "{p}: {}", self.message),
            Origin::Flag(flag) => write!(f, "{flag}: {}", self.message),
        }
    }
}

/// Parses an absolute http(s) URL with a host; the message (without the setting's name)
/// shows the URL redacted.
///
/// ```
/// use livetranslate_agent::validate::parse_http_url;
/// assert!(parse_http_url("http://127.0.0.1:9090/api/v1/write").is_ok());
/// assert!(parse_http_url("ftp://u:pw@x/").is_err_and(|e| !e.contains("pw")));
/// ```
pub fn parse_http_url(s: &str) -> Result<reqwest::Url, String> {
    let shown = livetranslate_push::redact_url(s);
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("invalid URL {shown:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL {shown:?} must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {shown:?} has no host"));
    }
    Ok(url)
}
