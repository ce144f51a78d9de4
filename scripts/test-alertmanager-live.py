#!/usr/bin/env python3
"""Starts a real Alertmanager on 127.0.0.1 with a temporary copy of
monitoring/alertmanager/alertmanager.yml and checks grouping, routing,
inhibition and silences through its v2 API.

The copy only changes what cannot work on a test machine: webhook URLs point
at an unused 127.0.0.1 port and the credentials files at temporary files.
Clustering is disabled (--cluster.listen-address=).
"""
import datetime
import os
import sys
import tempfile
import time

import yaml

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from monitoring_testlib import (ROOT, Checks, find_binary, free_port, get_json, http, start, stop,  # noqa: E402
                                tail, wait_ready)

CONFIG = os.path.join(ROOT, "monitoring", "alertmanager", "alertmanager.yml")


def temp_config(tmp, dead_port):
    with open(CONFIG) as f:
        cfg = yaml.safe_load(f)
    for receiver in cfg.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            name = receiver["name"]
            hook.pop("url_file", None)
            hook["url"] = "http://127.0.0.1:%d/%s" % (dead_port, name)
            auth = hook.get("http_config", {}).get("authorization")
            if auth and "credentials_file" in auth:
                path = os.path.join(tmp, "%s-token" % name)
                with open(path, "w") as f:
                    f.write("test-token-%s" % name)
                auth["credentials_file"] = path
    path = os.path.join(tmp, "alertmanager.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


BASE = {"cluster": "livetranslate", "environment": "production"}
ALERTS = {
    # key: labels
    "orch_down": dict(BASE, alertname="ServiceDown", severity="critical", service="orchestration",
                      job="orchestration", instance="orchestration-service:3000"),
    "orch_err_crit": dict(BASE, alertname="HighErrorRate", severity="critical", service="orchestration",
                          family="error_rate"),
    "orch_err_warn": dict(BASE, alertname="ElevatedErrorRate", severity="warning", service="orchestration",
                          family="error_rate"),
    "audio_err_crit": dict(BASE, alertname="HighErrorRate", severity="critical", service="audio",
                           family="error_rate"),
    "audio_err_warn": dict(BASE, alertname="ElevatedErrorRate", severity="warning", service="audio",
                           family="error_rate"),
    "tr_err_warn": dict(BASE, alertname="ElevatedErrorRate", severity="warning", service="translation",
                        family="error_rate"),
    "tr_quality_crit": dict(BASE, alertname="TranslationQualityCritical", severity="critical",
                            service="translation", family="quality"),
    "cpu_warn_a": dict(BASE, alertname="HostCpuPressure", severity="warning", service="node-exporter",
                       family="cpu", instance="host-a:9100"),
    "cpu_crit_b": dict(BASE, alertname="HostHighCpuUsage", severity="critical", service="node-exporter",
                       family="cpu", instance="host-b:9100"),
    "hc_audio_1": dict(BASE, alertname="HealthCheckSlow", severity="warning", service="audio", check="database"),
    "hc_audio_2": dict(BASE, alertname="HealthCheckSlow", severity="warning", service="audio", check="cache"),
    "hc_tr": dict(BASE, alertname="HealthCheckSlow", severity="warning", service="translation", check="model"),
    "watchdog": {"alertname": "Watchdog", "severity": "info", "service": "prometheus"},
}
# alert -> the alerts that may inhibit it (Alertmanager records the first
# matching inhibitor only); alerts not listed must not be inhibited.
INHIBITED_BY = {
    "orch_err_crit": {"orch_down"},
    "orch_err_warn": {"orch_down", "orch_err_crit"},
    "audio_err_warn": {"audio_err_crit"},
}
EXPECTED_RECEIVER = {"critical": "pager", "warning": "chat", "info": "chat"}


def main():
    checks = Checks("alertmanager-live")
    binary = find_binary("alertmanager", "prometheus-alertmanager")
    proc = None
    with tempfile.TemporaryDirectory(prefix="am-test-") as tmp:
        port = free_port()
        dead_port = free_port()
        config = temp_config(tmp, dead_port)
        log = os.path.join(tmp, "alertmanager.log")
        base = "http://127.0.0.1:%d" % port
        try:
            proc = start([binary, "--config.file=" + config, "--storage.path=" + os.path.join(tmp, "data"),
                          "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address=",
                          "--log.level=warn"], log)
            wait_ready(base + "/-/ready", proc)
            checks.check(True, "alertmanager started on 127.0.0.1:%d" % port)

            now = datetime.datetime.now(datetime.timezone.utc)
            body = [{"labels": labels,
                     "annotations": {"summary": key},
                     "startsAt": iso(now - datetime.timedelta(minutes=1)),
                     "endsAt": iso(now + datetime.timedelta(hours=1))} for key, labels in ALERTS.items()]
            status, raw = http("POST", base + "/api/v2/alerts", body)
            checks.check(status == 200, "POST /api/v2/alerts accepted %d alerts" % len(body), raw[:300])

            # Silence one alert to show silences work with this config.
            silence = {"matchers": [{"name": "alertname", "value": "HealthCheckSlow", "isRegex": False},
                                    {"name": "service", "value": "translation", "isRegex": False}],
                       "startsAt": iso(now - datetime.timedelta(minutes=1)),
                       "endsAt": iso(now + datetime.timedelta(hours=1)),
                       "createdBy": "test-monitoring", "comment": "maintenance of translation health checks"}
            status, raw = http("POST", base + "/api/v2/silences", silence)
            checks.check(status == 200, "POST /api/v2/silences", raw[:300])

            # Inhibition and silences are evaluated asynchronously: poll until stable.
            by_key = {}
            deadline = time.time() + 30
            while time.time() < deadline:
                alerts = get_json(base + "/api/v2/alerts")
                by_labels = {tuple(sorted(a["labels"].items())): a for a in alerts}
                by_key = {k: by_labels.get(tuple(sorted(v.items()))) for k, v in ALERTS.items()}
                done = all(by_key[k] and by_key[k]["status"]["inhibitedBy"] for k in INHIBITED_BY) and \
                    by_key["hc_tr"] and by_key["hc_tr"]["status"]["silencedBy"]
                if done:
                    break
                time.sleep(0.5)

            checks.check(all(by_key.values()), "all posted alerts are listed by /api/v2/alerts",
                         [k for k, v in by_key.items() if not v])
            fp = {k: v["fingerprint"] for k, v in by_key.items() if v}
            for key, alert in by_key.items():
                if not alert:
                    continue
                got = set(alert["status"]["inhibitedBy"])
                want = {fp[k] for k in INHIBITED_BY.get(key, set())}
                if want:
                    checks.check(bool(got) and got <= want and alert["status"]["state"] == "suppressed",
                                 "%s is inhibited by %s" % (key, " or ".join(sorted(INHIBITED_BY[key]))),
                                 "inhibitedBy=%s state=%s" % (got, alert["status"]["state"]))
                else:
                    silenced = key == "hc_tr"
                    checks.check(not got and (silenced or alert["status"]["state"] == "active"),
                                 "%s is not inhibited" % key,
                                 "inhibitedBy=%s state=%s" % (got, alert["status"]["state"]))
            hc_tr = by_key.get("hc_tr")
            checks.check(bool(hc_tr and hc_tr["status"]["silencedBy"] and hc_tr["status"]["state"] == "suppressed"),
                         "silence suppresses HealthCheckSlow of translation only",
                         hc_tr and hc_tr["status"])
            hc_a = by_key.get("hc_audio_1")
            checks.check(bool(hc_a and not hc_a["status"]["silencedBy"]), "silence leaves HealthCheckSlow of audio")

            # Grouping: one group per (alertname, service, cluster) and receiver.
            groups = get_json(base + "/api/v2/alerts/groups")
            seen = {}
            for g in groups:
                key = (g["labels"].get("alertname"), g["labels"].get("service"), g["labels"].get("cluster"))
                checks.check(set(g["labels"]) <= {"alertname", "service", "cluster"},
                             "group %s is keyed by alertname/service/cluster only" % (key,), g["labels"])
                seen[(key, g["receiver"]["name"])] = len(g["alerts"])
            expected = {}
            for labels in ALERTS.values():
                key = (labels["alertname"], labels.get("service"), labels.get("cluster"))
                receiver = "heartbeat" if labels["alertname"] == "Watchdog" else EXPECTED_RECEIVER[labels["severity"]]
                expected[(key, receiver)] = expected.get((key, receiver), 0) + 1
            checks.check(seen == expected, "groups and their receivers match alertname/service/cluster grouping",
                         "got=%s want=%s" % (seen, expected))
            checks.check(seen.get((("HealthCheckSlow", "audio", "livetranslate"), "chat")) == 2,
                         "two HealthCheckSlow alerts of audio share one group")
        except Exception as err:  # report as a failed check, with the log
            checks.check(False, "unexpected error", "%s\n%s" % (err, tail(log)))
        finally:
            stop(proc)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
