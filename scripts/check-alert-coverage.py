#!/usr/bin/env python3
"""Checks the alerting rules and their promtool unit tests.

Fails when
- an alert has no firing test case (an alert_rule_test entry for it with a
  non-empty exp_alerts) or no not-firing case (an entry with `exp_alerts: []`);
- a firing case does not spell out the labels and the summary, description
  and runbook_url annotations it expects;
- an alert lacks a severity label (critical, warning or info), or a summary,
  description or runbook_url annotation, or its runbook_url does not point at
  an existing heading of monitoring/runbooks.md;
- an alert name is defined twice, a recording rule name does not follow
  level:metric:operations, or there are fewer than --min-alerts alerts;
- a test file names an alert that does not exist, or does not load all rules
  files.

Usage: check-alert-coverage.py [--rules FILE...] [--tests FILE...] [--min-alerts N]
"""
import argparse
import glob
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = ("summary", "description", "runbook_url")
RUNBOOK_PREFIX = "https://example.invalid/livetranslate/telemetry/blob/main/monitoring/runbooks.md#"


def runbook_anchors(path):
    anchors = set()
    if not os.path.exists(path):
        return anchors
    for line in open(path):
        m = re.match(r"^#{2,4}\s+(.+?)\s*$", line)
        if m:
            text = m.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            anchors.add(text)
    return anchors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", nargs="*",
                    default=sorted(glob.glob(os.path.join(ROOT, "monitoring", "prometheus", "rules", "*.yml"))))
    ap.add_argument("--tests", nargs="*",
                    default=sorted(glob.glob(os.path.join(ROOT, "monitoring", "prometheus", "tests", "*.yml"))))
    ap.add_argument("--runbooks", default=os.path.join(ROOT, "monitoring", "runbooks.md"))
    ap.add_argument("--min-alerts", type=int, default=80)
    args = ap.parse_args()

    errors = []
    alerts = {}
    recordings = set()
    for path in args.rules:
        for group in yaml.safe_load(open(path)).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    name = rule["alert"]
                    if name in alerts:
                        errors.append("alert %s defined twice" % name)
                    alerts[name] = rule
                else:
                    recordings.add(rule["record"])
                    if not re.match(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$", rule["record"]):
                        errors.append("recording rule %s does not follow level:metric:operations" % rule["record"])

    anchors = runbook_anchors(args.runbooks)
    for name, rule in alerts.items():
        labels = rule.get("labels") or {}
        ann = rule.get("annotations") or {}
        if labels.get("severity") not in SEVERITIES:
            errors.append("%s: severity label must be one of %s, got %r" % (name, sorted(SEVERITIES),
                                                                          labels.get("severity")))
        for a in ANNOTATIONS:
            if not str(ann.get(a, "")).strip():
                errors.append("%s: missing annotation %s" % (name, a))
        url = ann.get("runbook_url", "")
        if url and url != RUNBOOK_PREFIX + name.lower():
            errors.append("%s: runbook_url should be %s" % (name, RUNBOOK_PREFIX + name.lower()))
        if url and name.lower() not in anchors:
            errors.append("%s: no heading '%s' in %s" % (name, name, os.path.relpath(args.runbooks, ROOT)))

    firing = {}
    quiet = {}
    n_cases = 0
    rule_basenames = {os.path.basename(p) for p in args.rules}
    for path in args.tests:
        doc = yaml.safe_load(open(path))
        loaded = {os.path.basename(p) for p in doc.get("rule_files", [])}
        if loaded != rule_basenames:
            errors.append("%s: rule_files %s should load exactly %s" % (os.path.basename(path), sorted(loaded),
                                                                        sorted(rule_basenames)))
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                n_cases += 1
                name = case.get("alertname")
                where = "%s (%s @ %s)" % (os.path.basename(path), name, case.get("eval_time"))
                if name not in alerts:
                    errors.append("%s: no alert named %s" % (where, name))
                    continue
                exp = case.get("exp_alerts")
                if exp:
                    firing[name] = firing.get(name, 0) + 1
                    for e in exp:
                        if "severity" not in (e.get("exp_labels") or {}):
                            errors.append("%s: firing case without exp_labels.severity" % where)
                        missing = [a for a in ANNOTATIONS if a not in (e.get("exp_annotations") or {})]
                        if missing:
                            errors.append("%s: firing case does not expect annotations %s" % (where, missing))
                elif exp == [] or exp is None:
                    quiet[name] = quiet.get(name, 0) + 1

    no_fire = sorted(set(alerts) - set(firing))
    no_quiet = sorted(set(alerts) - set(quiet))
    if no_fire:
        errors.append("alerts without a firing test: " + ", ".join(no_fire))
    if no_quiet:
        errors.append("alerts without a not-firing test: " + ", ".join(no_quiet))
    if len(alerts) < args.min_alerts:
        errors.append("only %d alerts, at least %d required" % (len(alerts), args.min_alerts))

    for e in errors:
        print("FAIL " + e)
    print("alert coverage: %d alerts, %d recording rules, %d alert test cases (%d firing, %d not firing)"
          % (len(alerts), len(recordings), n_cases, sum(firing.values()), sum(quiet.values())))
    print("check-alert-coverage: %s" % ("FAILED" if errors else "OK"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
