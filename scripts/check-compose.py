#!/usr/bin/env python3
"""Structural checks of docker-compose.monitoring.yml (no Docker needed), and
of the configuration files it mounts that no local binary can validate
(Loki, agent).

Each check prints one line; exit status 1 if any fails.
"""
import os
import re
import sys

import yaml

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from monitoring_testlib import ROOT, Checks  # noqa: E402

COMPOSE = os.path.join(ROOT, "docker-compose.monitoring.yml")
SEED_PORTS = {3000: "orchestration-service", 5001: "audio-service", 5003: "translation-service",
              9090: "prometheus", 3001: "grafana", 9093: "alertmanager", 3100: "loki", 9080: "livetranslate-agent"}
LIMITS = {"prometheus": ("2G", "1"), "grafana": ("512M", "0.5"), "loki": ("1G", "0.5")}
NAMED_VOLUMES = {"prometheus-data", "grafana-data", "loki-data", "alertmanager-data", "app-logs"}
# Services allowed without a healthcheck, with the reason.
NO_HEALTHCHECK = {}


def host_port(spec):
    s = str(spec)
    parts = s.split(":")
    if len(parts) == 1:
        return int(parts[0].split("/")[0])
    return int(parts[-2])


def main():
    c = Checks("compose")
    doc = yaml.safe_load(open(COMPOSE))
    services = doc.get("services", {})
    declared = set((doc.get("volumes") or {}).keys())

    published = {}
    used_volumes = set()
    missing_paths = []
    for name, svc in services.items():
        for p in svc.get("ports", []):
            published[host_port(p)] = name
        for v in svc.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if src.startswith("./") or src.startswith("../"):
                if not os.path.exists(os.path.join(ROOT, src)):
                    missing_paths.append("%s: %s" % (name, src))
            elif not src.startswith("/"):
                used_volumes.add(src)
        build = svc.get("build")
        if build:
            df = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            ctx = build.get("context", ".") if isinstance(build, dict) else build
            if not os.path.exists(os.path.join(ROOT, ctx, df)):
                missing_paths.append("%s: build %s" % (name, df))

    c.check(not missing_paths, "every file, directory and Dockerfile referenced from the repo exists", missing_paths)
    for port, svc in sorted(SEED_PORTS.items()):
        c.check(published.get(port) == svc, "port %d is published by %s" % (port, svc), published.get(port))
    c.check(used_volumes <= declared, "every named volume used is declared", sorted(used_volumes - declared))
    c.check(NAMED_VOLUMES <= declared, "named volumes %s declared" % ", ".join(sorted(NAMED_VOLUMES)),
            sorted(NAMED_VOLUMES - declared))
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        c.check(bool(hc and hc.get("test")) or name in NO_HEALTHCHECK,
                "%s has a healthcheck%s" % (name, (" (exempt: %s)" % NO_HEALTHCHECK[name]) if name in NO_HEALTHCHECK
                                           else ""))
    for name, (mem, cpus) in LIMITS.items():
        lim = services.get(name, {}).get("deploy", {}).get("resources", {}).get("limits", {})
        c.check(str(lim.get("memory")) == mem and str(lim.get("cpus")) == cpus,
                "%s limits memory %s, cpus %s" % (name, mem, cpus), lim)

    prom_cmd = " ".join(services.get("prometheus", {}).get("command", []))
    for flag in ("--storage.tsdb.retention.time=30d", "--web.enable-lifecycle", "--web.enable-remote-write-receiver",
                 "--config.file=/etc/prometheus/prometheus.yml"):
        c.check(flag in prom_cmd, "prometheus runs with %s" % flag)
    am_cmd = " ".join(services.get("alertmanager", {}).get("command", []))
    c.check("--config.file=/etc/alertmanager/alertmanager.yml" in am_cmd, "alertmanager loads the repo config")

    gf_env = services.get("grafana", {}).get("environment", {})
    pw = str(gf_env.get("GF_SECURITY_ADMIN_PASSWORD", ""))
    c.check(pw.startswith("${") and "livetranslate2023" not in open(COMPOSE).read(),
            "Grafana admin password comes from the environment, not hard-coded", pw)
    c.check(str(gf_env.get("GF_USERS_ALLOW_SIGN_UP")).lower() == "false", "Grafana sign-up disabled")
    env_example = os.path.join(ROOT, ".env.example")
    c.check(os.path.exists(env_example) and "GF_SECURITY_ADMIN_PASSWORD=livetranslate2023" in open(env_example).read(),
            ".env.example carries the seed's default Grafana password")
    gf_vols = services.get("grafana", {}).get("volumes", [])
    c.check(any(v.endswith(":/var/lib/grafana/dashboards:ro") and v.startswith("./monitoring/grafana/dashboards")
                for v in gf_vols), "dashboards mounted at the provider path /var/lib/grafana/dashboards")

    for svc in ("orchestration-service", "audio-service", "translation-service", "livetranslate-agent"):
        c.check(any(str(v).startswith("app-logs:/app/logs") for v in services.get(svc, {}).get("volumes", [])),
                "%s mounts the shared app-logs volume at /app/logs" % svc)
    for svc in ("orchestration-service", "audio-service", "translation-service"):
        cmd = services.get(svc, {}).get("command", [])
        c.check(cmd and cmd[0] == "/usr/local/bin/" + svc, "%s runs /usr/local/bin/%s" % (svc, svc), cmd)

    # Prometheus scrape targets resolve to compose services on the right ports.
    prom = yaml.safe_load(open(os.path.join(ROOT, "monitoring", "prometheus", "prometheus.yml")))
    bad = []
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                host = t.split(":")[0]
                if host != "localhost" and host not in services:
                    bad.append("%s -> %s" % (job["job_name"], t))
    c.check(not bad, "every Prometheus target is a compose service", bad)
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    want_jobs = {"orchestration", "audio", "translation", "livetranslate-agent", "node-exporter", "prometheus",
                 "alertmanager", "loki", "grafana"}
    c.check(jobs == want_jobs, "Prometheus jobs are %s" % ", ".join(sorted(want_jobs)), sorted(jobs))
    for job in prom["scrape_configs"]:
        labels = job["static_configs"][0].get("labels", {})
        c.check({"service", "environment", "cluster"} <= set(labels), "job %s labels service/environment/cluster"
                % job["job_name"], labels)

    # Loki: no binary here, so check the settings that matter.
    loki = yaml.safe_load(open(os.path.join(ROOT, "monitoring", "loki", "loki.yml")))
    c.check(loki["compactor"].get("retention_enabled") is True and
            loki["limits_config"].get("retention_period") == "168h", "Loki retention 7 days by the compactor")
    c.check(loki["common"]["storage"].get("filesystem") is not None and
            loki["schema_config"]["configs"][0]["object_store"] == "filesystem", "Loki filesystem storage")
    c.check(loki["limits_config"]["ingestion_burst_size_mb"] >= 4 and
            loki["server"]["grpc_server_max_recv_msg_size"] >= 4 * 1048576,
            "Loki limits admit ~1 MiB batches with headroom")

    # Agent: the log half is the design's promtail.yml (read by the agent as Promtail reads
    # it), the metrics half agent.yml.
    raw = open(os.path.join(ROOT, "monitoring", "loki", "promtail.yml")).read()
    expanded = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", raw)
    promtail = yaml.safe_load(expanded)
    jobs_by_path = {}
    for j in promtail.get("scrape_configs", []):
        for sc in j.get("static_configs", []):
            path = sc.get("labels", {}).get("__path__")
            jobs_by_path[path] = [list(st)[0] for st in j.get("pipeline_stages", [])]
    c.check("json" in jobs_by_path.get("/app/logs/*.log", []) and "/var/log/*.log" in jobs_by_path and
            "docker" in jobs_by_path.get("/var/lib/docker/containers/*/*-json.log", []),
            "promtail.yml reads the services' JSON logs, /var/log and the docker containers", jobs_by_path)
    client = (promtail.get("clients") or [{}])[0]
    c.check("${LOKI_URL:-http://loki:3100}" in raw and
            client.get("url") == "http://loki:3100/loki/api/v1/push",
            "promtail.yml pushes to ${LOKI_URL:-http://loki:3100}")
    c.check(str(promtail.get("positions", {}).get("filename", "")).startswith("/var/lib/livetranslate-agent/"),
            "promtail.yml keeps its positions on the agent-data volume")
    raw = open(os.path.join(ROOT, "monitoring", "agent", "agent.yml")).read()
    expanded = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", raw)
    agent = yaml.safe_load(expanded)
    c.check("logs" not in agent and "listen" not in agent,
            "agent.yml leaves the logs and the server to promtail.yml")
    targets = {t for j in agent["scrape_configs"] for sc in j["static_configs"] for t in sc["targets"]}
    c.check(targets == {"orchestration-service:3000", "audio-service:5001", "translation-service:5003"},
            "agent scrapes the three services", targets)
    c.check(all(j.get("metrics_path") == "/api/metrics" for j in agent["scrape_configs"]),
            "agent scrapes /api/metrics")
    c.check(not {j["job_name"] for j in agent["scrape_configs"]} & jobs,
            "agent job names differ from Prometheus' jobs (no duplicate series)")
    c.check(agent["remote_write"]["url"] == "http://prometheus:9090/api/v1/write",
            "agent remote-writes to http://prometheus:9090/api/v1/write")
    agent_svc = services.get("livetranslate-agent", {})
    agent_vols = agent_svc.get("volumes", [])
    c.check(any(v.startswith("./monitoring/agent/agent.yml:") for v in agent_vols) and
            any(v.startswith("./monitoring/loki/promtail.yml:/etc/promtail/promtail.yml") for v in agent_vols),
            "compose mounts agent.yml and promtail.yml into the agent")
    cmd = " ".join(agent_svc.get("command", []))
    c.check("-config.file=/etc/promtail/promtail.yml" in cmd and "-config.expand-env=true" in cmd and
            "--config=/etc/livetranslate-agent/agent.yml" in cmd,
            "compose runs the agent with promtail.yml (-config.file, -config.expand-env) and agent.yml", cmd)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
