//! Target discovery: static targets from the configuration plus `file_sd` files (re-read when
//! their modification time or size changes), and the manager that starts and stops one scrape
//! loop per target.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::job::{check_group, FileSdConfig, ScrapeJob, TargetGroup, TargetGroupFile};
use super::scrape::{run_loop, ScrapeContext, Stop, TargetSpec};

/// The files a pattern currently names, sorted. As in Prometheus' `file_sd`, wildcards (`*`,
/// `?`, `[…]`, matched with `glob`) are allowed in the last path component only.
pub fn expand_pattern(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?', '[']) {
        return if pattern.is_file() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        };
    }
    let matcher = match glob::Pattern::new(name) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(pattern = %pattern.display(), error = %e, "invalid file_sd pattern");
            return Vec::new();
        }
    };
    let dir = match pattern.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| matcher.matches(n)))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Parses a `file_sd` file: a JSON (`.json`) or YAML list of `{targets: [...], labels: {...}}`.
pub fn parse_file_sd(path: &Path, text: &str) -> Result<Vec<TargetGroup>, String> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Vec<TargetGroupFile> = if is_json {
        serde_json::from_str(text)
            .map_err(|e| format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let (l, c) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            format!("{}:{l}:{c}: {e}", path.display())
        })?
    };
    Ok(groups.into_iter().map(Into::into).collect())
}

type Stamp = Option<(SystemTime, u64)>;

/// The state of one `file_sd` source.
#[derive(Debug)]
pub struct FileSd {
    config: FileSdConfig,
    stamps: BTreeMap<PathBuf, Stamp>,
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
}

impl FileSd {
    /// A source that has not been read yet.
    pub fn new(config: FileSdConfig) -> Self {
        FileSd {
            config,
            stamps: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// Re-reads files whose set, modification time or size changed. A file that fails to
    /// parse keeps its previous targets. Returns whether anything changed.
    pub fn refresh(&mut self) -> bool {
        let mut now: BTreeMap<PathBuf, Stamp> = BTreeMap::new();
        for p in &self.config.patterns {
            for f in expand_pattern(p) {
                let stamp = std::fs::metadata(&f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                now.insert(f, stamp);
            }
        }
        if now == self.stamps {
            return false;
        }
        let mut changed = false;
        self.groups.retain(|p, _| {
            let keep = now.contains_key(p);
            changed |= !keep;
            keep
        });
        for (path, stamp) in &now {
            if self.stamps.get(path) == Some(stamp) {
                continue;
            }
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|t| parse_file_sd(path, &t));
            match parsed {
                Ok(groups) => {
                    if self.groups.get(path) != Some(&groups) {
                        changed = true;
                        self.groups.insert(path.clone(), groups);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read file_sd targets; keeping the previous ones")
                }
            }
        }
        self.stamps = now;
        changed
    }

    /// The current target groups of every file.
    pub fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.groups.values().flatten()
    }

    /// How often to check the files.
    pub fn refresh_interval(&self) -> Duration {
        self.config.refresh_interval
    }
}

/// Builds the scrape specs of the targets of one group.
pub fn specs_for_group(
    job: &ScrapeJob,
    client: &reqwest::Client,
    group: &TargetGroup,
    standard_labels: &BTreeMap<String, String>,
) -> Result<Vec<TargetSpec>, String> {
    let scheme = group
        .labels
        .get("__scheme__")
        .cloned()
        .unwrap_or_else(|| job.scheme.clone());
    let path = group
        .labels
        .get("__metrics_path__")
        .cloned()
        .unwrap_or_else(|| job.metrics_path.clone());
    check_group(group, &scheme, &path).map_err(|e| format!("job {:?}: {e}", job.job_name))?;
    let mut specs = Vec::new();
    for address in &group.targets {
        let mut labels: BTreeMap<String, String> = standard_labels.clone();
        labels.insert("job".into(), job.job_name.clone());
        labels.insert("instance".into(), address.clone());
        for (k, v) in &group.labels {
            if !k.starts_with("__") {
                labels.insert(k.clone(), v.clone());
            }
        }
        labels.retain(|_, v| !v.is_empty());
        let mut url = format!("{scheme}://{address}{path}");
        if let Some(q) = &job.query {
            url.push('?');
            url.push_str(q);
        }
        specs.push(TargetSpec {
            job: labels.get("job").cloned().unwrap_or_default(),
            instance: labels.get("instance").cloned().unwrap_or_default(),
            url,
            labels,
            interval: job.interval,
            timeout: job.timeout,
            honor_labels: job.honor_labels,
            client: client.clone(),
            http: job.http.clone(),
        });
    }
    Ok(specs)
}

struct JobRuntime {
    job: ScrapeJob,
    client: reqwest::Client,
    file_sd: Vec<FileSd>,
}

struct Running {
    stop: watch::Sender<Stop>,
    handle: JoinHandle<()>,
}

/// Starts, stops and keeps one scrape loop per discovered target.
pub struct TargetManager {
    jobs: Vec<JobRuntime>,
    standard_labels: BTreeMap<String, String>,
    ctx: ScrapeContext,
    running: HashMap<String, Running>,
}

impl std::fmt::Debug for TargetManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetManager")
            .field("targets", &self.running.len())
            .finish_non_exhaustive()
    }
}

