//! Deployment configurations, checked with the real tools:
//!
//! - `deploy/kubernetes/`: every YAML document is a well-formed object; the agent DaemonSet
//!   reads pod logs read-only, keeps positions on the node, probes `/ready`, and is given
//!   time for its final flush; the agent configuration inside the ConfigMap passes the built
//!   agent's `--check-config`; the Prometheus configuration passes `promtool check config`
//!   and its relabelling turns annotated pods into targets on a real Prometheus.
//! - `monitoring/prometheus/prometheus.docker-sd.yml`: passes `promtool check config`, and on
//!   a real Prometheus discovers the compose services from their labels (through a
//!   stand-in for the Docker Engine API) with the same jobs and labels as the static
//!   `prometheus.yml`, plus a fourth service that nobody added to any Prometheus file.
//!
//! Debian's Prometheus is built without Kubernetes discovery (its `NEWS.Debian`: "Kubernetes
//! support has been completely removed"). Where it would be needed, the `kubernetes_sd_configs`
//! block is checked field by field here and replaced by `file_sd_configs` carrying exactly the
//! `__meta_kubernetes_*` labels Kubernetes discovery produces, so promtool and Prometheus
//! check everything else — relabelling, rule files — as written. A promtool that has
//! Kubernetes discovery also checks the unmodified file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use livetranslate_test_support::binaries::agent_binary;
use livetranslate_test_support::{eventually, http_get, require, Prometheus, TempDir};
use serde::Deserialize as _;
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NAMESPACE: &str = "livetranslate-monitoring";

// ---------------------------------------------------------------------------------------------
// YAML helpers

/// One YAML document of a file.
struct Doc {
    file: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn what(&self) -> String {
        format!("{} {}/{}", self.file, self.kind(), self.name())
    }
}

/// Every document of every `*.yaml` / `*.yml` file under `dir` (recursively).
fn yaml_documents(dir: &Path) -> Vec<Doc> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let rel = path
            .strip_prefix(dir)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for (i, de) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = serde_yaml_ng::Value::deserialize(de)
                .map(to_json)
                .unwrap_or_else(|e| panic!("{rel}: document {}: {e}", i + 1));
            if !value.is_null() {
                docs.push(Doc {
                    file: rel.clone(),
                    value,
                });
            }
        }
    }
    docs
}

/// A YAML value as JSON, `<<` merge keys applied (as compose and Kubernetes read them).
fn to_json(mut v: serde_yaml_ng::Value) -> Value {
    v.apply_merge().expect("YAML merge keys");
    serde_json::to_value(v).expect("YAML with string keys")
}

/// A repository YAML file as JSON.
fn read_yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(rel)).expect(rel);
    to_json(serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

fn kubernetes_docs() -> Vec<Doc> {
    let docs = yaml_documents(&Path::new(ROOT).join("deploy/kubernetes"));
    assert!(docs.len() >= 8, "deploy/kubernetes looks empty");
    docs
}

fn find<'a>(docs: &'a [Doc], kind: &str, name: &str) -> Option<&'a Doc> {
    docs.iter().find(|d| d.kind() == kind && d.name() == name)
}

fn the<'a>(docs: &'a [Doc], kind: &str, name: &str) -> &'a Doc {
    find(docs, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {v}"))
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// RFC 1123 subdomain (object names).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `10s`, `500ms`, `1m`, `2h` → duration.
fn duration(s: &str) -> Duration {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split]
        .parse()
        .unwrap_or_else(|_| panic!("duration {s:?}"));
    match &s[split..] {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        u => panic!("duration unit {u:?} in {s:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Workload helpers

/// The pod template spec of a DaemonSet / Deployment.
fn pod_spec(d: &Doc) -> &Value {
    &d.value["spec"]["template"]["spec"]
}

/// The container port a probe's or service's `port` (a name or a number) refers to.
fn resolve_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = list(&container["ports"]);
    match port {
        Value::Number(n) => n.as_u64().filter(|n| {
            ports
                .iter()
                .any(|p| p["containerPort"].as_u64() == Some(*n))
        }),
        Value::String(name) => ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64()),
        _ => None,
    }
}

/// The volume mounted at `mount_path` by `container`, and whether it is read-only.
fn volume_at<'a>(
    spec: &'a Value,
    container: &Value,
    mount_path: &str,
) -> Option<(&'a Value, bool)> {
    let mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(mount_path))?;
    let name = mount["name"].as_str()?;
    let volume = list(&spec["volumes"])
        .iter()
        .find(|v| v["name"].as_str() == Some(name))?;
    Some((volume, mount["readOnly"].as_bool().unwrap_or(false)))
}

