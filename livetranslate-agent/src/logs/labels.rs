//! Stream labels: what Loki indexes. An entry's label set is, by precedence, the fields its
//! line promoted (`level` and the standard labels `service`, `environment`, `version`,
//! `cluster`), the labels its pipeline stages set, the input's static labels, `filename`
//! (when the input asks for it), then the agent's standard labels and the client's external
//! labels. Rendered once per distinct set and file, cached.
//!
//! Streams are bounded: a label whose value varies by line (a promoted field, a label set by a
//! stage) takes at most `max_label_values` distinct values per input, and a file at most
//! `max_streams_per_file` distinct label sets; beyond, the varying labels take the value
//! [`OVERFLOW_VALUE`] (the entry is shipped, counted, and warned about once). Label values
//! never hold control characters: runs of them become one space.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::stages::{Labels, RESERVED_LABEL_TENANT_ID};
use crate::internal_events::{LabelCap, LogMetrics};

/// Labels a line promoted: (name, value).
pub type Promoted = Vec<(&'static str, String)>;

/// The value a label takes beyond its cap.
pub const OVERFLOW_VALUE: &str = "__overflow__";

/// Default cap on the distinct values of one varying label of an input.
pub const DEFAULT_MAX_LABEL_VALUES: usize = 100;

/// Default cap on the distinct label sets (streams) of one file.
pub const DEFAULT_MAX_STREAMS_PER_FILE: usize = 200;

/// `value` with every run of control characters replaced by one space, trimmed.
///
/// ```
/// use livetranslate_agent::logs::labels::clean_label_value;
/// assert_eq!(clean_label_value("warn\n"), "warn");
/// assert_eq!(clean_label_value("a\t\u{1b}[31mb"), "a [31mb");
/// assert_eq!(clean_label_value("plain"), "plain");
/// ```
pub fn clean_label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        if c.is_control() {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    std::borrow::Cow::Owned(out.trim().to_owned())
}

/// Renders a label set the way Loki's push API takes it: `{a="x", b="y"}`, sorted by name,
/// the first value of a repeated name winning.
///
/// ```
/// use livetranslate_agent::logs::labels::render_labels;
/// assert_eq!(
///     render_labels([("service", "audio"), ("level", "info"), ("service", "dup"), ("x", "a\"b")]),
///     r#"{level="info", service="audio", x="a\"b"}"#
/// );
/// ```
pub fn render_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> = labels.into_iter().collect();
    // Stable: among equal names the first (highest precedence) stays first.
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::from("{");
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Parses what [`render_labels`] wrote back into pairs.
pub fn parse_rendered_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name, value));
    }
}

/// The distinct values each varying label of one input has taken (shared by the input's
/// files), bounded by `max_label_values`.
#[derive(Debug, Default)]
pub struct ValueBudget {
    limit: usize,
    values: HashMap<String, HashSet<String>>,
    warned: HashSet<String>,
}

impl ValueBudget {
    /// A budget of `limit` distinct values per label name (at least 1).
    pub fn new(limit: usize) -> Self {
        ValueBudget {
            limit: limit.max(1),
            ..Default::default()
        }
    }

    /// Whether `name` may take `value` (a value seen before always may).
    fn admit(&mut self, name: &str, value: &str, input: &str) -> bool {
        let seen = self.values.entry(name.to_owned()).or_default();
        if seen.contains(value) {
            return true;
        }
        if seen.len() < self.limit {
            seen.insert(value.to_owned());
            return true;
        }
        if self.warned.insert(name.to_owned()) {
            tracing::warn!(
                label = name,
                input,
                limit = self.limit,
                overflow = OVERFLOW_VALUE,
                "label has reached its cap of distinct values; further values are replaced"
            );
        }
        false
    }
}

/// Caps on a file's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Distinct values per varying label of an input.
    pub max_label_values: usize,
    /// Distinct label sets per file.
    pub max_streams_per_file: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_label_values: DEFAULT_MAX_LABEL_VALUES,
            max_streams_per_file: DEFAULT_MAX_STREAMS_PER_FILE,
        }
    }
}

/// A rendered stream, the tenant its entries go to, and which cap (if any) shaped it.
#[derive(Debug, Clone)]
pub struct Stream {
    /// `{a="x", b="y"}`.
    pub labels: Arc<str>,
    /// `__tenant_id__` set by a `tenant` stage.
    pub tenant: Option<Arc<str>>,
    capped: Option<LabelCap>,
}

/// The labels every entry of one file shares, and the rendered sets seen so far.
#[derive(Debug)]
pub struct StreamLabels {
    /// Input labels, `filename`: what the file's entries start with (stages may change it).
    own: Vec<(String, String)>,
    /// `own`, as a pipeline entry's labels.
    initial: Labels,
    /// The standard labels and external labels: added last, lowest precedence.
    common: Vec<(String, String)>,
    /// Everything above, by precedence.
    fixed: Vec<(String, String)>,
    path: String,
    input: String,
    limits: StreamLimits,
    cache: HashMap<Vec<(&'static str, String)>, Stream>,
    piped: HashMap<(Labels, Promoted), Stream>,
    /// The distinct streams rendered (what the per-file cap counts).
    rendered: HashSet<Arc<str>>,
    warned_streams: bool,
}

impl StreamLabels {
    /// The labels every entry of the file carries, promoted fields aside.
    pub fn fixed(&self) -> &[(String, String)] {
        &self.fixed
    }

