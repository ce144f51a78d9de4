#!/usr/bin/env python3
"""Checks that every metric name used by the alerting/recording rules and the
Grafana dashboards is a name that exists.

A name is accepted when it is
- in the catalogue docs/metrics.md (library or agent), histogram suffixes
  _bucket/_sum/_count resolving to the catalogue's histogram;
- a recording rule defined in monitoring/prometheus/rules/ (its definition is
  checked in turn);
- a series Prometheus synthesises (up, scrape_*, ALERTS, ...);
- a metric of an external program with that program's prefix: node_,
  prometheus_, alertmanager_, loki_, grafana_; go_ and process_ only on the
  external jobs (the services' process_* names must be in the catalogue).

Label names used in selectors of catalogue metrics must be catalogue labels,
the standard labels (service, environment, version, cluster) or job/instance
(and le for histogram buckets).

Options:
  --scraped FILE   metric names actually exposed by the running services and
                   agent (one per line, `# TYPE` lines or exposition text also
                   accepted); every catalogue name used must appear in it.
  --external FILE  metric names exposed by the real node-exporter, Prometheus
                   and Alertmanager; every node_/prometheus_/alertmanager_ name
                   used must appear in it.
"""
import argparse
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}
EXTERNAL_PREFIXES = ("node_", "prometheus_", "alertmanager_", "loki_", "grafana_")
EXTERNAL_JOBS = {"node-exporter", "prometheus", "alertmanager", "loki", "grafana", "livetranslate-agent"}
STANDARD_LABELS = {"service", "environment", "version", "cluster", "job", "instance"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
            "bool", "inf", "nan", "Inf", "NaN", "atan2", "start", "end"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
HIST_SUFFIXES = ("_bucket", "_sum", "_count")

TOKEN = re.compile(r'''
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<selector>\{(?:[^{}"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?<![A-Za-z_:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<other>\S)
''', re.X)
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')')


def parse_catalogue(path):
    names = {}
    section = None
    with open(path) as f:
        for line in f:
            if line.startswith("## "):
                section = "agent" if "agent" in line.lower() else "library"
            m = re.match(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*([a-z]+)\s*\|\s*([^|]*)\|", line)
            if m:
                labels = set(re.findall(r"`([a-z_]+)`", m.group(3)))
                names[m.group(1)] = {"type": m.group(2), "labels": labels, "section": section}
    return names


def extract(expr):
    """(name, {label: value-or-None}) for every metric reference of a PromQL expression."""
    toks = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)]
    out = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind == "ident" and text in LABEL_LIST_KEYWORDS:
            # skip the label list in parentheses that follows
            j = i + 1
            if j < len(toks) and toks[j][0] == "lparen":
                depth = 0
                while j < len(toks):
                    if toks[j][0] == "lparen":
                        depth += 1
                    elif toks[j][0] == "rparen":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                i = j + 1
                continue
        if kind == "ident" and text not in KEYWORDS:
            nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
            if nxt[0] == "lparen" or (nxt[0] == "ident" and nxt[1] in ("by", "without")):
                i += 1
                continue  # function or aggregation (`sum by (...) (...)`)
            labels = {}
            if nxt[0] == "selector":
                for lname, op, val in MATCHER.findall(nxt[1]):
                    labels[lname] = (op, val[1:-1])
            out.append((text, labels))
        elif kind == "selector":
            prev = toks[i - 1] if i > 0 else (None, None)
            if prev[0] != "ident":
                labels = {}
                name = None
                for lname, op, val in MATCHER.findall(text):
                    if lname == "__name__" and op == "=":
                        name = val[1:-1]
                    labels[lname] = (op, val[1:-1])
                if name:
                    out.append((name, labels))
        i += 1
    return out


def substitute(expr):
    return re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]", "1m", expr)


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def is_prometheus(ds):
    if isinstance(ds, dict):
        return ds.get("type") == "prometheus" or ds.get("uid") == "prometheus"
    return ds in (None, "prometheus", "Prometheus")