/// The agent's DaemonSet, its container and its configuration text.
fn agent(docs: &[Doc]) -> (&Doc, &Value, String) {
    let ds = the(docs, "DaemonSet", "livetranslate-agent");
    let containers = list(&pod_spec(ds)["containers"]);
    assert_eq!(containers.len(), 1, "one agent container");
    let container = &containers[0];
    // --config <path>: a file of a mounted ConfigMap.
    let args: Vec<&str> = list(&container["args"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--config")
        .expect("agent runs with --config");
    let config_path = Path::new(args[at + 1]);
    let dir = config_path
        .parent()
        .and_then(Path::to_str)
        .expect("config dir");
    let key = config_path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("config file");
    let (volume, read_only) = volume_at(pod_spec(ds), container, dir).expect("config mount");
    assert!(read_only, "configuration mounted read-only");
    let cm_name = str_of(&volume["configMap"]["name"], "config volume's ConfigMap");
    let cm = the(docs, "ConfigMap", cm_name);
    let text = str_of(&cm.value["data"][key], "agent configuration").to_owned();
    (ds, container, text)
}

/// The agent configuration as YAML (after `${VAR:-default}` defaults; only for reading
/// fields — the agent itself checks the real expansion).
fn agent_config(text: &str) -> Value {
    let mut expanded = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        expanded.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("closed ${") + at;
        let expr = &rest[at + 2..end];
        expanded.push_str(expr.split_once(":-").map_or("x", |(_, d)| d));
        rest = &rest[end + 1..];
    }
    expanded.push_str(rest);
    serde_yaml_ng::from_str(&expanded).expect("agent configuration is YAML")
}

/// `promtool check config <file>`: (success, output).
fn promtool_check_config(file: &Path) -> (bool, String) {
    let out = Command::new(require("promtool"))
        .args(["check", "config"])
        .arg(file)
        .output()
        .expect("run promtool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Whether this promtool knows `kubernetes_sd_configs` (Debian's does not).
fn promtool_has_kubernetes_sd(dir: &Path) -> bool {
    let probe = dir.join("k8s-probe.yml");
    std::fs::write(
        &probe,
        "scrape_configs:\n  - job_name: x\n    kubernetes_sd_configs:\n      - role: pod\n",
    )
    .expect("probe");
    let (ok, out) = promtool_check_config(&probe);
    assert!(
        ok || out.contains("kubernetes_sd_configs not found"),
        "unexpected promtool answer: {out}"
    );
    ok
}

/// Checks every `kubernetes_sd_configs` entry (field names and values Prometheus accepts)
/// and replaces the block by `file_sd_configs` on `targets_file`.
fn swap_kubernetes_sd(prometheus: &Value, targets_file: &Path) -> Value {
    const ROLES: [&str; 6] = [
        "pod",
        "node",
        "service",
        "endpoints",
        "endpointslice",
        "ingress",
    ];
    const FIELDS: [&str; 15] = [
        "api_server",
        "role",
        "kubeconfig_file",
        "namespaces",
        "selectors",
        "attach_metadata",
        "basic_auth",
        "authorization",
        "oauth2",
        "bearer_token",
        "bearer_token_file",
        "tls_config",
        "proxy_url",
        "follow_redirects",
        "enable_http2",
    ];
    let mut p = prometheus.clone();
    let mut swapped = 0;
    for job in p["scrape_configs"].as_array_mut().expect("scrape_configs") {
        let Some(obj) = job.as_object_mut() else {
            continue;
        };
        let Some(sd) = obj.remove("kubernetes_sd_configs") else {
            continue;
        };
        for entry in list(&sd) {
            let fields = entry
                .as_object()
                .expect("kubernetes_sd_configs entry is a map");
            for k in fields.keys() {
                assert!(
                    FIELDS.contains(&k.as_str()),
                    "kubernetes_sd_configs: unknown field {k}"
                );
            }
            let role = str_of(&entry["role"], "kubernetes_sd_configs role");
            assert!(ROLES.contains(&role), "kubernetes_sd_configs: role {role}");
            if let Some(ns) = entry.get("namespaces") {
                for k in ns.as_object().expect("namespaces map").keys() {
                    assert!(
                        ["names", "own_namespace"].contains(&k.as_str()),
                        "namespaces.{k}"
                    );
                }
            }
        }
        obj.insert(
            "file_sd_configs".into(),
            json!([{"files": [targets_file], "refresh_interval": "1s"}]),
        );
        swapped += 1;
    }
    assert!(swapped > 0, "no kubernetes_sd_configs to check");
    p
}

/// The active targets of a scrape pool, from a running Prometheus.
fn active_targets(port: u16, pool: &str) -> Vec<Value> {
    let Some((200, body)) = http_get(&format!(
        "http://127.0.0.1:{port}/api/v1/targets?state=active"
    )) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    list(&v["data"]["activeTargets"])
        .iter()
        .filter(|t| t["scrapePool"].as_str() == Some(pool))
        .cloned()
        .collect()
}

/// A target's labels as a sorted map (plus its scrape URL under `scrape_url`).
fn target_view(t: &Value) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = t["labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    m.insert(
        "scrape_url".into(),
        t["scrapeUrl"].as_str().unwrap_or("").to_owned(),
    );
    m
}

fn view(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Copies the project's Prometheus rule files into `dir`; returns how many.
fn copy_rules(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).expect("rules dir");
    let mut n = 0;
    for entry in
        std::fs::read_dir(Path::new(ROOT).join("monitoring/prometheus/rules")).expect("rules")
    {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yml") {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy rule");
            n += 1;
        }
    }
    assert!(n > 0, "no rule files");
    n
}

// ---------------------------------------------------------------------------------------------
// deploy/kubernetes

#[test]
fn every_manifest_is_a_well_formed_object() {
    let docs = kubernetes_docs();
    let api_versions: BTreeMap<&str, &str> = [
        ("Namespace", "v1"),
        ("ServiceAccount", "v1"),
        ("ConfigMap", "v1"),
        ("Service", "v1"),
        ("PersistentVolumeClaim", "v1"),
        ("DaemonSet", "apps/v1"),
        ("Deployment", "apps/v1"),
        ("ClusterRole", "rbac.authorization.k8s.io/v1"),
        ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
        ("Kustomization", "kustomize.config.k8s.io/v1beta1"),
    ]
    .into_iter()
    .collect();
    let cluster_scoped = ["Namespace", "ClusterRole", "ClusterRoleBinding"];
    let mut seen = BTreeSet::new();
    let mut files = BTreeSet::new();
    for d in &docs {
        let kind = str_of(&d.value["kind"], &format!("{}: kind", d.file));
        let api = str_of(&d.value["apiVersion"], &format!("{}: apiVersion", d.file));
        let want = api_versions
            .get(kind)
            .unwrap_or_else(|| panic!("{}: kind {kind} is not known to this test", d.file));
        assert_eq!(api, *want, "{}", d.what());
        if kind == "Kustomization" {
            continue;
        }
        files.insert(d.file.clone());
        assert!(is_dns_subdomain(d.name()), "{}: metadata.name", d.what());
        let ns = d.value["metadata"]["namespace"].as_str();
        if cluster_scoped.contains(&kind) {
            assert_eq!(ns, None, "{}: cluster-scoped", d.what());
        } else {
            assert_eq!(ns, Some(NAMESPACE), "{}: namespace", d.what());
        }
        assert!(
            seen.insert((kind.to_owned(), ns.map(str::to_owned), d.name().to_owned())),
            "{}: defined twice",
            d.what()
        );
    }
    assert!(
        find(&docs, "Namespace", NAMESPACE).is_some(),
        "the namespace is created"
    );

    // kubectl apply -k: the kustomization lists every manifest file, and only those.
    let k = docs
        .iter()
        .find(|d| d.kind() == "Kustomization")
        .expect("kustomization.yaml");
    let listed: BTreeSet<String> = list(&k.value["resources"])
        .iter()
        .map(|r| str_of(r, "resource").to_owned())
        .collect();
    assert_eq!(listed, files, "kustomization resources");

    // References resolve.
    for d in &docs {
        let ns = d.value["metadata"]["namespace"].as_str();
        match d.kind() {
            "DaemonSet" | "Deployment" => {
                let spec = pod_spec(d);
                let sa = str_of(&spec["serviceAccountName"], &d.what());
                assert!(
                    find(&docs, "ServiceAccount", sa).is_some(),
                    "{}: service account {sa}",
                    d.what()
                );
                for v in list(&spec["volumes"]) {
                    if let Some(cm) = v["configMap"]["name"].as_str() {
                        assert!(
                            find(&docs, "ConfigMap", cm).is_some()
                                || v["configMap"]["optional"].as_bool() == Some(true),
                            "{}: ConfigMap {cm}",
                            d.what()
                        );
                    }
                    if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                        assert!(
                            find(&docs, "PersistentVolumeClaim", claim).is_some(),
                            "{}: claim {claim}",
                            d.what()
                        );
                    }
                }
            }
            "ClusterRoleBinding" => {
                let role = str_of(&d.value["roleRef"]["name"], "roleRef");
                assert!(
                    find(&docs, "ClusterRole", role).is_some(),
                    "{}: role {role}",
                    d.what()
                );
                for s in list(&d.value["subjects"]) {
                    let name = str_of(&s["name"], "subject");
                    let sa = the(&docs, "ServiceAccount", name);
                    assert_eq!(
                        s["namespace"].as_str(),
                        sa.value["metadata"]["namespace"].as_str()
                    );
                }
            }
            "Service" => {
                // The selector picks a workload of the namespace, on a port it declares.
                let selector = d.value["spec"]["selector"].as_object().expect("selector");
                let workload = docs
                    .iter()
                    .filter(|w| matches!(w.kind(), "DaemonSet" | "Deployment"))
                    .filter(|w| w.value["metadata"]["namespace"].as_str() == ns)
                    .find(|w| {
                        let labels = &w.value["spec"]["template"]["metadata"]["labels"];
                        selector.iter().all(|(k, v)| &labels[k] == v)
                    })
                    .unwrap_or_else(|| panic!("{}: selects no workload", d.what()));
                for p in list(&d.value["spec"]["ports"]) {
                    let target = p.get("targetPort").unwrap_or(&p["port"]);
                    assert!(
                        list(&pod_spec(workload)["containers"])
                            .iter()
                            .any(|c| resolve_port(c, target).is_some()),
                        "{}: targetPort {target}",
                        d.what()
                    );
                }
            }
            _ => {}
        }
    }
}

