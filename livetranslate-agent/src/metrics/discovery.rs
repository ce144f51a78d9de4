//! Target discovery: static targets from the configuration plus `file_sd` files (re-read when
//! their modification time or size changes), and the manager that starts and stops one scrape
//! loop per target.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ingest::TargetShape;
use super::job::{check_group, FileSdConfig, ScrapeJob, TargetGroup, TargetGroupFile};
use super::scrape::{run_loop, ScrapeContext, Stop, TargetSpec};
use crate::duration::{parse_duration, HumanDuration};
use crate::relabel::{self, Labels};

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

/// The targets of one group, as Prometheus 2.42's `populateLabels` makes them: the group's
/// labels and `__address__`, then (where not set) `job`, `__scheme__`, `__metrics_path__`,
/// `__scrape_interval__`, `__scrape_timeout__` and `__param_<name>`, then the job's
/// `relabel_configs` (sharding rules last). A target the rules drop is counted, not scraped.
/// What is left gives the URL (`__scheme__`, `__address__` with the scheme's default port,
/// `__metrics_path__`, `__param_*`), the interval and timeout, and the target labels (those
/// not starting with `__`; `instance` defaults to the address); the standard labels fill in
/// what is still unset.
///
/// A `user:password@` in an address becomes the target's basic authentication and is never
/// part of a label or a printed URL.
pub fn targets_for_group(
    job: &ScrapeJob,
    client: &reqwest::Client,
    group: &TargetGroup,
    standard_labels: &BTreeMap<String, String>,
    chunk_samples: usize,
) -> GroupTargets {
    let mut out = GroupTargets::default();
    if let Err(e) = check_group(group, &job.scheme, &job.metrics_path) {
        out.errors.push(format!("job {:?}: {e}", job.job_name));
        return out;
    }
    for address in &group.targets {
        match target(job, client, group, address, standard_labels, chunk_samples) {
            Ok(Some(t)) => out.active.push(t),
            Ok(None) => out.dropped += 1,
            Err(e) => out.errors.push(format!("job {:?}: {e}", job.job_name)),
        }
    }
    out
}

/// What one target group gave.
#[derive(Debug, Default)]
pub struct GroupTargets {
    /// Targets to scrape.
    pub active: Vec<TargetSpec>,
    /// Targets the relabelling dropped (another shard's, or filtered out).
    pub dropped: usize,
    /// Targets that cannot be scraped (no address, bad interval, …).
    pub errors: Vec<String>,
}

