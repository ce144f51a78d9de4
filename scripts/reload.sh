#!/usr/bin/env bash
# Reloads the Prometheus and Alertmanager configuration without a restart
# (the seed's reload commands), after validating it.
#
# Usage: scripts/reload.sh [prometheus|alertmanager|all]
# Environment: PROMETHEUS_URL (default http://localhost:9090),
#              ALERTMANAGER_URL (default http://localhost:9093)
set -euo pipefail

what="${1:-all}"
case "$what" in
  prometheus|alertmanager|all) ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prometheus_url="${PROMETHEUS_URL:-http://localhost:9090}"
alertmanager_url="${ALERTMANAGER_URL:-http://localhost:9093}"

if [ "$what" != alertmanager ]; then
  if command -v promtool >/dev/null; then
    promtool check config "$root/monitoring/prometheus/prometheus.yml"
  fi
  echo "reloading Prometheus at $prometheus_url"
  curl -fsS -X POST "$prometheus_url/-/reload"
fi
if [ "$what" != prometheus ]; then
  if command -v amtool >/dev/null; then
    amtool check-config "$root/monitoring/alertmanager/alertmanager.yml"
  fi
  echo "reloading Alertmanager at $alertmanager_url"
  curl -fsS -X POST "$alertmanager_url/-/reload"
fi
echo "reloaded"