#[test]
fn workloads_have_selectors_probes_resources_and_safe_defaults() {
    let docs = kubernetes_docs();
    let workloads: Vec<&Doc> = docs
        .iter()
        .filter(|d| matches!(d.kind(), "DaemonSet" | "Deployment"))
        .collect();
    assert_eq!(
        workloads.len(),
        2,
        "the agent DaemonSet and the Prometheus Deployment"
    );
    for w in workloads {
        let what = w.what();
        let selector = w.value["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: selector.matchLabels"));
        assert!(!selector.is_empty(), "{what}: empty selector");
        let labels = &w.value["spec"]["template"]["metadata"]["labels"];
        for (k, v) in selector {
            assert_eq!(&labels[k], v, "{what}: template labels match selector {k}");
        }
        let spec = pod_spec(w);
        assert!(
            spec["terminationGracePeriodSeconds"].as_u64().is_some(),
            "{what}: grace period"
        );
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{what}"
        );
        let volumes: BTreeSet<&str> = list(&spec["volumes"])
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        let mut mounted = BTreeSet::new();
        for c in list(&spec["containers"]) {
            let cname = format!("{what} container {}", c["name"]);
            assert!(
                c["image"].as_str().is_some_and(|i| i.contains(':')),
                "{cname}: image with a tag"
            );
            for kind in ["requests", "limits"] {
                for r in ["cpu", "memory"] {
                    assert!(
                        !c["resources"][kind][r].is_null(),
                        "{cname}: resources.{kind}.{r}"
                    );
                }
            }
            for probe in ["readinessProbe", "livenessProbe"] {
                let get = &c[probe]["httpGet"];
                assert!(
                    get["path"].as_str().is_some_and(|p| p.starts_with('/')),
                    "{cname}: {probe} path"
                );
                assert!(
                    resolve_port(c, &get["port"]).is_some(),
                    "{cname}: {probe} port {}",
                    get["port"]
                );
            }
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{cname}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{cname}");
            assert!(
                list(&sc["capabilities"]["drop"]).iter().any(|d| d == "ALL"),
                "{cname}: drops ALL"
            );
            assert_ne!(sc["privileged"], true, "{cname}");
            for m in list(&c["volumeMounts"]) {
                let name = str_of(&m["name"], "volumeMount name");
                assert!(
                    volumes.contains(name),
                    "{cname}: mounts undeclared volume {name}"
                );
                mounted.insert(name);
            }
        }
        assert_eq!(volumes, mounted, "{what}: every volume is mounted");
        // Scraped through the pod annotations, on a declared port.
        let ann = &w.value["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(ann["prometheus.io/scrape"], "true", "{what}");
        let port: u64 = str_of(&ann["prometheus.io/port"], "port annotation")
            .parse()
            .expect("port");
        assert!(
            list(&spec["containers"])
                .iter()
                .any(|c| resolve_port(c, &json!(port)).is_some()),
            "{what}: annotated port {port} is declared"
        );
    }
}

