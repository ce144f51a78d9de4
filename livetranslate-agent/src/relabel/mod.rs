//! Relabelling with Prometheus's semantics: `relabel_configs` and `metric_relabel_configs` of
//! scrape jobs, and Promtail's `relabel_configs` of log scrape configs — one engine for both.
//!
//! A leaf module: it uses nothing else of the agent. The rules deserialise from the YAML an
//! operator copies from `prometheus.yml` or `promtail.yml` (same keys, defaults and checks as
//! Prometheus 2.42), the regexes are Go's syntax anchored as Prometheus anchors them, and
//! [`apply`] gives the label set Prometheus would give (checked against a real Prometheus by
//! the `relabel_prometheus` integration test).
//!
//! ```
//! use livetranslate_agent::relabel::{self, Labels, RelabelConfig};
//!
//! // A scrape job's relabel_configs: keep pods that opt in, shard over 3 agents, copy labels.
//! let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(r#"
//! - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
//!   regex: "true"
//!   action: keep
//! - source_labels: [__address__]
//!   modulus: 3
//!   target_label: __tmp_hash
//!   action: hashmod
//! - source_labels: [__tmp_hash]
//!   regex: "1"
//!   action: keep
//! - regex: __meta_kubernetes_pod_label_(.+)
//!   action: labelmap
//! "#).unwrap();
//!
//! let target: Labels = [
//!     ("__address__", "10.1.2.3:8080"),
//!     ("__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true"),
//!     ("__meta_kubernetes_pod_label_app", "translation"),
//! ]
//! .into_iter()
//! .collect();
//! match relabel::apply(target, &rules) {
//!     Some(kept) => assert_eq!(kept.get("app"), Some("translation")), // this agent's shard
//!     None => {}                                                      // another agent's
//! }
//! ```
//!
//! # Wiring
//!
//! - **Target relabelling** (`relabel_configs` of a scrape job), once per discovered target,
//!   as Prometheus's `populateLabels` does: start from the discovered labels plus, where not
//!   already set, `job`, `__address__`, `__scheme__`, `__metrics_path__`,
//!   `__scrape_interval__`, `__scrape_timeout__`, and `__param_<name>` for the first value of
//!   each `params` entry; [`apply`]; `None` means the target is dropped (list it as dropped).
//!   Then read the scrape URL back from `__scheme__`, `__address__` (no address is an error),
//!   `__metrics_path__` and `__param_*`, and interval/timeout from their labels; remove
//!   every label starting with `__` (`__meta_*`, `__tmp_*` included) and set `instance` to
//!   `__address__` if it is unset. What is left is the target's labels.
//! - **Sharding** over N agents: the two rules of [`RelabelConfig::sharding`] (or the same
//!   `hashmod` + `keep` written in YAML) at the end of each job's `relabel_configs`.
//! - **Metric relabelling** (`metric_relabel_configs`), once per scraped sample, after the
//!   target labels are attached (honour `honor_labels` first): the sample's labels with
//!   `__name__`, built with [`Labels::from_pairs`] (sorts in place, no string copies), then
//!   [`apply_mut`] (no allocation when no rule changes anything); `false` drops the sample, as
//!   does a result without `__name__`.
//! - **Promtail**: the static config's labels with `__path__` (and `__path_exclude__`) plus
//!   `job` (`Labels::from(BTreeMap)`), [`apply`] before tailing; `None` means the target is
//!   not tailed; `__path__` is read back after relabelling, then the `__` labels are removed.

mod apply;
mod config;
mod labels;
mod md5;
mod regex;

pub use apply::{apply, apply_mut};
pub use config::{Action, RelabelConfig, RelabelConfigBuilder, RelabelConfigError};
pub use labels::Labels;
pub use regex::{Regex, RegexError};

#[cfg(test)]
mod tests;
