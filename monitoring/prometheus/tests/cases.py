#!/usr/bin/env python3
"""Unit-test cases for the LiveTranslate alerting rules.

This file is the hand-written source of the promtool test files in this
directory: every case lists its input series, the evaluation times and the
exact alerts expected at each time (labels and annotations written out here,
not derived from the rules). Running it rewrites the `*.test.yml` files:

    python3 monitoring/prometheus/tests/cases.py          # regenerate
    python3 monitoring/prometheus/tests/cases.py --check  # fail if stale

Only the `runbook_url` annotation is filled in from the alert name, following
the convention checked by scripts/check-alert-coverage.py.

Each alert has at least one case where it fires and one where it stays quiet
(below its threshold, or still pending inside its `for:`).
"""
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RUNBOOK = "https://example.invalid/livetranslate/telemetry/blob/main/monitoring/runbooks.md#"

HOSTS = {
    "orchestration": "orchestration-service:3000",
    "audio": "audio-service:5001",
    "translation": "translation-service:5003",
    "livetranslate-agent": "livetranslate-agent:9080",
    "node-exporter": "node-exporter:9100",
    "prometheus": "localhost:9090",
    "alertmanager": "alertmanager:9093",
    "loki": "loki:3100",
    "grafana": "grafana:3000",
}
APP_JOBS = ("orchestration", "audio", "translation")

CRIT, WARN, INFO = "critical", "warning", "info"


def tgt(job, **extra):
    """Labels Prometheus attaches to a target of `job` (see prometheus.yml)."""
    d = {"job": job, "instance": HOSTS[job], "service": job,
         "environment": "production", "cluster": "livetranslate"}
    d.update(extra)
    return d


def app(svc, **extra):
    """Labels of a series exposed by a LiveTranslate service."""
    d = tgt(svc, version="0.1.0")
    d.update(extra)
    return d


def agg(svc, **extra):
    """Labels left after `sum by (cluster, environment, service, ...)`."""
    d = {"service": svc, "environment": "production", "cluster": "livetranslate"}
    d.update(extra)
    return d


def s(metric, labels, values):
    body = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()))
    return {"series": "%s{%s}" % (metric, body), "values": values}


def hist(metric, labels, counts):
    """Histogram buckets; counts maps le -> increment per minute (cumulative)."""
    out = []
    for le, per_min in counts:
        out.append(s(metric + "_bucket", dict(labels, le=le), "0+%sx120" % per_min))
    out.append(s(metric + "_count", labels, "0+%sx120" % counts[-1][1]))
    return out