#[test]
fn agent_daemonset_reads_pod_logs_keeps_positions_and_flushes_before_kill() {
    let docs = kubernetes_docs();
    let (ds, container, text) = agent(&docs);
    let config = agent_config(&text);
    let spec = pod_spec(ds);

    // Pod logs from the node, read-only, where the input's glob looks.
    let (pods, read_only) =
        volume_at(spec, container, "/var/log/pods").expect("/var/log/pods mounted");
    assert_eq!(pods["hostPath"]["path"], "/var/log/pods");
    assert!(read_only, "pod logs mounted read-only");
    let inputs = list(&config["logs"]["inputs"]);
    let cri = inputs
        .iter()
        .find(|i| i["format"] == "cri")
        .expect("a cri input");
    assert_eq!(list(&cri["paths"]), [json!("/var/log/pods/*/*/*.log")]);
    let excluded: Vec<&str> = list(&cri["exclude"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for pattern in ["*.gz", "*.tmp"] {
        assert!(
            excluded.contains(&pattern),
            "kubelet's {pattern} files are excluded"
        );
    }

    // Positions on the node, writable, in the directory of positions_file.
    let positions = str_of(&config["logs"]["positions_file"], "positions_file");
    let dir = Path::new(positions)
        .parent()
        .and_then(Path::to_str)
        .expect("dir");
    let (volume, read_only) = volume_at(spec, container, dir).expect("positions directory mounted");
    assert!(!read_only, "positions directory writable");
    assert_eq!(
        volume["hostPath"]["path"], dir,
        "positions survive the pod (hostPath)"
    );
    assert_eq!(volume["hostPath"]["type"], "DirectoryOrCreate");

    // Readiness on /ready of the port the agent listens on; scraped on it.
    let listen_port: u64 = str_of(&config["listen"], "listen")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("listen port");
    assert_eq!(listen_port, 9080);
    let ready = &container["readinessProbe"]["httpGet"];
    assert_eq!(ready["path"], "/ready");
    assert_eq!(resolve_port(container, &ready["port"]), Some(listen_port));
    let ann = &ds.value["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/port"], listen_port.to_string());
    assert_eq!(ann["prometheus.io/path"], "/metrics");

    // SIGTERM → final flush (bounded by shutdown_timeout, 10 s by default) → exit, all
    // before kubelet's SIGKILL.
    let shutdown = config["shutdown_timeout"]
        .as_str()
        .map_or(Duration::from_secs(10), duration);
    let grace = Duration::from_secs(
        spec["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("grace"),
    );
    assert!(
        grace >= shutdown + Duration::from_secs(5),
        "terminationGracePeriodSeconds {grace:?} leaves no margin over shutdown_timeout {shutdown:?}"
    );

    // Runs on every node; needs no API access.
    assert_eq!(list(&spec["tolerations"]), [json!({"operator": "Exists"})]);
    assert_eq!(spec["automountServiceAccountToken"], false);
}

#[test]
fn agent_configuration_in_the_configmap_passes_check_config() {
    let docs = kubernetes_docs();
    let (_, container, text) = agent(&docs);
    let dir = TempDir::new("k8s-agent-config");
    let file = dir.path().join("agent.yml");
    std::fs::write(&file, &text).expect("write config");
    // The environment the DaemonSet gives the container (downward-API values stand in).
    let mut env: Vec<(String, String)> = Vec::new();
    for e in list(&container["env"]) {
        let name = str_of(&e["name"], "env name").to_owned();
        let value = match (
            e["value"].as_str(),
            e["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Some(v), _) => v.to_owned(),
            (None, Some("spec.nodeName")) => "node-1".to_owned(),
            (None, Some(f)) => panic!("env {name}: fieldRef {f} has no stand-in here"),
            (None, None) => panic!("env {name}: no value"),
        };
        env.push((name, value));
    }
    let agent = agent_binary();
    let run = |env: &[(String, String)]| {
        Command::new(&agent)
            .arg("--check-config")
            .arg("--config")
            .arg(&file)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run agent")
    };
    let out = run(&env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--check-config failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cri /var/log/pods/*/*/*.log"), "{stdout}");
    assert!(
        stdout.contains("positions in /var/lib/livetranslate-agent/positions.yml"),
        "{stdout}"
    );
    assert!(stdout.contains("node=node-1"), "{stdout}");
    // The check is real: without the Loki URL the DaemonSet sets, the configuration is refused.
    let without: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "LOKI_URL")
        .cloned()
        .collect();
    let out = run(&without);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Prometheus configuration of the ConfigMap, laid out as the Deployment mounts it:
/// `<dir>/config/prometheus.yml` and the project's rules in `<dir>/rules/`.
fn kubernetes_prometheus_config(docs: &[Doc]) -> Value {
    let dep = the(docs, "Deployment", "prometheus");
    let container = &list(&pod_spec(dep)["containers"])[0];
    let file = list(&container["args"])
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--config.file="))
        .expect("--config.file");
    let (dir, key) = (
        Path::new(file)
            .parent()
            .and_then(Path::to_str)
            .expect("dir"),
        Path::new(file)
            .file_name()
            .and_then(|f| f.to_str())
            .expect("key"),
    );
    let (volume, _) = volume_at(pod_spec(dep), container, dir).expect("config mounted");
    let cm = the(
        docs,
        "ConfigMap",
        str_of(&volume["configMap"]["name"], "ConfigMap"),
    );
    let text = str_of(&cm.value["data"][key], "prometheus.yml");
    // The rules directory the configuration points at is where the Deployment mounts them.
    let rules_mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| m["name"] == "rules")
        .and_then(|m| m["mountPath"].as_str())
        .expect("rules mount");
    let config: Value = serde_yaml_ng::from_str(text).expect("prometheus.yml is YAML");
    for r in list(&config["rule_files"]) {
        let resolved = Path::new(dir).join(str_of(r, "rule file"));
        let normalized: PathBuf = resolved.components().fold(PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                c => p.push(c),
            }
            p
        });
        assert!(
            normalized.starts_with(rules_mount),
            "{} is not under {rules_mount}",
            normalized.display()
        );
    }
    config
}

#[test]
fn kubernetes_prometheus_configuration_passes_promtool() {
    let docs = kubernetes_docs();
    let config = kubernetes_prometheus_config(&docs);
    let dir = TempDir::new("k8s-promtool");
    let rules = copy_rules(&dir.path().join("rules"));
    std::fs::create_dir_all(dir.path().join("config")).expect("config dir");

    // The kubernetes-pods job: opt-in by annotation, relabelled to namespace/pod/service.
    let job = list(&config["scrape_configs"])
        .iter()
        .find(|j| j["job_name"] == "kubernetes-pods")
        .expect("kubernetes-pods job");
    assert_eq!(
        list(&job["kubernetes_sd_configs"]),
        [json!({"role": "pod"})]
    );
    let relabel = list(&job["relabel_configs"]);
    assert!(relabel.iter().any(|r| r["action"] == "keep"
        && list(&r["source_labels"])
            == [json!(
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
            )]));
    for label in [
        "namespace",
        "pod",
        "service",
        "job",
        "__address__",
        "__metrics_path__",
        "__scheme__",
    ] {
        assert!(
            relabel.iter().any(|r| r["target_label"] == label),
            "relabels to {label}"
        );
    }

    let targets = dir.path().join("targets.json");
    std::fs::write(&targets, "[]").expect("targets");
    if promtool_has_kubernetes_sd(dir.path()) {
        let file = dir.path().join("config/prometheus.yml");
        std::fs::write(&file, serde_yaml_ng::to_string(&config).expect("yaml")).expect("write");
        let (ok, out) = promtool_check_config(&file);
        assert!(ok, "{out}");
    } else {
        eprintln!(
            "promtool has no Kubernetes discovery (Debian build): checking it field by field"
        );
    }
    let file = dir.path().join("config/prometheus.yml");
    let swapped = swap_kubernetes_sd(&config, &targets);
    std::fs::write(&file, serde_yaml_ng::to_string(&swapped).expect("yaml")).expect("write");
    let (ok, out) = promtool_check_config(&file);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("SUCCESS: {rules} rule files found")),
        "{out}"
    );

    // The check has teeth: a broken relabel regex is refused.
    let mut broken = swapped.clone();
    broken["scrape_configs"][0]["relabel_configs"][0]["regex"] = json!("(unclosed");
    std::fs::write(&file, serde_yaml_ng::to_string(&broken).expect("yaml")).expect("write");
    assert!(
        !promtool_check_config(&file).0,
        "promtool accepted a broken regex"
    );
}

