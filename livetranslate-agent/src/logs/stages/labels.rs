//! The label stages: `labels` (extracted values as labels), `static_labels`, `labeldrop`,
//! `labelallow`, and `tenant` (which sets Promtail's reserved `__tenant_id__` label).
//!
//! ```yaml
//! - labels: {level: , app: service_name}   # null or empty: the extracted value of the same name
//! - static_labels: {env: prod}
//! - labeldrop: [filename]
//! - labelallow: [job, level]
//! - tenant: {source: org}                  # or value: team-a, or label: namespace
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::go::weak_string_map;
use super::{Cx, Entry, Stage, StageError, Step};

/// The label Promtail's `tenant` stage sets; the client sends the entry to that tenant.
pub const RESERVED_LABEL_TENANT_ID: &str = "__tenant_id__";

/// `labels:` label name → extracted name (null or empty: the label name).
pub type LabelsConfig = BTreeMap<String, Option<String>>;

/// `static_labels:` label name → value (null or empty values are skipped, as in Promtail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct StaticLabelsConfig(
    #[serde(deserialize_with = "weak_string_map")] pub BTreeMap<String, Option<String>>,
);

/// `tenant:` settings: one of `source`, `value`, `label`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Extracted value holding the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A fixed tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A label holding the tenant (Promtail 2.8+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Prometheus' classic label-name rule, which Promtail 2.7 applies: `[a-zA-Z_][a-zA-Z0-9_]*`
/// (`__` names such as `__tenant_id__` are valid).
pub(crate) use livetranslate_telemetry::names::is_valid_label_name as valid_label_name;

fn check_name(key: &str, name: &str) -> Result<(), StageError> {
    if valid_label_name(name) {
        Ok(())
    } else {
        Err(StageError::key(
            key,
            format!("invalid label name: {name:?}"),
        ))
    }
}

#[derive(Debug)]
pub(crate) struct LabelsStage {
    /// (label name, extracted name)
    pairs: Vec<(Arc<str>, String)>,
}

impl LabelsStage {
    pub(crate) fn new(cfg: &LabelsConfig) -> Result<Self, StageError> {
        if cfg.is_empty() {
            return Err(StageError::key("", "label stage config cannot be empty"));
        }
        let mut pairs = Vec::new();
        for (name, source) in cfg {
            check_name(name, name)?;
            let source = source.as_deref().filter(|s| !s.is_empty()).unwrap_or(name);
            pairs.push((Arc::from(name.as_str()), source.to_owned()));
        }
        Ok(LabelsStage { pairs })
    }
}

impl Stage for LabelsStage {
    fn name(&self) -> &'static str {
        "labels"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        for (name, source) in &self.pairs {
            let Some(text) = entry.extracted_text(source) else {
                continue;
            };
            if entry.labels().get(name).map(|v| &**v) == Some(&*text) {
                continue;
            }
            let value: Arc<str> = Arc::from(&*text);
            entry.labels_mut().insert(name.clone(), value);
        }
        Step::Next(entry)
    }
}

#[derive(Debug)]
pub(crate) struct StaticLabelsStage {
    pairs: Vec<(Arc<str>, Arc<str>)>,
}

impl StaticLabelsStage {
    pub(crate) fn new(cfg: &StaticLabelsConfig) -> Result<Self, StageError> {
        if cfg.0.is_empty() {
            return Err(StageError::key(
                "",
                "static_labels stage config cannot be empty",
            ));
        }
        let mut pairs = Vec::new();
        for (name, value) in &cfg.0 {
            check_name(name, name)?;
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                pairs.push((Arc::from(name.as_str()), Arc::from(v)));
            }
        }
        Ok(StaticLabelsStage { pairs })
    }
}

impl Stage for StaticLabelsStage {
    fn name(&self) -> &'static str {
        "static_labels"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        for (name, value) in &self.pairs {
            if entry.labels().get(name) != Some(value) {
                entry.labels_mut().insert(name.clone(), value.clone());
            }
        }
        Step::Next(entry)
    }
}

#[derive(Debug)]
pub(crate) struct LabelDropStage {
    names: Vec<String>,
}

impl LabelDropStage {
    pub(crate) fn new(names: &[String]) -> Result<Self, StageError> {
        if names.is_empty() {
            return Err(StageError::key(
                "",
                "labeldrop stage config cannot be empty",
            ));
        }
        Ok(LabelDropStage {
            names: names.to_vec(),
        })
    }
}

impl Stage for LabelDropStage {
    fn name(&self) -> &'static str {
        "labeldrop"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        for n in &self.names {
            entry.remove_label(n);
        }
        Step::Next(entry)
    }
}

#[derive(Debug)]
pub(crate) struct LabelAllowStage {
    names: Vec<String>,
}

impl LabelAllowStage {
    pub(crate) fn new(names: &[String]) -> Result<Self, StageError> {
        if names.is_empty() {
            return Err(StageError::key(
                "",
                "labelallow stage config cannot be empty",
            ));
        }
        Ok(LabelAllowStage {
            names: names.to_vec(),
        })
    }
}

impl Stage for LabelAllowStage {
    fn name(&self) -> &'static str {
        "labelallow"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        if entry
            .labels()
            .keys()
            .any(|k| !self.names.iter().any(|n| **n == **k))
        {
            let names = &self.names;
            entry
                .labels_mut()
                .retain(|k, _| names.iter().any(|n| **n == **k));
        }
        Step::Next(entry)
    }
}

#[derive(Debug)]
enum TenantFrom {
    Source(String),
    Value(Arc<str>),
    Label(String),
}

#[derive(Debug)]
pub(crate) struct TenantStage {
    from: TenantFrom,
    label: Arc<str>,
}