fn target(
    job: &ScrapeJob,
    client: &reqwest::Client,
    group: &TargetGroup,
    address: &str,
    standard_labels: &BTreeMap<String, String>,
    chunk_samples: usize,
) -> Result<Option<TargetSpec>, String> {
    let mut lset: BTreeMap<String, String> = group.labels.clone();
    lset.insert("__address__".into(), address.to_owned());
    let mut preset = |k: &str, v: String| {
        lset.entry(k.to_owned()).or_insert(v);
    };
    preset("job", job.job_name.clone());
    preset("__scheme__", job.scheme.clone());
    preset("__metrics_path__", job.metrics_path.clone());
    preset(
        "__scrape_interval__",
        HumanDuration(job.interval).to_string(),
    );
    preset("__scrape_timeout__", HumanDuration(job.timeout).to_string());
    for (name, values) in &job.params {
        if let Some(first) = values.first() {
            preset(&format!("__param_{name}"), first.clone());
        }
    }
    let Some(mut lset) = relabel::apply(Labels::from(lset), &job.relabel_configs) else {
        return Ok(None);
    };
    let raw_address = lset.get("__address__").unwrap_or("").to_owned();
    if raw_address.is_empty() {
        return Err("no address".into());
    }
    // user:password@host:port → basic authentication of this target.
    let mut http = job.http.clone();
    let mut address = raw_address.clone();
    if let Some((userinfo, host)) = raw_address.rsplit_once('@') {
        let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        http.basic_auth = Some((user.to_owned(), pass.to_owned()));
        http.bearer_token = None;
        http.authorization = None;
        address = host.to_owned();
    }
    let scheme = lset.get("__scheme__").unwrap_or("http").to_owned();
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(format!("invalid scheme {scheme:?}"));
    }
    if address.contains('/') || address.is_empty() {
        return Err(format!("{:?} is not a valid hostname", address));
    }
    let has_port = {
        let after_bracket = address.rfind(']').map_or(0, |i| i + 1);
        address[after_bracket..].contains(':')
    };
    if !has_port {
        address.push_str(if scheme == "https" { ":443" } else { ":80" });
    }
    lset.set("__address__", address.clone());
    let interval = lset
        .get("__scrape_interval__")
        .map(parse_duration)
        .transpose()
        .map_err(|e| format!("__scrape_interval__: {e}"))?
        .unwrap_or(job.interval);
    let timeout = lset
        .get("__scrape_timeout__")
        .map(parse_duration)
        .transpose()
        .map_err(|e| format!("__scrape_timeout__: {e}"))?
        .unwrap_or(job.timeout);
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout {} greater than scrape interval {}",
            HumanDuration(timeout),
            HumanDuration(interval)
        ));
    }
    let metrics_path = lset
        .get("__metrics_path__")
        .unwrap_or("/metrics")
        .to_owned();
    let mut params = job.params.clone();
    for (name, value) in lset.iter() {
        if let Some(p) = name.strip_prefix("__param_") {
            match params.get_mut(p) {
                Some(values) if !values.is_empty() => values[0] = value.to_owned(),
                _ => {
                    params.insert(p.to_owned(), vec![value.to_owned()]);
                }
            }
        }
    }
    let mut url = reqwest::Url::parse(&format!("{scheme}://{address}"))
        .map_err(|e| format!("invalid address {address:?}: {e}"))?;
    url.set_path(&metrics_path);
    if !params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (name, values) in &params {
            for v in values {
                q.append_pair(name, v);
            }
        }
    }
    lset.retain(|name, _| !name.starts_with("__"));
    if lset.get("instance").is_none() {
        lset.set("instance", address.clone());
    }
    for (k, v) in standard_labels {
        if lset.get(k).is_none() {
            lset.set(k.clone(), v.clone());
        }
    }
    let url = url.to_string();
    let labels: Vec<(String, String)> = lset.into_vec();
    let find = |n: &str| {
        labels
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok(Some(TargetSpec {
        job: find("job"),
        instance: find("instance"),
        shown_url: livetranslate_push::redact_url(&url),
        url,
        shape: TargetShape {
            labels: labels.into(),
            honor_labels: job.honor_labels,
            honor_timestamps: job.honor_timestamps,
            limits: job.limits,
            metric_relabel: job.metric_relabel_configs.clone(),
            chunk_samples,
        },
        interval,
        timeout,
        client: client.clone(),
        http,
    }))
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
    chunk_samples: usize,
}

impl std::fmt::Debug for TargetManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetManager")
            .field("targets", &self.running.len())
            .finish_non_exhaustive()
    }
}

