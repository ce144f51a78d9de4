#!/usr/bin/env python3
"""Starts a real Prometheus (and node-exporter and Alertmanager) on 127.0.0.1
and checks, against that running server:

1. every PromQL expression of the rules files and of the Grafana dashboards
   (template variables replaced by concrete values) evaluates without error
   through /api/v1/query;
2. the rules files load, and after an evaluation every rule in /api/v1/rules
   has health "ok";
3. the recording rules over node-exporter produce series from the real
   exporter (the metric names are the exporter's real names);
4. the names of the Prometheus, Alertmanager and node-exporter metrics used in
   rules and dashboards exist in those programs' own /metrics output
   (written to a file that scripts/check-metric-names.py --external reads).

The temporary Prometheus config keeps the job names and labels of
monitoring/prometheus/prometheus.yml but scrapes the local processes.
"""
import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time
import urllib.parse

import yaml

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from monitoring_testlib import (ROOT, Checks, find_binary, free_port, get_json, http, start, stop,  # noqa: E402
                                tail, wait_ready)

RULES = sorted(glob.glob(os.path.join(ROOT, "monitoring", "prometheus", "rules", "*.yml")))
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "monitoring", "grafana", "dashboards", "*.json")))

# Values used for Grafana template variables and built-in interval variables.
VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "15000",
    "service": "orchestration",
    "environment": "production",
    "cluster": "livetranslate",
    "instance": ".*",
    "route": ".*",
    "language_pair": ".*",
    "upstream": ".*",
    "job": "orchestration",
    "path": ".*",
    "level": "error",
    "integration": "webhook",
    "datasource": "prometheus",
}


def substitute(expr):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        name = name.split(":")[0]
        if name not in VARIABLES:
            raise KeyError("unknown template variable $%s in %r" % (name, expr))
        return VARIABLES[name]
    return re.sub(r"\$\{([A-Za-z0-9_]+(?::[A-Za-z]+)?)\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z_][A-Za-z0-9_]*)", repl, expr)


def rule_expressions():
    out = []
    for path in RULES:
        with open(path) as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                out.append(("%s: %s" % (os.path.basename(path), name), rule["expr"]))
    return out


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def is_prometheus(ds, default_uid):
    if ds is None:
        return default_uid == "prometheus"
    if isinstance(ds, str):
        return ds in ("prometheus", "Prometheus")
    return ds.get("type") == "prometheus" or ds.get("uid") == "prometheus"


def dashboard_expressions():
    out = []
    for path in DASHBOARDS:
        with open(path) as f:
            dash = json.load(f)
        base = os.path.basename(path)
        for p in iter_panels(dash.get("panels")):
            for t in p.get("targets", []) or []:
                ds = t.get("datasource", p.get("datasource"))
                if "expr" in t and is_prometheus(ds, None):
                    out.append(("%s: panel %s %r" % (base, p.get("id"), p.get("title")), t["expr"]))
        for v in dash.get("templating", {}).get("list", []):
            if v.get("type") == "query" and is_prometheus(v.get("datasource"), None):
                q = v.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                m = re.match(r"^\s*(?:label_values|query_result)\((.*)\)\s*$", q or "", re.S)
                if m and q.strip().startswith("query_result"):
                    out.append(("%s: variable %s" % (base, v["name"]), m.group(1)))
                elif m:
                    inner = m.group(1)
                    # label_values(expr, label) or label_values(label)
                    parts = inner.rsplit(",", 1)
                    if len(parts) == 2:
                        out.append(("%s: variable %s" % (base, v["name"]), parts[0]))
    return out


