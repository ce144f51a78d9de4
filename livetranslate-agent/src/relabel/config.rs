//! One relabelling rule, spelled as in Prometheus's `relabel_configs` (and Promtail's): the
//! same keys, defaults, YAML quirks and validation as Prometheus 2.42's `relabel.Config`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::regex::{Regex, RegexError, Template};

/// The keys of a rule, in Prometheus's order.
const FIELDS: &[&str] = &[
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
];

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// What a rule does (Prometheus 2.42's actions; YAML spelling is case-insensitive).
///
/// ```
/// use livetranslate_agent::relabel::Action;
///
/// assert_eq!("HashMod".parse::<Action>().unwrap(), Action::HashMod);
/// assert_eq!(Action::LabelKeep.as_str(), "labelkeep");
/// assert!("bogus".parse::<Action>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Match `regex` against the joined source values; on a match set `target_label`
    /// (expanded) to `replacement` (expanded), or delete it if that is empty.
    Replace,
    /// Drop the label set unless `regex` matches the joined source values.
    Keep,
    /// Drop the label set if `regex` matches the joined source values.
    Drop,
    /// Drop the label set unless the joined source values equal `target_label`'s value.
    KeepEqual,
    /// Drop the label set if the joined source values equal `target_label`'s value.
    DropEqual,
    /// Set `target_label` to MD5(joined source values) mod `modulus`.
    HashMod,
    /// For every label whose name matches `regex`, copy its value to the name
    /// `replacement` expands to.
    LabelMap,
    /// Remove every label whose name matches `regex`.
    LabelDrop,
    /// Remove every label whose name does not match `regex`.
    LabelKeep,
    /// Set `target_label` to the joined source values, lower-cased.
    Lowercase,
    /// Set `target_label` to the joined source values, upper-cased.
    Uppercase,
}

impl Action {
    /// Every action.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Action;
    ///
    /// assert_eq!(Action::ALL.len(), 11);
    /// ```
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The YAML spelling.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Action;
    ///
    /// assert_eq!(Action::KeepEqual.as_str(), "keepequal");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = RelabelConfigError;

    fn from_str(s: &str) -> Result<Action, RelabelConfigError> {
        let lower = s.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| RelabelConfigError::UnknownAction(s.to_owned()))
    }
}

/// A rule Prometheus would refuse. The wording is Prometheus's, and every message names the
/// key at fault; [`RelabelConfigError::field`] gives that key to point at it in the file.
///
/// ```
/// use livetranslate_agent::relabel::{Action, RelabelConfig};
///
/// let err = RelabelConfig::builder(Action::HashMod)
///     .source_labels(["__address__"])
///     .target_label("__tmp_hash")
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), "modulus");
/// assert_eq!(err.to_string(), "relabel configuration for hashmod requires non-zero 'modulus'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelConfigError {
    /// `action:` given as null.
    #[error("relabel 'action' cannot be empty")]
    EmptyAction,
    /// An action Prometheus does not know.
    #[error("unknown relabel 'action' {0:?}")]
    UnknownAction(String),
    /// A source label that is not a valid label name.
    #[error("{0:?} is not a valid label name in 'source_labels'")]
    InvalidSourceLabel(String),
    /// The regex does not compile (Go syntax).
    #[error("'regex': {0}")]
    Regex(#[from] RegexError),
    /// `hashmod` with `modulus` 0 or missing.
    #[error("relabel configuration for hashmod requires non-zero 'modulus'")]
    ModulusRequired,
    /// A `modulus` that is not a non-negative integer.
    #[error("'modulus': {0}")]
    InvalidModulus(String),
    /// The action needs `target_label`.
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    TargetLabelRequired(Action),
    /// `target_label` is not a label name (nor, for `replace`, a template of one).
    #[error("{target_label:?} is invalid 'target_label' for {action} action")]
    InvalidTargetLabel {
        /// The value given.
        target_label: String,
        /// The action.
        action: Action,
    },
    /// `replacement` given for an action that does not use it.
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    /// `replacement` is not a template of a label name (for `labelmap`).
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    InvalidReplacement {
        /// The value given.
        replacement: String,
        /// The action.
        action: Action,
    },
    /// `keepequal` / `dropequal` with a key other than `source_labels` and `target_label`.
    #[error("{action} action requires only 'source_labels' and `target_label`, and no other fields (found '{field}')")]
    OnlySourceAndTarget {
        /// The action.
        action: Action,
        /// The first key that should not be there.
        field: &'static str,
    },
    /// `labeldrop` / `labelkeep` with a key other than `regex`.
    #[error("{action} action requires only 'regex', and no other fields (found '{field}')")]
    OnlyRegex {
        /// The action.
        action: Action,
        /// The first key that should not be there.
        field: &'static str,
    },
}

