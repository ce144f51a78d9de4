//! Kubernetes pod logs: stream labels from the paths kubelet writes, and kubelet's rotation.
//!
//! kubelet keeps each container's log (in the CRI format) at
//! `/var/log/pods/<namespace>_<pod>_<pod-uid>/<container>/<restart-count>.log` and links it as
//! `/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log`. The path alone
//! names the stream: `namespace`, `pod` and `container` — no API server needed.
//!
//! **Why `pod_uid` is not a default label.** A pod's UID changes every time the pod is
//! recreated (a rollout, a reschedule, an eviction), while its `namespace`/`pod` pair already
//! names the one live pod. As a label it would start a new stream per pod instance and grow
//! Loki's index without adding a way to select logs; Promtail's Kubernetes configuration uses
//! it only to build the path, not as a label. It stays available in [`PodLogFile::pod_uid`]
//! for a status page or a relabelling rule. The restart count (the `0` of `0.log`) is left out
//! for the same reason: the stream of a container continues across its restarts.
//!
//! **Rotation.** kubelet renames `0.log` to `0.log.<YYYYMMDD-hhmmss>` (its local time) and has
//! the runtime reopen `0.log`; later it gzips the renamed file to `….gz` (through `….gz.tmp`)
//! and deletes the uncompressed one. A rotated file is read to its end (it is the same file
//! the tailer already had open, so its fingerprint carries the offset); compressed and
//! temporary files are never read — their lines were read before compression: a `format: cri`
//! input adds [`EXCLUDE_GLOBS`] to its excludes itself (see [`super::input`]), and
//! [`super::metadata`] gives its files these labels.
//!
//! ```
//! use std::path::Path;
//! use livetranslate_agent::logs::kubernetes::{LogFileKind, PodLogFile};
//!
//! let f = PodLogFile::from_path(Path::new(
//!     "/var/log/pods/prod_audio-7d9c5b6f4-x2x9k_0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77/audio/1.log",
//! ))
//! .unwrap();
//! assert_eq!(
//!     f.labels(),
//!     [("namespace", "prod"), ("pod", "audio-7d9c5b6f4-x2x9k"), ("container", "audio")]
//! );
//! assert_eq!(f.restart_count, 1);
//! assert_eq!(f.kind, LogFileKind::Current);
//! ```

use std::path::Path;

/// Where kubelet writes pod logs.
pub const PODS_DIR: &str = "/var/log/pods";

/// Where kubelet links container logs under their legacy names.
pub const CONTAINERS_DIR: &str = "/var/log/containers";

/// The glob of every container log file kubelet writes (in the CRI format).
pub const PODS_GLOB: &str = "/var/log/pods/*/*/*.log";

/// File-name globs an input over pod logs should exclude: kubelet's compressed rotated files
/// and its temporary files while compressing.
pub const EXCLUDE_GLOBS: [&str; 2] = ["*.gz", "*.tmp"];

/// What a file in a container's log directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFileKind {
    /// `0.log`: the file the runtime writes.
    Current,
    /// `0.log.20261130-070609`: renamed away by kubelet, not yet compressed; read to its end.
    Rotated {
        /// kubelet's stamp (`YYYYMMDD-hhmmss`, the node's local time).
        rotated_at: String,
    },
    /// `0.log.20261130-070609.gz`: a compressed rotated file; never read.
    Compressed,
    /// `0.log.20261130-070609.gz.tmp`: being compressed; never read.
    Temporary,
}

impl LogFileKind {
    /// Whether lines should be read from such a file.
    ///
    /// ```
    /// use livetranslate_agent::logs::kubernetes::LogFileKind;
    /// assert!(LogFileKind::Current.should_read());
    /// assert!(!LogFileKind::Compressed.should_read());
    /// ```
    pub fn should_read(&self) -> bool {
        matches!(self, LogFileKind::Current | LogFileKind::Rotated { .. })
    }
}

/// A file under `/var/log/pods`, decoded from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLogFile {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID (a UUID; a config hash for static pods). Not a default label.
    pub pod_uid: String,
    /// The container's name.
    pub container: String,
    /// The container's restart count when it wrote this file.
    pub restart_count: u32,
    /// Current, rotated, compressed or temporary.
    pub kind: LogFileKind,
}