/// A container of a pod: name, init container or not, ports as (name, number).
type PodContainer<'a> = (&'a str, bool, &'a [(&'a str, u16)]);

/// A pod as Kubernetes discovery (role: pod) sees it.
struct Pod<'a> {
    namespace: &'a str,
    name: &'a str,
    ip: &'a str,
    phase: &'a str,
    labels: &'a [(&'a str, &'a str)],
    annotations: &'a [(&'a str, &'a str)],
    containers: &'a [PodContainer<'a>],
}

/// Prometheus' label-name sanitising (`strutil.SanitizeLabelName`).
fn sanitize(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The target groups Kubernetes discovery produces for `pod`, as `file_sd` entries: one
/// target per container port (the pod IP alone for a container without ports).
fn discovered(pod: &Pod) -> Vec<Value> {
    let mut common = serde_json::Map::new();
    let mut set = |k: String, v: &str| {
        common.insert(k, json!(v));
    };
    set("__meta_kubernetes_namespace".into(), pod.namespace);
    set("__meta_kubernetes_pod_name".into(), pod.name);
    set("__meta_kubernetes_pod_ip".into(), pod.ip);
    set(
        "__meta_kubernetes_pod_ready".into(),
        if pod.phase == "Running" {
            "true"
        } else {
            "false"
        },
    );
    set("__meta_kubernetes_pod_phase".into(), pod.phase);
    set("__meta_kubernetes_pod_node_name".into(), "node-1");
    set("__meta_kubernetes_pod_host_ip".into(), "127.0.0.1");
    set(
        "__meta_kubernetes_pod_uid".into(),
        "0f8c8c4e-3b0e-4d4a-9d7e-2a5f3c1b9e77",
    );
    for (k, v) in pod.labels {
        set(format!("__meta_kubernetes_pod_label_{}", sanitize(k)), v);
        set(
            format!("__meta_kubernetes_pod_labelpresent_{}", sanitize(k)),
            "true",
        );
    }
    for (k, v) in pod.annotations {
        set(
            format!("__meta_kubernetes_pod_annotation_{}", sanitize(k)),
            v,
        );
        set(
            format!("__meta_kubernetes_pod_annotationpresent_{}", sanitize(k)),
            "true",
        );
    }
    let host = if pod.ip.contains(':') {
        format!("[{}]", pod.ip)
    } else {
        pod.ip.to_owned()
    };
    let mut out = Vec::new();
    for (container, init, ports) in pod.containers {
        let mut labels = common.clone();
        labels.insert(
            "__meta_kubernetes_pod_container_name".into(),
            json!(container),
        );
        labels.insert(
            "__meta_kubernetes_pod_container_init".into(),
            json!(init.to_string()),
        );
        if ports.is_empty() {
            out.push(json!({"targets": [pod.ip], "labels": labels}));
        }
        for (name, number) in *ports {
            let mut l = labels.clone();
            l.insert(
                "__meta_kubernetes_pod_container_port_name".into(),
                json!(name),
            );
            l.insert(
                "__meta_kubernetes_pod_container_port_number".into(),
                json!(number.to_string()),
            );
            l.insert(
                "__meta_kubernetes_pod_container_port_protocol".into(),
                json!("TCP"),
            );
            out.push(json!({"targets": [format!("{host}:{number}")], "labels": l}));
        }
    }
    out
}

#[test]
fn kubernetes_relabelling_turns_annotated_pods_into_targets() {
    let docs = kubernetes_docs();
    let config = kubernetes_prometheus_config(&docs);
    let root = TempDir::new("k8s-relabel");
    copy_rules(&root.path().join("rules"));
    let targets = root.path().join("targets.json");
    std::fs::write(&targets, "[]").expect("targets");
    let conf_dir = TempDir(root.path().join("config"));
    std::fs::create_dir_all(conf_dir.path()).expect("config dir");
    let swapped = swap_kubernetes_sd(&config, &targets);
    let prom = Prometheus::start(
        conf_dir.path(),
        &serde_yaml_ng::to_string(&swapped).expect("yaml"),
    );
    let port = prom.port;

    // Pod addresses stay on the loopback network: nothing here may leave the machine.
    let scrape = |port: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            ("prometheus.io/scrape", "true"),
            ("prometheus.io/port", port),
        ]
    };
    let prom_port = port.to_string();
    let agent_ann = [scrape("9080"), vec![("prometheus.io/path", "/metrics")]].concat();
    let audio_ann = [scrape("5001"), vec![("prometheus.io/path", "/api/metrics")]].concat();
    let translation_ann = [
        scrape("5003"),
        vec![
            ("prometheus.io/path", "/api/metrics"),
            ("prometheus.io/scheme", "https"),
        ],
    ]
    .concat();
    let prom_ann = [
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", prom_port.as_str()),
    ];
    let off = [
        ("prometheus.io/scrape", "false"),
        ("prometheus.io/port", "8080"),
    ];
    let pods = [
        Pod {
            namespace: NAMESPACE,
            name: "livetranslate-agent-x7k2p",
            ip: "127.0.0.2",
            phase: "Running",
            labels: &[
                ("app.kubernetes.io/name", "livetranslate-agent"),
                ("controller-revision-hash", "6d5f8"),
            ],
            annotations: &agent_ann,
            containers: &[("agent", false, &[("http-metrics", 9080)])],
        },
        Pod {
            // Two ports and an init container: still one target, on the annotated port.
            namespace: "livetranslate",
            name: "audio-7d9c5b6f4-x2x9k",
            ip: "127.0.0.3",
            phase: "Running",
            labels: &[("app.kubernetes.io/name", "audio"), ("app", "legacy-audio")],
            annotations: &audio_ann,
            containers: &[
                ("migrate", true, &[("http", 8080)]),
                ("audio", false, &[("http", 5001), ("grpc", 9000)]),
            ],
        },
        Pod {
            // Only the `app` label; IPv6; HTTPS.
            namespace: "livetranslate",
            name: "translation-6c9f7b5d8-qwert",
            ip: "0:0:0:0:0:0:0:1",
            phase: "Running",
            labels: &[("app", "translation")],
            annotations: &translation_ann,
            containers: &[("translation", false, &[])],
        },
        Pod {
            // Prometheus itself: scraped for real.
            namespace: NAMESPACE,
            name: "prometheus-5b6c7d8e9f-abcde",
            ip: "127.0.0.1",
            phase: "Running",
            labels: &[("app.kubernetes.io/name", "prometheus")],
            annotations: &prom_ann,
            containers: &[("prometheus", false, &[("http", 9090)])],
        },
        Pod {
            namespace: "livetranslate",
            name: "redis-0",
            ip: "127.0.0.5",
            phase: "Running",
            labels: &[("app", "redis")],
            annotations: &[],
            containers: &[("redis", false, &[("redis", 6379)])],
        },
        Pod {
            namespace: "livetranslate",
            name: "batch-opted-out",
            ip: "127.0.0.6",
            phase: "Running",
            labels: &[("app", "batch")],
            annotations: &off,
            containers: &[("batch", false, &[("http", 8080)])],
        },
        Pod {
            namespace: "livetranslate",
            name: "audio-7d9c5b6f4-pending",
            ip: "127.0.0.7",
            phase: "Pending",
            labels: &[("app.kubernetes.io/name", "audio")],
            annotations: &audio_ann,
            containers: &[("audio", false, &[("http", 5001)])],
        },
        Pod {
            namespace: "livetranslate",
            name: "audio-7d9c5b6f4-done",
            ip: "127.0.0.8",
            phase: "Succeeded",
            labels: &[("app.kubernetes.io/name", "audio")],
            annotations: &audio_ann,
            containers: &[("audio", false, &[("http", 5001)])],
        },
    ];
    let groups: Vec<Value> = pods.iter().flat_map(discovered).collect();
    std::fs::write(&targets, serde_json::to_vec(&groups).expect("json")).expect("targets");

    let prom_instance = format!("127.0.0.1:{port}");
    let prom_url = format!("http://127.0.0.1:{port}/metrics");
    let expected: BTreeSet<BTreeMap<String, String>> = [
        view(&[
            ("job", "livetranslate-agent"),
            ("service", "livetranslate-agent"),
            ("namespace", NAMESPACE),
            ("pod", "livetranslate-agent-x7k2p"),
            ("instance", "127.0.0.2:9080"),
            ("scrape_url", "http://127.0.0.2:9080/metrics"),
        ]),
        view(&[
            ("job", "audio"),
            ("service", "audio"),
            ("namespace", "livetranslate"),
            ("pod", "audio-7d9c5b6f4-x2x9k"),
            ("instance", "127.0.0.3:5001"),
            ("scrape_url", "http://127.0.0.3:5001/api/metrics"),
        ]),
        view(&[
            ("job", "translation"),
            ("service", "translation"),
            ("namespace", "livetranslate"),
            ("pod", "translation-6c9f7b5d8-qwert"),
            ("instance", "[0:0:0:0:0:0:0:1]:5003"),
            ("scrape_url", "https://[0:0:0:0:0:0:0:1]:5003/api/metrics"),
        ]),
        view(&[
            ("job", "prometheus"),
            ("service", "prometheus"),
            ("namespace", NAMESPACE),
            ("pod", "prometheus-5b6c7d8e9f-abcde"),
            ("instance", &prom_instance),
            ("scrape_url", &prom_url),
        ]),
    ]
    .into_iter()
    .collect();
    let got = eventually(Duration::from_secs(60), || {
        let got: BTreeSet<BTreeMap<String, String>> = active_targets(port, "kubernetes-pods")
            .iter()
            .map(target_view)
            .collect();
        (got == expected).then_some(got)
    });
    assert!(
        got.is_some(),
        "targets: {:#?}\nexpected: {expected:#?}",
        active_targets(port, "kubernetes-pods")
            .iter()
            .map(target_view)
            .collect::<Vec<_>>()
    );
    // The address and path are right for real: Prometheus scrapes itself through them.
    let up = eventually(Duration::from_secs(60), || {
        prom.query(
            "up{job=\"prometheus\",namespace=\"livetranslate-monitoring\"}",
            None,
        )
        .filter(|r| r.first().is_some_and(|s| s["value"][1] == "1"))
    });
    assert!(
        up.is_some(),
        "Prometheus never scraped itself through the relabelled target"
    );
}

