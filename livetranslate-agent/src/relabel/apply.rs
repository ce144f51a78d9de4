//! Applying rules to a label set, as Prometheus 2.42's `relabel.Process` does.
//!
//! Cost on the hot path (`metric_relabel_configs` runs per sample): a rule that changes
//! nothing allocates nothing when it has at most one source label (the joined value is
//! borrowed) or when the joined values fit in a small stack buffer; regexes are compiled once;
//! the default regex `(.*)` is not run at all; a `replace` whose regex does not match costs one
//! `is_match`; setting a label to the value it already has does not allocate.

use std::cell::RefCell;

use super::config::{is_valid_label_name, Action, RelabelConfig};
use super::labels::Labels;
use super::md5;

/// Applies `configs` in order; `None` when a rule drops the label set.
///
/// Labels starting with `__` are left in place: what to do with them is the caller's business
/// (Prometheus removes `__meta_*` after target relabelling and never exports `__` labels).
///
/// ```
/// use livetranslate_agent::relabel::{self, Labels, RelabelConfig};
///
/// let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(r#"
/// - {source_labels: [__name__], regex: "go_.*", action: drop}
/// - {source_labels: [path], regex: "/api/v1/users/\\d+", target_label: path, replacement: "/api/v1/users/:id"}
/// "#).unwrap();
/// let sample: Labels = [("__name__", "http_requests_total"), ("path", "/api/v1/users/42")]
///     .into_iter()
///     .collect();
/// let out = relabel::apply(sample, &rules).unwrap();
/// assert_eq!(out.get("path"), Some("/api/v1/users/:id"));
///
/// let go: Labels = [("__name__", "go_goroutines")].into_iter().collect();
/// assert!(relabel::apply(go, &rules).is_none());
/// ```
pub fn apply(mut labels: Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    apply_mut(&mut labels, configs).then_some(labels)
}

/// Applies `configs` in place; `false` when a rule drops the label set (its contents are then
/// unspecified). The form for the hot path: no allocation when nothing changes.
///
/// ```
/// use livetranslate_agent::relabel::{self, Labels, RelabelConfig};
///
/// let rules: Vec<RelabelConfig> =
///     serde_yaml_ng::from_str("[{action: labeldrop, regex: 'pod_template_hash|controller_revision_hash'}]")
///         .unwrap();
/// let mut l: Labels = [("pod_template_hash", "5d8f"), ("app", "api")].into_iter().collect();
/// assert!(relabel::apply_mut(&mut l, &rules));
/// assert_eq!(l.len(), 1);
/// ```
pub fn apply_mut(labels: &mut Labels, configs: &[RelabelConfig]) -> bool {
    configs.iter().all(|cfg| relabel(cfg, labels))
}

/// What one rule decided, computed while the label set is borrowed.
enum Change {
    None,
    Drop,
    Set(String, String),
    /// Set the constant target to the constant replacement (both without `$` references).
    SetConst,
    Delete,
}

fn relabel(cfg: &RelabelConfig, labels: &mut Labels) -> bool {
    match cfg.action() {
        Action::LabelDrop => {
            labels.retain(|name, _| !cfg.regex().is_match(name));
            return true;
        }
        Action::LabelKeep => {
            labels.retain(|name, _| cfg.regex().is_match(name));
            return true;
        }
        Action::LabelMap => {
            label_map(cfg, labels);
            return true;
        }
        _ => {}
    }
    let change = with_source_value(cfg, labels, |val, labels| decide(cfg, val, labels));
    match change {
        Change::None => {}
        Change::Drop => return false,
        Change::Set(name, value) => labels.set(name, value),
        Change::SetConst => {
            if let (Some(name), Some(value)) = (
                cfg.target_template.constant(),
                cfg.replacement_template.constant(),
            ) {
                labels.set_str(name, value);
            }
        }
        Change::Delete => {
            // Prometheus 2.42 deletes the label named by `target_label` as written (not as
            // expanded) when the expanded name is invalid or the expanded value empty.
            labels.remove(cfg.target_label());
        }
    }
    true
}