impl PodLogFile {
    /// Decodes `…/<namespace>_<pod>_<uid>/<container>/<n>.log[.<stamp>[.gz[.tmp]]]` (the last
    /// three path components; the pods directory itself may be mounted anywhere). `None` for
    /// paths that are not kubelet's.
    pub fn from_path(path: &Path) -> Option<Self> {
        let mut parts = path.iter().rev();
        let file = parts.next()?.to_str()?;
        let container = parts.next()?.to_str()?;
        let pod_dir = parts.next()?.to_str()?;
        let (restart_count, kind) = parse_file_name(file)?;
        let mut fields = pod_dir.split('_');
        let (namespace, pod, uid) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some()
            || !is_dns_label(namespace)
            || !is_dns_subdomain(pod)
            || !is_uid(uid)
            || !is_dns_label(container)
        {
            return None;
        }
        Some(PodLogFile {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            pod_uid: uid.to_owned(),
            container: container.to_owned(),
            restart_count,
            kind,
        })
    }

    /// The default stream labels: `namespace`, `pod`, `container`. Values are Kubernetes
    /// names (at most 63 characters; pod names at most 253).
    pub fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("container", &self.container),
        ]
    }
}

/// A link under `/var/log/containers`, decoded from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLogLink {
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The container's name.
    pub container: String,
    /// The runtime's container id (64 hex digits).
    pub container_id: String,
}

impl ContainerLogLink {
    /// Decodes `<pod>_<namespace>_<container>-<container-id>.log`.
    ///
    /// ```
    /// use std::path::Path;
    /// use livetranslate_agent::logs::kubernetes::ContainerLogLink;
    ///
    /// let id = "4f3b2c1d".repeat(8);
    /// let link = ContainerLogLink::from_path(Path::new(&format!(
    ///     "/var/log/containers/audio-7d9c5b6f4-x2x9k_prod_audio-sidecar-{id}.log"
    /// )))
    /// .unwrap();
    /// assert_eq!((link.pod.as_str(), link.namespace.as_str()), ("audio-7d9c5b6f4-x2x9k", "prod"));
    /// assert_eq!(link.container, "audio-sidecar");
    /// ```
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
        let (rest, id) = name.rsplit_once('-')?;
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut fields = rest.split('_');
        let (pod, namespace, container) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some()
            || !is_dns_subdomain(pod)
            || !is_dns_label(namespace)
            || !is_dns_label(container)
        {
            return None;
        }
        Some(ContainerLogLink {
            pod: pod.to_owned(),
            namespace: namespace.to_owned(),
            container: container.to_owned(),
            container_id: id.to_ascii_lowercase(),
        })
    }

    /// The pod log file the link points at (read from the file system), which also gives the
    /// pod UID and restart count. `None` if the link is gone or points elsewhere.
    pub fn resolve(path: &Path) -> Option<PodLogFile> {
        let target = std::fs::read_link(path).ok()?;
        let target = if target.is_relative() {
            path.parent()?.join(target)
        } else {
            target
        };
        PodLogFile::from_path(&target)
    }

    /// The default stream labels: `namespace`, `pod`, `container` (as for [`PodLogFile`]).
    pub fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("container", &self.container),
        ]
    }
}

/// `<n>.log`, `<n>.log.<stamp>`, `<n>.log.<stamp>.gz`, `<n>.log.<stamp>.gz.tmp`.
fn parse_file_name(name: &str) -> Option<(u32, LogFileKind)> {
    let (count, rest) = name.split_once(".log")?;
    if count.is_empty() || count.len() > 10 || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let restart_count = count.parse().ok()?;
    if rest.is_empty() {
        return Some((restart_count, LogFileKind::Current));
    }
    let rest = rest.strip_prefix('.')?;
    let (stamp, suffix) = match rest.split_once('.') {
        Some((stamp, suffix)) => (stamp, Some(suffix)),
        None => (rest, None),
    };
    if !is_rotation_stamp(stamp) {
        return None;
    }
    let kind = match suffix {
        None => LogFileKind::Rotated {
            rotated_at: stamp.to_owned(),
        },
        Some("gz") => LogFileKind::Compressed,
        Some(s) if s.ends_with("tmp") => LogFileKind::Temporary,
        Some(_) => return None,
    };
    Some((restart_count, kind))
}

