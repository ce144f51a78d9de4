#!/usr/bin/env bash
# Updates the monitoring stack: pulls newer images and recreates the
# containers whose image or configuration changed (the seed's "Updates and
# Maintenance" commands). Validates the configuration first when promtool and
# amtool are installed.
#
# Usage: scripts/update.sh [SERVICE...]
set -euo pipefail

case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
compose_file="$root/docker-compose.monitoring.yml"

if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  compose=(docker compose -f "$compose_file")
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose -f "$compose_file")
else
  echo "docker compose is required" >&2
  exit 1
fi

if command -v promtool >/dev/null; then
  promtool check config "$root/monitoring/prometheus/prometheus.yml"
  promtool check config "$root/monitoring/prometheus/prometheus.docker-sd.yml"
fi
if command -v amtool >/dev/null; then
  amtool check-config "$root/monitoring/alertmanager/alertmanager.yml"
fi

"${compose[@]}" pull --ignore-buildable "$@"
"${compose[@]}" up -d "$@"
