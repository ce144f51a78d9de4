//! The standard labels (`service`, `environment`, `version`, `cluster`) that every metric
//! series and every log line carries. A leaf: it imports nothing of the crate.

/// Names of the standard labels, in the order they are written.
pub const STANDARD_LABEL_NAMES: [&str; 4] = ["service", "environment", "version", "cluster"];

/// A standard label value that failed validation; its message names the label (or the
/// environment variable it came from) and the value.
///
/// ```
/// use livetranslate_telemetry::StandardLabels;
/// let err = StandardLabels::new("audio", "prod\n", "1.0", "eu-1").unwrap_err();
/// assert_eq!(err.setting, "environment");
/// assert!(err.to_string().contains("control characters"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {setting}={value:?}: {reason}")]
pub struct InvalidLabel {
    /// The label or environment variable.
    pub setting: String,
    /// The rejected value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The four labels that identify where a metric or log line comes from.
///
/// ```
/// use livetranslate_telemetry::StandardLabels;
/// let l = StandardLabels::new("audio", "production", "1.2.0", "eu-1").unwrap();
/// assert_eq!(l.pairs()[0], ("service", "audio"));
/// assert!(StandardLabels::new("", "production", "1.2.0", "eu-1").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandardLabels {
    /// Service type: `orchestration`, `audio`, `translation`, …
    pub service: String,
    /// Deployment environment: `production`, `staging`, `development`, …
    pub environment: String,
    /// Service version.
    pub version: String,
    /// LiveTranslate cluster identifier.
    pub cluster: String,
}

impl StandardLabels {
    /// Validated labels; each value must be 1 to 128 printable characters.
    pub fn new(
        service: &str,
        environment: &str,
        version: &str,
        cluster: &str,
    ) -> Result<Self, InvalidLabel> {
        for (name, value) in
            STANDARD_LABEL_NAMES
                .iter()
                .zip([service, environment, version, cluster])
        {
            validate_label_value(name, value)?;
        }
        Ok(StandardLabels {
            service: service.to_owned(),
            environment: environment.to_owned(),
            version: version.to_owned(),
            cluster: cluster.to_owned(),
        })
    }

    /// `(name, value)` pairs in the standard order.
    pub fn pairs(&self) -> [(&str, &str); 4] {
        [
            ("service", &self.service),
            ("environment", &self.environment),
            ("version", &self.version),
            ("cluster", &self.cluster),
        ]
    }
}

/// Checks a standard label value; `source` names where it came from (a label or env var).
pub(crate) fn validate_label_value(source: &str, value: &str) -> Result<(), InvalidLabel> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.chars().count() > 128 {
        Some("must be at most 128 characters")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InvalidLabel {
            setting: source.to_owned(),
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