    /// The labels of a file at `filename` read by an input with `input_labels` (and
    /// `filename` as a label when `filename_label`); `common` come last.
    pub fn new(
        input_labels: &[(String, String)],
        filename: &str,
        filename_label: bool,
        common: &[(String, String)],
        input: &str,
        limits: StreamLimits,
    ) -> Self {
        let mut own = input_labels.to_vec();
        if filename_label {
            own.push(("filename".to_owned(), filename.to_owned()));
        }
        let mut fixed = own.clone();
        fixed.extend(common.iter().cloned());
        let initial = own
            .iter()
            .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
            .collect();
        StreamLabels {
            own,
            initial,
            common: common.to_vec(),
            fixed,
            path: filename.to_owned(),
            input: input.to_owned(),
            limits,
            cache: HashMap::new(),
            piped: HashMap::new(),
            rendered: HashSet::new(),
            warned_streams: false,
        }
    }

    /// The labels a pipeline entry of this file starts with.
    pub fn initial(&self) -> Labels {
        self.initial.clone()
    }

    /// Whether another rendered set may be cached (the caches hold what the caps let
    /// through, and a bounded number of entries: a line whose labels were capped is
    /// rendered again rather than remembered).
    fn may_cache(&self, capped: Option<LabelCap>) -> bool {
        capped.is_none()
            && self.cache.len() + self.piped.len() < 2 * self.limits.max_streams_per_file + 64
    }

    /// Applies the caps to the varying labels `dynamic` (indexes into `pairs`).
    fn cap(
        &mut self,
        pairs: &mut [(String, String)],
        dynamic: &[usize],
        budget: &mut ValueBudget,
    ) -> Option<LabelCap> {
        let mut capped = None;
        if self.rendered.len() >= self.limits.max_streams_per_file && !dynamic.is_empty() {
            if !self.warned_streams {
                self.warned_streams = true;
                tracing::warn!(path = %self.path, limit = self.limits.max_streams_per_file, overflow = OVERFLOW_VALUE, "file has reached its cap of distinct streams; the labels of further streams are replaced");
            }
            for &i in dynamic {
                pairs[i].1 = OVERFLOW_VALUE.to_owned();
            }
            return Some(LabelCap::StreamsPerFile);
        }
        for &i in dynamic {
            let (name, value) = &mut pairs[i];
            if !budget.admit(name, value, &self.input) {
                *value = OVERFLOW_VALUE.to_owned();
                capped = Some(LabelCap::LabelValues);
            }
        }
        capped
    }

