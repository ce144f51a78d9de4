#!/usr/bin/env python3
"""Validates the Grafana provisioning files and dashboards.

- provisioning YAML parses, datasources have unique names and uids, the
  dashboard provider points at /var/lib/grafana/dashboards;
- every dashboard is valid JSON with a unique uid, a title and schemaVersion
  >= 36, panel ids are unique within the dashboard (rows' nested panels
  included), every panel has a gridPos and a type;
- every datasource referenced (panels, targets, template variables) uses a
  uid that exists in the provisioned datasources;
- every target has a refId and an expression; every $variable used in an
  expression is a dashboard variable or a Grafana built-in.
"""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAFANA = os.path.join(ROOT, "monitoring", "grafana")
BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                "__from", "__to", "__dashboard", "__org", "__user", "__name", "__all", "timeFilter", "__auto"}


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def main():
    errors = []
    n_checks = 0

    ds_files = sorted(glob.glob(os.path.join(GRAFANA, "provisioning", "datasources", "*.yml")))
    uids = {}
    names = set()
    for path in ds_files:
        doc = yaml.safe_load(open(path))
        if doc.get("apiVersion") != 1:
            errors.append("%s: apiVersion must be 1" % path)
        for ds in doc.get("datasources", []):
            n_checks += 1
            if ds.get("uid") in uids or ds.get("name") in names:
                errors.append("%s: duplicate datasource %s/%s" % (path, ds.get("name"), ds.get("uid")))
            if not ds.get("uid") or not ds.get("type") or not ds.get("url"):
                errors.append("%s: datasource %s needs uid, type and url" % (path, ds.get("name")))
            uids[ds.get("uid")] = ds.get("type")
            names.add(ds.get("name"))
    for want in ("prometheus", "loki", "alertmanager"):
        if want not in uids:
            errors.append("no provisioned datasource with uid %r" % want)
    if sum(1 for d in uids.values() if d) and not any(
            d.get("isDefault") for p in ds_files for d in yaml.safe_load(open(p)).get("datasources", [])):
        errors.append("no default datasource")

    prov = sorted(glob.glob(os.path.join(GRAFANA, "provisioning", "dashboards", "*.yml")))
    paths = [p.get("options", {}).get("path") for f in prov for p in yaml.safe_load(open(f)).get("providers", [])]
    if "/var/lib/grafana/dashboards" not in paths:
        errors.append("no dashboard provider with path /var/lib/grafana/dashboards (got %s)" % paths)

    dash_uids = set()
    dashboards = sorted(glob.glob(os.path.join(GRAFANA, "dashboards", "*.json")))
    if not dashboards:
        errors.append("no dashboards")
    n_panels = 0
    for path in dashboards:
        base = os.path.basename(path)
        try:
            dash = json.load(open(path))
        except ValueError as err:
            errors.append("%s: invalid JSON: %s" % (base, err))
            continue
        n_checks += 1
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in dash:
                errors.append("%s: missing %s" % (base, key))
        if dash.get("uid") in dash_uids:
            errors.append("%s: duplicate dashboard uid %s" % (base, dash.get("uid")))
        dash_uids.add(dash.get("uid"))
        if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
            errors.append("%s: schemaVersion should be >= 36" % base)
        variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
        for v in dash.get("templating", {}).get("list", []):
            ds = v.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") not in uids:
                errors.append("%s: variable %s uses unknown datasource uid %s" % (base, v["name"], ds.get("uid")))
        ids = []
        for p in iter_panels(dash.get("panels")):
            n_panels += 1
            ids.append(p.get("id"))
            where = "%s panel %s %r" % (base, p.get("id"), p.get("title"))
            if "gridPos" not in p or "type" not in p:
                errors.append("%s: needs gridPos and type" % where)
            dss = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]
            for ds in dss:
                if ds is None:
                    continue
                if not isinstance(ds, dict):
                    errors.append("%s: datasource must be referenced by uid, got %r" % (where, ds))
                elif ds.get("uid") not in uids:
                    errors.append("%s: unknown datasource uid %r" % (where, ds.get("uid")))
                elif ds.get("type") and ds["type"] != uids[ds["uid"]]:
                    errors.append("%s: datasource %s has type %s, not %s" % (where, ds["uid"], uids[ds["uid"]],
                                                                             ds["type"]))
            if p.get("type") != "row" and not p.get("targets"):
                errors.append("%s: no targets" % where)
            refids = [t.get("refId") for t in p.get("targets") or []]
            if len(set(refids)) != len(refids) or None in refids:
                errors.append("%s: targets need unique refIds" % where)
            for t in p.get("targets") or []:
                expr = t.get("expr", "")
                if not expr.strip():
                    errors.append("%s: empty expression" % where)
                for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expr):
                    if name not in variables and name not in BUILTIN_VARS:
                        errors.append("%s: undefined variable $%s" % (where, name))
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup or None in ids:
            errors.append("%s: duplicate or missing panel ids %s" % (base, dup))

    for e in errors:
        print("FAIL " + e)
    print("grafana: %d datasources, %d dashboards, %d panels" % (len(uids), len(dashboards), n_panels))
    print("check-grafana: %s" % ("FAILED" if errors else "OK"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