def collect(rule_paths, dashboard_paths):
    recording = {}
    uses = []  # (where, expr)
    for path in rule_paths:
        doc = yaml.safe_load(open(path))
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                if "record" in r:
                    recording[r["record"]] = r["expr"]
                uses.append(("%s: %s" % (os.path.relpath(path, ROOT), r.get("alert") or r.get("record")), r["expr"]))
    for path in dashboard_paths:
        dash = json.load(open(path))
        rel = os.path.relpath(path, ROOT)
        for p in iter_panels(dash.get("panels")):
            for t in p.get("targets") or []:
                if "expr" in t and is_prometheus(t.get("datasource", p.get("datasource"))):
                    uses.append(("%s: panel %s" % (rel, p.get("id")), substitute(t["expr"])))
        for v in dash.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if v.get("type") == "query" and is_prometheus(v.get("datasource")) and q:
                m = re.match(r"^\s*(label_values|query_result)\((.*)\)\s*$", q, re.S)
                if m:
                    inner = m.group(2)
                    if m.group(1) == "label_values":
                        parts = inner.rsplit(",", 1)
                        inner = parts[0] if len(parts) == 2 else ""
                    if inner:
                        uses.append(("%s: variable %s" % (rel, v.get("name")), substitute(inner)))
    return recording, uses


def read_names(path):
    names = set()
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            names.add(parts[2])
            continue
        if line.startswith("#"):
            continue
        names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scraped", help="file of metric names scraped from the running services and agent")
    ap.add_argument("--external", help="file of metric names exposed by node-exporter, Prometheus, Alertmanager")
    ap.add_argument("--catalogue", default=os.path.join(ROOT, "docs", "metrics.md"))
    ap.add_argument("--rules", nargs="*",
                    default=sorted(glob.glob(os.path.join(ROOT, "monitoring", "prometheus", "rules", "*.yml"))))
    ap.add_argument("--dashboards", nargs="*",
                    default=sorted(glob.glob(os.path.join(ROOT, "monitoring", "grafana", "dashboards", "*.json"))))
    args = ap.parse_args()

    catalogue = parse_catalogue(args.catalogue)
    if not catalogue:
        print("FAIL: no metric found in %s" % args.catalogue)
        return 1
    recording, uses = collect(args.rules, args.dashboards)
    scraped = read_names(args.scraped) if args.scraped else None
    external = read_names(args.external) if args.external else None

    errors = []
    used_catalogue = set()
    used_external = set()
    n_refs = 0

    def catalogue_base(name):
        if name in catalogue:
            return name
        for suf in HIST_SUFFIXES:
            base = name[: -len(suf)] if name.endswith(suf) else None
            if base and base in catalogue and catalogue[base]["type"] == "histogram":
                return base
        return None

    for where, expr in uses:
        for name, labels in extract(expr):
            n_refs += 1
            job = labels.get("job", ("", ""))[1]
            base = catalogue_base(name)
            if name in recording:
                continue
            if name in SYNTHETIC:
                continue
            if base:
                used_catalogue.add(base)
                allowed = catalogue[base]["labels"] | STANDARD_LABELS | {"__name__"}
                if name.endswith("_bucket"):
                    allowed.add("le")
                for lname in labels:
                    if lname not in allowed:
                        errors.append("%s: label %r is not a label of %s (catalogue: %s)"
                                      % (where, lname, base, ", ".join(sorted(catalogue[base]["labels"])) or "none"))
                continue
            if name.startswith(EXTERNAL_PREFIXES):
                used_external.add(name)
                continue
            if name.startswith(("go_", "process_")):
                jobs = set(re.split(r"\|", job)) if job else set()
                if jobs and jobs <= EXTERNAL_JOBS:
                    used_external.add(name)
                    continue
                errors.append("%s: %s is neither in the catalogue nor selected on an external job (job=%r)"
                              % (where, name, job))
                continue
            errors.append("%s: unknown metric %s (not in docs/metrics.md, not a recording rule, not synthetic, "
                          "no external exporter prefix)" % (where, name))

    if scraped is not None:
        for base in sorted(used_catalogue):
            variants = {base} | {base + s for s in HIST_SUFFIXES}
            if not variants & scraped:
                errors.append("catalogue metric %s is used but was not scraped from the running services" % base)
    if external is not None:
        for name in sorted(used_external):
            if name.startswith(("node_", "prometheus_", "alertmanager_")) and name not in external:
                errors.append("external metric %s is used but the local exporter/Prometheus/Alertmanager "
                              "does not expose it" % name)

    for e in errors:
        print("FAIL " + e)
    unused = sorted(set(catalogue) - used_catalogue)
    print("metric names: %d references in %d expressions; %d catalogue, %d external, %d recording rules; "
          "%d catalogue names unused%s"
          % (n_refs, len(uses), len(used_catalogue), len(used_external), len(recording), len(unused),
             (" (" + ", ".join(unused) + ")") if unused else ""))
    if external is None:
        print("note: external names not verified against real programs (no --external)")
    if scraped is None:
        print("note: catalogue names not verified against running services (no --scraped)")
    print("check-metric-names: %s" % ("FAILED" if errors else "OK"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
