#!/usr/bin/env bash
# Runs Prometheus, Alertmanager and node-exporter from locally installed
# binaries (no Docker) with the repository's configuration. Docker hostnames
# in a temporary copy of the configs are rewritten to 127.0.0.1, so the
# services started locally (cargo run --example ...) are scraped on their
# usual ports. Ctrl-C stops everything.
#
# Usage: scripts/run-local-stack.sh
# Environment (ports on 127.0.0.1):
#   PROMETHEUS_PORT (9090)  ALERTMANAGER_PORT (9093)  NODE_EXPORTER_PORT (9100)
#   ORCHESTRATION_PORT (3000)  AUDIO_PORT (5001)  TRANSLATION_PORT (5003)
#   AGENT_PORT (9080)  LOKI_PORT (3100)  GRAFANA_PORT (3001)
#   ALERT_RELAY_URL (http://127.0.0.1:8080): where webhooks are sent
#   WORK_DIR: keep data here instead of a temporary directory
set -euo pipefail

case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_bin() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null; then command -v "$name"; return 0; fi
  done
  echo "none of $* found in PATH" >&2
  return 1
}
prometheus_bin="$(find_bin prometheus)"
alertmanager_bin="$(find_bin alertmanager prometheus-alertmanager)"
node_exporter_bin="$(find_bin prometheus-node-exporter node_exporter)"

export PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}" ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9093}"
export NODE_EXPORTER_PORT="${NODE_EXPORTER_PORT:-9100}" ORCHESTRATION_PORT="${ORCHESTRATION_PORT:-3000}"
export AUDIO_PORT="${AUDIO_PORT:-5001}" TRANSLATION_PORT="${TRANSLATION_PORT:-5003}" AGENT_PORT="${AGENT_PORT:-9080}"
export LOKI_PORT="${LOKI_PORT:-3100}" GRAFANA_PORT="${GRAFANA_PORT:-3001}"
export ALERT_RELAY_URL="${ALERT_RELAY_URL:-http://127.0.0.1:8080}"

if [ -n "${WORK_DIR:-}" ]; then
  work="$WORK_DIR"
  mkdir -p "$work"
else
  work="$(mktemp -d -t livetranslate-stack.XXXXXX)"
fi
mkdir -p "$work/rules" "$work/secrets"
cp "$root"/monitoring/prometheus/rules/*.yml "$work/rules/"

ROOT="$root" WORK="$work" python3 - <<'PY'
import os, yaml
root, work = os.environ["ROOT"], os.environ["WORK"]
port = {"orchestration-service": "ORCHESTRATION_PORT", "audio-service": "AUDIO_PORT",
        "translation-service": "TRANSLATION_PORT", "livetranslate-agent": "AGENT_PORT",
        "node-exporter": "NODE_EXPORTER_PORT", "localhost": "PROMETHEUS_PORT",
        "alertmanager": "ALERTMANAGER_PORT", "loki": "LOKI_PORT", "grafana": "GRAFANA_PORT"}

def local(target):
    host = target.split(":")[0]
    return "127.0.0.1:%s" % os.environ[port[host]]

prom = yaml.safe_load(open(os.path.join(root, "monitoring/prometheus/prometheus.yml")))
for am in prom["alerting"]["alertmanagers"]:
    for sc in am["static_configs"]:
        sc["targets"] = [local(t) for t in sc["targets"]]
for job in prom["scrape_configs"]:
    for sc in job["static_configs"]:
        sc["targets"] = [local(t) for t in sc["targets"]]
yaml.safe_dump(prom, open(os.path.join(work, "prometheus.yml"), "w"), sort_keys=False)

am = yaml.safe_load(open(os.path.join(root, "monitoring/alertmanager/alertmanager.yml")))
relay = os.environ["ALERT_RELAY_URL"].rstrip("/")
for r in am["receivers"]:
    for hook in r.get("webhook_configs", []):
        hook["url"] = hook["url"].replace("http://alert-relay:8080", relay)
        auth = hook.get("http_config", {}).get("authorization", {})
        if "credentials_file" in auth:
            name = os.path.basename(auth["credentials_file"])
            src = os.path.join(root, "monitoring/alertmanager/secrets", name)
            dst = os.path.join(work, "secrets", name)
            if not os.path.exists(dst):
                with open(dst, "w") as f:
                    f.write(open(src).read() if os.path.exists(src) else "local-test-token")
            auth["credentials_file"] = dst
yaml.safe_dump(am, open(os.path.join(work, "alertmanager.yml"), "w"), sort_keys=False)
PY

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${WORK_DIR:-}" ]; then rm -rf "$work"; fi
  echo "stopped"
}
trap cleanup INT TERM EXIT

"$node_exporter_bin" --web.listen-address="127.0.0.1:$NODE_EXPORTER_PORT" >"$work/node-exporter.log" 2>&1 &
pids+=($!)
"$alertmanager_bin" --config.file="$work/alertmanager.yml" --storage.path="$work/alertmanager-data" \
  --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address= \
  >"$work/alertmanager.log" 2>&1 &
pids+=($!)
"$prometheus_bin" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus-data" \
  --storage.tsdb.retention.time=30d --web.enable-lifecycle --web.enable-remote-write-receiver \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$work/prometheus.log" 2>&1 &
pids+=($!)

echo "Prometheus    http://127.0.0.1:$PROMETHEUS_PORT"
echo "Alertmanager  http://127.0.0.1:$ALERTMANAGER_PORT"
echo "node-exporter http://127.0.0.1:$NODE_EXPORTER_PORT/metrics"
echo "configs and logs in $work; Ctrl-C stops all"

# Exit (and stop the others) as soon as one of them exits.
wait -n "${pids[@]}"
echo "a process exited; see the logs in $work" >&2
exit 1