// ---------------------------------------------------------------------------------------------
// The compose stack's discovery

#[test]
fn compose_discovery_configuration_passes_promtool() {
    let file = Path::new(ROOT).join("monitoring/prometheus/prometheus.docker-sd.yml");
    let (ok, out) = promtool_check_config(&file);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 2 rule files found"), "{out}");
    let config = read_yaml("monitoring/prometheus/prometheus.docker-sd.yml");
    let sd = list(&config["scrape_configs"])
        .iter()
        .find(|j| !j["docker_sd_configs"].is_null())
        .expect("a docker_sd_configs job");
    // Prometheus talks to the read-only proxy of the compose stack, never the socket itself.
    assert_eq!(
        sd["docker_sd_configs"][0]["host"],
        "tcp://docker-socket-proxy:2375"
    );
    let compose = read_yaml("docker-compose.monitoring.yml");
    let services = &compose["services"];
    let proxy = &services["docker-socket-proxy"];
    assert!(!proxy.is_null(), "compose runs docker-socket-proxy");
    assert!(proxy["ports"].is_null(), "the proxy is not published");
    assert_eq!(proxy["environment"]["POST"], "0");
    let mounts = |svc: &Value| -> Vec<String> {
        list(&svc["volumes"])
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        mounts(proxy)
            .iter()
            .any(|v| v == "/var/run/docker.sock:/var/run/docker.sock:ro"),
        "the proxy mounts the socket"
    );
    let prom = &services["prometheus"];
    assert!(
        mounts(prom).iter().all(|v| !v.contains("docker.sock")),
        "Prometheus never mounts the Docker socket"
    );
    assert!(
        mounts(prom)
            .iter()
            .any(|v| v == "./monitoring/prometheus/prometheus.docker-sd.yml:/etc/prometheus/prometheus.yml:ro"),
        "compose runs Prometheus with the discovery configuration"
    );
    // A broken copy is refused (the check has teeth).
    let dir = TempDir::new("compose-promtool");
    let mut broken = config.clone();
    broken["scrape_configs"][1]["docker_sd_configs"][0]
        .as_object_mut()
        .expect("map")
        .remove("host");
    let f = dir.path().join("prometheus.yml");
    std::fs::write(&f, serde_yaml_ng::to_string(&broken).expect("yaml")).expect("write");
    assert!(
        !promtool_check_config(&f).0,
        "promtool accepted docker_sd without host"
    );
}

