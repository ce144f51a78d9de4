//! Docker container metadata for json-file logs: stream labels from the container's own
//! `config.v2.json`, without the Docker API.
//!
//! Docker keeps each container in `<data-root>/containers/<id>/`: the log
//! (`<id>-json.log`, rotated to `<id>-json.log.1`, …) next to `config.v2.json`, which holds
//! the container's `Name` (with a leading `/`), `Config.Image` (as the user asked for it),
//! `Config.Labels` (including Compose's `com.docker.compose.service` and
//! `com.docker.compose.project`) and `State`. Docker rewrites that file atomically (a new
//! file renamed over the old) on every state change, so a change of inode, size or mtime
//! tells that it must be read again.
//!
//! Labels produced ([`ContainerInfo::labels`]): `container` (name without `/`), `image`,
//! `compose_service` and `compose_project` (when set), and the container labels named in the
//! allow-list, sanitised to valid label names (`com.example.team` → `com_example_team`).
//! Every value is cut to [`MAX_LABEL_VALUE_BYTES`] and at most [`MAX_EXTRA_LABELS`] come from
//! the allow-list, so a container cannot blow up the label set.
//!
//! The metadata file is readable by root only (mode 0600), as are the logs: the agent needs
//! the same access it needs for the logs.
//!
//! Used by [`super::metadata`] for every `format: docker` input (the input's `docker:`
//! block is a [`DockerConfig`]).
//!
//! ```
//! use livetranslate_agent::logs::docker::{DockerConfig, DockerMetadata, Lookup};
//!
//! let root = std::env::temp_dir().join(format!("docker-doc-{}", std::process::id()));
//! let id = "c0ffee".repeat(10) + "c0ff";
//! let dir = root.join("containers").join(&id);
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(
//!     dir.join("config.v2.json"),
//!     format!(r#"{{"ID":"{id}","Name":"/shop-web-1","Config":{{"Image":"nginx:1.27",
//!         "Labels":{{"com.docker.compose.service":"web","com.docker.compose.project":"shop"}}}},
//!         "State":{{"Running":true}}}}"#),
//! )
//! .unwrap();
//!
//! let mut docker = DockerMetadata::new(&DockerConfig { data_root: root.clone(), ..Default::default() });
//! let Lookup::Current(info) = docker.lookup(&dir.join(format!("{id}-json.log"))) else { panic!() };
//! assert_eq!(
//!     info.labels(),
//!     [("compose_project", "shop"), ("compose_service", "web"), ("container", "shop-web-1"), ("image", "nginx:1.27")]
//! );
//! # std::fs::remove_dir_all(&root).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

/// Docker's default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/docker";

/// Longest label value kept (longer values are cut at a character boundary): the same cap
/// as a promoted field's ([`super::parse::MAX_LABEL_VALUE`]).
pub const MAX_LABEL_VALUE_BYTES: usize = 128;

/// Most labels taken from a container's own labels through the allow-list.
pub const MAX_EXTRA_LABELS: usize = 16;

/// The label names this module sets itself; allow-listed container labels that sanitise to
/// one of them are skipped.
pub const RESERVED_LABELS: [&str; 4] = ["container", "image", "compose_service", "compose_project"];

/// Where Docker keeps containers, and which of their labels become stream labels.
///
/// ```
/// use livetranslate_agent::logs::docker::DockerConfig;
///
/// let c: DockerConfig = serde_yaml_ng::from_str(
///     "data_root: /srv/docker\nlabel_allowlist: [com.example.team, 'org.opencontainers.image.*']",
/// )
/// .unwrap();
/// assert_eq!(c.data_root, std::path::Path::new("/srv/docker"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// Docker's data root (`/var/lib/docker`; `data-root` in `daemon.json`).
    #[serde(default = "default_data_root")]
    pub data_root: PathBuf,
    /// Container label keys copied to stream labels: exact keys, or prefixes ending in `*`.
    #[serde(default)]
    pub label_allowlist: Vec<String>,
}

