//! The one label-name rule of the agent (Loki stream labels, target-group labels, the
//! standard labels): `[a-zA-Z_][a-zA-Z0-9_]*`. A leaf: it imports nothing of the agent.
//!
//! The library (`livetranslate_telemetry`) keeps the same rule for its metrics registry; once
//! it exposes it publicly this module should forward to it, so the rule lives in one place.

/// Whether `name` is a valid Prometheus / Loki label name (names starting with `__` are
/// valid here: they are reserved, which callers check where it matters).
///
/// ```
/// use livetranslate_agent::label_name::valid_label_name;
/// assert!(valid_label_name("service_name") && valid_label_name("__name__"));
/// assert!(!valid_label_name("1x") && !valid_label_name("a-b") && !valid_label_name(""));
/// ```
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is reserved (`__` prefix: Prometheus' internal labels such as `__name__`).
pub fn reserved_label_name(name: &str) -> bool {
    name.starts_with("__")
}