/// `${VAR:-default}` → `default` (compose interpolation with an empty environment).
fn compose_default(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("closed ${") + at;
        let expr = &rest[at + 2..end];
        out.push_str(expr.split_once(":-").map_or("", |(_, d)| d));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A container as the Docker Engine API lists it (`GET /containers/json`).
fn api_container(
    id: u8,
    name: &str,
    labels: &BTreeMap<String, String>,
    ports: &[u16],
    networks: &[(&str, &str, &str)],
) -> Value {
    let nets: serde_json::Map<String, Value> = networks
        .iter()
        .map(|(net, net_id, ip)| {
            (
                (*net).to_owned(),
                json!({"IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": net_id,
                       "EndpointID": format!("{id:02x}").repeat(32), "Gateway": "127.0.0.1",
                       "IPAddress": ip, "IPPrefixLen": 8, "IPv6Gateway": "", "GlobalIPv6Address": "",
                       "GlobalIPv6PrefixLen": 0, "MacAddress": "02:42:ac:13:00:02", "DriverOpts": null}),
            )
        })
        .collect();
    json!({
        "Id": format!("{id:02x}").repeat(32),
        "Names": [format!("/{name}")],
        "Image": "livetranslate-examples:local",
        "ImageID": "sha256:c19ae228f0699185488b6a1c0debb9c6b79672181356ad455c9a7924a41a01bb",
        "Command": "/usr/local/bin/service",
        "Created": 1_796_000_000,
        "Ports": ports.iter().map(|p| json!({"PrivatePort": p, "Type": "tcp"})).collect::<Vec<_>>(),
        "Labels": labels,
        "State": "running",
        "Status": "Up 40 seconds",
        "HostConfig": {"NetworkMode": networks.first().map_or("bridge", |n| n.0)},
        "NetworkSettings": {"Networks": nets},
        "Mounts": []
    })
}

/// A stand-in for the Docker Engine API, as far as Prometheus' Docker discovery uses it:
/// `/_ping` (version negotiation), `/v*/containers/json` with the `filters` query applied as
/// the daemon applies label filters, and `/v*/networks`.
fn start_docker_api(containers: Vec<Value>, networks: Vec<Value>) -> u16 {
    use axum::extract::Query;
    use axum::http::{header, Method, StatusCode, Uri};
    use axum::response::IntoResponse;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let handler = move |method: Method, uri: Uri, Query(q): Query<BTreeMap<String, String>>| {
        let containers = containers.clone();
        let networks = networks.clone();
        async move {
            let path = uri.path();
            let api = [
                ("Api-Version", "1.41"),
                ("Ostype", "linux"),
                ("Server", "Docker/24.0.7 (linux)"),
            ];
            if path == "/_ping" && matches!(method, Method::GET | Method::HEAD) {
                return (StatusCode::OK, api, "OK".to_owned()).into_response();
            }
            if method != Method::GET {
                return StatusCode::FORBIDDEN.into_response();
            }
            let body = if path.ends_with("/containers/json") {
                let filters: BTreeMap<String, BTreeMap<String, bool>> = q
                    .get("filters")
                    .map(|f| serde_json::from_str(f).expect("filters JSON"))
                    .unwrap_or_default();
                let wanted: Vec<&String> = filters
                    .get("label")
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                let kept: Vec<Value> = containers
                    .into_iter()
                    .filter(|c| {
                        wanted.iter().all(|w| match w.split_once('=') {
                            Some((k, v)) => c["Labels"][k] == v,
                            None => !c["Labels"][w.as_str()].is_null(),
                        })
                    })
                    .collect();
                Value::from(kept)
            } else if path.ends_with("/networks") {
                Value::from(networks)
            } else {
                return StatusCode::NOT_FOUND.into_response();
            };
            (
                StatusCode::OK,
                api,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().fallback(handler);
            let _ = axum::serve(listener, app).await;
        });
    });
    port
}