fn decide(cfg: &RelabelConfig, val: &str, labels: &Labels) -> Change {
    match cfg.action() {
        Action::Drop => {
            if cfg.regex().is_match(val) {
                return Change::Drop;
            }
        }
        Action::Keep => {
            if !cfg.regex().is_match(val) {
                return Change::Drop;
            }
        }
        Action::DropEqual => {
            if labels.value(cfg.target_label()) == val {
                return Change::Drop;
            }
        }
        Action::KeepEqual => {
            if labels.value(cfg.target_label()) != val {
                return Change::Drop;
            }
        }
        Action::Replace => return replace(cfg, val, labels),
        Action::Lowercase => {
            return set_if_changed(labels, cfg.target_label(), go_to_lower(val));
        }
        Action::Uppercase => {
            return set_if_changed(labels, cfg.target_label(), go_to_upper(val));
        }
        Action::HashMod => {
            let digest = md5::digest(val.as_bytes());
            // Prometheus uses the last 8 bytes of the digest, big-endian.
            let mut low = [0u8; 8];
            low.copy_from_slice(&digest[8..]);
            let shard = u64::from_be_bytes(low) % cfg.modulus();
            let mut buf = [0u8; 20];
            let text = decimal(shard, &mut buf);
            if labels.get(cfg.target_label()) == Some(text) {
                return Change::None;
            }
            return Change::Set(cfg.target_label().to_owned(), text.to_owned());
        }
        Action::LabelMap | Action::LabelDrop | Action::LabelKeep => {}
    }
    Change::None
}

fn replace(cfg: &RelabelConfig, val: &str, labels: &Labels) -> Change {
    // The common case: neither the target nor the replacement refers to a group, so no
    // capture slots are needed.
    if let (Some(target), Some(value)) = (
        cfg.target_template.constant(),
        cfg.replacement_template.constant(),
    ) {
        if !cfg.regex().is_match(val) {
            return Change::None;
        }
        if !is_valid_label_name(target) || value.is_empty() {
            return Change::Delete;
        }
        if labels.get(target) == Some(value) {
            return Change::None;
        }
        return Change::SetConst;
    }
    let Some(caps) = cfg.regex().captures(val) else {
        return Change::None;
    };
    let target = cfg.target_template.expand(&caps);
    if !is_valid_label_name(&target) {
        return Change::Delete;
    }
    let value = cfg.replacement_template.expand(&caps);
    if value.is_empty() {
        return Change::Delete;
    }
    if labels.get(&target) == Some(value.as_str()) {
        return Change::None;
    }
    Change::Set(target, value)
}

fn set_if_changed(labels: &Labels, name: &str, value: String) -> Change {
    if labels.value(name) == value {
        Change::None
    } else if value.is_empty() {
        Change::Delete
    } else {
        Change::Set(name.to_owned(), value)
    }
}

/// `labelmap`: every label whose name matches gets a copy under the expanded replacement.
/// The names are read from the label set as it was before this rule (Prometheus iterates
/// the rule's input, and writes go to a builder), so a new name is never mapped again; when
/// two labels map to one name, the later in name order wins.
fn label_map(cfg: &RelabelConfig, labels: &mut Labels) {
    let mut copies: Vec<(String, String)> = Vec::new();
    for (name, value) in labels.iter() {
        if let Some(caps) = cfg.regex().captures(name) {
            copies.push((cfg.replacement_template.expand(&caps), value.to_owned()));
        }
    }
    for (name, value) in copies {
        labels.set(name, value);
    }
}