def write_config(tmp, prom_port, node_port, am_port):
    with open(os.path.join(ROOT, "monitoring", "prometheus", "prometheus.yml")) as f:
        prod = yaml.safe_load(f)
    local = {"prometheus": "127.0.0.1:%d" % prom_port, "node-exporter": "127.0.0.1:%d" % node_port,
             "alertmanager": "127.0.0.1:%d" % am_port}
    scrape = []
    for job in prod["scrape_configs"]:
        if job["job_name"] in local:
            job = dict(job)
            sc = dict(job["static_configs"][0])
            sc["targets"] = [local[job["job_name"]]]
            job["static_configs"] = [sc]
            scrape.append(job)
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": RULES,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:%d" % am_port]}]}]},
        "scrape_configs": scrape,
    }
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def metric_names(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            names.add(parts[2])
            if parts[3] in ("histogram", "summary"):
                names.update(parts[2] + s for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--external-names-out", help="write the metric names exposed by the local programs here")
    args = ap.parse_args()

    checks = Checks("prometheus-live")
    prom_bin = find_binary("prometheus")
    node_bin = find_binary("prometheus-node-exporter", "node_exporter")
    am_bin = find_binary("alertmanager", "prometheus-alertmanager")
    procs = []
    with tempfile.TemporaryDirectory(prefix="prom-test-") as tmp:
        prom_port, node_port, am_port = free_port(), free_port(), free_port()
        logs = {n: os.path.join(tmp, n + ".log") for n in ("prometheus", "node", "am")}
        base = "http://127.0.0.1:%d" % prom_port
        try:
            am_cfg = os.path.join(tmp, "am.yml")
            with open(am_cfg, "w") as f:
                f.write("route:\n  receiver: none\nreceivers:\n  - name: none\n")
            procs.append(start([am_bin, "--config.file=" + am_cfg, "--storage.path=" + os.path.join(tmp, "am"),
                                "--web.listen-address=127.0.0.1:%d" % am_port, "--cluster.listen-address=",
                                "--log.level=warn"], logs["am"]))
            procs.append(start([node_bin, "--web.listen-address=127.0.0.1:%d" % node_port], logs["node"]))
            cfg = write_config(tmp, prom_port, node_port, am_port)
            procs.append(start([prom_bin, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                                "--web.listen-address=127.0.0.1:%d" % prom_port, "--web.enable-lifecycle",
                                "--web.enable-remote-write-receiver", "--log.level=warn"], logs["prometheus"]))
            wait_ready(base + "/-/ready", procs[2])
            wait_ready("http://127.0.0.1:%d/-/ready" % am_port, procs[0])
            wait_ready("http://127.0.0.1:%d/metrics" % node_port, procs[1])
            checks.check(True, "prometheus, alertmanager and node-exporter started on 127.0.0.1")

            # 1. Expressions.
            exprs = rule_expressions() + dashboard_expressions()
            n_dash = len(exprs) - len(rule_expressions())
            bad = []
            for where, expr in exprs:
                try:
                    q = substitute(expr)
                except KeyError as err:
                    bad.append((where, str(err)))
                    continue
                status, raw = http("POST", base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
                body = json.loads(raw) if raw.startswith(b"{") else {}
                if status != 200 or body.get("status") != "success":
                    bad.append((where, "%s %s" % (status, raw[:300])))
            for where, err in bad:
                print("   bad expression %s: %s" % (where, err))
            checks.check(not bad, "%d rule expressions evaluate without error" % len(rule_expressions()))
            checks.check(n_dash > 0 or not DASHBOARDS,
                         "%d dashboard expressions found and evaluated (errors listed above)" % n_dash)

            # 2. Rules loaded and healthy after evaluation.
            deadline = time.time() + 30
            groups = []
            while time.time() < deadline:
                groups = get_json(base + "/api/v1/rules")["data"]["groups"]
                if groups and all(r.get("lastEvaluation", "").startswith("20") and r.get("health") != "unknown"
                                  for g in groups for r in g["rules"]):
                    break
                time.sleep(0.5)
            want = sum(len(yaml.safe_load(open(p))["groups"]) for p in RULES)
            checks.check(len(groups) == want, "/api/v1/rules lists all %d rule groups" % want, len(groups))
            rules = [(g["name"], r) for g in groups for r in g["rules"]]
            unhealthy = [(g, r["name"], r.get("health"), r.get("lastError")) for g, r in rules if r.get("health") != "ok"]
            checks.check(not unhealthy, "all %d loaded rules have health ok" % len(rules), unhealthy[:10])
            n_alerts = sum(1 for _, r in rules if r["type"] == "alerting")
            checks.check(n_alerts >= 80, "%d alerting rules loaded" % n_alerts)

            # 3. Node recording rules see the real exporter.
            deadline = time.time() + 30
            found = {}
            for rec in ("instance:node_cpu_utilisation:ratio5m", "instance:node_memory_utilisation:ratio",
                        "instance_mountpoint:node_filesystem_utilisation:ratio"):
                while time.time() < deadline:
                    res = get_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": rec}))["data"]["result"]
                    if res:
                        break
                    time.sleep(0.5)
                found[rec] = bool(res)
                checks.check(bool(res), "recording rule %s has series from the real node-exporter" % rec)

            # 4. External metric names.
            names = set()
            for url in ("http://127.0.0.1:%d/metrics" % p for p in (prom_port, node_port, am_port)):
                status, raw = http("GET", url)
                names |= metric_names(raw.decode())
            checks.check(len(names) > 100, "collected %d metric names from the local programs" % len(names))
            if args.external_names_out:
                with open(args.external_names_out, "w") as f:
                    f.write("\n".join(sorted(names)) + "\n")
        except Exception as err:
            checks.check(False, "unexpected error", "%s\n%s" % (err, "".join(tail(p) for p in logs.values())))
        finally:
            for p in reversed(procs):
                stop(p)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
