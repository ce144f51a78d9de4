//! Stream labels: what Loki indexes. An entry's label set is, by precedence, the fields its
//! line promoted (`level`, `service`, Docker/CRI `stream`), the input's static labels,
//! `filename`, then the standard labels. Rendered once per distinct set and file, cached.

use std::collections::HashMap;
use std::sync::Arc;

/// Distinct label sets cached per file at most (promoted fields are few and bounded).
const CACHE_LIMIT: usize = 256;

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

/// The labels every entry of one file shares (input labels, `filename`, standard labels),
/// and the rendered sets seen so far.
#[derive(Debug)]
pub struct StreamLabels {
    fixed: Vec<(String, String)>,
    cache: HashMap<Vec<(&'static str, String)>, Arc<str>>,
}

impl StreamLabels {
    /// The labels of a file at `filename` read by an input with `input_labels`.
    pub fn new(
        input_labels: &[(String, String)],
        filename: &str,
        common: &[(String, String)],
    ) -> Self {
        let mut fixed = input_labels.to_vec();
        fixed.push(("filename".to_owned(), filename.to_owned()));
        fixed.extend(common.iter().cloned());
        StreamLabels {
            fixed,
            cache: HashMap::new(),
        }
    }

    /// The labels every entry of the file carries, promoted fields aside.
    pub fn fixed(&self) -> &[(String, String)] {
        &self.fixed
    }

    /// The rendered label set of an entry whose line promoted `promoted`.
    pub fn render(&mut self, promoted: Vec<(&'static str, String)>) -> Arc<str> {
        if let Some(l) = self.cache.get(&promoted) {
            return l.clone();
        }
        let rendered: Arc<str> = render_labels(
            promoted
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain(self.fixed.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )
        .into();
        if self.cache.len() < CACHE_LIMIT {
            self.cache.insert(promoted, rendered.clone());
        }
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn promoted_fields_win_then_input_labels_then_filename_then_standard() {
        let mut l = StreamLabels::new(
            &[
                ("service".into(), "from-input".into()),
                ("team".into(), "a".into()),
            ],
            "/l/a.log",
            &[
                ("service".into(), "std".into()),
                ("cluster".into(), "c".into()),
            ],
        );
        assert_eq!(
            &*l.render(vec![("level", "info".into())]),
            r#"{cluster="c", filename="/l/a.log", level="info", service="from-input", team="a"}"#
        );
        assert_eq!(
            &*l.render(vec![("service", "line".into())]),
            r#"{cluster="c", filename="/l/a.log", service="line", team="a"}"#
        );
        let a = l.render(vec![("level", "info".into())]);
        let b = l.render(vec![("level", "info".into())]);
        assert!(Arc::ptr_eq(&a, &b), "cached");
    }
}
