//! One parsed line of an exposition: what kind of line it is and, for a sample, where its parts
//! lie within the line. The format parsers fill a [`SampleParts`] that is reused from line to
//! line, so parsing allocates nothing per sample.

/// What a line turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// Nothing but blanks (text format only).
    Blank,
    /// A comment, or a `# HELP` / `# TYPE` / `# UNIT` line (checked, not kept).
    Metadata,
    /// The end of the input: `# EOF` in OpenMetrics; in the text format a NUL byte where a line
    /// should start, after which Prometheus's lexer reads nothing more.
    Eof,
    /// A sample; the line, valid UTF-8, and its parts are in the [`SampleParts`].
    Sample(&'a str),
}

/// Byte range of a label name and of its raw (still escaped) value within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSpan {
    /// Start and end of the name.
    pub name: (usize, usize),
    /// Start and end of the value between the quotes.
    pub value: (usize, usize),
    /// Whether the value contains a backslash.
    pub escaped: bool,
}

impl LabelSpan {
    /// The name within `line`.
    pub fn name<'a>(&self, line: &'a str) -> &'a str {
        line.get(self.name.0..self.name.1).unwrap_or_default()
    }

    /// The raw value within `line`.
    pub fn raw_value<'a>(&self, line: &'a str) -> &'a str {
        line.get(self.value.0..self.value.1).unwrap_or_default()
    }

    /// Whether the value is empty.
    pub fn value_is_empty(&self) -> bool {
        self.value.0 == self.value.1
    }
}

/// The parts of a sample line.
#[derive(Debug, Default)]
pub struct SampleParts {
    /// Byte range of the metric name.
    pub name: (usize, usize),
    /// The labels in the order they appear.
    pub labels: Vec<LabelSpan>,
    /// The value.
    pub value: f64,
    /// The explicit timestamp in milliseconds.
    pub timestamp_ms: Option<i64>,
    /// The labels of the exemplar, if the line has one.
    pub exemplar_labels: Vec<LabelSpan>,
    /// The exemplar's value and explicit timestamp (ms), if the line has one.
    pub exemplar: Option<(f64, Option<i64>)>,
}

impl SampleParts {
    /// Forgets the previous line.
    pub fn clear(&mut self) {
        self.name = (0, 0);
        self.labels.clear();
        self.value = 0.0;
        self.timestamp_ms = None;
        self.exemplar_labels.clear();
        self.exemplar = None;
    }
}
