#!/usr/bin/env bash
# Tests the monitoring stack configuration. Needs promtool, amtool,
# prometheus, alertmanager (or prometheus-alertmanager),
# prometheus-node-exporter, python3 with PyYAML and curl. No network: every
# server it starts listens on 127.0.0.1 on a free port.
#
# Usage: scripts/test-monitoring.sh
# Prints one line per check and ends with "N passed, M failed"; exits
# non-zero if any check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tmp="$(mktemp -d -t test-monitoring.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

# check NAME COMMAND...: one check, passes when the command exits 0.
check() {
  local name="$1"
  shift
  if "$@" >"$tmp/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$tmp/out" | tail -n 40
  fi
}

# suite NAME COMMAND...: a script that counts its own checks and prints
# "...: N passed, M failed" last; its counts are added.
suite() {
  local name="$1" line p f rc=0
  shift
  "$@" >"$tmp/suite" 2>&1 || rc=$?
  line="$(grep -E '[0-9]+ passed, [0-9]+ failed' "$tmp/suite" | tail -n 1 || true)"
  p="$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/')"
  f="$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/')"
  if [ -z "$line" ]; then p=0; f=1; fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -eq 0 ]; then
    echo "ok   $name ($p checks)"
  else
    echo "FAIL $name ($p passed, $f failed)"
    grep -v '^ok ' "$tmp/suite" | sed 's/^/     /' | tail -n 60
  fi
}

# expect_fail NAME COMMAND...: passes when the command fails (checker self-tests).
expect_fail() {
  local name="$1"
  shift
  if "$@" >"$tmp/out" 2>&1; then
    failed=$((failed + 1))
    echo "FAIL $name (command unexpectedly succeeded)"
  else
    passed=$((passed + 1))
    echo "ok   $name"
  fi
}

start=$(date +%s)

echo "== 1. promtool"
check "promtool check config monitoring/prometheus/prometheus.yml" \
  promtool check config monitoring/prometheus/prometheus.yml
# The compose stack's configuration (targets from container labels); the
# static prometheus.yml above is its fallback.
check "promtool check config monitoring/prometheus/prometheus.docker-sd.yml" \
  promtool check config monitoring/prometheus/prometheus.docker-sd.yml
for f in monitoring/prometheus/rules/*.yml; do
  check "promtool check rules $f" promtool check rules "$f"
done
check "generated test files are up to date (cases.py --check)" python3 monitoring/prometheus/tests/cases.py --check
# Unit tests, two files at a time (each file is independent).
mkdir -p "$tmp/unit"
(cd monitoring/prometheus/tests && printf '%s\n' *.yml |
  xargs -P 2 -I{} sh -c 'promtool test rules "$1" >"$2/$1.out" 2>&1; echo $? >"$2/$1.rc"' _ {} "$tmp/unit")
for f in monitoring/prometheus/tests/*.yml; do
  b="$(basename "$f")"
  check "promtool test rules $f" sh -c "cat '$tmp/unit/$b.out'; exit \$(cat '$tmp/unit/$b.rc')"
done

echo "== 2. alert coverage"
check "every alert has a firing and a not-firing test, labels and annotations" python3 scripts/check-alert-coverage.py
# Self-test: drop the not-firing cases of one alert -> the checker must fail.
python3 - "$tmp/partial.yml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open("monitoring/prometheus/tests/livetranslate-availability.test.yml"))
for t in doc["tests"]:
    t["alert_rule_test"] = [c for c in t["alert_rule_test"] if not (c["alertname"] == "ServiceDown" and not c["exp_alerts"])]
yaml.safe_dump(doc, open(sys.argv[1], "w"))
PY
expect_fail "coverage checker rejects an alert without a not-firing test" \
  python3 scripts/check-alert-coverage.py --tests "$tmp/partial.yml" \
  $(ls monitoring/prometheus/tests/*.yml | grep -v livetranslate-availability)

echo "== 3. alertmanager config and routing"
check "amtool check-config monitoring/alertmanager/alertmanager.yml" \
  amtool check-config monitoring/alertmanager/alertmanager.yml
suite "amtool config routes test cases" bash scripts/test-alertmanager-routes.sh

echo "== 4. live Alertmanager: grouping, inhibition, silences"
suite "live Alertmanager" python3 scripts/test-alertmanager-live.py

echo "== 5. live Prometheus: expressions and rules"
suite "live Prometheus" python3 scripts/test-prometheus-live.py --external-names-out "$tmp/external-names.txt"

echo "== 6. Grafana"
check "dashboards are up to date (dashboards.py --check)" python3 monitoring/grafana/dashboards.py --check
check "provisioning and dashboard JSON valid" python3 scripts/check-grafana.py

echo "== 7. compose structure"
suite "docker-compose.monitoring.yml" python3 scripts/check-compose.py

echo "== 8. metric names"
if [ -s "$tmp/external-names.txt" ]; then
  check "metric names exist (catalogue, recording rules, real exporters)" \
    python3 scripts/check-metric-names.py --external "$tmp/external-names.txt"
else
  check "metric names exist (catalogue, recording rules, exporter prefixes)" python3 scripts/check-metric-names.py
fi
cat >"$tmp/bogus.yml" <<'YAML'
groups:
  - name: bogus
    rules:
      - alert: Bogus
        expr: livetranslate_no_such_metric_total > 0 or http_server_request_duration_seconds_count{http_status="500"} > 0
YAML
expect_fail "metric-name checker rejects unknown names and labels" \
  python3 scripts/check-metric-names.py --rules "$tmp/bogus.yml" --dashboards
printf 'http_server_request_duration_seconds_bucket\n' >"$tmp/scraped.txt"
expect_fail "metric-name checker --scraped rejects catalogue names not scraped" \
  python3 scripts/check-metric-names.py --scraped "$tmp/scraped.txt"

echo "== 9. scripts"
for s in scripts/*.sh; do
  check "bash -n $s" bash -n "$s"
done
for s in backup update reload run-local-stack; do
  check "scripts/$s.sh --help" bash "scripts/$s.sh" --help
done

echo "time: $(( $(date +%s) - start ))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