/// Calls `f` with the source values joined by the separator, borrowing when possible.
fn with_source_value<R>(
    cfg: &RelabelConfig,
    labels: &Labels,
    f: impl FnOnce(&str, &Labels) -> R,
) -> R {
    let sources = cfg.source_labels();
    match sources {
        [] => f("", labels),
        [one] => f(labels.value(one), labels),
        many => {
            let sep = cfg.separator();
            let len: usize = many.iter().map(|n| labels.value(n).len()).sum::<usize>()
                + sep.len() * (many.len() - 1);
            let mut stack = [0u8; 256];
            if len <= stack.len() {
                let mut at = 0;
                for (i, name) in many.iter().enumerate() {
                    if i > 0 {
                        stack[at..at + sep.len()].copy_from_slice(sep.as_bytes());
                        at += sep.len();
                    }
                    let v = labels.value(name).as_bytes();
                    stack[at..at + v.len()].copy_from_slice(v);
                    at += v.len();
                }
                // Whole strings joined by whole strings: always valid UTF-8.
                if let Ok(joined) = std::str::from_utf8(&stack[..at]) {
                    return f(joined, labels);
                }
            }
            thread_local! {
                static JOINED: RefCell<String> = const { RefCell::new(String::new()) };
            }
            let mut joined = JOINED
                .with(|j| j.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)))
                .unwrap_or_default();
            joined.clear();
            for (i, name) in many.iter().enumerate() {
                if i > 0 {
                    joined.push_str(sep);
                }
                joined.push_str(labels.value(name));
            }
            let out = f(&joined, labels);
            JOINED.with(|j| {
                if let Ok(mut slot) = j.try_borrow_mut() {
                    *slot = joined;
                }
            });
            out
        }
    }
}

/// `v` in decimal, written into `buf` (no allocation).
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// Go's `strings.ToLower`: each character by its simple (one-to-one) lowercase mapping.
fn go_to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| {
            let mut it = c.to_lowercase();
            match (it.next(), it.next()) {
                (Some(l), None) => l,
                // Only U+0130 (İ) lowercases to two characters; its simple mapping is `i`.
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: each character by its simple (one-to-one) uppercase mapping; the
/// characters whose full mapping has several characters (`ß` → `SS`) keep their simple one.
fn go_to_upper(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| {
            let mut it = c.to_uppercase();
            match (it.next(), it.next()) {
                (Some(u), None) => u,
                _ => simple_upper_of_special(c),
            }
        })
        .collect()
}

/// The simple uppercase mapping of the characters whose full mapping is several characters:
/// Greek with ypogegrammeni map to their titlecase form, the rest have none (stay as they are).
fn simple_upper_of_special(c: char) -> char {
    let u = u32::from(c);
    let mapped = match u {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => u + 8,
        0x1FB3 => 0x1FBC,
        0x1FC3 => 0x1FCC,
        0x1FF3 => 0x1FFC,
        _ => u,
    };
    char::from_u32(mapped).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_rendering() {
        let mut buf = [0u8; 20];
        for v in [0, 7, 10, 1234567890, u64::MAX] {
            assert_eq!(decimal(v, &mut buf), v.to_string());
        }
    }

    #[test]
    fn go_case_mapping() {
        assert_eq!(go_to_lower("İSTANBUL"), "istanbul");
        assert_eq!(go_to_lower("ΣΑΣ"), "σασ", "no final sigma in Go");
        assert_eq!(go_to_lower("ǅ"), "ǆ");
        assert_eq!(go_to_upper("straße"), "STRAßE");
        assert_eq!(go_to_upper("ﬁ"), "ﬁ");
        assert_eq!(go_to_upper("ᾳ"), "ᾼ");
        assert_eq!(go_to_upper("ᾀ"), "ᾈ");
        assert_eq!(go_to_upper("ǆ"), "Ǆ");
        assert_eq!(go_to_upper("abc"), "ABC");
    }

    #[test]
    fn joins_long_values_through_the_heap() {
        let rule = RelabelConfig::builder(Action::Replace)
            .source_labels(["a", "b"])
            .separator("--")
            .target_label("c")
            .build()
            .unwrap();
        let long = "x".repeat(300);
        let l: Labels = [("a", long.as_str()), ("b", "y")].into_iter().collect();
        let out = apply(l, std::slice::from_ref(&rule)).unwrap();
        assert_eq!(out.get("c"), Some(format!("{long}--y").as_str()));
        let l: Labels = [("a", "é"), ("b", "y")].into_iter().collect();
        assert_eq!(apply(l, &[rule]).unwrap().get("c"), Some("é--y"));
    }
}