impl RelabelConfigError {
    /// The YAML key the error is about (`source_labels`, `separator`, `regex`, `modulus`,
    /// `target_label`, `replacement` or `action`).
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let err = serde_yaml_ng::from_str::<RelabelConfig>("{target_label: 1x}").unwrap_err();
    /// assert!(err.to_string().contains("'target_label'"));
    /// ```
    pub fn field(&self) -> &'static str {
        match self {
            RelabelConfigError::EmptyAction | RelabelConfigError::UnknownAction(_) => "action",
            RelabelConfigError::InvalidSourceLabel(_) => "source_labels",
            RelabelConfigError::Regex(_) => "regex",
            RelabelConfigError::ModulusRequired | RelabelConfigError::InvalidModulus(_) => {
                "modulus"
            }
            RelabelConfigError::TargetLabelRequired(_)
            | RelabelConfigError::InvalidTargetLabel { .. } => "target_label",
            RelabelConfigError::ReplacementNotAllowed(_)
            | RelabelConfigError::InvalidReplacement { .. } => "replacement",
            RelabelConfigError::OnlySourceAndTarget { field, .. }
            | RelabelConfigError::OnlyRegex { field, .. } => field,
        }
    }
}

/// One relabelling rule, validated, its regex and templates compiled.
///
/// Deserialised from YAML with Prometheus's keys and defaults (`separator: ";"`,
/// `regex: (.*)`, `replacement: $1`, `action: replace`); unknown keys and invalid rules are
/// errors located at the rule (or at the offending value) by the YAML parser.
///
/// ```
/// use livetranslate_agent::relabel::{self, Labels, RelabelConfig};
///
/// let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(r#"
/// - source_labels: [__meta_kubernetes_pod_label_app]
///   target_label: app
/// - source_labels: [__name__]
///   regex: go_.*
///   action: drop
/// "#).unwrap();
/// let labels: Labels = [("__meta_kubernetes_pod_label_app", "api"), ("__name__", "up")]
///     .into_iter()
///     .collect();
/// let out = relabel::apply(labels, &rules).unwrap();
/// assert_eq!(out.get("app"), Some("api"));
/// ```
#[derive(Debug, Clone)]
pub struct RelabelConfig {
    /// `None` when not given (distinct from an empty list, as in Prometheus).
    source_labels: Option<Vec<String>>,
    separator: String,
    regex: Regex,
    /// Whether `regex` was given (even as its default text): Prometheus compares the regex
    /// by identity when it checks that `keepequal` / `dropequal` leave it alone.
    regex_given: bool,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
    /// `target_label` as a template (for `replace`).
    pub(crate) target_template: Template,
    /// `replacement` as a template (for `replace` and `labelmap`).
    pub(crate) replacement_template: Template,
}

impl PartialEq for RelabelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.source_labels == other.source_labels
            && self.separator == other.separator
            && self.regex == other.regex
            && self.regex_given == other.regex_given
            && self.modulus == other.modulus
            && self.target_label == other.target_label
            && self.replacement == other.replacement
            && self.action == other.action
    }
}

impl RelabelConfig {
    /// A builder with Prometheus's defaults for `action`.
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let rule = RelabelConfig::builder(Action::Replace)
    ///     .source_labels(["__meta_consul_service"])
    ///     .target_label("service")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!((rule.separator(), rule.regex().as_str(), rule.replacement()), (";", "(.*)", "$1"));
    /// ```
    pub fn builder(action: Action) -> RelabelConfigBuilder {
        RelabelConfigBuilder {
            source_labels: None,
            separator: DEFAULT_SEPARATOR.to_owned(),
            regex: None,
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action,
        }
    }

    /// The two rules that keep one shard of `count` (the targets whose `__address__` hashes
    /// to `index`): run the same list with index 0..count on `count` agents and every target
    /// is scraped by exactly one of them, as Prometheus's own `hashmod` sharding splits them.
    /// Uses the temporary label `__tmp_hash`, removed with the other `__` labels.
    ///
    /// ```
    /// use livetranslate_agent::relabel::{self, Labels, RelabelConfig};
    ///
    /// let shards: Vec<_> = (0..3).map(|i| RelabelConfig::sharding(i, 3).unwrap()).collect();
    /// let target: Labels = [("__address__", "10.0.0.7:9100")].into_iter().collect();
    /// let kept = shards.iter().filter(|rules| relabel::apply(target.clone(), rules).is_some());
    /// assert_eq!(kept.count(), 1);
    /// ```
    pub fn sharding(index: u64, count: u64) -> Result<Vec<RelabelConfig>, RelabelConfigError> {
        if index >= count {
            return Err(RelabelConfigError::InvalidModulus(format!(
                "shard {index} is not below the shard count {count}"
            )));
        }
        Ok(vec![
            RelabelConfig::builder(Action::HashMod)
                .source_labels(["__address__"])
                .modulus(count)
                .target_label("__tmp_hash")
                .build()?,
            RelabelConfig::builder(Action::Keep)
                .source_labels(["__tmp_hash"])
                .regex(index.to_string())
                .build()?,
        ])
    }

