#!/usr/bin/env bash
# Checks that every case in monitoring/alertmanager/routes.tests reaches the
# expected receiver(s), using `amtool config routes test`.
# Usage: scripts/test-alertmanager-routes.sh [CONFIG] [CASES]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${1:-$root/monitoring/alertmanager/alertmanager.yml}"
cases="${2:-$root/monitoring/alertmanager/routes.tests}"

passed=0
failed=0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  expected="$(printf '%s' "${line%%|*}" | tr -d ' ')"
  labels="${line#*|}"
  # shellcheck disable=SC2086 # labels are deliberately split into words
  if out="$(amtool config routes test --config.file="$config" --verify.receivers="$expected" $labels 2>&1)"; then
    passed=$((passed + 1))
    echo "ok   $expected <- $labels"
  else
    failed=$((failed + 1))
    echo "FAIL expected $expected <- $labels: $out"
  fi
done < "$cases"

echo "routes: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