#[test]
fn compose_services_are_discovered_with_the_static_jobs_and_labels() {
    let compose = read_yaml("docker-compose.monitoring.yml");
    let static_config = read_yaml("monitoring/prometheus/prometheus.yml");
    let sd_config = read_yaml("monitoring/prometheus/prometheus.docker-sd.yml");

    // The project's containers as `docker compose up` creates them: compose's own labels plus
    // the service's, each on the project's default network (and one also on another one).
    let project = "livetranslate";
    let default_net = (
        "livetranslate_default",
        "7189986ab399e144e52a71b7451b4e04e2158c044b4cd2f3ae26fc3a285d3798",
    );
    let other_net = (
        "livetranslate_backend",
        "bfcf66a6b64f7d518f009e34290dc3f3c66a08164257ad1afc3bd31d75f656e8",
    );
    let mut containers = Vec::new();
    let mut ips: BTreeMap<String, String> = BTreeMap::new();
    let services = compose["services"].as_object().expect("services");
    for (i, (name, svc)) in services.iter().enumerate() {
        let mut labels: BTreeMap<String, String> = svc["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), compose_default(v.as_str().unwrap_or(""))))
                    .collect()
            })
            .unwrap_or_default();
        labels.insert("com.docker.compose.project".into(), project.into());
        labels.insert("com.docker.compose.service".into(), name.clone());
        labels.insert("com.docker.compose.container-number".into(), "1".into());
        labels.insert("com.docker.compose.oneoff".into(), "False".into());
        let ip = format!("127.0.1.{}", i + 1);
        let container_name = format!("{project}-{name}-1");
        ips.insert(name.clone(), ip.clone());
        // The examples image exposes all three service ports: discovery must pick one.
        let ports: &[u16] = if name.ends_with("-service") {
            &[3000, 5001, 5003]
        } else {
            &[]
        };
        let mut nets = vec![(default_net.0, default_net.1, ip.as_str())];
        let other_ip = format!("127.0.2.{}", i + 1);
        if name == "audio-service" {
            nets.push((other_net.0, other_net.1, other_ip.as_str()));
        }
        containers.push(api_container(
            i as u8 + 1,
            &container_name,
            &labels,
            ports,
            &nets,
        ));
    }
    // A fourth application service, added to the stack by labels alone.
    let fourth: BTreeMap<String, String> = [
        ("com.docker.compose.project", project),
        ("com.docker.compose.service", "speaker-service"),
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", "5007"),
        ("prometheus.io/path", "/api/metrics"),
        ("prometheus.io/job", "speaker"),
        ("livetranslate.environment", "production"),
        ("livetranslate.cluster", "livetranslate"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    containers.push(api_container(
        100,
        "livetranslate-speaker-service-1",
        &fourth,
        &[5007],
        &[(default_net.0, default_net.1, "127.0.1.100")],
    ));
    // Not for this Prometheus: no scrape label; a plain `docker run` container; a container
    // of another compose project on that project's network.
    let plain: BTreeMap<String, String> = [
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", "80"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    containers.push(api_container(
        101,
        "boring_euclid",
        &plain,
        &[80],
        &[(
            "bridge",
            "03c5e4fd4ca3b43384b4ee088369251071dc455b4e1783af8de5031e493a4920",
            "127.0.3.1",
        )],
    ));
    let mut unlabelled = fourth.clone();
    unlabelled.remove("prometheus.io/scrape");
    containers.push(api_container(
        102,
        "livetranslate-worker-1",
        &unlabelled,
        &[5007],
        &[(default_net.0, default_net.1, "127.0.1.102")],
    ));
    let networks = vec![
        json!({"Name": "bridge", "Id": "03c5e4fd4ca3b43384b4ee088369251071dc455b4e1783af8de5031e493a4920",
               "Scope": "local", "Driver": "bridge", "Internal": false, "Ingress": false, "Labels": {}}),
        json!({"Name": default_net.0, "Id": default_net.1, "Scope": "local", "Driver": "bridge",
               "Internal": false, "Ingress": false,
               "Labels": {"com.docker.compose.network": "default", "com.docker.compose.project": project,
                          "com.docker.compose.version": "2.29.7"}}),
        json!({"Name": other_net.0, "Id": other_net.1, "Scope": "local", "Driver": "bridge",
               "Internal": false, "Ingress": false,
               "Labels": {"com.docker.compose.network": "backend", "com.docker.compose.project": project,
                          "com.docker.compose.version": "2.29.7"}}),
    ];
    let api_port = start_docker_api(containers, networks);

    // The configuration as shipped, but talking to the stand-in, and without the parts that
    // would resolve compose host names (Alertmanager) or need the rule files beside it.
    let mut config = sd_config.clone();
    let obj = config.as_object_mut().expect("map");
    obj.remove("alerting");
    obj.remove("rule_files");
    for job in config["scrape_configs"].as_array_mut().expect("jobs") {
        if let Some(sd) = job.get_mut("docker_sd_configs") {
            sd[0]["host"] = json!(format!("tcp://127.0.0.1:{api_port}"));
        }
    }
    let dir = TempDir::new("compose-sd");
    let prom = Prometheus::start(
        dir.path(),
        &serde_yaml_ng::to_string(&config).expect("yaml"),
    );
    let port = prom.port;

    // What the static configuration scrapes, job by job (prometheus stays static in both).
    let mut expected: BTreeSet<BTreeMap<String, String>> = BTreeSet::new();
    for job in list(&static_config["scrape_configs"]) {
        let name = str_of(&job["job_name"], "job_name");
        if name == "prometheus" {
            continue;
        }
        let group = &job["static_configs"][0];
        let target = str_of(&group["targets"][0], "target");
        let (host, target_port) = target.split_once(':').expect("host:port");
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        let ip = &ips[host];
        let mut v = view(&[
            ("job", name),
            ("instance", &format!("{project}-{host}-1:{target_port}")),
            ("scrape_url", &format!("http://{ip}:{target_port}{path}")),
        ]);
        for (k, val) in group["labels"].as_object().expect("labels") {
            v.insert(k.clone(), val.as_str().unwrap_or("").to_owned());
        }
        expected.insert(v);
    }
    assert_eq!(expected.len(), 8, "the static jobs besides prometheus");
    expected.insert(view(&[
        ("job", "speaker"),
        ("service", "speaker"),
        ("environment", "production"),
        ("cluster", "livetranslate"),
        ("instance", "livetranslate-speaker-service-1:5007"),
        ("scrape_url", "http://127.0.1.100:5007/api/metrics"),
    ]));
    let got = eventually(Duration::from_secs(60), || {
        let got: BTreeSet<BTreeMap<String, String>> = active_targets(port, "compose-services")
            .iter()
            .map(target_view)
            .collect();
        (got == expected).then_some(got)
    });
    assert!(
        got.is_some(),
        "discovered: {:#?}\nexpected: {expected:#?}",
        active_targets(port, "compose-services")
            .iter()
            .map(target_view)
            .collect::<Vec<_>>()
    );
    // Every job of the static configuration exists in the discovery one.
    let sd_static: BTreeSet<&str> = list(&sd_config["scrape_configs"])
        .iter()
        .filter(|j| j["docker_sd_configs"].is_null())
        .filter_map(|j| j["job_name"].as_str())
        .collect();
    let discovered_jobs: BTreeSet<String> = expected.iter().map(|t| t["job"].clone()).collect();
    for job in list(&static_config["scrape_configs"]) {
        let name = str_of(&job["job_name"], "job_name");
        assert!(
            sd_static.contains(name) || discovered_jobs.contains(name),
            "job {name} lost"
        );
    }
}
