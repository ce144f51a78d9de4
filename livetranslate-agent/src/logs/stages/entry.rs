//! The entry a pipeline works on: the line, its timestamp, its stream labels and the
//! *extracted* map (Promtail's `map[string]interface{}`) that parsing stages fill and later
//! stages read.
//!
//! As in Promtail, the extracted map starts out holding the entry's labels (so stages can read
//! `filename` or `job`). Copying every label into it for every line would cost allocations on
//! the hot path, so the copy is lazy: until a stage changes the labels, lookups fall back to
//! the live labels; the first label change takes a snapshot (a clone of the map of `Arc`s,
//! no string copies).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A stream's label set, ordered by name. Names and values are shared strings: cloning a
/// label set per line copies pointers, not text.
pub type Labels = BTreeMap<Arc<str>, Arc<str>>;

/// A value in the extracted map: what JSON, regex and logfmt parsing produce.
///
/// Objects and arrays extracted by the `json` stage are kept as their JSON text, as Promtail
/// does.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null`, or a `json` expression that found nothing (Promtail stores `nil`).
    Null,
    /// A JSON boolean.
    Bool(bool),
    /// A JSON integer (kept exact; Promtail goes through `float64`).
    Int(i64),
    /// Any other JSON number.
    Float(f64),
    /// Text.
    String(String),
}

impl Value {
    /// A borrowed view.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::String(s) => ValueRef::Str(s),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// A borrowed [`Value`] (or a label value seen through the extracted map).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Str(&'a str),
}

impl<'a> ValueRef<'a> {
    /// The value as text, the way Promtail's `getString` converts it: numbers as written
    /// without exponent (`strconv.FormatFloat(f, 'f', -1, 64)`), booleans as `true`/`false`;
    /// `None` for `null` (Promtail: "can't convert <nil> to string", and the stage skips it).
    pub fn to_text(self) -> Option<Cow<'a, str>> {
        match self {
            ValueRef::Null => None,
            ValueRef::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            ValueRef::Int(i) => Some(Cow::Owned(i.to_string())),
            // Rust's `Display` for f64 is the shortest round-trip form and never uses an
            // exponent: the same text as Go's `FormatFloat(f, 'f', -1, 64)`.
            ValueRef::Float(f) => Some(Cow::Owned(f.to_string())),
            ValueRef::Str(s) => Some(Cow::Borrowed(s)),
        }
    }

    /// An owned copy.
    pub fn to_owned_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Str(s) => Value::String(s.to_owned()),
        }
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Some(t) => f.write_str(&t),
            None => f.write_str("null"),
        }
    }
}

/// Where the extracted map's label part comes from.
#[derive(Debug, Clone, PartialEq)]
enum Base {
    /// The labels have not changed since the pipeline started: read them live.
    Live,
    /// The labels as they were when the pipeline (or a nested one) started.
    Snapshot(Labels),
}

/// One log entry going through a pipeline.
///
/// ```
/// use livetranslate_agent::logs::stages::{Entry, Labels};
/// let mut labels = Labels::new();
/// labels.insert("job".into(), "app".into());
/// let entry = Entry::new("hello", 1_700_000_000_000_000_000, labels);
/// assert_eq!(entry.extracted("job").and_then(|v| v.to_text()).as_deref(), Some("app"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The log line.
    pub line: String,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// Opaque to the pipeline: where the entry came from (e.g. file id and end offset).
    /// An entry joined from several lines (`multiline`, partial `cri`/`docker` lines) carries
    /// the source of its last line, so acknowledging it covers every line in it.
    pub source: Option<(u64, u64)>,
    labels: Labels,
    /// Values set by stages; `None` marks a key removed (it hides the label part).
    own: Vec<(Arc<str>, Option<Value>)>,
    base: Base,
}

impl Entry {
    /// An entry with an empty extracted map (apart from its labels).
    pub fn new(line: impl Into<String>, timestamp_ns: i64, labels: Labels) -> Self {
        Entry {
            line: line.into(),
            timestamp_ns,
            source: None,
            labels,
            own: Vec::new(),
            base: Base::Live,
        }
    }

    /// The stream labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The stream labels, to change. The extracted map keeps the labels as they were.
    pub fn labels_mut(&mut self) -> &mut Labels {
        if self.base == Base::Live {
            self.base = Base::Snapshot(self.labels.clone());
        }
        &mut self.labels
    }

    /// Sets one label (no-op when it already has that value).
    pub fn set_label(&mut self, name: &Arc<str>, value: &str) {
        if self.labels.get(name).map(|v| &**v) == Some(value) {
            return;
        }
        self.labels_mut().insert(name.clone(), Arc::from(value));
    }

    /// Removes one label (no-op when absent).
    pub fn remove_label(&mut self, name: &str) {
        if self.labels.contains_key(name) {
            self.labels_mut().remove(name);
        }
    }

    /// Splits the entry into line, timestamp and labels.
    pub fn into_parts(self) -> (String, i64, Labels) {
        (self.line, self.timestamp_ns, self.labels)
    }

