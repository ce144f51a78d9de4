//! Labels from where a file sits: the stream labels a file gets from its location, added to
//! its input's static labels (which win on a name both set).
//!
//! - `format: docker` files under Docker's data root
//!   (`<data-root>/containers/<id>/<id>-json.log`, and its rotated `….1`, …): the container's
//!   `container`, `image`, `compose_service`, `compose_project` and allow-listed labels, read
//!   from its `config.v2.json` ([`super::docker`]), read again when Docker rewrites that file.
//!   A container removed while its log is drained keeps the labels last read.
//! - `format: cri` files in kubelet's layout (`…/<namespace>_<pod>_<uid>/<container>/<n>.log`,
//!   and its rotated `….<YYYYMMDD-hhmmss>`): `namespace`, `pod`, `container`
//!   ([`super::kubernetes`]; `pod_uid` is not a label, see there).
//! - Anything else: nothing.
//!
//! ```
//! use std::path::Path;
//! use livetranslate_agent::logs::metadata::{Located, Source, SourceMetadata};
//!
//! let mut k8s = SourceMetadata::new(&Source::Kubernetes);
//! let path = Path::new("/var/log/pods/prod_audio-0_0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77/audio/0.log");
//! let Located::Labels(labels) = k8s.labels(path) else { panic!() };
//! assert_eq!(labels[0], ("namespace".to_owned(), "prod".to_owned()));
//! assert!(matches!(k8s.labels(Path::new("/var/log/app.log")), Located::Labels(l) if l.is_empty()));
//! ```

use std::path::Path;

use super::docker::{DockerConfig, DockerMetadata, Lookup};
use super::kubernetes::PodLogFile;
use super::labels::clean_label_value;

/// Where an input's files get labels from their location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nowhere.
    Plain,
    /// Docker's container metadata (`format: docker`).
    Docker(DockerConfig),
    /// kubelet's pod log paths (`format: cri`, unless `kubernetes: false`).
    Kubernetes,
}

/// What a file's location says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// These labels (empty: the location names nothing).
    Labels(Vec<(String, String)>),
    /// The file is a container's log but its metadata cannot be read yet (a container being
    /// created); why.
    Pending(String),
}

/// The labels of one input's files from their location, with what it caches.
#[derive(Debug)]
pub struct SourceMetadata {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Plain,
    Docker(Box<DockerMetadata>),
    Kubernetes,
}

impl SourceMetadata {
    /// The metadata reader of an input whose source is `source`.
    pub fn new(source: &Source) -> Self {
        SourceMetadata {
            kind: match source {
                Source::Plain => Kind::Plain,
                Source::Docker(c) => Kind::Docker(Box::new(DockerMetadata::new(c))),
                Source::Kubernetes => Kind::Kubernetes,
            },
        }
    }

    /// Whether the labels of a file may change while it is tailed (Docker's metadata does;
    /// a path does not).
    pub fn changes(&self) -> bool {
        matches!(self.kind, Kind::Docker(_))
    }

    /// The labels of the file at `path` (one `stat` for a Docker container whose metadata is
    /// cached and unchanged).
    pub fn labels(&mut self, path: &Path) -> Located {
        // A container's label values are anything its author wrote: no control character
        // reaches a stream label (as for promoted fields).
        let owned = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| ((*k).to_owned(), clean_label_value(v).into_owned()))
                .collect()
        };
        match &mut self.kind {
            Kind::Plain => Located::Labels(Vec::new()),
            Kind::Kubernetes => Located::Labels(
                PodLogFile::from_path(path).map_or_else(Vec::new, |f| owned(&f.labels())),
            ),
            Kind::Docker(d) => match d.lookup(path) {
                Lookup::NotDocker => Located::Labels(Vec::new()),
                Lookup::Unavailable { error, .. } => Located::Pending(error.to_string()),
                other => match other.info() {
                    Some(info) => {
                        if let Some(e) = other.error() {
                            tracing::warn!(path = %path.display(), error = %e, "container metadata could not be read again; keeping the labels last read");
                        }
                        Located::Labels(owned(&info.labels()))
                    }
                    None => Located::Labels(Vec::new()),
                },
            },
        }
    }

    /// Drops what is cached about containers whose directory is gone.
    pub fn prune(&mut self) {
        if let Kind::Docker(d) = &mut self.kind {
            d.prune();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_label_values_hold_no_control_characters() {
        let root = std::env::temp_dir().join(format!("lt-metadata-{}", std::process::id()));
        let id = "ab".repeat(32);
        let dir = root.join("containers").join(&id);
        std::fs::create_dir_all(&dir).expect("container dir");
        std::fs::write(
            dir.join("config.v2.json"),
            format!(
                r#"{{"ID":"{id}","Name":"/web-1","Config":{{"Image":"nginx","Labels":{{"team":"a\nb\u001b[31m"}}}},"State":{{"Running":true}}}}"#
            ),
        )
        .expect("config.v2.json");
        let mut docker = SourceMetadata::new(&Source::Docker(DockerConfig {
            data_root: root.clone(),
            label_allowlist: vec!["team".to_owned()],
        }));
        let labels = docker.labels(&dir.join(format!("{id}-json.log")));
        let _ = std::fs::remove_dir_all(&root);
        let Located::Labels(labels) = labels else {
            panic!("no labels: {labels:?}")
        };
        assert!(
            labels.contains(&("team".to_owned(), "a b [31m".to_owned())),
            "{labels:?}"
        );
    }
}