impl TargetManager {
    /// A manager for `jobs`, adding `standard_labels` to every target and encoding samples
    /// in chunks of `chunk_samples`.
    pub fn new(
        jobs: &[ScrapeJob],
        standard_labels: &BTreeMap<String, String>,
        ctx: ScrapeContext,
        user_agent: &str,
        chunk_samples: usize,
    ) -> Result<Self, livetranslate_push::ClientError> {
        let mut runtimes = Vec::new();
        for job in jobs {
            runtimes.push(JobRuntime {
                client: job.build_client(user_agent)?,
                file_sd: job.file_sd.iter().cloned().map(FileSd::new).collect(),
                job: job.clone(),
            });
        }
        Ok(TargetManager {
            jobs: runtimes,
            standard_labels: standard_labels.clone(),
            ctx,
            running: HashMap::new(),
            chunk_samples,
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
            let (mut active, mut dropped) = (0, 0);
            for g in groups {
                let got = targets_for_group(
                    &rt.job,
                    &rt.client,
                    g,
                    &self.standard_labels,
                    self.chunk_samples,
                );
                for e in got.errors {
                    tracing::warn!(error = %e, "ignoring a target that cannot be scraped");
                }
                dropped += got.dropped;
                for s in got.active {
                    if let std::collections::btree_map::Entry::Vacant(v) = out.entry(s.key()) {
                        v.insert(s);
                        active += 1;
                    }
                }
            }
            self.ctx.metrics.targets(&rt.job.job_name, active, dropped);
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
            tracing::info!(job = %spec.job, instance = %spec.instance, url = %spec.shown_url, "scraping target");
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

    fn job(yaml: &str) -> ScrapeJob {
        let configs: Vec<crate::metrics::job::ScrapeConfigFile> =
            match serde_yaml_ng::from_str(yaml) {
                Ok(c) => c,
                Err(e) => panic!("{e}"),
            };
        match crate::metrics::job::build_jobs(Default::default(), Default::default(), configs) {
            Ok(mut j) => j.remove(0),
            Err(e) => panic!("{e}"),
        }
    }

    fn targets(job: &ScrapeJob, group: &TargetGroup) -> GroupTargets {
        let std_labels = BTreeMap::from([
            ("service".to_owned(), "x".to_owned()),
            ("cluster".to_owned(), "c".to_owned()),
        ]);
        targets_for_group(job, &reqwest::Client::new(), group, &std_labels, 100)
    }

    fn group(targets: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn target_labels_url_and_defaults() {
        let j = job("[{job_name: j, metrics_path: /m, params: {module: [a, b]}}]");
        let g = group(
            &["127.0.0.1:5", "localhost"],
            &[
                ("service", "audio"),
                ("__metrics_path__", "/api/metrics"),
                ("__param_module", "z"),
            ],
        );
        let got = targets(&j, &g);
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        let t = &got.active[0];
        assert_eq!(t.url, "http://127.0.0.1:5/api/metrics?module=z&module=b");
        let labels = t.labels();
        assert_eq!(labels.get("service").map(String::as_str), Some("audio"));
        assert_eq!(labels.get("cluster").map(String::as_str), Some("c"));
        assert_eq!(
            labels.get("instance").map(String::as_str),
            Some("127.0.0.1:5")
        );
        assert_eq!(labels.get("job").map(String::as_str), Some("j"));
        assert!(labels.keys().all(|k| !k.starts_with("__")));
        assert_eq!(
            got.active[1].instance, "localhost:80",
            "the scheme's port is added"
        );
    }

    #[test]
    fn relabel_configs_shape_targets_as_prometheus_does() {
        let j = job(r#"[{job_name: j, relabel_configs: [
                {source_labels: [__meta_keep], regex: "yes", action: keep},
                {source_labels: [__address__], regex: '(.+):(\d+)', target_label: __address__, replacement: "${1}:9100"},
                {source_labels: [__meta_team], target_label: team},
                {target_label: __scheme__, replacement: https},
                {target_label: __scrape_interval__, replacement: 30s},
                {target_label: instance, replacement: renamed}]}]"#);
        let kept = targets(
            &j,
            &group(
                &["10.0.0.1:80"],
                &[("__meta_keep", "yes"), ("__meta_team", "speech")],
            ),
        );
        let t = &kept.active[0];
        assert_eq!(t.url, "https://10.0.0.1:9100/metrics");
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!((t.instance.as_str(), t.job.as_str()), ("renamed", "j"));
        assert_eq!(t.labels().get("team").map(String::as_str), Some("speech"));
        let dropped = targets(&j, &group(&["10.0.0.2:80"], &[("__meta_keep", "no")]));
        assert_eq!((dropped.active.len(), dropped.dropped), (0, 1));
        let bad = job("[{job_name: j, relabel_configs: [{target_label: __scrape_timeout__, replacement: 1h}]}]");
        let e = targets(&bad, &group(&["10.0.0.3:80"], &[]));
        assert!(
            e.errors[0].contains("greater than scrape interval"),
            "{:?}",
            e.errors
        );
    }

    #[test]
    fn userinfo_in_an_address_becomes_basic_auth_and_is_never_shown() {
        let j = job("[{job_name: j}]");
        let got = targets(&j, &group(&["u:s3cret@127.0.0.1:9"], &[]));
        let t = &got.active[0];
        assert_eq!(t.instance, "127.0.0.1:9");
        assert_eq!(
            t.http.basic_auth,
            Some(("u".to_owned(), "s3cret".to_owned()))
        );
        assert!(!t.url.contains("s3cret") && !format!("{:?}", t.shape.labels).contains("s3cret"));
        let j = job("[{job_name: j, params: {token: [abc]}}]");
        let got = targets(&j, &group(&["127.0.0.1:9"], &[]));
        assert_eq!(
            got.active[0].shown_url,
            "http://127.0.0.1:9/metrics?token=xxxxx"
        );
    }

    #[test]
    fn shards_split_targets_with_no_overlap_and_no_gap() {
        let addresses: Vec<String> = (0..40)
            .map(|i| format!("10.1.{}.{}:9100", i / 7, i))
            .collect();
        let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let mut seen = std::collections::BTreeMap::new();
        for index in 0..3 {
            let j = job(&format!(
                "[{{job_name: j, shard: {{index: {index}, count: 3}}}}]"
            ));
            let got = targets(&j, &group(&refs, &[]));
            assert_eq!(got.active.len() + got.dropped, 40);
            for t in got.active {
                *seen.entry(t.instance.clone()).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len(), 40);
        assert!(seen.values().all(|&n| n == 1));
    }
}