HTTP = "http_server_request_duration_seconds"
LES = ["0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]


def latency(svc, lo, per_min=60, route="/api/translate", **extra):
    """All requests of `svc` take between bucket `lo` and the next bucket."""
    labels = app(svc, http_request_method="POST", http_route=route,
                 http_response_status_code="200", **extra)
    counts = [(le, per_min if LES.index(le) > LES.index(lo) else 0) for le in LES]
    return hist(HTTP, labels, counts)


def req(svc, status, values, route="/api/sessions", method="GET", job=None):
    labels = app(svc, http_request_method=method, http_route=route,
                 http_response_status_code=status)
    if job:
        labels["job"] = job
    return s(HTTP + "_count", labels, values)


def fire(labels, summary, description):
    return {"labels": labels, "summary": summary, "description": description}


CASES = {}  # rule group -> list of (alert, interval, series, [(time, [fire...])])


def case(group, alert, series, checks, interval="1m"):
    CASES.setdefault(group, []).append((alert, interval, series, checks))


# =============================================================================
G = "livetranslate-availability"

case(G, "ServiceDown", [
    s("up", tgt("orchestration"), "0x8"),
    s("up", tgt("audio"), "1x8"),
], [("15s", []),
    ("30s", [fire(tgt("orchestration", severity=CRIT), "orchestration is down",
                  "Prometheus has failed to scrape orchestration at orchestration-service:3000 for more than 30 seconds.")])],
    interval="15s")

case(G, "ServiceTargetMissing", [
    s("up", tgt("orchestration"), "1x20"),
    s("up", tgt("audio"), "1x20"),
], [("3m", []),
    ("10m", [fire({"job": "translation", "service": "translation", "severity": WARN},
                  "No scrape target for translation",
                  "Prometheus has no target for job translation: the scrape configuration or service discovery lost the service, so none of its alerts can fire.")])])
case(G, "ServiceTargetMissing", [s("up", tgt(j), "1x20") for j in APP_JOBS], [("10m", [])])

case(G, "ServiceRestartingFrequently", [
    s("process_start_time_seconds", app("orchestration"), "100 100 200 300 400 500 500x10"),
], [("10m", [fire(app("orchestration", severity=WARN), "orchestration is restarting repeatedly",
                  "orchestration at orchestration-service:3000 restarted 4 times in the last 30 minutes (crash loop).")])])
case(G, "ServiceRestartingFrequently", [
    s("process_start_time_seconds", app("orchestration"), "100 200 300 400 400x10"),
], [("10m", [])])

case(G, "ServiceUnhealthy", [
    s("livetranslate_health_status", app("orchestration", status="unhealthy"), "1x10"),
    s("livetranslate_health_status", app("orchestration", status="healthy"), "0x10"),
], [("0m", []),
    ("2m", [fire(app("orchestration", status="unhealthy", severity=CRIT), "orchestration reports itself unhealthy",
                 "The health monitor of orchestration at orchestration-service:3000 has reported an overall unhealthy status for more than 1 minute.")])])
case(G, "ServiceUnhealthy", [
    s("livetranslate_health_status", app("orchestration", status="unhealthy"), "0x10"),
    s("livetranslate_health_status", app("orchestration", status="healthy"), "1x10"),
], [("5m", [])])

case(G, "ServiceDegraded", [
    s("livetranslate_health_status", app("audio", status="degraded"), "1x10"),
], [("3m", []),
    ("6m", [fire(app("audio", status="degraded", severity=WARN), "audio reports itself degraded",
                 "The health monitor of audio at audio-service:5001 has reported a degraded status for more than 5 minutes.")])])
case(G, "ServiceDegraded", [
    s("livetranslate_health_status", app("audio", status="degraded"), "0x10"),
    s("livetranslate_health_status", app("audio", status="unhealthy"), "1x10"),
], [("8m", [])])

case(G, "ServiceMetricsScrapeSlow", [
    s("scrape_duration_seconds", tgt("audio"), "6x20"),
], [("5m", []),
    ("12m", [fire(tgt("audio", severity=WARN), "audio metrics endpoint is slow",
                  "Scraping /api/metrics of audio at audio-service:5001 takes 6s (scrape timeout is 10s).")])])
case(G, "ServiceMetricsScrapeSlow", [s("scrape_duration_seconds", tgt("audio"), "5x20")], [("15m", [])])

case(G, "ServiceMetricsCardinalityHigh", [
    s("scrape_samples_scraped", tgt("translation"), "25000x30"),
], [("10m", []),
    ("20m", [fire(tgt("translation", severity=WARN), "translation exposes too many series",
                  "translation at translation-service:5003 exposes 25000 samples per scrape; a label (for example an http_route that is not a template) is probably unbounded.")])])
case(G, "ServiceMetricsCardinalityHigh", [s("scrape_samples_scraped", tgt("translation"), "20000x30")], [("20m", [])])

case(G, "ServiceVersionMismatch", [
    s("livetranslate_build_info", app("orchestration"), "1x40"),
    s("livetranslate_build_info", app("orchestration", version="0.2.0",
                                      instance="orchestration-service-2:3000"), "1x40"),
], [("20m", []),
    ("35m", [fire(agg("orchestration", severity=INFO), "orchestration runs 2 different versions",
                  "orchestration in production has run 2 versions side by side for 30 minutes: a rollout is stuck or was abandoned half way.")])])
case(G, "ServiceVersionMismatch", [
    s("livetranslate_build_info", app("orchestration"), "1x40"),
    s("livetranslate_build_info", app("orchestration",
                                      instance="orchestration-service-2:3000"), "1x40"),
], [("35m", [])])

# =============================================================================
G = "livetranslate-error-rates"


def ratio_case(alert, ok_per_min, err_per_min, err_status="500", n=40, svc="orchestration", route="/api/sessions"):
    return [req(svc, "200", "0+%sx%d" % (ok_per_min, n), route=route),
            req(svc, err_status, "0+%sx%d" % (err_per_min, n), route=route)]


case(G, "HighErrorRate", ratio_case("HighErrorRate", 48, 12), [
    ("3m", []),
    ("10m", [fire(agg("orchestration", severity=CRIT, family="error_rate"), "orchestration error rate above 10%",
                  "20% of the HTTP requests to orchestration ended with a 5xx status over the last 5 minutes.")])])
case(G, "HighErrorRate", ratio_case("HighErrorRate", 91, 9), [("15m", [])])

case(G, "ElevatedErrorRate", ratio_case("ElevatedErrorRate", 94, 6), [
    ("5m", []),
    ("15m", [fire(agg("orchestration", severity=WARN, family="error_rate"), "orchestration error rate above 5%",
                  "6% of the HTTP requests to orchestration ended with a 5xx status over the last 5 minutes.")])])
case(G, "ElevatedErrorRate", ratio_case("ElevatedErrorRate", 96, 4), [("20m", [])])

case(G, "RouteHighErrorRate", ratio_case("RouteHighErrorRate", 30, 30, route="/api/translate") + [
    req("orchestration", "200", "0+60x40", route="/api/health")], [
    ("5m", []),
    ("15m", [fire(agg("orchestration", http_route="/api/translate", severity=WARN),
                  "orchestration route /api/translate is failing",
                  "50% of the requests to /api/translate on orchestration ended with a 5xx status over the last 5 minutes.")])])
# 100 % errors but only 0.05 requests/s: below the minimum traffic.
case(G, "RouteHighErrorRate", [req("orchestration", "500", "0+3x40", route="/api/translate")], [("20m", [])])

case(G, "HighClientErrorRate", ratio_case("HighClientErrorRate", 24, 36, err_status="404"), [
    ("10m", []),
    ("20m", [fire(agg("orchestration", severity=WARN), "orchestration rejects many requests with 4xx",
                  "60% of the requests to orchestration ended with a 4xx status: a client release, an expired credential or an API change broke callers.")])])
case(G, "HighClientErrorRate", ratio_case("HighClientErrorRate", 45, 15, err_status="404"), [("25m", [])])

case(G, "ErrorBudgetBurnFast", ratio_case("ErrorBudgetBurnFast", 98, 2, n=120), [
    ("1m", []),
    ("10m", [fire(agg("orchestration", severity=CRIT, family="error_budget"),
                  "orchestration burns its error budget 14x too fast",
                  "orchestration has a 1h error ratio of 2%; at this rate the 30-day 99.9% availability budget is gone in about 2 days.")])])
case(G, "ErrorBudgetBurnFast", ratio_case("ErrorBudgetBurnFast", 99, 1, n=120), [("90m", [])])

case(G, "ErrorBudgetBurnSlow", ratio_case("ErrorBudgetBurnSlow", 99, 1, n=60), [
    ("10m", []),
    ("30m", [fire(agg("orchestration", severity=WARN, family="error_budget"),
                  "orchestration burns its error budget 6x too fast",
                  "orchestration has a 6h error ratio of 1%; at this rate the 30-day 99.9% availability budget is gone in about 5 days.")])])
case(G, "ErrorBudgetBurnSlow", ratio_case("ErrorBudgetBurnSlow", 199, 1, n=60), [("40m", [])])

case(G, "UnmatchedRouteTraffic", [req("orchestration", "404", "0+120x40", route="unmatched")], [
    ("10m", []),
    ("20m", [fire(agg("orchestration", severity=INFO), "orchestration receives requests for unknown routes",
                  "orchestration receives 2 requests/s that match no route (scanner, misconfigured client or a removed endpoint).")])])
case(G, "UnmatchedRouteTraffic", [req("orchestration", "404", "0+60x40", route="unmatched")], [("25m", [])])

# =============================================================================
G = "livetranslate-latency"

case(G, "ServiceHighLatencyP99", latency("translation", "2.5"), [
    ("5m", []),
    ("15m", [fire(agg("translation", severity=WARN), "translation p99 latency above 2.5s",
                  "The 99th percentile HTTP latency of translation is 4.975s over the last 5 minutes.")])])
case(G, "ServiceHighLatencyP99", latency("translation", "1"), [("20m", [])])


def step_latency(svc, slow_from_min, n=120):
    """Requests in (0.1, 0.25] until `slow_from_min`, then in (1, 2.5]."""
    labels = app(svc, http_request_method="POST", http_route="/api/translate", http_response_status_code="200")
    fast_total = 60 * slow_from_min
    fast = "0+60x%d %d+0x%d" % (slow_from_min, fast_total, n - slow_from_min - 1)
    out = []
    for le in LES:
        if le == "0.1":
            vals = "0x%d" % n
        elif le in ("0.25", "0.5", "1"):
            vals = fast
        else:
            vals = "0+60x%d" % n
        out.append(s(HTTP + "_bucket", dict(labels, le=le), vals))
    out.append(s(HTTP + "_count", labels, "0+60x%d" % n))
    return out


case(G, "PerformanceDegradation", step_latency("translation", 60), [
    ("65m", []),
    ("80m", [fire(agg("translation", severity=WARN), "translation is getting slower",
                  "The p95 latency of translation over 5 minutes (2.425s) is more than twice its p95 of the hour before the last one.")])])
case(G, "PerformanceDegradation", step_latency("translation", 119), [("100m", [])])

case(G, "RouteHighLatency", latency("translation", "2.5"), [
    ("5m", []),
    ("15m", [fire(agg("translation", http_route="/api/translate", severity=WARN),
                  "translation route /api/translate is slow",
                  "The p95 latency of /api/translate on translation is 4.875s over the last 5 minutes.")])])
# Slow, but only 0.05 requests/s.
case(G, "RouteHighLatency", latency("translation", "2.5", per_min=3), [("20m", [])])

case(G, "AudioServiceHighLatency", latency("audio", "0.5"), [
    ("3m", []),
    ("10m", [fire(agg("audio", severity=WARN), "audio service p95 latency above 500ms",
                  "The p95 latency of the audio service is 975ms; real-time transcription falls behind the speaker.")])])
case(G, "AudioServiceHighLatency", latency("audio", "0.25"), [("15m", [])])

case(G, "TranslationServiceHighLatency", latency("translation", "1"), [
    ("5m", []),
    ("15m", [fire(agg("translation", severity=WARN), "translation service p95 latency above 2s",
                  "The p95 latency of the translation service is 2.425s; subtitles lag behind the audio.")])])
case(G, "TranslationServiceHighLatency", latency("translation", "0.5"), [("20m", [])])

case(G, "HttpActiveRequestsHigh", [
    s("http_server_active_requests", app("orchestration", http_request_method="GET"), "150x20"),
    s("http_server_active_requests", app("orchestration", http_request_method="POST"), "100x20"),
], [("3m", []),
    ("10m", [fire(agg("orchestration", severity=WARN), "orchestration has 250 requests in flight",
                  "250 HTTP requests have been in flight on orchestration for 5 minutes: requests pile up behind a slow dependency or a lock.")])])
case(G, "HttpActiveRequestsHigh", [
    s("http_server_active_requests", app("orchestration", http_request_method="GET"), "100x20"),
    s("http_server_active_requests", app("orchestration", http_request_method="POST"), "100x20"),
], [("10m", [])])

# =============================================================================
G = "livetranslate-api-gateway"

case(G, "ApiGatewayHighLatency", latency("orchestration", "1"), [
    ("3m", []),
    ("10m", [fire(agg("orchestration", severity=WARN, family="gateway_latency"), "API gateway p95 latency above 1s",
                  "The p95 latency of the orchestration API gateway is 2.425s over the last 5 minutes.")])])
case(G, "ApiGatewayHighLatency", latency("orchestration", "0.5"), [("10m", [])])

case(G, "ApiGatewayLatencyCritical", latency("orchestration", "2.5"), [
    ("3m", []),
    ("10m", [fire(agg("orchestration", severity=CRIT, family="gateway_latency"), "API gateway p95 latency above 2.5s",
                  "The p95 latency of the orchestration API gateway is 4.875s over the last 5 minutes; clients time out.")])])
case(G, "ApiGatewayLatencyCritical", latency("orchestration", "1"), [("10m", [])])

case(G, "ApiGatewayUpstreamErrors", ratio_case("ApiGatewayUpstreamErrors", 54, 6, err_status="502"), [
    ("3m", []),
    ("10m", [fire(agg("orchestration", severity=WARN), "API gateway cannot reach its upstreams",
                  "10% of the gateway's responses are 502/503/504: an upstream service is down, overloaded or timing out.")])])
case(G, "ApiGatewayUpstreamErrors", ratio_case("ApiGatewayUpstreamErrors", 48, 2, err_status="504"), [("10m", [])])

case(G, "ApiGatewayNoTraffic", [req("orchestration", "200", "100x40")], [
    ("10m", []),
    ("20m", [fire(agg("orchestration", severity=WARN), "API gateway receives no requests",
                  "The orchestration gateway in production has handled no request for 15 minutes while it is up: DNS, load balancer or ingress is sending traffic elsewhere.")])])
case(G, "ApiGatewayNoTraffic", [req("orchestration", "200", "100+1x40")], [("20m", [])])


def breaker(svc, upstream, open_vals, closed_vals="0x20", half_vals="0x20"):
    return [s("livetranslate_circuit_breaker_state", app(svc, upstream=upstream, state="open"), open_vals),
            s("livetranslate_circuit_breaker_state", app(svc, upstream=upstream, state="closed"), closed_vals),
            s("livetranslate_circuit_breaker_state", app(svc, upstream=upstream, state="half_open"), half_vals)]


case(G, "CircuitBreakerOpen", breaker("orchestration", "translation-service", "1x20"), [
    ("0m", []),
    ("2m", [fire(agg("orchestration", upstream="translation-service", severity=WARN, family="circuit_breaker"),
                 "Circuit breaker orchestration -> translation-service is open",
                 "orchestration stopped calling translation-service because too many calls failed; requests that need it are rejected.")])])
case(G, "CircuitBreakerOpen", breaker("orchestration", "translation-service", "0x20", closed_vals="1x20"), [("5m", [])])

case(G, "CircuitBreakerStuckOpen", breaker("orchestration", "translation-service", "1x20"), [
    ("5m", []),
    ("12m", [fire(agg("orchestration", upstream="translation-service", severity=CRIT, family="circuit_breaker"),
                  "Circuit breaker orchestration -> translation-service open for 10 minutes",
                  "translation-service has not recovered for 10 minutes; every call from orchestration to it is rejected.")])])
# Open for 9 minutes, then closed: never reaches the 10 minutes.
case(G, "CircuitBreakerStuckOpen", breaker("orchestration", "translation-service", "1x8 0x11", closed_vals="0x8 1x11"),
     [("9m", []), ("12m", [])])

case(G, "CircuitBreakerHalfOpenStuck", breaker("orchestration", "audio-service", "0x20", half_vals="1x20"), [
    ("3m", []),
    ("6m", [fire(agg("orchestration", upstream="audio-service", severity=WARN),
                 "Circuit breaker orchestration -> audio-service stuck half-open",
                 "The breaker has been half-open for 5 minutes: no trial call completes, so it neither closes nor re-opens.")])])
case(G, "CircuitBreakerHalfOpenStuck", breaker("orchestration", "audio-service", "0x20", closed_vals="0x3 1x16",
                                               half_vals="1x3 0x16"), [("5m", [])])

case(G, "CircuitBreakerFlapping", [
    s("livetranslate_circuit_breaker_transitions_total",
      app("orchestration", upstream="audio-service", **{"from": "closed", "to": "open"}), "0 1 1 2 2 3 3 4 4x30"),
], [("10m", [fire(agg("orchestration", upstream="audio-service", severity=WARN),
                  "Circuit breaker orchestration -> audio-service is flapping",
                  "The breaker opened 4 times in 30 minutes: audio-service fails intermittently.")])])
case(G, "CircuitBreakerFlapping", [
    s("livetranslate_circuit_breaker_transitions_total",
      app("orchestration", upstream="audio-service", **{"from": "closed", "to": "open"}), "0 1 1 2 2 3 3x30"),
    s("livetranslate_circuit_breaker_transitions_total",
      app("orchestration", upstream="audio-service", **{"from": "open", "to": "half_open"}), "0 0 1 1 2 2 3x30"),
], [("10m", [])])

case(G, "CircuitBreakerRejectedCallsHigh", [
    s("livetranslate_circuit_breaker_rejected_calls_total", app("orchestration", upstream="translation-service"), "0+600x20"),
], [("3m", []),
    ("10m", [fire(agg("orchestration", upstream="translation-service", severity=WARN),
                  "orchestration rejects calls to translation-service",
                  "The breaker to translation-service rejects 10 calls/s on orchestration.")])])
case(G, "CircuitBreakerRejectedCallsHigh", [
    s("livetranslate_circuit_breaker_rejected_calls_total", app("orchestration", upstream="translation-service"), "0+300x20"),
], [("10m", [])])

# =============================================================================
G = "livetranslate-websocket"
WS = "livetranslate_websocket_connections"

case(G, "WebSocketConnectionsOverload", [s(WS, app("orchestration"), "9600x10")], [
    ("0m", []),
    ("2m", [fire(app("orchestration", severity=CRIT, family="websocket_capacity"),
                 "orchestration has 9600 WebSocket connections",
                 "orchestration at orchestration-service:3000 holds more than 9500 WebSocket connections; new clients are refused at the limit.")])])
case(G, "WebSocketConnectionsOverload", [s(WS, app("orchestration"), "9500x10")], [("5m", [])])

case(G, "WebSocketConnectionsHigh", [s(WS, app("orchestration"), "8500x20"),
                                     s(WS + "_limit", app("orchestration"), "10000x20")], [
    ("5m", []),
    ("15m", [fire(app("orchestration", severity=WARN, family="websocket_capacity"),
                  "orchestration WebSocket connections above 80% of the limit",
                  "orchestration at orchestration-service:3000 uses 85% of its WebSocket connection limit.")])])
case(G, "WebSocketConnectionsHigh", [s(WS, app("orchestration"), "8000x20"),
                                     s(WS + "_limit", app("orchestration"), "10000x20")], [("15m", [])])

case(G, "WebSocketConnectionsRejected", [s(WS + "_rejected_total", app("orchestration"), "0 0 0 5 10 10x10")], [
    ("5m", [fire(app("orchestration", severity=CRIT, family="websocket_capacity"),
                 "orchestration refuses WebSocket connections",
                 "orchestration at orchestration-service:3000 refused 10 WebSocket connections in 5 minutes because its limit was reached.")])])
case(G, "WebSocketConnectionsRejected", [s(WS + "_rejected_total", app("orchestration"), "7x10")], [("5m", [])])

case(G, "WebSocketMassDisconnect", [s(WS, app("orchestration"), "1000x5 400x10")], [
    ("3m", []),
    ("7m", [fire(app("orchestration", severity=WARN), "orchestration lost most of its WebSocket connections",
                 "orchestration at orchestration-service:3000 has 400 WebSocket connections, less than half of what it had 5 minutes ago.")])])
case(G, "WebSocketMassDisconnect", [s(WS, app("orchestration"), "1000x5 600x10")], [("7m", [])])

case(G, "WebSocketReconnectStorm", [s(WS + "_opened_total", app("orchestration"), "0+600x30"),
                                    s(WS, app("orchestration"), "1000x30")], [
    ("5m", []),
    ("15m", [fire(app("orchestration", severity=WARN), "orchestration WebSocket clients keep reconnecting",
                  "orchestration accepted 3k WebSocket connections in 5 minutes, more than twice the number open: connections are being dropped and re-established.")])])
case(G, "WebSocketReconnectStorm", [s(WS + "_opened_total", app("orchestration"), "0+600x30"),
                                    s(WS, app("orchestration"), "1600x30")], [("15m", [])])

case(G, "WebSocketLimitBelowAlertThreshold", [s(WS + "_limit", app("orchestration"), "9000x90")], [
    ("30m", []),
    ("70m", [fire(app("orchestration", severity=INFO), "orchestration WebSocket limit is 9000",
                  "The connection limit of orchestration is at or below the 9500 overload threshold, so WebSocketConnectionsOverload cannot warn before clients are refused.")])])
case(G, "WebSocketLimitBelowAlertThreshold", [s(WS + "_limit", app("orchestration"), "10000x90")], [("70m", [])])

# =============================================================================
G = "livetranslate-resources"
NODE = tgt("node-exporter")


def cpu(idle_per_min, n=30):
    return [s("node_cpu_seconds_total", dict(NODE, cpu=c, mode="idle"), "0+%sx%d" % (idle_per_min, n))
            for c in ("0", "1")] + [
            s("node_cpu_seconds_total", dict(NODE, cpu=c, mode="user"), "0+%sx%d" % (60 - idle_per_min, n))
            for c in ("0", "1")]


case(G, "HostHighCpuUsage", cpu(6), [
    ("3m", []),
    ("10m", [fire(dict(NODE, severity=CRIT, family="cpu"), "CPU usage above 80% on node-exporter:9100",
                  "CPU utilisation of node-exporter:9100 is 90% over the last 5 minutes.")])])
case(G, "HostHighCpuUsage", cpu(15), [("15m", [])])

case(G, "HostCpuPressure", cpu(15), [
    ("10m", []),
    ("20m", [fire(dict(NODE, severity=WARN, family="cpu"), "CPU usage above 70% on node-exporter:9100",
                  "CPU utilisation of node-exporter:9100 has stayed at 75% for 15 minutes.")])])
case(G, "HostCpuPressure", cpu(21), [("25m", [])])


def mem(avail):
    return [s("node_memory_MemAvailable_bytes", NODE, "%sx30" % avail),
            s("node_memory_MemTotal_bytes", NODE, "10000000000x30")]


case(G, "HostHighMemoryUsage", mem(1000000000), [
    ("3m", []),
    ("10m", [fire(dict(NODE, severity=CRIT, family="memory"), "Memory usage above 85% on node-exporter:9100",
                  "90% of the memory of node-exporter:9100 is in use.")])])
case(G, "HostHighMemoryUsage", mem(2000000000), [("10m", [])])

case(G, "HostMemoryPressure", mem(2000000000), [
    ("10m", []),
    ("20m", [fire(dict(NODE, severity=WARN, family="memory"), "Memory usage above 75% on node-exporter:9100",
                  "80% of the memory of node-exporter:9100 has been in use for 15 minutes.")])])
case(G, "HostMemoryPressure", mem(3000000000), [("20m", [])])

ROOTFS = dict(NODE, device="/dev/sda1", fstype="ext4", mountpoint="/")
RUNFS = dict(NODE, device="tmpfs", fstype="tmpfs", mountpoint="/run")


def disk(avail, n=30):
    # /run is a tmpfs at 99 %: excluded by the fstype filter.
    return [s("node_filesystem_avail_bytes", ROOTFS, "%sx%d" % (avail, n)),
            s("node_filesystem_size_bytes", ROOTFS, "100000000000x%d" % n),
            s("node_filesystem_avail_bytes", RUNFS, "1000000x%d" % n),
            s("node_filesystem_size_bytes", RUNFS, "100000000x%d" % n)]


case(G, "HostDiskSpaceCritical", disk(5000000000), [
    ("3m", []),
    ("10m", [fire(dict(ROOTFS, severity=CRIT, family="disk"), "Disk usage above 90% on node-exporter:9100 /",
                  "/ on node-exporter:9100 is 95% full.")])])
case(G, "HostDiskSpaceCritical", disk(15000000000), [("10m", [])])

case(G, "HostDiskSpaceLow", disk(15000000000), [
    ("10m", []),
    ("20m", [fire(dict(ROOTFS, severity=WARN, family="disk"), "Disk usage above 80% on node-exporter:9100 /",
                  "/ on node-exporter:9100 is 85% full.")])])
case(G, "HostDiskSpaceLow", disk(25000000000), [("20m", [])])

case(G, "HostDiskWillFillIn24Hours", [
    s("node_filesystem_avail_bytes", ROOTFS, "40000000000-100000000x120"),
    s("node_filesystem_size_bytes", ROOTFS, "100000000000x120"),
], [("30m", []),
    ("90m", [fire(dict(ROOTFS, severity=WARN), "/ on node-exporter:9100 fills up within 24 hours",
                  "At the growth rate of the last 6 hours / on node-exporter:9100 runs out of space within a day.")])])
case(G, "HostDiskWillFillIn24Hours", [
    s("node_filesystem_avail_bytes", ROOTFS, "40000000000-1000000x120"),
    s("node_filesystem_size_bytes", ROOTFS, "100000000000x120"),
], [("90m", [])])

case(G, "HostInodesLow", [s("node_filesystem_files_free", ROOTFS, "50000x30"),
                          s("node_filesystem_files", ROOTFS, "1000000x30")], [
    ("10m", []),
    ("20m", [fire(dict(ROOTFS, severity=WARN), "Few inodes left on node-exporter:9100 /",
                  "Only 5% of the inodes of / are free (many small files, e.g. log chunks).")])])
case(G, "HostInodesLow", [s("node_filesystem_files_free", ROOTFS, "200000x30"),
                          s("node_filesystem_files", ROOTFS, "1000000x30")], [("20m", [])])

case(G, "HostOomKillDetected", [s("node_vmstat_oom_kill", NODE, "0 0 0 1 1x20")], [
    ("5m", [fire(dict(NODE, severity=WARN), "OOM kill on node-exporter:9100",
                 "The kernel killed 1 processes for lack of memory on node-exporter:9100 in the last 15 minutes.")])])
case(G, "HostOomKillDetected", [s("node_vmstat_oom_kill", NODE, "3x20")], [("5m", [])])

case(G, "HostHighLoad", [s("node_load5", NODE, "6x30")] + cpu(30), [
    ("10m", []),
    ("20m", [fire(dict(NODE, severity=WARN), "Load above 2 per CPU on node-exporter:9100",
                  "The 5-minute load average per CPU of node-exporter:9100 is 3: processes wait for CPU or I/O.")])])
case(G, "HostHighLoad", [s("node_load5", NODE, "4x30")] + cpu(30), [("20m", [])])

ETH0 = dict(NODE, device="eth0")
case(G, "HostNetworkReceiveErrors", [s("node_network_receive_errs_total", ETH0, "0+120x30"),
                                     s("node_network_receive_packets_total", ETH0, "0+6000x30")], [
    ("5m", []),
    ("15m", [fire(dict(ETH0, severity=WARN), "Network receive errors on node-exporter:9100 eth0",
                  "2% of the packets received on eth0 are errors.")])])
case(G, "HostNetworkReceiveErrors", [s("node_network_receive_errs_total", ETH0, "0+30x30"),
                                     s("node_network_receive_packets_total", ETH0, "0+6000x30")], [("15m", [])])

case(G, "HostClockSkew", [s("node_timex_offset_seconds", NODE, "0.1x30")], [
    ("5m", []),
    ("15m", [fire(dict(NODE, severity=WARN), "Clock of node-exporter:9100 is off by 100ms",
                  "The clock of node-exporter:9100 is 100ms away from NTP time; timestamps of logs and metrics become unreliable.")])])
case(G, "HostClockSkew", [s("node_timex_offset_seconds", NODE, "0.04x30")], [("15m", [])])

case(G, "ServiceHighCpuUsage", [s("process_cpu_seconds_total", app("audio"), "0+54x30")], [
    ("5m", []),
    ("15m", [fire(app("audio", severity=WARN), "audio uses more than 80% of a CPU",
                  "audio at audio-service:5001 uses 90% of a CPU core.")])])
case(G, "ServiceHighCpuUsage", [s("process_cpu_seconds_total", app("audio"), "0+45x30")], [("15m", [])])

case(G, "ServiceHighMemoryUsage", [s("process_resident_memory_bytes", app("translation"), "1610612736x30")], [
    ("5m", []),
    ("15m", [fire(app("translation", severity=WARN), "translation uses more than 1 GiB of memory",
                  "translation at translation-service:5003 has a resident set of 1.5GiB.")])])
case(G, "ServiceHighMemoryUsage", [s("process_resident_memory_bytes", app("translation"), "1073741824x30")], [("15m", [])])

case(G, "ServiceMemoryGrowth", [s("process_resident_memory_bytes", app("translation"), "536870912+8388608x90")], [
    ("20m", []),
    ("45m", [fire(app("translation", severity=WARN), "translation memory keeps growing",
                  "At the growth rate of the last hour translation at translation-service:5003 reaches 2.727GiB within 4 hours (leak?).")])])
case(G, "ServiceMemoryGrowth", [s("process_resident_memory_bytes", app("translation"), "536870912+1048576x90")], [("45m", [])])

case(G, "ServiceFileDescriptorsHigh", [s("process_open_fds", app("orchestration"), "850x30"),
                                       s("process_max_fds", app("orchestration"), "1000x30")], [
    ("5m", []),
    ("15m", [fire(app("orchestration", severity=WARN, family="fds"), "orchestration uses 85% of its file descriptors",
                  "orchestration at orchestration-service:3000 has used more than 80% of its file descriptor limit for 10 minutes (each WebSocket holds one).")])])
case(G, "ServiceFileDescriptorsHigh", [s("process_open_fds", app("orchestration"), "800x30"),
                                       s("process_max_fds", app("orchestration"), "1000x30")], [("15m", [])])

case(G, "ServiceFileDescriptorsCritical", [s("process_open_fds", app("orchestration"), "980x30"),
                                           s("process_max_fds", app("orchestration"), "1000x30")], [
    ("1m", []),
    ("5m", [fire(app("orchestration", severity=CRIT, family="fds"),
                 "orchestration is about to run out of file descriptors",
                 "orchestration at orchestration-service:3000 uses 98% of its file descriptor limit; accept() and file opens will fail.")])])
case(G, "ServiceFileDescriptorsCritical", [s("process_open_fds", app("orchestration"), "950x30"),
                                           s("process_max_fds", app("orchestration"), "1000x30")], [("5m", [])])

# =============================================================================
G = "livetranslate-health-monitor"
HC = "livetranslate_health_check_status"

case(G, "HealthCheckFailing", [
    s(HC, app("orchestration", check="database", critical="true", status="unhealthy"), "1x10"),
    s(HC, app("orchestration", check="database", critical="true", status="healthy"), "0x10"),
], [("0m", []),
    ("2m", [fire(app("orchestration", check="database", critical="true", status="unhealthy", severity=CRIT),
                 "Critical health check database of orchestration fails",
                 "The critical check database of orchestration at orchestration-service:3000 has been unhealthy for more than 1 minute.")])])
case(G, "HealthCheckFailing", [
    s(HC, app("orchestration", check="database", critical="true", status="unhealthy"), "0x10"),
    s(HC, app("orchestration", check="database", critical="true", status="healthy"), "1x10"),
    # A non-critical check failing is not this alert.
    s(HC, app("orchestration", check="cache", critical="false", status="unhealthy"), "1x10"),
], [("5m", [])])

case(G, "NonCriticalHealthCheckFailing", [
    s(HC, app("orchestration", check="cache", critical="false", status="unhealthy"), "1x20"),
], [("5m", []),
    ("12m", [fire(app("orchestration", check="cache", critical="false", status="unhealthy", severity=WARN),
                  "Health check cache of orchestration fails",
                  "The non-critical check cache of orchestration at orchestration-service:3000 has been unhealthy for 10 minutes.")])])
case(G, "NonCriticalHealthCheckFailing", [
    s(HC, app("orchestration", check="cache", critical="false", status="unhealthy"), "1x8 0x11"),
], [("10m", [])])

case(G, "HealthCheckDegraded", [
    s(HC, app("translation", check="model", critical="true", status="degraded"), "1x30"),
], [("10m", []),
    ("20m", [fire(app("translation", check="model", critical="true", status="degraded", severity=INFO),
                  "Health check model of translation is degraded",
                  "The check model of translation at translation-service:5003 has reported degraded for 15 minutes.")])])
case(G, "HealthCheckDegraded", [
    s(HC, app("translation", check="model", critical="true", status="degraded"), "0x30"),
], [("20m", [])])

HCF = "livetranslate_health_check_failures_total"
case(G, "HealthCheckFlapping", [
    s(HCF, app("orchestration", check="database", critical="true"), "0 1 1 2 2 3 3 4 4x30"),
    s(HC, app("orchestration", check="database", critical="true", status="unhealthy"), "0x40"),
], [("10m", [fire(agg("orchestration", check="database", severity=WARN),
                  "Health check database of orchestration fails intermittently",
                  "The check database of orchestration failed 4 times in 30 minutes but is not failing now.")])])
case(G, "HealthCheckFlapping", [
    s(HCF, app("orchestration", check="database", critical="true"), "0 1 1 2 2 3 3x30"),
    s(HC, app("orchestration", check="database", critical="true", status="unhealthy"), "0x40"),
], [("10m", [])])
# Failing right now: HealthCheckFailing covers it, not the flapping alert.
case(G, "HealthCheckFlapping", [
    s(HCF, app("orchestration", check="database", critical="true"), "0 1 2 3 4 5 6 7 8x30"),
    s(HC, app("orchestration", check="database", critical="true", status="unhealthy"), "1x40"),
], [("10m", [])])

case(G, "HealthCheckSlow", [
    s("livetranslate_health_check_duration_seconds", app("orchestration", check="database"), "7x20"),
], [("3m", []),
    ("10m", [fire(app("orchestration", check="database", severity=WARN),
                  "Health check database of orchestration is slow",
                  "The check database of orchestration at orchestration-service:3000 takes 7s; it is close to its timeout.")])])
case(G, "HealthCheckSlow", [
    s("livetranslate_health_check_duration_seconds", app("orchestration", check="database"), "5x20"),
], [("10m", [])])

case(G, "HealthStatusMissing", [
    s("up", tgt("orchestration"), "1x30"),
    s("up", tgt("audio"), "1x30"),
    s("livetranslate_health_status", app("orchestration", status="healthy"), "1x30"),
], [("5m", []),
    ("15m", [fire(tgt("audio", severity=WARN), "audio exports no health status",
                  "audio at audio-service:5001 is scraped but has no livetranslate_health_status series: its health monitor is not running.")])])
case(G, "HealthStatusMissing", [
    s("up", tgt("audio"), "1x30"),
    s("livetranslate_health_status", app("audio", status="healthy"), "1x30"),
], [("15m", [])])

# =============================================================================
G = "livetranslate-sessions"


def sessions(created_per_min, failed_per_min, n=40):
    return [s("livetranslate_sessions_created_total", app("orchestration"), "0+%sx%d" % (created_per_min, n)),
            s("livetranslate_sessions_failed_total", app("orchestration", reason="timeout"),
              "0+%sx%d" % (failed_per_min, n))]


case(G, "SessionFailureRateHigh", sessions(60, 9), [
    ("5m", []),
    ("20m", [fire(agg("orchestration", severity=WARN, family="session_failures"),
                  "orchestration session failure rate above 10%",
                  "15% of the sessions of orchestration failed over the last 10 minutes.")])])
case(G, "SessionFailureRateHigh", sessions(100, 8), [("20m", [])])

case(G, "SessionFailureRateCritical", sessions(100, 30), [
    ("3m", []),
    ("15m", [fire(agg("orchestration", severity=CRIT, family="session_failures"),
                  "orchestration session failure rate above 25%",
                  "30% of the sessions of orchestration failed over the last 10 minutes.")])])
case(G, "SessionFailureRateCritical", sessions(100, 20), [("15m", [])])

case(G, "SessionCreationStalled", [
    s("livetranslate_sessions_created_total", app("orchestration"), "500x40"),
    req("orchestration", "200", "0+120x40"),
], [("10m", []),
    ("25m", [fire(agg("orchestration", severity=WARN), "orchestration creates no sessions",
                  "orchestration serves HTTP traffic but has not created a session for 15 minutes.")])])
# Quiet period: 1 request/s is not enough traffic to expect sessions.
case(G, "SessionCreationStalled", [
    s("livetranslate_sessions_created_total", app("orchestration"), "500x40"),
    req("orchestration", "200", "0+60x40"),
], [("25m", [])])

case(G, "SessionLeakSuspected", [
    s("livetranslate_sessions_active", app("orchestration"), "200x60"),
    s("livetranslate_sessions_created_total", app("orchestration"), "1000x60"),
], [("20m", []),
    ("40m", [fire(agg("orchestration", severity=WARN), "orchestration keeps sessions open that never end",
                  "orchestration has 200 open sessions, more than it created in the last 6 hours: sessions are not being closed.")])])
case(G, "SessionLeakSuspected", [
    s("livetranslate_sessions_active", app("orchestration"), "200x60"),
    s("livetranslate_sessions_created_total", app("orchestration"), "0+10x60"),
], [("40m", [])])

case(G, "SessionsMassTermination", [s("livetranslate_sessions_active", app("orchestration"), "300x15 100x15")], [
    ("12m", []),
    ("17m", [fire(agg("orchestration", severity=WARN), "orchestration lost most of its sessions",
                  "orchestration has 100 open sessions, less than half of what it had 10 minutes ago.")])])
case(G, "SessionsMassTermination", [s("livetranslate_sessions_active", app("orchestration"), "300x15 200x15")],
     [("17m", [])])

# =============================================================================
G = "livetranslate-translation-quality"
Q = "livetranslate_translation_quality_score"


def quality(sum_per_min, count_per_min=60, pair="en-de", n=40, svc="translation"):
    return [s(Q + "_sum", app(svc, language_pair=pair), "0+%sx%d" % (sum_per_min, n)),
            s(Q + "_count", app(svc, language_pair=pair), "0+%sx%d" % (count_per_min, n))]


case(G, "TranslationQualityDegraded", quality(36), [
    ("10m", []),
    ("25m", [fire(agg("translation", severity=WARN, family="quality"), "Translation quality on translation below 0.7",
                  "The mean translation quality score of translation is 0.60 over the last 15 minutes.")])])
case(G, "TranslationQualityDegraded", quality(45), [("25m", [])])

case(G, "TranslationQualityCritical", quality(24), [
    ("5m", []),
    ("25m", [fire(agg("translation", severity=CRIT, family="quality"), "Translation quality on translation below 0.5",
                  "The mean translation quality score of translation is 0.40; translations are mostly unusable.")])])
case(G, "TranslationQualityCritical", quality(36), [("25m", [])])

case(G, "LanguagePairQualityDegraded", quality(45, pair="en-de", n=60) + quality(30, pair="en-ja", n=60), [
    ("20m", []),
    ("45m", [fire(agg("translation", language_pair="en-ja", severity=WARN),
                  "Translation quality for en-ja below 0.6",
                  "The mean quality score of en-ja translations on translation is 0.50.")])])
# Poor quality, but only 2 translations a minute.
case(G, "LanguagePairQualityDegraded", quality(1, count_per_min=2, pair="en-ja", n=60), [("45m", [])])

case(G, "TranslationQualityRegression", [
    s(Q + "_sum", app("translation", language_pair="en-de"), "0+54x120 6522+42x59"),
    s(Q + "_count", app("translation", language_pair="en-de"), "0+60x180"),
], [("150m", []),
    ("170m", [fire(agg("translation", severity=WARN), "Translation quality on translation dropped",
                   "The mean quality score of translation over 15 minutes (0.70) is more than 15% below its 6-hour mean (model or prompt change?).")])])
case(G, "TranslationQualityRegression", quality(54, n=180), [("170m", [])])

case(G, "TranslationLowQualityShareHigh", [
    s(Q + "_bucket", app("translation", language_pair="en-de", le="0.5"), "0+18x40"),
    s(Q + "_count", app("translation", language_pair="en-de"), "0+60x40"),
], [("10m", []),
    ("25m", [fire(agg("translation", severity=WARN), "Many poor translations on translation",
                  "30% of the translations of translation score 0.5 or less.")])])
case(G, "TranslationLowQualityShareHigh", [
    s(Q + "_bucket", app("translation", language_pair="en-de", le="0.5"), "0+9x40"),
    s(Q + "_count", app("translation", language_pair="en-de"), "0+60x40"),
], [("25m", [])])

case(G, "TranslationQualityNotReported", [
    req("translation", "200", "0+60x60", route="/api/translate", method="POST"),
    s(Q + "_count", app("translation", language_pair="en-de"), "100x60"),
], [("20m", []),
    ("40m", [fire(agg("translation", severity=WARN), "translation service reports no quality scores",
                  "The translation service serves requests but has recorded no translation quality score for 30 minutes: the scorer is broken or disabled.")])])
case(G, "TranslationQualityNotReported", [
    req("translation", "200", "0+60x60", route="/api/translate", method="POST"),
    s(Q + "_count", app("translation", language_pair="en-de"), "0+30x60"),
], [("40m", [])])

# =============================================================================
G = "livetranslate-agent-pipeline"
AG = tgt("livetranslate-agent")
AGI = {"service": "livetranslate-agent", "environment": "production", "cluster": "livetranslate",
       "instance": "livetranslate-agent:9080"}

case(G, "LogAgentDown", [s("up", AG, "0x10")], [
    ("1m", []),
    ("3m", [fire(dict(AG, severity=WARN), "livetranslate-agent is down",
                 "The agent at livetranslate-agent:9080 has not answered scrapes for 2 minutes: logs are not shipped to Loki and forwarded metrics stop.")])])
case(G, "LogAgentDown", [s("up", AG, "1x10")], [("5m", [])])

case(G, "AgentLokiBatchesFailing", [s("livetranslate_agent_loki_batches_failed_total", AG, "0 0 0 2 2x10")], [
    ("5m", [fire(dict(AG, severity=WARN), "Loki rejects log batches from the agent",
                 "The agent at livetranslate-agent:9080 gave up on 2 batches in 10 minutes after non-retryable errors; those log lines are lost.")])])
case(G, "AgentLokiBatchesFailing", [s("livetranslate_agent_loki_batches_failed_total", AG, "0x10")], [("5m", [])])

case(G, "AgentLokiRetriesHigh", [s("livetranslate_agent_loki_batches_retried_total", AG, "0+12x30"),
                                 s("livetranslate_agent_loki_batches_sent_total", AG, "0+60x30")], [
    ("5m", []),
    ("15m", [fire(dict(AG, severity=WARN), "Agent retries many Loki pushes",
                  "The agent at livetranslate-agent:9080 retried 20% as many Loki pushes as were acknowledged: Loki is slow, rate-limiting or failing.")])])
case(G, "AgentLokiRetriesHigh", [s("livetranslate_agent_loki_batches_retried_total", AG, "0+3x30"),
                                 s("livetranslate_agent_loki_batches_sent_total", AG, "0+60x30")], [("15m", [])])

case(G, "AgentLogLinesDropped", [
    s("livetranslate_agent_log_dropped_lines_total", dict(AG, reason="too_long"), "0+60x30")], [
    ("5m", []),
    ("15m", [fire(dict(AGI, reason="too_long", severity=WARN), "Agent drops log lines (too_long)",
                  "The agent at livetranslate-agent:9080 drops 1 log lines/s for reason too_long.")])])
case(G, "AgentLogLinesDropped", [
    s("livetranslate_agent_log_dropped_lines_total", dict(AG, reason="too_long"), "12x30")], [("15m", [])])

LAG = dict(AG, path="/app/logs/orchestration.log")
case(G, "AgentLogFileLagHigh", [s("livetranslate_agent_log_file_lag_bytes", LAG, "20971520x30")], [
    ("5m", []),
    ("15m", [fire(dict(LAG, severity=WARN), "Agent is behind on /app/logs/orchestration.log",
                  "20MiB of /app/logs/orchestration.log are not yet acknowledged by Loki; logs in Grafana are delayed.")])])
case(G, "AgentLogFileLagHigh", [s("livetranslate_agent_log_file_lag_bytes", LAG, "10485760x30")], [("15m", [])])

case(G, "AgentLokiBufferHigh", [s("livetranslate_agent_loki_buffered_bytes", AG, "104857600x30")], [
    ("5m", []),
    ("15m", [fire(dict(AG, severity=WARN), "Agent buffers 100MiB of logs",
                  "The agent at livetranslate-agent:9080 holds 100MiB of log data that Loki has not acknowledged.")])])
case(G, "AgentLokiBufferHigh", [s("livetranslate_agent_loki_buffered_bytes", AG, "52428800x30")], [("15m", [])])

case(G, "AgentLogsNotShipped", [
    s("livetranslate_agent_log_read_lines_total", LAG, "0+60x40"),
    s("livetranslate_agent_loki_sent_lines_total", AG, "500x40"),
], [("10m", []),
    ("25m", [fire(dict(AGI, severity=WARN), "Agent reads logs but ships none",
                  "The agent at livetranslate-agent:9080 reads log lines but Loki has acknowledged none for 15 minutes.")])])
case(G, "AgentLogsNotShipped", [
    s("livetranslate_agent_log_read_lines_total", LAG, "0+60x40"),
    s("livetranslate_agent_loki_sent_lines_total", AG, "0+60x40"),
], [("25m", [])])

case(G, "AgentNoLogFilesWatched", [s("livetranslate_agent_log_files_watched", AG, "0x30")], [
    ("10m", []),
    ("20m", [fire(dict(AG, severity=WARN), "Agent tails no log file",
                  "The agent at livetranslate-agent:9080 has watched no file for 15 minutes: the input globs match nothing or the log volume is not mounted.")])])
case(G, "AgentNoLogFilesWatched", [s("livetranslate_agent_log_files_watched", AG, "3x30")], [("20m", [])])

TUP = dict(AG, exported_job="agent-audio", exported_instance="audio-service:5001")
case(G, "AgentScrapeTargetDown", [s("livetranslate_agent_target_up", TUP, "0x10")], [
    ("1m", []),
    ("3m", [fire(dict(TUP, severity=WARN), "Agent cannot scrape audio-service:5001",
                 "The agent's scrape of agent-audio at audio-service:5001 has failed for 2 minutes; its forwarded metrics are missing.")])])
case(G, "AgentScrapeTargetDown", [s("livetranslate_agent_target_up", TUP, "1x10")], [("5m", [])])

case(G, "AgentScrapeErrorsIntermittent", [
    s("livetranslate_agent_scrape_errors_total", TUP, "0+1x30"),
    s("livetranslate_agent_target_up", TUP, "1x30"),
], [("20m", [fire(dict(TUP, severity=INFO), "Agent scrapes of audio-service:5001 fail intermittently",
                  "15 scrapes of agent-audio at audio-service:5001 failed in 15 minutes although the target is up now (timeouts?).")])])
case(G, "AgentScrapeErrorsIntermittent", [
    s("livetranslate_agent_scrape_errors_total", TUP, "0 1 2 3 3x30"),
    s("livetranslate_agent_target_up", TUP, "1x30"),
], [("4m", [])])

case(G, "AgentRemoteWriteSamplesDropped", [
    s("livetranslate_agent_remote_write_samples_dropped_total", dict(AG, reason="queue_full"), "0+600x20")], [
    ("3m", []),
    ("10m", [fire(dict(AGI, reason="queue_full", severity=WARN), "Agent drops metric samples (queue_full)",
                  "The agent at livetranslate-agent:9080 drops 10 samples/s for reason queue_full.")])])
case(G, "AgentRemoteWriteSamplesDropped", [
    s("livetranslate_agent_remote_write_samples_dropped_total", dict(AG, reason="queue_full"), "40x20")], [("10m", [])])

QUEUE_FULL = ("The remote-write queue (write-ahead log or memory queue) of the agent at "
              "livetranslate-agent:9080 is filling up; the oldest samples will be dropped when it is full.")
case(G, "AgentRemoteWriteQueueFull", [
    s("livetranslate_agent_remote_write_queue_samples", AG, "9000x20"),
    s("livetranslate_agent_remote_write_queue_capacity_samples", AG, "10000x20"),
], [("3m", []),
    ("10m", [fire(dict(AG, severity=WARN), "Agent remote-write queue is 90% full", QUEUE_FULL)])])
case(G, "AgentRemoteWriteQueueFull", [
    s("livetranslate_agent_remote_write_queue_samples", AG, "8000x20"),
    s("livetranslate_agent_remote_write_queue_capacity_samples", AG, "10000x20"),
], [("10m", [])])
# With the write-ahead log the bound is in bytes (the sample bound is +Inf).
case(G, "AgentRemoteWriteQueueFull", [
    s("livetranslate_agent_remote_write_queue_samples", AG, "150000x20"),
    s("livetranslate_agent_remote_write_queue_capacity_samples", AG, " ".join(["+Inf"] * 21)),
    s("livetranslate_agent_remote_write_queue_bytes", AG, "483183820x20"),
    s("livetranslate_agent_remote_write_queue_capacity_bytes", AG, "536870912x20"),
], [("3m", []),
    ("10m", [fire(dict(AG, severity=WARN), "Agent remote-write queue is 90% full", QUEUE_FULL)])])
case(G, "AgentRemoteWriteQueueFull", [
    s("livetranslate_agent_remote_write_queue_samples", AG, "150000x20"),
    s("livetranslate_agent_remote_write_queue_capacity_samples", AG, " ".join(["+Inf"] * 21)),
    s("livetranslate_agent_remote_write_queue_bytes", AG, "104857600x20"),
    s("livetranslate_agent_remote_write_queue_capacity_bytes", AG, "536870912x20"),
], [("10m", [])])

case(G, "AgentRemoteWriteStalled", [
    s("livetranslate_agent_remote_write_last_success_timestamp_seconds", AG, "0x30")], [
    ("4m", []),
    ("15m", [fire(dict(AG, severity=WARN), "Agent remote write has not succeeded for 15m 0s",
                  "The agent at livetranslate-agent:9080 has not delivered a remote-write request for more than 5 minutes.")])])
case(G, "AgentRemoteWriteStalled", [
    s("livetranslate_agent_remote_write_last_success_timestamp_seconds", AG, "0+60x30")], [("15m", [])])

case(G, "AgentRemoteWriteRetriesHigh", [
    s("livetranslate_agent_remote_write_samples_retried_total", AG, "0+1200x30"),
    s("livetranslate_agent_remote_write_samples_sent_total", AG, "0+6000x30"),
], [("5m", []),
    ("15m", [fire(dict(AG, severity=WARN), "Agent retries many remote-write requests",
                  "The agent at livetranslate-agent:9080 retried 20% as many samples as were acknowledged: Prometheus is slow or rejecting writes.")])])
case(G, "AgentRemoteWriteRetriesHigh", [
    s("livetranslate_agent_remote_write_samples_retried_total", AG, "0+300x30"),
    s("livetranslate_agent_remote_write_samples_sent_total", AG, "0+6000x30"),
], [("15m", [])])

# =============================================================================
G = "monitoring-prometheus"
PR = tgt("prometheus")
PRG = dict(PR, rule_group="/etc/prometheus/rules/livetranslate-alerts.yml;livetranslate-sessions")


def bump(metric, labels, alert, check_at, fired):
    """Counter that steps once; `fired` is the expected alert (or None for the flat case)."""
    case(G_CUR[0], alert, [s(metric, labels, "0 0 %s %sx10" % (fired[0], fired[0]) if fired else "0x12")],
         [(check_at, [fired[1]] if fired else [])])


G_CUR = [G]

case(G, "PrometheusConfigReloadFailed", [s("prometheus_config_last_reload_successful", PR, "0x20")], [
    ("3m", []),
    ("10m", [fire(dict(PR, severity=WARN), "Prometheus configuration reload failed",
                  "Prometheus at localhost:9090 keeps running its previous configuration; the last reload failed.")])])
case(G, "PrometheusConfigReloadFailed", [s("prometheus_config_last_reload_successful", PR, "1x20")], [("10m", [])])

bump("prometheus_rule_evaluation_failures_total", PRG, "PrometheusRuleEvaluationFailures", "5m",
     (3, fire(dict(PRG, severity=CRIT), "Prometheus fails to evaluate rules",
              "3 evaluations of rule group /etc/prometheus/rules/livetranslate-alerts.yml;livetranslate-sessions failed in 5 minutes; alerts in it may not fire.")))
bump("prometheus_rule_evaluation_failures_total", PRG, "PrometheusRuleEvaluationFailures", "5m", None)

bump("prometheus_rule_group_iterations_missed_total", PRG, "PrometheusRuleGroupIterationsMissed", "5m",
     (2, fire(dict(PRG, severity=WARN), "Prometheus skips rule evaluations",
              "Rule group /etc/prometheus/rules/livetranslate-alerts.yml;livetranslate-sessions missed 2 evaluations in 10 minutes because evaluating it takes longer than its interval.")))
bump("prometheus_rule_group_iterations_missed_total", PRG, "PrometheusRuleGroupIterationsMissed", "5m", None)

case(G, "PrometheusNotificationQueueRunningFull", [
    s("prometheus_notifications_queue_length", PR, "9500x30"),
    s("prometheus_notifications_queue_capacity", PR, "10000x30"),
], [("5m", []),
    ("15m", [fire(dict(PR, severity=WARN), "Prometheus alert queue is 95% full",
                  "Prometheus at localhost:9090 cannot send alerts to Alertmanager as fast as they are produced.")])])
case(G, "PrometheusNotificationQueueRunningFull", [
    s("prometheus_notifications_queue_length", PR, "9000x30"),
    s("prometheus_notifications_queue_capacity", PR, "10000x30"),
], [("15m", [])])

PRAM = dict(PR, alertmanager="http://alertmanager:9093/api/v2/alerts")
case(G, "PrometheusErrorSendingAlerts", [
    s("prometheus_notifications_errors_total", PRAM, "0+3x30"),
    s("prometheus_notifications_sent_total", PRAM, "0+60x30"),
], [("5m", []),
    ("15m", [fire(dict(PRAM, severity=CRIT), "Prometheus fails to send alerts to http://alertmanager:9093/api/v2/alerts",
                  "5% of the alerts sent to http://alertmanager:9093/api/v2/alerts fail.")])])
case(G, "PrometheusErrorSendingAlerts", [
    s("prometheus_notifications_errors_total", PRAM, "0x30"),
    s("prometheus_notifications_sent_total", PRAM, "0+60x30"),
], [("15m", [])])

case(G, "PrometheusNotConnectedToAlertmanager", [s("prometheus_notifications_alertmanagers_discovered", PR, "0x20")], [
    ("3m", []),
    ("10m", [fire(dict(PR, severity=CRIT), "Prometheus knows no Alertmanager",
                  "Prometheus at localhost:9090 has discovered no Alertmanager for 5 minutes: no alert is delivered.")])])
case(G, "PrometheusNotConnectedToAlertmanager", [s("prometheus_notifications_alertmanagers_discovered", PR, "1x20")],
     [("10m", [])])

bump("prometheus_tsdb_compactions_failed_total", PR, "PrometheusTsdbCompactionsFailing", "5m",
     (1, fire(dict(PR, severity=WARN), "Prometheus TSDB compactions fail",
              "1 TSDB compactions failed in 3 hours on localhost:9090; the head block grows and disk usage rises.")))
bump("prometheus_tsdb_compactions_failed_total", PR, "PrometheusTsdbCompactionsFailing", "5m", None)

bump("prometheus_tsdb_wal_corruptions_total", PR, "PrometheusTsdbWalCorruptions", "5m",
     (1, fire(dict(PR, severity=CRIT), "Prometheus write-ahead log is corrupted",
              "Prometheus at localhost:9090 found 1 WAL corruptions in 3 hours; recent samples may be lost.")))
bump("prometheus_tsdb_wal_corruptions_total", PR, "PrometheusTsdbWalCorruptions", "5m", None)

bump("prometheus_target_scrapes_sample_out_of_order_total", PR, "PrometheusOutOfOrderSamples", "5m",
     (5, fire(dict(PR, severity=WARN), "Prometheus rejects out-of-order samples",
              "5 scraped samples were out of order in 10 minutes: two sources write the same series (a duplicated target or the agent forwarding under a scraped job name).")))
bump("prometheus_target_scrapes_sample_out_of_order_total", PR, "PrometheusOutOfOrderSamples", "5m", None)

PRW = {"service": "prometheus", "environment": "production", "cluster": "livetranslate", "instance": "localhost:9090"}
case(G, "PrometheusRemoteWriteReceiveErrors", [
    s("prometheus_http_requests_total", dict(PR, handler="/api/v1/write", code="204"), "0+54x30"),
    s("prometheus_http_requests_total", dict(PR, handler="/api/v1/write", code="400"), "0+6x30"),
    s("prometheus_http_requests_total", dict(PR, handler="/api/v1/query", code="200"), "0+600x30"),
], [("5m", []),
    ("15m", [fire(dict(PRW, severity=WARN), "Prometheus rejects remote-write requests",
                  "10% of the remote-write requests (from livetranslate-agent) to Prometheus fail.")])])
case(G, "PrometheusRemoteWriteReceiveErrors", [
    s("prometheus_http_requests_total", dict(PR, handler="/api/v1/write", code="204"), "0+58x30"),
    s("prometheus_http_requests_total", dict(PR, handler="/api/v1/write", code="400"), "0+2x30"),
], [("15m", [])])

case(G, "PrometheusHeadSeriesGrowth", [s("prometheus_tsdb_head_series", PR, "20000x60 40000x40")], [
    ("70m", []),
    ("85m", [fire(dict(PR, severity=WARN), "Prometheus series count grew by more than 50% in an hour",
                  "Prometheus at localhost:9090 holds 40000 head series: a cardinality explosion is filling memory.")])])
case(G, "PrometheusHeadSeriesGrowth", [s("prometheus_tsdb_head_series", PR, "20000x60 25000x40")], [("85m", [])])

LK = tgt("loki")
case(G, "MonitoringComponentRestarting", [s("process_start_time_seconds", LK, "100 200 300 400 400x10")], [
    ("10m", [fire(dict(LK, severity=WARN), "loki is restarting repeatedly",
                  "loki at loki:3100 restarted 3 times in 30 minutes (out of memory at its resource limit?).")])])
case(G, "MonitoringComponentRestarting", [s("process_start_time_seconds", LK, "100 200 300 300x10")], [("10m", [])])

case(G, "NodeExporterDown", [s("up", NODE, "0x10")], [
    ("1m", []),
    ("3m", [fire(dict(NODE, severity=WARN), "node-exporter is down",
                 "node-exporter at node-exporter:9100 has not answered for 2 minutes: host CPU, memory and disk alerts are blind.")])])
case(G, "NodeExporterDown", [s("up", NODE, "1x10")], [("5m", [])])

case(G, "Watchdog", [], [
    ("0m", []),
    ("1m", [fire({"severity": INFO, "service": "prometheus"}, "Alerting pipeline heartbeat",
                 "Always firing. Alertmanager routes it to the heartbeat receiver; an external dead man's switch pages when the heartbeat stops.")])])

# =============================================================================
G = "monitoring-alertmanager"
G_CUR[0] = G
AM = tgt("alertmanager")

case(G, "AlertmanagerDown", [s("up", AM, "0x10")], [
    ("1m", []),
    ("3m", [fire(dict(AM, severity=CRIT), "Alertmanager is down",
                 "Alertmanager at alertmanager:9093 has not answered for 2 minutes: alerts are not delivered (the heartbeat stops, too).")])])
case(G, "AlertmanagerDown", [s("up", AM, "1x10")], [("5m", [])])

case(G, "AlertmanagerConfigReloadFailed", [s("alertmanager_config_last_reload_successful", AM, "0x20")], [
    ("5m", []),
    ("12m", [fire(dict(AM, severity=WARN), "Alertmanager configuration reload failed",
                  "Alertmanager at alertmanager:9093 keeps running its previous configuration; the last reload failed.")])])
case(G, "AlertmanagerConfigReloadFailed", [s("alertmanager_config_last_reload_successful", AM, "1x20")], [("12m", [])])

AMW = dict(AM, integration="webhook")
case(G, "AlertmanagerNotificationsFailing", [
    s("alertmanager_notifications_failed_total", AMW, "0+6x20"),
    s("alertmanager_notifications_total", AMW, "0+60x20"),
], [("3m", []),
    ("10m", [fire(dict(AMW, severity=CRIT), "Alertmanager fails to deliver webhook notifications",
                  "10% of the webhook notifications fail: check the receiver URL files and the receiving endpoint.")])])
case(G, "AlertmanagerNotificationsFailing", [
    s("alertmanager_notifications_failed_total", AMW, "0x20"),
    s("alertmanager_notifications_total", AMW, "0+60x20"),
], [("10m", [])])


def am_latency(lo):
    les = ["1", "5", "10", "15", "20", "+Inf"]
    return [s("alertmanager_notification_latency_seconds_bucket", dict(AMW, le=le),
              "0+%dx30" % (60 if les.index(le) > les.index(lo) else 0)) for le in les]


case(G, "AlertmanagerNotificationLatencyHigh", am_latency("10"), [
    ("5m", []),
    ("15m", [fire({"service": "alertmanager", "environment": "production", "cluster": "livetranslate",
                   "integration": "webhook", "severity": WARN},
                  "Alertmanager webhook notifications are slow",
                  "The p99 latency of webhook notifications is 14.95s.")])])
case(G, "AlertmanagerNotificationLatencyHigh", am_latency("5"), [("15m", [])])

bump("alertmanager_alerts_invalid_total", dict(AM, version="v2"), "AlertmanagerInvalidAlerts", "5m",
     (4, fire(dict(AM, version="v2", severity=WARN), "Alertmanager receives invalid alerts",
              "Alertmanager rejected 4 invalid alerts in 10 minutes (for example alerts with empty label values).")))
bump("alertmanager_alerts_invalid_total", dict(AM, version="v2"), "AlertmanagerInvalidAlerts", "5m", None)

# =============================================================================
G = "monitoring-loki"
G_CUR[0] = G

case(G, "LokiDown", [s("up", LK, "0x10")], [
    ("1m", []),
    ("3m", [fire(dict(LK, severity=CRIT), "Loki is down",
                 "Loki at loki:3100 has not answered for 2 minutes: agents buffer logs and Grafana shows none.")])])
case(G, "LokiDown", [s("up", LK, "1x10")], [("5m", [])])

LKP = dict(LK, route="loki_api_v1_push", method="POST")
LKR = {"service": "loki", "environment": "production", "cluster": "livetranslate", "route": "loki_api_v1_push"}
case(G, "LokiRequestErrors", [
    s("loki_request_duration_seconds_count", dict(LKP, status_code="204"), "0+54x30"),
    s("loki_request_duration_seconds_count", dict(LKP, status_code="500"), "0+6x30"),
], [("5m", []),
    ("15m", [fire(dict(LKR, severity=CRIT), "Loki route loki_api_v1_push fails",
                  "10% of the requests to Loki route loki_api_v1_push fail with 5xx.")])])
case(G, "LokiRequestErrors", [
    s("loki_request_duration_seconds_count", dict(LKP, status_code="204"), "0+58x30"),
    s("loki_request_duration_seconds_count", dict(LKP, status_code="500"), "0+2x30"),
], [("15m", [])])


def loki_latency(lo):
    les = ["0.5", "1", "2.5", "5", "+Inf"]
    return [s("loki_request_duration_seconds_bucket", dict(LKP, status_code="204", le=le),
              "0+%dx30" % (60 if les.index(le) > les.index(lo) else 0)) for le in les]


case(G, "LokiPushLatencyHigh", loki_latency("2.5"), [
    ("5m", []),
    ("15m", [fire({"service": "loki", "environment": "production", "cluster": "livetranslate", "severity": WARN},
                  "Loki pushes are slow", "The p99 latency of Loki pushes is 4.975s; agents buffer and retry.")])])
case(G, "LokiPushLatencyHigh", loki_latency("0.5"), [("15m", [])])

bump("loki_discarded_samples_total", dict(LK, reason="rate_limited", tenant="fake"), "LokiDiscardingSamples", "5m",
     (100, fire({"service": "loki", "environment": "production", "cluster": "livetranslate", "reason": "rate_limited",
                 "severity": WARN}, "Loki discards log lines (rate_limited)",
                "Loki discarded 100 log lines in 10 minutes for reason rate_limited (ingestion limits in monitoring/loki/loki.yml).")))
bump("loki_discarded_samples_total", dict(LK, reason="rate_limited", tenant="fake"), "LokiDiscardingSamples", "5m", None)

bump("loki_panic_total", LK, "LokiRequestPanics", "5m",
     (1, fire(dict(LK, severity=CRIT), "Loki panics", "Loki at loki:3100 recovered from 1 panics in 10 minutes.")))
bump("loki_panic_total", LK, "LokiRequestPanics", "5m", None)

bump("loki_ingester_chunks_flush_failures_total", LK, "LokiChunkFlushFailures", "5m",
     (2, fire(dict(LK, severity=WARN), "Loki fails to flush chunks",
              "Loki at loki:3100 failed 2 chunk flushes to storage in 10 minutes (disk full or not writable?).")))
bump("loki_ingester_chunks_flush_failures_total", LK, "LokiChunkFlushFailures", "5m", None)

# Test time starts at the Unix epoch: a last run at -86400 is "one day before".
case(G, "LokiRetentionNotRunning", [
    s("loki_compactor_apply_retention_last_successful_run_timestamp_seconds", LK, "-86400+0x120")], [
    ("30m", []),
    ("70m", [fire(dict(LK, severity=WARN), "Loki retention has not run for a day",
                  "The Loki compactor last applied retention 1d 1h 10m 0s ago: logs older than 7 days are not deleted and the disk fills.")])])
case(G, "LokiRetentionNotRunning", [
    s("loki_compactor_apply_retention_last_successful_run_timestamp_seconds", LK, "0+60x120")], [("70m", [])])

# =============================================================================
G = "monitoring-grafana"
GF = tgt("grafana")
GFA = {"service": "grafana", "environment": "production", "cluster": "livetranslate"}

case(G, "GrafanaDown", [s("up", GF, "0x10")], [
    ("3m", []),
    ("6m", [fire(dict(GF, severity=WARN), "Grafana is down",
                 "Grafana at grafana:3000 has not answered for 5 minutes: dashboards are unavailable.")])])
case(G, "GrafanaDown", [s("up", GF, "1x10")], [("6m", [])])

GFH = dict(GF, handler="/api/ds/query", method="POST")
case(G, "GrafanaHttpServerErrors", [
    s("grafana_http_request_duration_seconds_count", dict(GFH, status_code="200"), "0+54x30"),
    s("grafana_http_request_duration_seconds_count", dict(GFH, status_code="500"), "0+6x30"),
], [("5m", []),
    ("15m", [fire(dict(GFA, severity=WARN), "Grafana answers with errors",
                  "10% of the HTTP requests to Grafana fail with 5xx.")])])
case(G, "GrafanaHttpServerErrors", [
    s("grafana_http_request_duration_seconds_count", dict(GFH, status_code="200"), "0+58x30"),
    s("grafana_http_request_duration_seconds_count", dict(GFH, status_code="500"), "0+2x30"),
], [("15m", [])])

GFD = dict(GF, datasource="loki", datasource_type="loki", method="POST")
case(G, "GrafanaDatasourceErrors", [
    s("grafana_datasource_request_total", dict(GFD, code="200"), "0+48x30"),
    s("grafana_datasource_request_total", dict(GFD, code="500"), "0+12x30"),
], [("5m", []),
    ("15m", [fire(dict(GFA, datasource="loki", severity=WARN), "Grafana datasource loki fails",
                  "20% of Grafana's queries to datasource loki fail.")])])
case(G, "GrafanaDatasourceErrors", [
    s("grafana_datasource_request_total", dict(GFD, code="200"), "0+57x30"),
    s("grafana_datasource_request_total", dict(GFD, code="500"), "0+3x30"),
], [("15m", [])])


# =============================================================================
def render():
    files = {}
    for group, cases in CASES.items():
        tests = []
        for alert, interval, series, checks in cases:
            art = []
            for t, fired in checks:
                exp = [{"exp_labels": f["labels"],
                        "exp_annotations": {"summary": f["summary"], "description": f["description"],
                                            "runbook_url": RUNBOOK + alert.lower()}} for f in fired]
                art.append({"eval_time": t, "alertname": alert, "exp_alerts": exp})
            tests.append({"name": alert, "interval": interval, "input_series": series, "alert_rule_test": art})
        doc = {"rule_files": ["../rules/livetranslate-recording.yml", "../rules/livetranslate-alerts.yml"],
               "evaluation_interval": "15s" if any(c[1] == "15s" for c in cases) else "1m",
               "tests": tests}
        text = ("# Generated by cases.py from the hand-written cases there; edit cases.py, not this file.\n"
                + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True))
        files[os.path.join(HERE, group + ".test.yml")] = text
    return files


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for path, text in sorted(render().items()):
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            if check:
                stale.append(os.path.basename(path))
            else:
                with open(path, "w") as f:
                    f.write(text)
    if stale:
        print("stale generated test files (run cases.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