    /// A value of the extracted map.
    pub fn extracted(&self, key: &str) -> Option<ValueRef<'_>> {
        if let Some((_, v)) = self.own.iter().find(|(k, _)| &**k == key) {
            return v.as_ref().map(Value::as_ref);
        }
        let base = match &self.base {
            Base::Live => &self.labels,
            Base::Snapshot(l) => l,
        };
        base.get(key).map(|v| ValueRef::Str(v))
    }

    /// Whether the extracted map has `key`.
    pub fn has_extracted(&self, key: &str) -> bool {
        self.extracted(key).is_some()
    }

    /// The extracted value as text (`None` when absent or `null`).
    pub fn extracted_text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.extracted(key).and_then(ValueRef::to_text)
    }

    /// Sets a value of the extracted map.
    pub fn set_extracted(&mut self, key: &Arc<str>, value: Value) {
        match self.own.iter_mut().find(|(k, _)| **k == **key) {
            Some((_, v)) => *v = Some(value),
            None => self.own.push((key.clone(), Some(value))),
        }
    }

    /// Removes a key of the extracted map.
    pub fn remove_extracted(&mut self, key: &Arc<str>) {
        let in_base = match &self.base {
            Base::Live => self.labels.contains_key(&**key),
            Base::Snapshot(l) => l.contains_key(&**key),
        };
        match self.own.iter_mut().find(|(k, _)| **k == **key) {
            Some((_, v)) => *v = None,
            None if in_base => self.own.push((key.clone(), None)),
            None => {}
        }
    }

    /// Every key and value of the extracted map, sorted by key.
    pub fn extracted_map(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let base = match &self.base {
            Base::Live => &self.labels,
            Base::Snapshot(l) => l,
        };
        for (k, v) in base {
            out.insert(k.to_string(), Value::String(v.to_string()));
        }
        for (k, v) in &self.own {
            match v {
                Some(v) => out.insert(k.to_string(), v.clone()),
                None => out.remove(&**k),
            };
        }
        out
    }

    /// Calls `f` for every key and value of the extracted map (no copies).
    pub fn for_each_extracted(&self, mut f: impl FnMut(&str, ValueRef<'_>)) {
        let base = match &self.base {
            Base::Live => &self.labels,
            Base::Snapshot(l) => l,
        };
        for (k, v) in base {
            if !self.own.iter().any(|(o, _)| **o == **k) {
                f(k, ValueRef::Str(v));
            }
        }
        for (k, v) in &self.own {
            if let Some(v) = v {
                f(k, v.as_ref());
            }
        }
    }

    /// What a nested pipeline does when it starts (Promtail's `Pipeline.Run`): the current
    /// labels are written into the extracted map, over values of the same name.
    pub(crate) fn reseed_labels(&mut self) {
        self.own.retain(|(k, _)| !self.labels.contains_key(&**k));
        if let Base::Snapshot(old) = &mut self.base {
            for (k, v) in &self.labels {
                old.insert(k.clone(), v.clone());
            }
        }
    }

    /// A hash of the label set: the stream identity stateful stages key their state by.
    pub fn stream_key(&self) -> u64 {
        stream_key(&self.labels)
    }
}

/// A hash of a label set (Promtail's label fingerprint).
pub fn stream_key(labels: &Labels) -> u64 {
    let mut h = super::bounded::Fx::default();
    for (k, v) in labels {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// Builds a label set from pairs (tests, examples).
pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (Arc::from(k), Arc::from(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracted_starts_with_the_labels_and_keeps_them_after_label_changes() {
        let mut e = Entry::new("x", 0, labels([("job", "app"), ("filename", "/a.log")]));
        assert_eq!(e.extracted_text("job").as_deref(), Some("app"));
        let level: Arc<str> = Arc::from("level");
        e.set_label(&level, "info");
        e.remove_label("job");
        // The extracted map still has the labels as they were.
        assert_eq!(e.extracted_text("job").as_deref(), Some("app"));
        assert!(e.extracted("level").is_none());
        let job: Arc<str> = Arc::from("job");
        e.remove_extracted(&job);
        assert!(e.extracted("job").is_none());
        assert_eq!(
            e.extracted_map().keys().cloned().collect::<Vec<_>>(),
            vec!["filename".to_owned()]
        );
        e.set_extracted(&job, Value::Int(3));
        assert_eq!(e.extracted_text("job").as_deref(), Some("3"));
    }

    #[test]
    fn reseed_writes_current_labels_over_extracted_values() {
        let mut e = Entry::new("x", 0, labels([("app", "a")]));
        let app: Arc<str> = Arc::from("app");
        e.set_extracted(&app, Value::from("from-json"));
        let lvl: Arc<str> = Arc::from("lvl");
        e.set_label(&lvl, "warn");
        e.reseed_labels();
        assert_eq!(e.extracted_text("app").as_deref(), Some("a"));
        assert_eq!(e.extracted_text("lvl").as_deref(), Some("warn"));
    }

    #[test]
    fn text_forms_follow_go() {
        assert_eq!(
            ValueRef::Float(1e21).to_text().as_deref(),
            Some("1000000000000000000000")
        );
        assert_eq!(ValueRef::Float(0.5).to_text().as_deref(), Some("0.5"));
        assert_eq!(ValueRef::Float(3.0).to_text().as_deref(), Some("3"));
        assert_eq!(ValueRef::Int(-7).to_text().as_deref(), Some("-7"));
        assert_eq!(ValueRef::Bool(true).to_text().as_deref(), Some("true"));
        assert_eq!(ValueRef::Null.to_text(), None);
    }
}