    /// The action.
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str("{action: LabelDrop, regex: tmp_.*}").unwrap();
    /// assert_eq!(r.action(), Action::LabelDrop);
    /// ```
    pub fn action(&self) -> Action {
        self.action
    }

    /// The source labels (empty when not given).
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str("{source_labels: [a, b], target_label: c}").unwrap();
    /// assert_eq!(r.source_labels(), ["a", "b"]);
    /// ```
    pub fn source_labels(&self) -> &[String] {
        self.source_labels.as_deref().unwrap_or(&[])
    }

    /// The separator between joined source values.
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str("{separator: ':', target_label: c}").unwrap();
    /// assert_eq!(r.separator(), ":");
    /// ```
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The regex (anchored).
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str("{target_label: c}").unwrap();
    /// assert_eq!(r.regex().as_str(), "(.*)");
    /// ```
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// The modulus of `hashmod` (0 otherwise).
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str(
    ///     "{action: hashmod, source_labels: [a], modulus: 8, target_label: b}").unwrap();
    /// assert_eq!(r.modulus(), 8);
    /// ```
    pub fn modulus(&self) -> u64 {
        self.modulus
    }

    /// The target label (a template for `replace`).
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str("{target_label: '${1}_x'}").unwrap();
    /// assert_eq!(r.target_label(), "${1}_x");
    /// ```
    pub fn target_label(&self) -> &str {
        &self.target_label
    }

    /// The replacement template.
    ///
    /// ```
    /// use livetranslate_agent::relabel::RelabelConfig;
    ///
    /// let r: RelabelConfig = serde_yaml_ng::from_str("{target_label: a, replacement: x$1}").unwrap();
    /// assert_eq!(r.replacement(), "x$1");
    /// ```
    pub fn replacement(&self) -> &str {
        &self.replacement
    }

    /// Checks the rule as Prometheus 2.42's `relabel.Config.Validate` does, in its order.
    fn validate(&self) -> Result<(), RelabelConfigError> {
        use Action::*;
        let action = self.action;
        let target = self.target_label.as_str();
        if self.modulus == 0 && action == HashMod {
            return Err(RelabelConfigError::ModulusRequired);
        }
        let writes = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if writes && target.is_empty() {
            return Err(RelabelConfigError::TargetLabelRequired(action));
        }
        let invalid_target = || RelabelConfigError::InvalidTargetLabel {
            target_label: target.to_owned(),
            action,
        };
        // In 2.42 these four actions accept a `$` template as `target_label` (which they then
        // use literally), like `replace`; only `hashmod` insists on a plain label name.
        if matches!(
            action,
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual
        ) {
            let ok = if target.contains('$') {
                is_target_template(target)
            } else {
                is_valid_label_name(target)
            };
            if !ok {
                return Err(invalid_target());
            }
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(RelabelConfigError::ReplacementNotAllowed(action));
        }
        if action == LabelMap && !is_target_template(&self.replacement) {
            return Err(RelabelConfigError::InvalidReplacement {
                replacement: self.replacement.clone(),
                action,
            });
        }
        if action == HashMod && !is_valid_label_name(target) {
            return Err(invalid_target());
        }
        if matches!(action, KeepEqual | DropEqual) {
            let extra = [
                ("regex", self.regex_given),
                ("modulus", self.modulus != 0),
                ("separator", self.separator != DEFAULT_SEPARATOR),
                ("replacement", self.replacement != DEFAULT_REPLACEMENT),
            ];
            if let Some((field, _)) = extra.into_iter().find(|(_, bad)| *bad) {
                return Err(RelabelConfigError::OnlySourceAndTarget { action, field });
            }
        }
        if matches!(action, LabelDrop | LabelKeep) {
            let extra = [
                ("source_labels", self.source_labels.is_some()),
                ("target_label", !target.is_empty()),
                ("modulus", self.modulus != 0),
                ("separator", self.separator != DEFAULT_SEPARATOR),
                ("replacement", self.replacement != DEFAULT_REPLACEMENT),
            ];
            if let Some((field, _)) = extra.into_iter().find(|(_, bad)| *bad) {
                return Err(RelabelConfigError::OnlyRegex { action, field });
            }
        }
        Ok(())
    }
}

/// Builds a [`RelabelConfig`] in code, with Prometheus's defaults for what is not set.
///
/// ```
/// use livetranslate_agent::relabel::{Action, RelabelConfig};
///
/// let rule = RelabelConfig::builder(Action::Replace)
///     .source_labels(["__address__"])
///     .regex("(.+):.*")
///     .target_label("host")
///     .build()
///     .unwrap();
/// assert_eq!(rule.target_label(), "host");
/// ```
#[derive(Debug, Clone)]
pub struct RelabelConfigBuilder {
    source_labels: Option<Vec<String>>,
    separator: String,
    regex: Option<String>,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

impl RelabelConfigBuilder {
    /// `source_labels`.
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let b = RelabelConfig::builder(Action::Keep).source_labels(["job", "instance"]);
    /// assert_eq!(b.build().unwrap().source_labels().len(), 2);
    /// ```
    pub fn source_labels<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.source_labels = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// `separator` (default `;`).
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let r = RelabelConfig::builder(Action::Keep).separator("/").build().unwrap();
    /// assert_eq!(r.separator(), "/");
    /// ```
    pub fn separator(mut self, separator: impl Into<String>) -> Self {
        self.separator = separator.into();
        self
    }