fn default_data_root() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_ROOT)
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            data_root: default_data_root(),
            label_allowlist: Vec::new(),
        }
    }
}

/// A container's metadata, as labels need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full container id (64 hex digits).
    pub id: String,
    /// Name without the leading `/` (`livetranslate-audio-service-1`).
    pub name: String,
    /// Image as the container was created from it (`livetranslate-examples:local`); the
    /// image id when that is empty.
    pub image: String,
    /// `com.docker.compose.service`.
    pub compose_service: Option<String>,
    /// `com.docker.compose.project`.
    pub compose_project: Option<String>,
    /// State when the file was last written.
    pub state: ContainerState,
    /// Allow-listed container labels: sanitised names, bounded values, sorted by name.
    pub extra_labels: Vec<(String, String)>,
}

/// The `State` of `config.v2.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerState {
    /// Running.
    pub running: bool,
    /// Paused.
    pub paused: bool,
    /// Restarting.
    pub restarting: bool,
    /// Being removed.
    pub removal_in_progress: bool,
    /// Dead.
    pub dead: bool,
    /// Exit code of the last run.
    pub exit_code: i64,
}

impl ContainerInfo {
    /// The stream labels, sorted by name: `compose_project`, `compose_service` (when set),
    /// `container`, `image`, then the allow-listed ones.
    pub fn labels(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::with_capacity(4 + self.extra_labels.len());
        if let Some(p) = &self.compose_project {
            out.push(("compose_project", p));
        }
        if let Some(s) = &self.compose_service {
            out.push(("compose_service", s));
        }
        out.push(("container", &self.name));
        if !self.image.is_empty() {
            out.push(("image", &self.image));
        }
        out.extend(
            self.extra_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        out
    }
}

/// Why a container's metadata could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// `config.v2.json` could not be read (missing while the container is being created, no
    /// permission, …).
    #[error("{}: {source}", path.display())]
    Read {
        /// The metadata file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The file is not a container configuration Docker writes.
    #[error("{}: not a Docker container configuration: {message}", path.display())]
    Invalid {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The container's directory is gone and nothing was known about it.
    #[error("container {id} was removed before its metadata was read")]
    Removed {
        /// Container id.
        id: String,
    },
}

/// The answer to [`DockerMetadata::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// The path is not a container log under the data root.
    NotDocker,
    /// Metadata as currently on disk.
    Current(Arc<ContainerInfo>),
    /// The container was removed (its directory is gone); the last metadata read, for the
    /// lines still drained from the open log.
    Removed(Arc<ContainerInfo>),
    /// The file changed and cannot be read now; the last metadata read.
    Stale {
        /// Last good metadata.
        info: Arc<ContainerInfo>,
        /// Why it could not be refreshed.
        error: DockerError,
    },
    /// No metadata (yet): the file is missing, unreadable or invalid, and nothing is cached.
    /// Ask again later (a container being created writes its metadata first, but the agent
    /// may look in between).
    Unavailable {
        /// Container id (from the path).
        id: String,
        /// Why.
        error: DockerError,
    },
}

impl Lookup {
    /// The metadata to label with, if any.
    pub fn info(&self) -> Option<&Arc<ContainerInfo>> {
        match self {
            Lookup::Current(i) | Lookup::Removed(i) | Lookup::Stale { info: i, .. } => Some(i),
            Lookup::NotDocker | Lookup::Unavailable { .. } => None,
        }
    }