impl TargetManager {
    /// A manager for `jobs`, adding `standard_labels` to every target.
    pub fn new(
        jobs: &[ScrapeJob],
        standard_labels: &BTreeMap<String, String>,
        ctx: ScrapeContext,
        user_agent: &str,
    ) -> Result<Self, livetranslate_push::ClientError> {
        let mut runtimes = Vec::new();
        for job in jobs {
            runtimes.push(JobRuntime {
                client: job.http.client(Some(user_agent))?,
                file_sd: job.file_sd.iter().cloned().map(FileSd::new).collect(),
                job: job.clone(),
            });
        }
        Ok(TargetManager {
            jobs: runtimes,
            standard_labels: standard_labels.clone(),
            ctx,
            running: HashMap::new(),
        })
    }

    /// Number of running scrape loops.
    pub fn target_count(&self) -> usize {
        self.running.len()
    }

    fn desired(&self) -> BTreeMap<String, TargetSpec> {
        let mut out = BTreeMap::new();
        for rt in &self.jobs {
            let groups = rt
                .job
                .static_groups
                .iter()
                .chain(rt.file_sd.iter().flat_map(FileSd::groups));
            for g in groups {
                match specs_for_group(&rt.job, &rt.client, g, &self.standard_labels) {
                    Ok(specs) => {
                        for s in specs {
                            out.entry(s.key()).or_insert(s);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring an invalid target group"),
                }
            }
        }
        out
    }

    /// Reads `file_sd` files and starts / stops scrape loops to match.
    pub async fn reconcile(&mut self) {
        let mut changed = self.running.is_empty();
        for rt in &mut self.jobs {
            for f in &mut rt.file_sd {
                changed |= f.refresh();
            }
        }
        if !changed {
            return;
        }
        let desired = self.desired();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(r) = self.running.remove(&key) {
                let _ = r.stop.send(Stop::Removed);
                let _ = r.handle.await;
            }
        }
        for (key, spec) in desired {
            if self.running.contains_key(&key) {
                continue;
            }
            tracing::info!(job = %spec.job, instance = %spec.instance, url = %spec.url, "scraping target");
            let (tx, rx) = watch::channel(Stop::Run);
            let handle = tokio::spawn(run_loop(spec, self.ctx.clone(), rx));
            self.running.insert(key, Running { stop: tx, handle });
        }
    }

    /// Re-checks `file_sd` files until `shutdown` turns true, then stops every loop.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let refresh = self
            .jobs
            .iter()
            .flat_map(|j| j.file_sd.iter().map(FileSd::refresh_interval))
            .min();
        loop {
            let wait = refresh.unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {
                    if refresh.is_some() {
                        self.reconcile().await;
                    }
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(Stop::Shutdown);
            let _ = r.handle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_the_last_component() {
        let dir = std::env::temp_dir().join(format!("agent-sd-glob-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for name in ["a.json", ".json", "a.yml", "t1.yaml", "aXbYbZc", "aXbYbZ"] {
            if let Err(e) = std::fs::write(dir.join(name), "[]") {
                panic!("{e}");
            }
        }
        let names = |p: &str| -> Vec<String> {
            expand_pattern(&dir.join(p))
                .iter()
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(names("*.json"), [".json", "a.json"]);
        assert_eq!(names("t?.y*ml"), ["t1.yaml"]);
        assert_eq!(names("a*b*c"), ["aXbYbZc"]);
        assert_eq!(names("[at]*.y*"), ["a.yml", "t1.yaml"]);
        assert_eq!(names("a.yml"), ["a.yml"]);
        assert!(names("missing.json").is_empty());
        assert!(
            names("[*.json").is_empty(),
            "an invalid pattern names nothing"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_sd_formats() {
        let g = parse_file_sd(
            Path::new("t.json"),
            r#"[{"targets":["127.0.0.1:1","127.0.0.1:2"],"labels":{"service":"audio"}}]"#,
        );
        assert_eq!(g.as_ref().map(|g| g[0].targets.len()), Ok(2));
        let g = parse_file_sd(
            Path::new("t.yml"),
            "- targets: ['127.0.0.1:1']\n  labels: {a: b}\n",
        );
        assert_eq!(g.map(|g| g[0].labels.len()), Ok(1));
        let e = parse_file_sd(Path::new("t.yml"), "- targets: ['x']\n  bogus: 1\n");
        assert!(e.is_err_and(|e| e.starts_with("t.yml:2:")));
    }

    #[test]
    fn file_sd_refresh_notices_changes() {
        let dir = std::env::temp_dir().join(format!("agent-sd-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("a.json");
        let write = |text: &str| {
            if let Err(e) = std::fs::write(&file, text) {
                panic!("{e}");
            }
        };
        write(r#"[{"targets":["127.0.0.1:1"]}]"#);
        let mut sd = FileSd::new(FileSdConfig {
            patterns: vec![dir.join("*.json")],
            refresh_interval: Duration::from_secs(1),
        });
        assert!(sd.refresh());
        assert!(!sd.refresh());
        assert_eq!(sd.groups().count(), 1);
        write(r#"[{"targets":["127.0.0.1:1","127.0.0.1:22"]}]"#);
        assert!(sd.refresh());
        assert_eq!(sd.groups().map(|g| g.targets.len()).sum::<usize>(), 2);
        write("not json at all");
        sd.refresh();
        assert_eq!(
            sd.groups().map(|g| g.targets.len()).sum::<usize>(),
            2,
            "kept"
        );
        let _ = std::fs::remove_file(&file);
        assert!(sd.refresh());
        assert_eq!(sd.groups().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn spec_labels() {
        let job = ScrapeJob {
            job_name: "j".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            metrics_path: "/m".into(),
            query: None,
            scheme: "http".into(),
            honor_labels: false,
            http: Default::default(),
            static_groups: vec![],
            file_sd: vec![],
        };
        let group = TargetGroup {
            targets: vec!["127.0.0.1:5".into()],
            labels: BTreeMap::from([
                ("service".to_owned(), "audio".to_owned()),
                ("__metrics_path__".to_owned(), "/api/metrics".to_owned()),
            ]),
        };
        let std_labels = BTreeMap::from([
            ("service".to_owned(), "x".to_owned()),
            ("cluster".to_owned(), "c".to_owned()),
        ]);
        let specs = specs_for_group(&job, &reqwest::Client::new(), &group, &std_labels);
        let specs = match specs {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(specs[0].url, "http://127.0.0.1:5/api/metrics");
        assert_eq!(
            specs[0].labels.get("service").map(String::as_str),
            Some("audio")
        );
        assert_eq!(
            specs[0].labels.get("cluster").map(String::as_str),
            Some("c")
        );
        assert_eq!(
            specs[0].labels.get("instance").map(String::as_str),
            Some("127.0.0.1:5")
        );
        assert!(!specs[0].labels.contains_key("__metrics_path__"));
    }
}