    /// `regex` (Go syntax, default `(.*)`).
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// assert!(RelabelConfig::builder(Action::Keep).regex("a(").build().is_err());
    /// ```
    pub fn regex(mut self, pattern: impl Into<String>) -> Self {
        self.regex = Some(pattern.into());
        self
    }

    /// `modulus` (for `hashmod`).
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let r = RelabelConfig::builder(Action::HashMod)
    ///     .source_labels(["a"]).modulus(4).target_label("b").build().unwrap();
    /// assert_eq!(r.modulus(), 4);
    /// ```
    pub fn modulus(mut self, modulus: u64) -> Self {
        self.modulus = modulus;
        self
    }

    /// `target_label`.
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// assert!(RelabelConfig::builder(Action::Replace).target_label("1x").build().is_err());
    /// ```
    pub fn target_label(mut self, target_label: impl Into<String>) -> Self {
        self.target_label = target_label.into();
        self
    }

    /// `replacement` (default `$1`).
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let r = RelabelConfig::builder(Action::Replace).target_label("a").replacement("x").build();
    /// assert_eq!(r.unwrap().replacement(), "x");
    /// ```
    pub fn replacement(mut self, replacement: impl Into<String>) -> Self {
        self.replacement = replacement.into();
        self
    }

    /// Validates as Prometheus does and compiles the regex and templates.
    ///
    /// ```
    /// use livetranslate_agent::relabel::{Action, RelabelConfig};
    ///
    /// let err = RelabelConfig::builder(Action::LabelDrop).regex("tmp_.*").target_label("x").build();
    /// assert_eq!(err.unwrap_err().field(), "target_label");
    /// ```
    pub fn build(self) -> Result<RelabelConfig, RelabelConfigError> {
        if let Some(bad) = self
            .source_labels
            .iter()
            .flatten()
            .find(|n| !is_valid_label_name(n))
        {
            return Err(RelabelConfigError::InvalidSourceLabel(bad.clone()));
        }
        let regex_given = self.regex.is_some();
        let regex = Regex::new(self.regex.as_deref().unwrap_or(DEFAULT_REGEX))?;
        self.finish(regex, regex_given)
    }

