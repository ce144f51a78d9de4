#!/usr/bin/env bash
# Reloads the Prometheus, Alertmanager and livetranslate-agent configuration
# without a restart (the seed's reload commands), after validating it.
#
# Usage: scripts/reload.sh [prometheus|alertmanager|agent|all]
# Environment: PROMETHEUS_URL (default http://localhost:9090),
#              ALERTMANAGER_URL (default http://localhost:9093),
#              AGENT_URL (default http://localhost:9080)
set -euo pipefail

what="${1:-all}"
case "$what" in
  prometheus|alertmanager|agent|all) ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prometheus_url="${PROMETHEUS_URL:-http://localhost:9090}"
alertmanager_url="${ALERTMANAGER_URL:-http://localhost:9093}"
agent_url="${AGENT_URL:-http://localhost:9080}"

if [ "$what" = prometheus ] || [ "$what" = all ]; then
  if command -v promtool >/dev/null; then
    promtool check config "$root/monitoring/prometheus/prometheus.yml"
    promtool check config "$root/monitoring/prometheus/prometheus.docker-sd.yml"
  fi
  echo "reloading Prometheus at $prometheus_url"
  curl -fsS -X POST "$prometheus_url/-/reload"
fi
if [ "$what" = alertmanager ] || [ "$what" = all ]; then
  if command -v amtool >/dev/null; then
    amtool check-config "$root/monitoring/alertmanager/alertmanager.yml"
  fi
  echo "reloading Alertmanager at $alertmanager_url"
  curl -fsS -X POST "$alertmanager_url/-/reload"
fi
if [ "$what" = agent ] || [ "$what" = all ]; then
  # The agent validates the new configuration itself: a refused one answers 500 with the
  # error (file:line:column) and the running configuration goes on.
  echo "reloading livetranslate-agent at $agent_url"
  curl -fsS -X POST "$agent_url/-/reload"
fi
echo "reloaded"