/// kubelet's `20060102-150405`.
fn is_rotation_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (namespaces,
/// container names).
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// RFC 1123 subdomain: labels joined by `.`, at most 253 characters (pod names).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A pod UID: a UUID, or the 32-hex-digit config hash of a static pod.
fn is_uid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const UID: &str = "0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77";

    fn pod_file(rel: &str) -> Option<PodLogFile> {
        PodLogFile::from_path(&Path::new(PODS_DIR).join(rel))
    }

    #[test]
    fn pod_log_paths_give_namespace_pod_container() {
        let f = pod_file(&format!(
            "livetranslate_orchestration-5f7d8c9b6-abcde_{UID}/orchestration/0.log"
        ))
        .expect("kubelet path");
        assert_eq!(f.namespace, "livetranslate");
        assert_eq!(f.pod, "orchestration-5f7d8c9b6-abcde");
        assert_eq!(f.pod_uid, UID);
        assert_eq!(f.container, "orchestration");
        assert_eq!(f.restart_count, 0);
        assert_eq!(f.kind, LogFileKind::Current);
        assert_eq!(
            f.labels(),
            [
                ("namespace", "livetranslate"),
                ("pod", "orchestration-5f7d8c9b6-abcde"),
                ("container", "orchestration")
            ]
        );
        // A static pod: the UID is a config hash; the pod name has the node's name (dots).
        let s = pod_file(
            "kube-system_etcd-node-1.example.com_5e2b4f0e8a3c4d1f9b7a6c5d4e3f2a1b/etcd/12.log",
        )
        .expect("static pod");
        assert_eq!(
            (s.pod.as_str(), s.restart_count),
            ("etcd-node-1.example.com", 12)
        );
        // The pods directory may be mounted elsewhere (e.g. in a test or a chroot).
        assert!(PodLogFile::from_path(Path::new(&format!(
            "/host/var/log/pods/default_web-0_{UID}/nginx/3.log"
        )))
        .is_some());
    }

    #[test]
    fn kubelet_rotation_names() {
        let base = format!("prod_audio-0_{UID}/audio");
        let kind = |name: &str| pod_file(&format!("{base}/{name}")).map(|f| f.kind);
        assert_eq!(kind("0.log"), Some(LogFileKind::Current));
        assert_eq!(
            kind("0.log.20261130-070609"),
            Some(LogFileKind::Rotated {
                rotated_at: "20261130-070609".into()
            })
        );
        assert_eq!(
            kind("0.log.20261130-070609.gz"),
            Some(LogFileKind::Compressed)
        );
        assert_eq!(
            kind("0.log.20261130-070609.gz.tmp"),
            Some(LogFileKind::Temporary)
        );
        for readable in ["0.log", "0.log.20261130-070609"] {
            assert!(
                kind(readable).is_some_and(|k| k.should_read()),
                "{readable}"
            );
        }
        for skipped in ["0.log.20261130-070609.gz", "0.log.20261130-070609.gz.tmp"] {
            assert!(kind(skipped).is_some_and(|k| !k.should_read()), "{skipped}");
        }
        for not_kubelet in [
            "0.log.1",
            "0.log.2026-11-30",
            "0.log.20261130-070609.zst",
            "x.log",
            ".log",
            "0.txt",
            "0.logx",
            "99999999999.log",
        ] {
            assert_eq!(kind(not_kubelet), None, "{not_kubelet}");
        }
        // The exclusion globs cover exactly the files not to read.
        for (name, excluded) in [
            ("0.log.20261130-070609.gz", true),
            ("0.log.20261130-070609.gz.tmp", true),
            ("0.log.20261130-070609", false),
            ("0.log", false),
        ] {
            let hit = EXCLUDE_GLOBS
                .iter()
                .any(|g| glob::Pattern::new(g).is_ok_and(|p| p.matches(name)));
            assert_eq!(hit, excluded, "{name}");
        }
        // The default glob matches the current files only.
        let pattern = glob::Pattern::new(PODS_GLOB).expect("glob");
        assert!(pattern.matches(&format!("{PODS_DIR}/{base}/0.log")));
        assert!(!pattern.matches(&format!("{PODS_DIR}/{base}/0.log.20261130-070609")));
        assert!(!pattern.matches(&format!("{PODS_DIR}/{base}/0.log.20261130-070609.gz")));
    }

    #[test]
    fn paths_that_are_not_kubelet_s_are_refused() {
        for bad in [
            format!("prod_audio_{UID}_extra/audio/0.log"),
            "prod_audio/audio/0.log".to_owned(),
            format!("Prod_audio-0_{UID}/audio/0.log"),
            format!("prod_audio-0_{UID}/Audio/0.log"),
            format!("prod_-audio_{UID}/audio/0.log"),
            format!("prod_audio-0_{UID}/audio-/0.log"),
            format!("prod_audio-0_{UID}/{}/0.log", "c".repeat(64)),
            format!("{}_audio-0_{UID}/audio/0.log", "n".repeat(64)),
            "prod_audio-0_/audio/0.log".to_owned(),
            format!("prod_audio-0_{UID}/audio/"),
        ] {
            assert_eq!(pod_file(&bad), None, "{bad}");
        }
        assert_eq!(PodLogFile::from_path(Path::new("0.log")), None);
        assert_eq!(PodLogFile::from_path(Path::new("")), None);
    }

    #[test]
    fn container_links_decode_and_resolve() {
        let id = "a".repeat(64);
        let name = format!("translation-6c9f7b5d8-qwert_livetranslate_translation-{id}.log");
        let link =
            ContainerLogLink::from_path(&Path::new(CONTAINERS_DIR).join(&name)).expect("link name");
        assert_eq!(link.pod, "translation-6c9f7b5d8-qwert");
        assert_eq!(link.namespace, "livetranslate");
        assert_eq!(link.container, "translation");
        assert_eq!(link.container_id, id);
        assert_eq!(
            link.labels(),
            [
                ("namespace", "livetranslate"),
                ("pod", "translation-6c9f7b5d8-qwert"),
                ("container", "translation")
            ]
        );
        for bad in [
            format!("pod_ns_c-{}.log", "a".repeat(63)),
            format!("pod_ns_c-{}.log", "g".repeat(64)),
            format!("pod_ns-{id}.log"),
            format!("pod_ns_c_d-{id}.log"),
            format!("pod_ns_c-{id}.log.1"),
        ] {
            assert_eq!(ContainerLogLink::from_path(Path::new(&bad)), None, "{bad}");
        }

        // On disk, as kubelet lays it out: the link resolves to the pod log file.
        let root = std::env::temp_dir().join(format!(
            "lt-k8s-links-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let pods = root.join("pods");
        let dir: PathBuf = pods.join(format!(
            "livetranslate_translation-6c9f7b5d8-qwert_{UID}/translation"
        ));
        std::fs::create_dir_all(&dir).expect("pod dir");
        std::fs::create_dir_all(root.join("containers")).expect("containers dir");
        std::fs::write(dir.join("2.log"), "2026-11-30T07:06:09Z stdout F hi\n").expect("log");
        let link_path = root.join("containers").join(&name);
        std::os::unix::fs::symlink(dir.join("2.log"), &link_path).expect("symlink");
        let resolved = ContainerLogLink::resolve(&link_path).expect("resolves");
        assert_eq!(resolved.pod_uid, UID);
        assert_eq!(resolved.restart_count, 2);
        assert_eq!(resolved.labels(), link.labels());
        // Relative links resolve against the link's directory.
        let rel = root.join("containers").join(format!("rel_ns_c-{id}.log"));
        std::os::unix::fs::symlink(
            format!("../pods/livetranslate_translation-6c9f7b5d8-qwert_{UID}/translation/2.log"),
            &rel,
        )
        .expect("relative symlink");
        assert_eq!(
            ContainerLogLink::resolve(&rel).map(|f| f.restart_count),
            Some(2)
        );
        assert_eq!(
            ContainerLogLink::resolve(&root.join("containers/none.log")),
            None
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