    /// Builds with an already compiled regex (source labels already checked).
    fn finish(self, regex: Regex, regex_given: bool) -> Result<RelabelConfig, RelabelConfigError> {
        let target_template = Template::parse(&self.target_label, &regex);
        let replacement_template = Template::parse(&self.replacement, &regex);
        let config = RelabelConfig {
            source_labels: self.source_labels,
            separator: self.separator,
            regex,
            regex_given,
            modulus: self.modulus,
            target_label: self.target_label,
            replacement: self.replacement,
            action: self.action,
            target_template,
            replacement_template,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Prometheus's (pre-UTF-8) label name rule `[a-zA-Z_][a-zA-Z0-9_]*`: the one validator.
pub(super) use livetranslate_telemetry::names::is_valid_label_name;

/// Prometheus's `relabelTarget`: `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$` (`\w` ASCII),
/// the shape of a label name built from letters and `$1` / `${name}` references.
fn is_target_template(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = s.as_bytes();
    let mut i = 0;
    if b.is_empty() {
        return false;
    }
    while i < b.len() {
        match b[i] {
            b'$' => {
                i += 1;
                if b.get(i) == Some(&b'{') {
                    let len = b[i + 1..].iter().take_while(|&&c| word(c)).count();
                    if len == 0 || b.get(i + 1 + len) != Some(&b'}') {
                        return false;
                    }
                    i += len + 2;
                } else {
                    let len = b[i..].iter().take_while(|&&c| word(c)).count();
                    if len == 0 {
                        return false;
                    }
                    i += len;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => i += 1,
            // Digits may follow a letter or a reference (the `\w*` tail).
            c if c.is_ascii_digit() && i > 0 => i += 1,
            _ => return false,
        }
    }
    true
}

// --- YAML ---------------------------------------------------------------------------

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`, not `map`: a null rule gets Prometheus's message, not a type error.
        deserializer.deserialize_any(RuleVisitor)
    }
}

struct RuleVisitor;

impl<'de> Visitor<'de> for RuleVisitor {
    type Value = RelabelConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a relabelling rule (a mapping with source_labels, regex, action, …)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RelabelConfig, E> {
        Err(E::custom("empty or null relabeling rule"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RelabelConfig, A::Error> {
        let mut builder = RelabelConfig::builder(Action::Replace);
        let mut regex: Option<Regex> = None;
        let mut seen = [false; 7];
        while let Some(key) = map.next_key::<String>()? {
            let Some(index) = FIELDS.iter().position(|f| *f == key) else {
                return Err(de::Error::unknown_field(&key, FIELDS));
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(de::Error::duplicate_field(FIELDS[index]));
            }
            // A null value gives Go's zero value (`separator: ~` is "", not ";"), as
            // Prometheus's YAML decoder does.
            match FIELDS[index] {
                "source_labels" => builder.source_labels = map.next_value::<SourceLabels>()?.0,
                "separator" => builder.separator = map.next_value::<Text>()?.0,
                "regex" => regex = Some(map.next_value::<RegexValue>()?.0),
                "modulus" => builder.modulus = map.next_value::<Modulus>()?.0,
                "target_label" => builder.target_label = map.next_value::<Text>()?.0,
                "replacement" => builder.replacement = map.next_value::<Text>()?.0,
                _ => builder.action = map.next_value::<ActionValue>()?.0,
            }
        }
        let regex_given = regex.is_some();
        let regex = match regex {
            Some(r) => r,
            None => Regex::new(DEFAULT_REGEX).map_err(de::Error::custom)?,
        };
        builder
            .finish(regex, regex_given)
            .map_err(de::Error::custom)
    }
}

/// A string value; null is "" and any scalar is taken as its text (as Go's YAML does).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(Option::<String>::deserialize(d)?.unwrap_or_default()))
    }
}

/// `source_labels`: a list of label names; null (the list or an entry) means none / "".
struct SourceLabels(Option<Vec<String>>);

impl<'de> Deserialize<'de> for SourceLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of label names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<SourceLabel>()? {
                    names.push(name.0);
                }
                Ok(names)
            }
        }
        struct Nullable;
        impl<'de> Visitor<'de> for Nullable {
            type Value = Option<Vec<String>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of label names")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_seq(Names).map(Some)
            }
        }
        d.deserialize_option(Nullable).map(SourceLabels)
    }
}

/// One source label name, checked where it is written (a null entry is "", unchecked, as in
/// Prometheus).
struct SourceLabel(String);

impl<'de> Deserialize<'de> for SourceLabel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a label name", |name| match name {
            Some(n) if !is_valid_label_name(n) => {
                Err(RelabelConfigError::InvalidSourceLabel(n.to_owned()))
            }
            n => Ok(SourceLabel(n.unwrap_or_default().to_owned())),
        })
    }
}

/// `regex`, compiled where it is written; null is the empty regex (matches only "").
struct RegexValue(Regex);

impl<'de> Deserialize<'de> for RegexValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a regular expression", |pattern| {
            Ok(RegexValue(Regex::new(pattern.unwrap_or_default())?))
        })
    }
}

/// `action`, case-insensitive; null is refused.
struct ActionValue(Action);

impl<'de> Deserialize<'de> for ActionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a relabel action", |action| match action {
            None => Err(RelabelConfigError::EmptyAction),
            Some(a) => a.parse().map(ActionValue),
        })
    }
}

/// Reads a scalar (any scalar as its text, null as `None`) and converts it *inside* the
/// deserializer, so that a conversion error is located at the value, not at the rule.
fn scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    convert: fn(Option<&str>) -> Result<T, RelabelConfigError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Outer<T> {
        expecting: &'static str,
        convert: fn(Option<&str>) -> Result<T, RelabelConfigError>,
    }
    struct Inner<T>(Outer<T>);
    impl<'de, T> Visitor<'de> for Outer<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            (self.convert)(None).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            (self.convert)(None).map_err(E::custom)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<T, D2::Error> {
            d.deserialize_str(Inner(self))
        }
    }
    impl<T> Visitor<'_> for Inner<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0.convert)(Some(v)).map_err(E::custom)
        }
    }
    d.deserialize_option(Outer { expecting, convert })
}

/// `modulus`: an unsigned integer; like Go's YAML decoder, a float is truncated and null is 0.
struct Modulus(u64);

impl<'de> Deserialize<'de> for Modulus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Number;
        impl Visitor<'_> for Number {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| {
                    E::custom(RelabelConfigError::InvalidModulus(format!(
                        "{v} is negative"
                    )))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
                // 2^64 as f64; `as` truncates toward zero, as Go's conversion does.
                if v.is_finite() && v > -1.0 && v < 18_446_744_073_709_551_616.0 {
                    Ok(v as u64)
                } else {
                    Err(E::custom(RelabelConfigError::InvalidModulus(format!(
                        "{v} is not a non-negative integer"
                    ))))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
                Ok(0)
            }
            fn visit_none<E: de::Error>(self) -> Result<u64, E> {
                Ok(0)
            }
        }
        d.deserialize_any(Number).map(Modulus)
    }
}

impl Serialize for RelabelConfig {
    /// Prometheus's own form: keys in its order, empty ones left out.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(names) = self.source_labels.as_ref().filter(|n| !n.is_empty()) {
            m.serialize_entry("source_labels", names)?;
        }
        if !self.separator.is_empty() {
            m.serialize_entry("separator", &self.separator)?;
        }
        if self.regex_given || self.regex.as_str() != DEFAULT_REGEX {
            m.serialize_entry("regex", self.regex.as_str())?;
        }
        if self.modulus != 0 {
            m.serialize_entry("modulus", &self.modulus)?;
        }
        if !self.target_label.is_empty() {
            m.serialize_entry("target_label", &self.target_label)?;
        }
        if !self.replacement.is_empty() {
            m.serialize_entry("replacement", &self.replacement)?;
        }
        m.serialize_entry("action", self.action.as_str())?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RelabelConfig, String> {
        serde_yaml_ng::from_str::<RelabelConfig>(yaml).map_err(|e| e.to_string())
    }

    fn ok(yaml: &str) -> RelabelConfig {
        parse(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn fails(yaml: &str, want: &str) {
        match parse(yaml) {
            Ok(r) => panic!("{yaml} was accepted: {r:?}"),
            Err(e) => assert!(e.contains(want), "{yaml}: {e:?} does not contain {want:?}"),
        }
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let r = ok("{target_label: t}");
        assert_eq!(r.action(), Action::Replace);
        assert_eq!(r.separator(), ";");
        assert_eq!(r.regex().as_str(), "(.*)");
        assert_eq!(r.replacement(), "$1");
        assert_eq!(r.modulus(), 0);
        assert!(r.source_labels().is_empty());
    }

    #[test]
    fn null_values_are_go_zero_values() {
        let r = ok("{target_label: t, separator: ~, replacement: ~, regex: ~, source_labels: ~}");
        assert_eq!((r.separator(), r.replacement()), ("", ""));
        assert_eq!(r.regex().as_str(), "");
        assert!(r.regex().is_match("") && !r.regex().is_match("x"));
        assert_eq!(
            ok("{target_label: t, source_labels: [a, ~]}").source_labels(),
            ["a", ""]
        );
        fails(
            "{target_label: t, action: ~}",
            "relabel 'action' cannot be empty",
        );
        fails(
            "{action: hashmod, source_labels: [a], target_label: b, modulus: ~}",
            "requires non-zero 'modulus'",
        );
    }

    #[test]
    fn scalars_are_text() {
        assert_eq!(ok("{target_label: t, separator: 1}").separator(), "1");
        assert_eq!(
            ok("{target_label: t, replacement: true}").replacement(),
            "true"
        );
        assert_eq!(ok("{target_label: t, regex: 1.5}").regex().as_str(), "1.5");
        fails(
            "{target_label: 123}",
            r#""123" is invalid 'target_label' for replace action"#,
        );
    }

    #[test]
    fn action_spelling() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
            assert_eq!(a.as_str().to_uppercase().parse::<Action>(), Ok(a));
        }
        fails("{action: bogus}", r#"unknown relabel 'action' "bogus""#);
        fails(r#"{action: ""}"#, r#"unknown relabel 'action' """#);
    }

    #[test]
    fn unknown_and_duplicate_keys() {
        fails("{target_label: t, foo: 1}", "unknown field `foo`");
        fails(
            "{target_label: t, targetlabel: 1}",
            "unknown field `targetlabel`",
        );
        fails("~", "empty or null relabeling rule");
    }

    #[test]
    fn modulus_forms() {
        let m = |v: &str| {
            parse(&format!(
                "{{action: hashmod, source_labels: [a], target_label: b, modulus: {v}}}"
            ))
            .map(|r| r.modulus())
        };
        assert_eq!(m("3"), Ok(3));
        assert_eq!(m("3.5"), Ok(3), "Go's decoder truncates");
        assert_eq!(m("1e3"), Ok(1000));
        assert_eq!(m("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(m("0x10"), Ok(16));
        assert!(m("-1").is_err());
        assert!(m("-0.5").unwrap_err().contains("non-zero 'modulus'"));
        assert!(m(".inf").is_err() && m("true").is_err() && m("'5'").is_err());
        assert!(m("[1]").is_err());
    }

    #[test]
    fn validation_matches_prometheus() {
        // Each line: a rule Prometheus 2.42 refuses, and the message (or part of it).
        let refused = [
            (
                "{action: hashmod, source_labels: [a], target_label: b}",
                "relabel configuration for hashmod requires non-zero 'modulus'",
            ),
            ("{}", "relabel configuration for replace action requires 'target_label' value"),
            ("{action: lowercase, source_labels: [a]}", "lowercase action requires 'target_label'"),
            ("{action: uppercase}", "uppercase action requires 'target_label'"),
            ("{action: keepequal, source_labels: [a]}", "keepequal action requires 'target_label'"),
            ("{action: dropequal}", "dropequal action requires 'target_label'"),
            (
                "{action: hashmod, modulus: 2}",
                "hashmod action requires 'target_label'",
            ),
            ("{target_label: 1x}", r#""1x" is invalid 'target_label' for replace action"#),
            ("{target_label: a-b}", r#""a-b" is invalid 'target_label' for replace action"#),
            ("{target_label: é}", r#""é" is invalid 'target_label' for replace action"#),
            ("{target_label: '$1-x'}", r#""$1-x" is invalid 'target_label'"#),
            ("{target_label: '$$'}", r#""$$" is invalid 'target_label'"#),
            ("{target_label: '${}'}", r#""${}" is invalid 'target_label'"#),
            ("{target_label: '$é'}", r#""$é" is invalid 'target_label'"#),
            ("{target_label: '1$1'}", r#""1$1" is invalid 'target_label'"#),
            (
                "{action: uppercase, source_labels: [a], target_label: 1x}",
                r#""1x" is invalid 'target_label' for uppercase action"#,
            ),
            (
                "{action: keepequal, source_labels: [a], target_label: 1x}",
                r#""1x" is invalid 'target_label' for keepequal action"#,
            ),
            (
                "{action: hashmod, source_labels: [a], target_label: '$1', modulus: 2}",
                r#""$1" is invalid 'target_label' for hashmod action"#,
            ),
            (
                "{action: lowercase, source_labels: [a], target_label: b, replacement: x}",
                "'replacement' can not be set for lowercase action",
            ),
            (
                "{action: dropequal, source_labels: [a], target_label: b, replacement: x}",
                "'replacement' can not be set for dropequal action",
            ),
            (
                "{action: labelmap, regex: '(.*)', replacement: 'a-$1'}",
                r#""a-$1" is invalid 'replacement' for labelmap action"#,
            ),
            (
                "{action: labelmap, regex: '(.*)', replacement: ''}",
                r#""" is invalid 'replacement' for labelmap action"#,
            ),
            (
                "{action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields (found 'regex')",
            ),
            (
                "{action: keepequal, source_labels: [a], target_label: b, regex: ~}",
                "(found 'regex')",
            ),
            (
                "{action: dropequal, source_labels: [a], target_label: b, separator: ','}",
                "(found 'separator')",
            ),
            (
                "{action: dropequal, source_labels: [a], target_label: b, modulus: 2}",
                "(found 'modulus')",
            ),
            (
                "{action: labeldrop, regex: a, source_labels: []}",
                "labeldrop action requires only 'regex', and no other fields (found 'source_labels')",
            ),
            ("{action: labelkeep, regex: a, target_label: x}", "(found 'target_label')"),
            ("{action: labelkeep, regex: a, separator: ~}", "(found 'separator')"),
            ("{action: labeldrop, regex: a, modulus: 1}", "(found 'modulus')"),
            ("{action: labeldrop, regex: a, replacement: x}", "(found 'replacement')"),
            ("{target_label: t, source_labels: ['1a']}", r#""1a" is not a valid label name in 'source_labels'"#),
            ("{target_label: t, source_labels: a}", "invalid type"),
            ("{target_label: t, regex: 'a{1001}'}", "'regex': error parsing regexp: invalid repeat count"),
        ];
        for (yaml, want) in refused {
            fails(yaml, want);
        }
        // And rules Prometheus 2.42 accepts although they look odd.
        for yaml in [
            "{action: keepequal, source_labels: [a], target_label: b, separator: ';'}",
            "{action: keepequal, source_labels: [a], target_label: b, modulus: 0}",
            "{action: keepequal, source_labels: [a], target_label: '$1'}",
            "{action: uppercase, source_labels: [a], target_label: '$1'}",
            "{action: labeldrop, regex: a, source_labels: ~, replacement: $1, separator: ';'}",
            "{action: labelkeep, regex: a, target_label: ''}",
            "{action: labelmap, regex: '(.*)', replacement: '${1}_x'}",
            "{action: labelmap, regex: '(.*)', replacement: '$1$2'}",
            "{target_label: '${1}x', regex: '(.*)'}",
            "{target_label: '__${1}'}",
            "{target_label: '${1}${2}'}",
            "{action: keep, source_labels: [a], target_label: 1x}",
            "{action: drop, source_labels: [a], replacement: x, modulus: 4}",
            "{action: HashMod, source_labels: [a], target_label: b, modulus: 2}",
            "{target_label: b, modulus: 3}",
        ] {
            ok(yaml);
        }
    }

    #[test]
    fn errors_name_their_field_and_carry_a_location() {
        let text = "- source_labels: [a]\n  regex: 'x{2,1}'\n  target_label: t\n";
        let e = serde_yaml_ng::from_str::<Vec<RelabelConfig>>(text).unwrap_err();
        let loc = e.location().map(|l| (l.line(), l.column()));
        assert_eq!(loc, Some((2, 10)), "{e}");
        assert!(e.to_string().contains("'regex'"), "{e}");

        let text = "- source_labels: [a, 'b-c']\n  target_label: t\n";
        let e = serde_yaml_ng::from_str::<Vec<RelabelConfig>>(text).unwrap_err();
        assert_eq!(
            e.location().map(|l| (l.line(), l.column())),
            Some((1, 22)),
            "{e}"
        );

        let text = "- source_labels: [a]\n  action: hashmod\n  target_label: t\n";
        let e = serde_yaml_ng::from_str::<Vec<RelabelConfig>>(text).unwrap_err();
        assert_eq!(e.location().map(|l| l.line()), Some(1), "{e}");
        assert!(e.to_string().contains("'modulus'"), "{e}");

        let built = RelabelConfig::builder(Action::Replace)
            .target_label("ok")
            .replacement("x")
            .build();
        assert!(built.is_ok());
        for (err, field) in [
            (RelabelConfigError::ModulusRequired, "modulus"),
            (RelabelConfigError::EmptyAction, "action"),
            (
                RelabelConfigError::ReplacementNotAllowed(Action::Lowercase),
                "replacement",
            ),
        ] {
            assert_eq!(err.field(), field);
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn target_template_shape() {
        for ok in [
            "a",
            "_",
            "a1",
            "$1",
            "${1}",
            "${name}x",
            "__${1}_$2",
            "$1$2",
            "a$1b",
        ] {
            assert!(is_target_template(ok), "{ok}");
        }
        for bad in ["", "1", "1a", "$", "${}", "${1", "$-", "a-b", "$é", "a b"] {
            assert!(!is_target_template(bad), "{bad}");
        }
    }

    #[test]
    fn serialises_as_prometheus_prints() {
        let r = ok("{source_labels: [a, b], target_label: t}");
        let text = serde_yaml_ng::to_string(&r).unwrap_or_default();
        assert_eq!(
            text,
            "source_labels:\n- a\n- b\nseparator: ;\ntarget_label: t\nreplacement: $1\naction: replace\n"
        );
        let back: RelabelConfig = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, r);
        for rule in RelabelConfig::sharding(1, 3).unwrap() {
            let text = serde_yaml_ng::to_string(&rule).unwrap_or_default();
            assert_eq!(
                serde_yaml_ng::from_str::<RelabelConfig>(&text).ok(),
                Some(rule)
            );
        }
        assert!(RelabelConfig::sharding(3, 3).is_err());
    }
}