impl TenantStage {
    pub(crate) fn new(cfg: &TenantConfig) -> Result<Self, StageError> {
        let set: Vec<&str> = [
            ("source", &cfg.source),
            ("value", &cfg.value),
            ("label", &cfg.label),
        ]
        .iter()
        .filter(|(_, v)| v.as_deref().is_some_and(|v| !v.is_empty()))
        .map(|(k, _)| *k)
        .collect();
        let from = match (set.as_slice(), cfg) {
            (
                [_],
                TenantConfig {
                    source: Some(s), ..
                },
            ) if !s.is_empty() => TenantFrom::Source(s.clone()),
            ([_], TenantConfig { value: Some(v), .. }) if !v.is_empty() => {
                TenantFrom::Value(Arc::from(v.as_str()))
            }
            ([_], TenantConfig { label: Some(l), .. }) => TenantFrom::Label(l.clone()),
            ([], _) => {
                return Err(StageError::key("", "source, value or label is required"));
            }
            _ => {
                return Err(StageError::key(
                    set[1],
                    format!(
                        "{} are mutually exclusive: set one of them",
                        set.join(" and ")
                    ),
                ))
            }
        };
        Ok(TenantStage {
            from,
            label: Arc::from(RESERVED_LABEL_TENANT_ID),
        })
    }
}

impl Stage for TenantStage {
    fn name(&self) -> &'static str {
        "tenant"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let tenant: Option<Arc<str>> = match &self.from {
            TenantFrom::Value(v) => Some(v.clone()),
            TenantFrom::Source(s) => entry.extracted_text(s).map(|t| Arc::from(&*t)),
            TenantFrom::Label(l) => entry.labels().get(l.as_str()).cloned(),
        };
        if let Some(t) = tenant.filter(|t| !t.is_empty()) {
            if entry.labels().get(&self.label) != Some(&t) {
                entry.labels_mut().insert(self.label.clone(), t);
            }
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::super::Value;
    use super::*;

    fn run(stage: &mut dyn Stage, e: Entry) -> Entry {
        match stage.process(e, &mut Cx::default()) {
            Step::Next(e) => e,
            _ => panic!("label stages never drop"),
        }
    }

    fn entry() -> Entry {
        let mut e = Entry::new("line", 0, labels([("job", "app"), ("filename", "/a.log")]));
        e.set_extracted(&Arc::from("level"), Value::from("warn"));
        e.set_extracted(&Arc::from("svc"), Value::from("audio"));
        e.set_extracted(&Arc::from("code"), Value::Int(500));
        e.set_extracted(&Arc::from("nothing"), Value::Null);
        e
    }

    #[test]
    fn labels_from_extracted_values() {
        let cfg: LabelsConfig =
            serde_yaml_ng::from_str("level:\nservice: svc\ncode: ''\nnothing:\nabsent:\n")
                .expect("yaml");
        let mut s = LabelsStage::new(&cfg).expect("stage");
        let e = run(&mut s, entry());
        let l: Vec<(&str, &str)> = e.labels().iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            l,
            vec![
                ("code", "500"),
                ("filename", "/a.log"),
                ("job", "app"),
                ("level", "warn"),
                ("service", "audio"),
            ]
        );
        // A label name Prometheus refuses is refused at load.
        let bad: LabelsConfig = serde_yaml_ng::from_str("\"bad-name\":\n").expect("yaml");
        assert_eq!(LabelsStage::new(&bad).expect_err("invalid").key, "bad-name");
        assert!(LabelsStage::new(&LabelsConfig::new()).is_err());
    }

    #[test]
    fn static_drop_allow() {
        let cfg: StaticLabelsConfig =
            serde_yaml_ng::from_str("env: prod\nport: 8080\nempty: ''\nnone:\n").expect("yaml");
        let mut s = StaticLabelsStage::new(&cfg).expect("stage");
        let e = run(&mut s, entry());
        assert_eq!(&*e.labels()["env"], "prod");
        assert_eq!(&*e.labels()["port"], "8080");
        assert!(!e.labels().contains_key("empty") && !e.labels().contains_key("none"));
        let mut d =
            LabelDropStage::new(&["filename".to_owned(), "absent".to_owned()]).expect("stage");
        let e = run(&mut d, e);
        assert!(!e.labels().contains_key("filename"));
        // The extracted map keeps the label values it started with.
        assert_eq!(e.extracted_text("filename").as_deref(), Some("/a.log"));
        let mut a = LabelAllowStage::new(&["job".to_owned(), "env".to_owned()]).expect("stage");
        let e = run(&mut a, e);
        assert_eq!(
            e.labels().keys().map(|k| &**k).collect::<Vec<_>>(),
            vec!["env", "job"]
        );
        assert!(LabelDropStage::new(&[]).is_err() && LabelAllowStage::new(&[]).is_err());
        let bad: StaticLabelsConfig = serde_yaml_ng::from_str("\"a.b\": x\n").expect("yaml");
        assert!(StaticLabelsStage::new(&bad).is_err());
    }

    #[test]
    fn tenant_from_source_value_or_label() {
        for (yaml, want) in [
            ("source: svc", Some("audio")),
            ("value: team-a", Some("team-a")),
            ("label: job", Some("app")),
            ("source: absent", None),
        ] {
            let cfg: TenantConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            let mut s = TenantStage::new(&cfg).expect("stage");
            let e = run(&mut s, entry());
            assert_eq!(
                e.labels().get(RESERVED_LABEL_TENANT_ID).map(|v| &**v),
                want,
                "{yaml}"
            );
        }
        for yaml in ["{}", "source: a\nvalue: b"] {
            let cfg: TenantConfig = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert!(TenantStage::new(&cfg).is_err(), "{yaml}");
        }
    }
}