    fn finish(
        &mut self,
        pairs: Vec<(String, String)>,
        tenant: Option<Arc<str>>,
        capped: Option<LabelCap>,
    ) -> Stream {
        let mut labels = render_labels(
            pairs
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        if labels == "{}" {
            // Loki refuses a stream without labels (and the whole batch with it).
            labels = render_labels([("filename", self.path.as_str())]);
        }
        let labels: Arc<str> = labels.into();
        let labels = match self.rendered.get(&labels) {
            Some(known) => known.clone(),
            None => {
                if self.rendered.len() < self.limits.max_streams_per_file {
                    self.rendered.insert(labels.clone());
                }
                labels
            }
        };
        Stream {
            labels,
            tenant,
            capped,
        }
    }

    /// The stream of an entry whose line promoted `promoted` (the fast path: no stages).
    pub fn render(
        &mut self,
        promoted: Vec<(&'static str, String)>,
        budget: &mut ValueBudget,
        metrics: &LogMetrics,
    ) -> Arc<str> {
        if let Some(s) = self.cache.get(&promoted) {
            if let Some(c) = s.capped {
                metrics.label_capped(c);
            }
            return s.labels.clone();
        }
        let mut pairs: Vec<(String, String)> = promoted
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let dynamic: Vec<usize> = (0..pairs.len()).collect();
        let capped = self.cap(&mut pairs, &dynamic, budget);
        pairs.extend(self.fixed.iter().cloned());
        let stream = self.finish(pairs, None, capped);
        if let Some(c) = capped {
            metrics.label_capped(c);
        }
        let labels = stream.labels.clone();
        if self.may_cache(capped) {
            self.cache.insert(promoted, stream);
        }
        labels
    }

    /// The stream of an entry that went through the file's pipeline stages: its `labels`
    /// (the `__` ones removed, `__tenant_id__` taken as the tenant), then `promoted`, then
    /// the standard and external labels.
    pub fn render_piped(
        &mut self,
        labels: Labels,
        promoted: Vec<(&'static str, String)>,
        budget: &mut ValueBudget,
        metrics: &LogMetrics,
    ) -> Stream {
        let key = (labels, promoted);
        if let Some(s) = self.piped.get(&key) {
            if let Some(c) = s.capped {
                metrics.label_capped(c);
            }
            return s.clone();
        }
        let (labels, promoted) = &key;
        let mut tenant = None;
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut dynamic = Vec::new();
        for (k, v) in promoted {
            dynamic.push(pairs.len());
            pairs.push(((*k).to_owned(), v.clone()));
        }
        for (k, v) in labels {
            if &**k == RESERVED_LABEL_TENANT_ID {
                tenant = Some(v.clone()).filter(|t| !t.is_empty());
                continue;
            }
            if k.starts_with("__") {
                continue;
            }
            let value = clean_label_value(v).into_owned();
            if !self.own.iter().any(|(n, x)| n == &**k && *x == value) {
                dynamic.push(pairs.len());
            }
            pairs.push((k.to_string(), value));
        }
        let capped = self.cap(&mut pairs, &dynamic, budget);
        pairs.extend(self.common.iter().cloned());
        let stream = self.finish(pairs, tenant, capped);
        if let Some(c) = capped {
            metrics.label_capped(c);
        }
        if self.may_cache(capped) {
            self.piped.insert(key, stream.clone());
        }
        stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> LogMetrics {
        LogMetrics::detached()
    }

    #[test]
    fn rendered_labels_parse_back() {
        let rendered = render_labels([("a", "x\"y"), ("b", "line\nbreak"), ("c", "")]);
        assert_eq!(
            parse_rendered_labels(&rendered),
            vec![
                ("a".to_owned(), "x\"y".to_owned()),
                ("b".to_owned(), "line\nbreak".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
    }

    fn labels(filename_label: bool, limits: StreamLimits) -> StreamLabels {
        StreamLabels::new(
            &[
                ("service".into(), "from-input".into()),
                ("team".into(), "a".into()),
            ],
            "/l/a.log",
            filename_label,
            &[
                ("service".into(), "std".into()),
                ("cluster".into(), "c".into()),
            ],
            "inputs[0]",
            limits,
        )
    }

    #[test]
    fn promoted_fields_win_then_input_labels_then_filename_then_standard() {
        let m = metrics();
        let mut b = ValueBudget::new(10);
        let mut l = labels(true, StreamLimits::default());
        assert_eq!(
            &*l.render(vec![("level", "info".into())], &mut b, &m),
            r#"{cluster="c", filename="/l/a.log", level="info", service="from-input", team="a"}"#
        );
        assert_eq!(
            &*l.render(vec![("service", "line".into())], &mut b, &m),
            r#"{cluster="c", filename="/l/a.log", service="line", team="a"}"#
        );
        let a = l.render(vec![("level", "info".into())], &mut b, &m);
        let c = l.render(vec![("level", "info".into())], &mut b, &m);
        assert!(Arc::ptr_eq(&a, &c), "cached");
        let mut no_file = labels(false, StreamLimits::default());
        assert_eq!(
            &*no_file.render(vec![], &mut b, &m),
            r#"{cluster="c", service="from-input", team="a"}"#
        );
    }

    #[test]
    fn label_values_and_streams_are_capped() {
        let m = metrics();
        let mut b = ValueBudget::new(3);
        let mut l = labels(
            false,
            StreamLimits {
                max_label_values: 3,
                max_streams_per_file: 1000,
            },
        );
        let mut rendered = HashSet::new();
        for i in 0..50 {
            rendered.insert(
                l.render(vec![("user", format!("u{i}"))], &mut b, &m)
                    .to_string(),
            );
        }
        assert_eq!(rendered.len(), 4, "3 values and the overflow: {rendered:?}");
        assert!(rendered.iter().any(|r| r.contains(OVERFLOW_VALUE)));
        let mut b = ValueBudget::new(1000);
        let mut l = labels(
            false,
            StreamLimits {
                max_label_values: 1000,
                max_streams_per_file: 5,
            },
        );
        let mut rendered = HashSet::new();
        for i in 0..50 {
            rendered.insert(
                l.render(vec![("user", format!("u{i}"))], &mut b, &m)
                    .to_string(),
            );
        }
        assert_eq!(
            rendered.len(),
            6,
            "5 streams and the overflow: {rendered:?}"
        );
    }

    #[test]
    fn piped_entries_lose_reserved_labels_and_keep_the_tenant() {
        let m = metrics();
        let mut b = ValueBudget::new(10);
        let mut l = labels(true, StreamLimits::default());
        let mut set = l.initial();
        set.remove("team");
        set.insert("level".into(), "warn\n".into());
        set.insert("__tenant_id__".into(), "team-b".into());
        set.insert("__tmp".into(), "x".into());
        let s = l.render_piped(set, vec![], &mut b, &m);
        assert_eq!(
            &*s.labels,
            r#"{cluster="c", filename="/l/a.log", level="warn", service="from-input"}"#
        );
        assert_eq!(s.tenant.as_deref(), Some("team-b"));
        // Everything dropped: the stream keeps its file's name rather than be refused.
        let s = l.render_piped(Labels::new(), vec![], &mut b, &m);
        assert!(s.labels.contains("cluster"));
    }
}
