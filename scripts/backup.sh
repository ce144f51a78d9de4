#!/usr/bin/env bash
# Backs up the monitoring data volumes and the alert rules (the seed's
# "Backup Strategy" commands).
#
# Usage: scripts/backup.sh [BACKUP_DIR]
#   BACKUP_DIR  where the archives go (default ./backup, or $BACKUP_DIR)
# Environment: COMPOSE_PROJECT_NAME (volume prefix; default: the repo
#   directory name, as docker compose does), VOLUMES (default
#   "prometheus-data grafana-data").
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${BACKUP_DIR:-$root/backup}}"
project="${COMPOSE_PROJECT_NAME:-$(basename "$root")}"
stamp="$(date +%Y%m%d)"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

command -v docker >/dev/null || { echo "docker is required for the volume backups" >&2; exit 1; }

for volume in ${VOLUMES:-prometheus-data grafana-data}; do
  name="${volume%-data}"
  echo "backing up volume ${project}_${volume} -> $dest/${name}-${stamp}.tar.gz"
  docker run --rm -v "${project}_${volume}:/data:ro" -v "$dest:/backup" busybox \
    tar czf "/backup/${name}-${stamp}.tar.gz" /data
done

echo "backing up alert rules -> $dest/alert-rules-${stamp}.tar.gz"
tar czf "$dest/alert-rules-${stamp}.tar.gz" -C "$root" monitoring/prometheus/rules
echo "done"