    /// The problem met, if any.
    pub fn error(&self) -> Option<&DockerError> {
        match self {
            Lookup::Stale { error, .. } | Lookup::Unavailable { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What identifies one version of `config.v2.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

#[derive(Debug)]
struct Cached {
    stamp: Stamp,
    info: Arc<ContainerInfo>,
}

/// Container metadata, read from `config.v2.json` and cached per container id.
///
/// Call [`lookup`](Self::lookup) when a container log is opened (a new container, a rotation)
/// and again now and then while it is tailed (each call is one `stat`; the file is re-read
/// only when it changed). Call [`forget`](Self::forget) when the tailer lets a container's
/// log go, or [`prune`](Self::prune) periodically.
#[derive(Debug)]
pub struct DockerMetadata {
    containers_dir: PathBuf,
    allow: Vec<Allow>,
    cache: HashMap<String, Cached>,
}

#[derive(Debug, Clone)]
enum Allow {
    Exact(String),
    Prefix(String),
}

impl Allow {
    fn matches(&self, key: &str) -> bool {
        match self {
            Allow::Exact(k) => k == key,
            Allow::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

impl DockerMetadata {
    /// Metadata for containers under `config.data_root`.
    pub fn new(config: &DockerConfig) -> Self {
        DockerMetadata {
            containers_dir: config.data_root.join("containers"),
            allow: config
                .label_allowlist
                .iter()
                .map(|k| match k.strip_suffix('*') {
                    Some(prefix) => Allow::Prefix(prefix.to_owned()),
                    None => Allow::Exact(k.clone()),
                })
                .collect(),
            cache: HashMap::new(),
        }
    }

    /// The container id of a json-file log under the data root
    /// (`<root>/containers/<id>/<id>-json.log`, or a rotated `…-json.log.<n>`).
    ///
    /// ```
    /// use std::path::Path;
    /// use livetranslate_agent::logs::docker::{DockerConfig, DockerMetadata};
    ///
    /// let d = DockerMetadata::new(&DockerConfig::default());
    /// let id = "ab".repeat(32);
    /// let log = format!("/var/lib/docker/containers/{id}/{id}-json.log.1");
    /// assert_eq!(d.container_id(Path::new(&log)), Some(id.as_str()));
    /// assert_eq!(d.container_id(Path::new("/var/log/syslog")), None);
    /// ```
    pub fn container_id<'p>(&self, log_path: &'p Path) -> Option<&'p str> {
        let rel = log_path.strip_prefix(&self.containers_dir).ok()?;
        let mut parts = rel.iter();
        let (dir, file) = (parts.next()?.to_str()?, parts.next()?.to_str()?);
        if parts.next().is_some() || !is_container_id(dir) {
            return None;
        }
        let rest = file.strip_prefix(dir)?.strip_prefix("-json.log")?;
        let rotated = rest.is_empty()
            || rest
                .strip_prefix('.')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        rotated.then_some(dir)
    }

    /// The metadata of the container whose log is `log_path`.
    pub fn lookup(&mut self, log_path: &Path) -> Lookup {
        let Some(id) = self.container_id(log_path) else {
            return Lookup::NotDocker;
        };
        let id = id.to_owned();
        let dir = self.containers_dir.join(&id);
        let config_path = dir.join("config.v2.json");
        let stamp = match std::fs::metadata(&config_path) {
            Ok(meta) => Stamp::of(&meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => {
                return match self.cache.get(&id) {
                    Some(c) => Lookup::Removed(c.info.clone()),
                    None => Lookup::Unavailable {
                        error: DockerError::Removed { id: id.clone() },
                        id,
                    },
                };
            }
            Err(source) => {
                let error = DockerError::Read {
                    path: config_path,
                    source,
                };
                return self.fallback(id, error);
            }
        };
        if let Some(c) = self.cache.get(&id) {
            if c.stamp == stamp {
                return Lookup::Current(c.info.clone());
            }
        }
        let parsed = std::fs::read(&config_path)
            .map_err(|source| DockerError::Read {
                path: config_path.clone(),
                source,
            })
            .and_then(|bytes| self.parse(&id, &bytes, &config_path));
        match parsed {
            Ok(info) => {
                let info = Arc::new(info);
                self.cache.insert(
                    id,
                    Cached {
                        stamp,
                        info: info.clone(),
                    },
                );
                Lookup::Current(info)
            }
            Err(error) => self.fallback(id, error),
        }
    }

    fn fallback(&self, id: String, error: DockerError) -> Lookup {
        match self.cache.get(&id) {
            Some(c) => Lookup::Stale {
                info: c.info.clone(),
                error,
            },
            None => Lookup::Unavailable { id, error },
        }
    }

    /// Drops what is cached about a container (its log is no longer tailed).
    pub fn forget(&mut self, container_id: &str) {
        self.cache.remove(container_id);
    }

    /// Drops the cached metadata of containers whose directory is gone; returns their ids.
    pub fn prune(&mut self) -> Vec<String> {
        let gone: Vec<String> = self
            .cache
            .keys()
            .filter(|id| !self.containers_dir.join(id).exists())
            .cloned()
            .collect();
        for id in &gone {
            self.cache.remove(id);
        }
        gone
    }

    /// How many containers are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    fn parse(&self, id: &str, bytes: &[u8], path: &Path) -> Result<ContainerInfo, DockerError> {
        let invalid = |message: String| DockerError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let c: ConfigV2 = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if !c.id.eq_ignore_ascii_case(id) {
            return Err(invalid(format!("ID {:?} is not the directory's", c.id)));
        }
        let name = c.name.strip_prefix('/').unwrap_or(&c.name);
        if name.is_empty() {
            return Err(invalid("empty Name".to_owned()));
        }
        let config = c.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let image = config
            .image
            .filter(|i| !i.is_empty())
            .or(c.image)
            .unwrap_or_default();
        let label = |key: &str| {
            labels
                .get(key)
                .filter(|v| !v.is_empty())
                .map(|v| bounded(v))
        };
        let mut extra: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in &labels {
            if extra.len() >= MAX_EXTRA_LABELS {
                break;
            }
            if value.is_empty() || !self.allow.iter().any(|a| a.matches(key)) {
                continue;
            }
            let name = sanitize_label_name(key);
            if name.starts_with("__") || RESERVED_LABELS.contains(&name.as_str()) {
                continue;
            }
            extra.entry(name).or_insert_with(|| bounded(value));
        }
        let s = c.state.unwrap_or_default();
        Ok(ContainerInfo {
            id: c.id.to_ascii_lowercase(),
            name: bounded(name),
            image: bounded(&image),
            compose_service: label("com.docker.compose.service"),
            compose_project: label("com.docker.compose.project"),
            state: ContainerState {
                running: s.running,
                paused: s.paused,
                restarting: s.restarting,
                removal_in_progress: s.removal_in_progress,
                dead: s.dead,
                exit_code: s.exit_code,
            },
            extra_labels: extra.into_iter().collect(),
        })
    }
}

/// The parts of Docker's `config.v2.json` used here (Docker's field names).
#[derive(Deserialize)]
struct ConfigV2 {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
    /// The image id (`sha256:…`).
    #[serde(rename = "Image", default)]
    image: Option<String>,
    #[serde(rename = "Config", default)]
    config: Option<ConfigSection>,
    #[serde(rename = "State", default)]
    state: Option<StateSection>,
}

#[derive(Deserialize, Default)]
struct ConfigSection {
    #[serde(rename = "Image", default)]
    image: Option<String>,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StateSection {
    #[serde(default)]
    running: bool,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    restarting: bool,
    #[serde(default)]
    removal_in_progress: bool,
    #[serde(default)]
    dead: bool,
    #[serde(default)]
    exit_code: i64,
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A value cut to [`MAX_LABEL_VALUE_BYTES`] at a character boundary.
fn bounded(v: &str) -> String {
    let mut cut = v.len().min(MAX_LABEL_VALUE_BYTES);
    while !v.is_char_boundary(cut) {
        cut -= 1;
    }
    v[..cut].to_owned()
}

/// A Docker label key as a label name, the way Prometheus' Docker discovery does it: every
/// character outside `[a-zA-Z0-9_]` becomes `_`, and a leading digit gets a `_` before it, so
/// the result is always a valid label name (tested against the library's validator).
fn sanitize_label_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 1);
    if key.starts_with(|c: char| c.is_ascii_digit()) || key.is_empty() {
        out.push('_');
    }
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Docker data root in a temporary directory, removed on drop.
    struct Root(PathBuf);

    impl Root {
        fn new(tag: &str) -> Self {
            let nanos = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let p = std::env::temp_dir()
                .join(format!("lt-docker-{tag}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(p.join("containers")).expect("data root");
            Root(p)
        }

        /// Lays a container out as Docker does: its directory, `config.v2.json` written
        /// atomically (temporary file, then rename), `hostconfig.json`, and the json-file log.
        fn create(&self, id: &str, name: &str, image: &str, labels: &[(&str, &str)]) -> PathBuf {
            let dir = self.0.join("containers").join(id);
            std::fs::create_dir_all(dir.join("checkpoints")).expect("container dir");
            self.write_config(id, name, image, labels, true);
            std::fs::write(
                dir.join("hostconfig.json"),
                r#"{"Binds":null,"LogConfig":{"Type":"json-file","Config":{"max-file":"3","max-size":"10m"}},"NetworkMode":"livetranslate_default","RestartPolicy":{"Name":"unless-stopped","MaximumRetryCount":0}}"#,
            )
            .expect("hostconfig");
            let log = dir.join(format!("{id}-json.log"));
            std::fs::write(
                &log,
                "{\"log\":\"started\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-30T07:06:09.123456789Z\"}\n",
            )
            .expect("log");
            log
        }

        fn write_config(
            &self,
            id: &str,
            name: &str,
            image: &str,
            labels: &[(&str, &str)],
            running: bool,
        ) {
            let dir = self.0.join("containers").join(id);
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            let config = serde_json::json!({
                "StreamConfig": {},
                "State": {
                    "Running": running, "Paused": false, "Restarting": false, "OOMKilled": false,
                    "RemovalInProgress": false, "Dead": false, "Pid": if running { 4242 } else { 0 },
                    "ExitCode": if running { 0 } else { 137 }, "Error": "",
                    "StartedAt": "2026-11-30T07:06:08.918018959Z",
                    "FinishedAt": "0001-01-01T00:00:00Z", "Health": null
                },
                "ID": id,
                "Created": "2026-11-30T07:06:07.186239134Z",
                "Managed": false,
                "Path": "/usr/local/bin/audio-service",
                "Args": [],
                "Config": {
                    "Hostname": &id[..12], "Domainname": "", "User": "",
                    "AttachStdin": false, "AttachStdout": true, "AttachStderr": true,
                    "ExposedPorts": {"5001/tcp": {}}, "Tty": false, "OpenStdin": false,
                    "StdinOnce": false,
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=5001"],
                    "Cmd": ["/usr/local/bin/audio-service"], "Image": image, "Volumes": null,
                    "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": labels
                },
                "Image": "sha256:5c62e459e087e3bd3d963092b58e50ae2af881076b43c29e38e2b5db253e0287",
                "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": false,
                    "Networks": {"livetranslate_default": {"IPAMConfig": null, "Links": null,
                        "Aliases": ["audio-service", &id[..12]], "IPAddress": "172.19.0.3"}}},
                "LogPath": dir.join(format!("{id}-json.log")),
                "Name": format!("/{name}"),
                "Driver": "overlay2",
                "OS": "linux",
                "RestartCount": 0,
                "HasBeenStartedBefore": true,
                "HasBeenManuallyStopped": false,
                "MountPoints": {},
                "SecretReferences": null,
                "ConfigReferences": null,
                "MountLabel": "",
                "ProcessLabel": "",
                "AppArmorProfile": "docker-default",
                "SeccompProfile": "",
                "NoNewPrivileges": false
            });
            let tmp = dir.join(".tmp-config.v2.json123");
            std::fs::write(&tmp, serde_json::to_vec(&config).expect("json")).expect("tmp");
            std::fs::rename(&tmp, dir.join("config.v2.json")).expect("rename");
        }

        fn metadata(&self, allow: &[&str]) -> DockerMetadata {
            DockerMetadata::new(&DockerConfig {
                data_root: self.0.clone(),
                label_allowlist: allow.iter().map(|s| (*s).to_owned()).collect(),
            })
        }

        fn remove(&self, id: &str) {
            std::fs::remove_dir_all(self.0.join("containers").join(id)).expect("remove");
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const COMPOSE: [(&str, &str); 8] = [
        (
            "com.docker.compose.config-hash",
            "e9e6ff8e594f3a8c77b688e35f3fe9163fe99c66597b19bdd03f9256d630f515",
        ),
        ("com.docker.compose.container-number", "1"),
        ("com.docker.compose.oneoff", "False"),
        ("com.docker.compose.project", "livetranslate"),
        (
            "com.docker.compose.project.working_dir",
            "/srv/livetranslate",
        ),
        ("com.docker.compose.service", "audio-service"),
        ("com.docker.compose.version", "2.29.7"),
        (
            "org.opencontainers.image.source",
            "https://example.invalid/livetranslate",
        ),
    ];

    fn id(n: u8) -> String {
        format!("{:02x}", n).repeat(32)
    }

    fn labels(l: &Lookup) -> Vec<(String, String)> {
        l.info()
            .map(|i| {
                i.labels()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn compose_container_gets_name_service_project_image() {
        let root = Root::new("compose");
        let log = root.create(
            &id(1),
            "livetranslate-audio-service-1",
            "livetranslate-examples:local",
            &COMPOSE,
        );
        let mut d = root.metadata(&[]);
        let l = d.lookup(&log);
        assert!(matches!(l, Lookup::Current(_)), "{l:?}");
        assert_eq!(
            labels(&l),
            pairs(&[
                ("compose_project", "livetranslate"),
                ("compose_service", "audio-service"),
                ("container", "livetranslate-audio-service-1"),
                ("image", "livetranslate-examples:local"),
            ])
        );
        let info = l.info().expect("info");
        assert!(info.state.running);
        assert_eq!(info.id, id(1));
        // A plain `docker run` container: no compose labels.
        let plain = root.create(
            &id(2),
            "boring_euclid",
            "nginx:1.27",
            &[("maintainer", "NGINX")],
        );
        assert_eq!(
            labels(&d.lookup(&plain)),
            pairs(&[("container", "boring_euclid"), ("image", "nginx:1.27")])
        );
        // Rotated files of the json-file driver belong to the same container.
        let rotated = log.with_file_name(format!("{}-json.log.1", id(1)));
        assert_eq!(labels(&d.lookup(&rotated)), labels(&l));
        // Not a container log: other files, other directories, ids that are not ids.
        for other in [
            root.0.join("containers").join(id(1)).join("config.v2.json"),
            root.0
                .join("containers")
                .join(id(1))
                .join(format!("{}-json.log", id(2))),
            root.0.join("containers").join("abc").join("abc-json.log"),
            root.0
                .join("volumes")
                .join(id(1))
                .join(format!("{}-json.log", id(1))),
            root.0
                .join("containers")
                .join(id(1))
                .join(format!("{}-json.log.gz", id(1))),
            PathBuf::from("/var/log/syslog"),
        ] {
            assert!(
                matches!(d.lookup(&other), Lookup::NotDocker),
                "{}",
                other.display()
            );
        }
    }

    #[test]
    fn allow_listed_labels_are_sanitised_and_bounded() {
        let root = Root::new("allow");
        let long = "x".repeat(300);
        let accented = "é".repeat(100); // 200 bytes: cut at a character boundary
        let mut container_labels = COMPOSE.to_vec();
        container_labels.extend([
            ("com.example.team", "speech"),
            ("com.example.empty", ""),
            ("com.example.long", long.as_str()),
            ("com.example.accented", accented.as_str()),
            ("1st-label", "one"),
            ("container", "spoof"),
            ("__meta", "hidden"),
            ("unlisted", "no"),
        ]);
        let log = root.create(&id(3), "svc", "img", &container_labels);
        let mut d = root.metadata(&[
            "com.example.*",
            "1st-label",
            "container",
            "__meta",
            "org.opencontainers.image.source",
        ]);
        let info = d.lookup(&log).info().cloned().expect("info");
        let extra: BTreeMap<&str, &str> = info
            .extra_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(extra.get("com_example_team"), Some(&"speech"));
        assert_eq!(extra.get("_1st_label"), Some(&"one"));
        assert_eq!(
            extra.get("org_opencontainers_image_source"),
            Some(&"https://example.invalid/livetranslate")
        );
        assert_eq!(
            extra.get("com_example_long").map(|v| v.len()),
            Some(MAX_LABEL_VALUE_BYTES)
        );
        assert_eq!(
            extra.get("com_example_accented").map(|v| v.len()),
            Some(MAX_LABEL_VALUE_BYTES)
        );
        for absent in ["com_example_empty", "container", "__meta", "unlisted"] {
            assert!(!extra.contains_key(absent), "{absent}");
        }
        assert_eq!(
            info.name, "svc",
            "a container label cannot override the name"
        );
        for (k, _) in &info.extra_labels {
            let mut c = k.chars();
            assert!(
                c.next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && c.all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{k}"
            );
        }
        // At most MAX_EXTRA_LABELS, however many match.
        let many: Vec<(String, String)> = (0..40)
            .map(|i| (format!("com.example.k{i:02}"), "v".to_owned()))
            .collect();
        let many_refs: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let log = root.create(&id(4), "many", "img", &many_refs);
        let info = d.lookup(&log).info().cloned().expect("info");
        assert_eq!(info.extra_labels.len(), MAX_EXTRA_LABELS);
    }

    #[test]
    fn metadata_is_cached_and_reread_when_docker_rewrites_it() {
        let root = Root::new("cache");
        let id = id(5);
        let log = root.create(
            &id,
            "livetranslate-audio-service-1",
            "livetranslate-examples:local",
            &COMPOSE,
        );
        let mut d = root.metadata(&[]);
        let first = d.lookup(&log).info().cloned().expect("info");
        let again = d.lookup(&log).info().cloned().expect("info");
        assert!(
            Arc::ptr_eq(&first, &again),
            "unchanged file: served from the cache"
        );
        assert_eq!(d.cached(), 1);
        // `docker rename` and a stop rewrite the file (atomically, a new inode).
        root.write_config(
            &id,
            "audio-renamed",
            "livetranslate-examples:local",
            &COMPOSE,
            false,
        );
        let renamed = d.lookup(&log).info().cloned().expect("info");
        assert_eq!(renamed.name, "audio-renamed");
        assert!(!renamed.state.running);
        assert_eq!(renamed.state.exit_code, 137);
        // A broken rewrite keeps the last good metadata, with the error.
        std::fs::write(
            root.0.join("containers").join(&id).join("config.v2.json"),
            b"{\"ID\":",
        )
        .expect("write");
        let stale = d.lookup(&log);
        assert!(
            matches!(
                &stale,
                Lookup::Stale {
                    error: DockerError::Invalid { .. },
                    ..
                }
            ),
            "{stale:?}"
        );
        assert_eq!(stale.info().map(|i| i.name.as_str()), Some("audio-renamed"));
    }

    #[test]
    fn removed_container_keeps_its_labels_until_forgotten() {
        let root = Root::new("removed");
        let id = id(6);
        let log = root.create(
            &id,
            "livetranslate-translation-service-1",
            "livetranslate-examples:local",
            &COMPOSE,
        );
        let mut d = root.metadata(&[]);
        let before = labels(&d.lookup(&log));
        root.remove(&id);
        // The tailer still drains the deleted log from its open handle: same labels.
        let after = d.lookup(&log);
        assert!(matches!(after, Lookup::Removed(_)), "{after:?}");
        assert_eq!(labels(&after), before);
        assert_eq!(d.prune(), vec![id.clone()]);
        assert_eq!(d.cached(), 0);
        let unknown = d.lookup(&log);
        assert!(
            matches!(
                &unknown,
                Lookup::Unavailable {
                    error: DockerError::Removed { .. },
                    ..
                }
            ),
            "{unknown:?}"
        );
        // forget() drops a live container too; the next lookup reads the file again.
        let other = root.create(&self::id(7), "x", "img", &[]);
        assert!(matches!(d.lookup(&other), Lookup::Current(_)));
        d.forget(&self::id(7));
        assert_eq!(d.cached(), 0);
        assert!(matches!(d.lookup(&other), Lookup::Current(_)));
    }

    #[test]
    fn container_created_while_running_is_picked_up() {
        let root = Root::new("created");
        let mut d = root.metadata(&[]);
        let id = id(8);
        let dir = root.0.join("containers").join(&id);
        let log = dir.join(format!("{id}-json.log"));
        // The directory exists but Docker has not written the metadata yet.
        std::fs::create_dir_all(&dir).expect("dir");
        let early = d.lookup(&log);
        assert!(
            matches!(
                &early,
                Lookup::Unavailable {
                    error: DockerError::Read { .. },
                    ..
                }
            ),
            "{early:?}"
        );
        assert_eq!(d.cached(), 0);
        // `docker compose up` finishes creating it; the caller asks again.
        root.create(
            &id,
            "livetranslate-fourth-service-1",
            "livetranslate-examples:local",
            &[
                ("com.docker.compose.project", "livetranslate"),
                ("com.docker.compose.service", "fourth-service"),
            ],
        );
        assert_eq!(
            labels(&d.lookup(&log)),
            pairs(&[
                ("compose_project", "livetranslate"),
                ("compose_service", "fourth-service"),
                ("container", "livetranslate-fourth-service-1"),
                ("image", "livetranslate-examples:local"),
            ])
        );
    }

    #[test]
    fn invalid_metadata_is_reported_not_trusted() {
        let root = Root::new("invalid");
        let mut d = root.metadata(&[]);
        let id = id(9);
        let dir = root.0.join("containers").join(&id);
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join(format!("{id}-json.log"));
        for (body, what) in [
            (r#"not json"#.to_owned(), "garbage"),
            (
                format!(r#"{{"ID":"{}","Name":"/x"}}"#, self::id(10)),
                "another container's id",
            ),
            (format!(r#"{{"ID":"{id}","Name":"/"}}"#), "empty name"),
            (format!(r#"{{"ID":"{id}"}}"#), "no name"),
        ] {
            std::fs::write(dir.join("config.v2.json"), body).expect("write");
            let l = d.lookup(&log);
            assert!(
                matches!(
                    &l,
                    Lookup::Unavailable {
                        error: DockerError::Invalid { .. },
                        ..
                    }
                ),
                "{what}: {l:?}"
            );
        }
        // Null labels and a missing Config are valid (images without labels): the image id
        // stands in for the image name.
        std::fs::write(
            dir.join("config.v2.json"),
            format!(r#"{{"ID":"{id}","Name":"/bare","Image":"sha256:abc","Config":{{"Labels":null,"Image":""}}}}"#),
        )
        .expect("write");
        assert_eq!(
            labels(&d.lookup(&log)),
            pairs(&[("container", "bare"), ("image", "sha256:abc")])
        );
    }

    #[test]
    fn label_names_are_sanitised_like_prometheus_docker_discovery() {
        assert_eq!(
            sanitize_label_name("com.docker.compose.service"),
            "com_docker_compose_service"
        );
        assert_eq!(
            sanitize_label_name("prometheus.io/scrape"),
            "prometheus_io_scrape"
        );
        assert_eq!(sanitize_label_name("9lives"), "_9lives");
        assert_eq!(sanitize_label_name(""), "_");
        assert_eq!(sanitize_label_name("naïve"), "na_ve");
        for key in [
            "com.docker.compose.service",
            "9lives",
            "",
            "naïve",
            "a-b/c.d",
        ] {
            let name = sanitize_label_name(key);
            assert!(
                livetranslate_telemetry::names::is_valid_label_name(&name),
                "{key:?} -> {name:?}"
            );
        }
        assert_eq!(bounded(&"é".repeat(100)).len(), 128);
        assert_eq!(MAX_LABEL_VALUE_BYTES, crate::logs::parse::MAX_LABEL_VALUE);
    }
}
