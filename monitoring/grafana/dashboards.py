#!/usr/bin/env python3
"""Source of the provisioned Grafana dashboards in monitoring/grafana/dashboards/.

    python3 monitoring/grafana/dashboards.py          # rewrite the JSON files
    python3 monitoring/grafana/dashboards.py --check  # fail if they are stale

The dashboards query the recording rules of
monitoring/prometheus/rules/livetranslate-recording.yml where one exists, so
that dashboards and alerts show the same numbers. Application series are
selected by the direct-scrape jobs (job="<service>") so that the copies
livetranslate-agent forwards (jobs agent-<service>) are not counted twice.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
SCOPE = 'environment="$environment", cluster="$cluster"'


class Dash:
    def __init__(self, uid, title, tags, variables, description):
        self.uid, self.title, self.tags, self.variables, self.description = uid, title, tags, variables, description
        self.panels = []
        self.next_id = 1
        self.x = 0
        self.y = 0

    def _pos(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += h
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        if self.x >= 24:
            self.x = 0
            self.y += h
        return pos

    def row(self, title, collapsed_panels=None):
        if self.x:
            self.x = 0
            self.y += 8
        p = {"id": self._id(), "type": "row", "title": title, "collapsed": bool(collapsed_panels),
             "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []}
        self.y += 1
        self.panels.append(p)
        return p

    def _id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def ts(self, title, targets, unit="short", w=12, h=8, desc="", stack=False, thresholds=None, into=None):
        p = {
            "id": self._id(), "type": "timeseries", "title": title, "description": desc,
            "datasource": PROM, "gridPos": self._pos(w, h),
            "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10, "lineWidth": 1,
                                                                  "stacking": {"mode": "normal" if stack else "none"}},
                                         "thresholds": thresholds or {"mode": "absolute", "steps": [
                                             {"color": "green", "value": None}]}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": [{"datasource": PROM, "refId": chr(65 + i), "expr": e, "legendFormat": l}
                        for i, (e, l) in enumerate(targets)],
        }
        (into["panels"] if into else self.panels).append(p)
        return p

    def stat(self, title, expr, unit="short", w=6, h=4, thresholds=None, legend="", desc="", mappings=None):
        p = {
            "id": self._id(), "type": "stat", "title": title, "description": desc,
            "datasource": PROM, "gridPos": self._pos(w, h),
            "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [],
                                         "thresholds": thresholds or {"mode": "absolute", "steps": [
                                             {"color": "green", "value": None}]}}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "area", "textMode": "auto"},
            "targets": [{"datasource": PROM, "refId": "A", "expr": expr, "legendFormat": legend}],
        }
        self.panels.append(p)
        return p

    def logs(self, title, expr, w=24, h=12, desc=""):
        p = {"id": self._id(), "type": "logs", "title": title, "description": desc, "datasource": LOKI,
             "gridPos": self._pos(w, h),
             "options": {"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending",
                         "enableLogDetails": True, "prettifyLogMessage": False},
             "targets": [{"datasource": LOKI, "refId": "A", "expr": expr, "queryType": "range"}]}
        self.panels.append(p)
        return p

    def loki_ts(self, title, targets, w=12, h=8, desc="", stack=True):
        p = self.ts(title, targets, w=w, h=h, desc=desc, stack=stack)
        p["datasource"] = LOKI
        for t in p["targets"]:
            t["datasource"] = LOKI
            t["queryType"] = "range"
        return p

    def json(self):
        return {
            "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                      "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                      "name": "Annotations & Alerts", "type": "dashboard"}]},
            "description": self.description,
            "editable": False,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [{"type": "dashboards", "tags": ["livetranslate"], "asDropdown": True, "title": "LiveTranslate"}],
            "panels": self.panels,
            "refresh": "30s",
            "schemaVersion": 39,
            "tags": self.tags,
            "templating": {"list": self.variables},
            "time": {"from": "now-3h", "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }


def var(name, query, label=None, multi=False, include_all=False, ds=PROM, regex=""):
    return {"name": name, "label": label or name, "type": "query", "datasource": ds,
            "query": {"query": query, "refId": "%s-var" % name}, "definition": query,
            "refresh": 2, "multi": multi, "includeAll": include_all, "regex": regex, "sort": 1,
            "current": {}, "options": [], "hide": 0}


def const(name, value):
    return {"name": name, "type": "constant", "query": value, "hide": 2,
            "current": {"text": value, "value": value}, "options": [{"text": value, "value": value, "selected": True}]}


ENV_VARS = [var("environment", "label_values(livetranslate_build_info, environment)"),
            var("cluster", 'label_values(livetranslate_build_info{environment="$environment"}, cluster)')]
PCT = {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 0.05},
                                     {"color": "red", "value": 0.1}]}


def http_section(d, svc_sel, svc_label):
    """Request rate, errors and latency panels for one service (svc_sel: label matcher)."""
    d.ts("Request rate by route", [
        ('service_route:http_server_requests:rate5m{%s, %s}' % (svc_sel, SCOPE), "{{http_route}}")],
        unit="reqps", stack=True)
    d.ts("5xx error ratio", [
        ('service:http_server_errors:ratio_rate5m{%s, %s}' % (svc_sel, SCOPE), "5xx"),
        ('service:http_server_client_errors:ratio_rate5m{%s, %s}' % (svc_sel, SCOPE), "4xx")],
        unit="percentunit", thresholds=PCT, desc="HighErrorRate fires above 10 %, ElevatedErrorRate above 5 %.")
    d.ts("Latency (service)", [
        ('service:http_server_request_duration_seconds:p50_5m{%s, %s}' % (svc_sel, SCOPE), "p50"),
        ('service:http_server_request_duration_seconds:p95_5m{%s, %s}' % (svc_sel, SCOPE), "p95"),
        ('service:http_server_request_duration_seconds:p99_5m{%s, %s}' % (svc_sel, SCOPE), "p99")], unit="s")
    d.ts("p95 latency by route", [
        ('service_route:http_server_request_duration_seconds:p95_5m{%s, %s}' % (svc_sel, SCOPE), "{{http_route}}")],
        unit="s")
    d.ts("Errors by route and status", [
        ('sum by (http_route, http_response_status_code) (rate(http_server_request_duration_seconds_count'
         '{job="%s", %s, http_response_status_code=~"4..|5.."}[$__rate_interval]))' % (svc_label, SCOPE),
         "{{http_route}} {{http_response_status_code}}")], unit="reqps", stack=True)
    d.ts("In-flight requests", [
        ('sum by (http_request_method) (http_server_active_requests{job="%s", %s})' % (svc_label, SCOPE),
         "{{http_request_method}}")])
    d.ts("Request / response body size p95 by route", [
        ('histogram_quantile(0.95, sum by (http_route, le) (rate(http_server_request_body_size_bytes_bucket'
         '{job="%s", %s}[$__rate_interval])))' % (svc_label, SCOPE), "request {{http_route}}"),
        ('histogram_quantile(0.95, sum by (http_route, le) (rate(http_server_response_body_size_bytes_bucket'
         '{job="%s", %s}[$__rate_interval])))' % (svc_label, SCOPE), "response {{http_route}}")], unit="bytes")


def process_section(d, job):
    d.ts("CPU", [('rate(process_cpu_seconds_total{job="%s", %s}[$__rate_interval])' % (job, SCOPE), "{{instance}}")],
         unit="percentunit")
    d.ts("Memory", [
        ('process_resident_memory_bytes{job="%s", %s}' % (job, SCOPE), "RSS {{instance}}"),
        ('process_virtual_memory_bytes{job="%s", %s}' % (job, SCOPE), "virtual {{instance}}")], unit="bytes")
    d.ts("File descriptors", [
        ('process_open_fds{job="%s", %s}' % (job, SCOPE), "open {{instance}}"),
        ('process_max_fds{job="%s", %s}' % (job, SCOPE), "limit {{instance}}")])
    d.ts("Uptime and version", [
        ('time() - process_start_time_seconds{job="%s", %s}' % (job, SCOPE), "uptime {{instance}}"),
        ('count by (version) (livetranslate_build_info{job="%s", %s})' % (job, SCOPE), "instances on {{version}}")],
        unit="s")


def health_section(d, job):
    d.ts("Overall health", [
        ('max by (status) (livetranslate_health_status{job="%s", %s})' % (job, SCOPE), "{{status}}")])
    d.ts("Health checks (1 = status)", [
        ('livetranslate_health_check_status{job="%s", %s} == 1' % (job, SCOPE), "{{check}} {{status}}")])
    d.ts("Health check failures", [
        ('sum by (check) (increase(livetranslate_health_check_failures_total{job="%s", %s}[$__rate_interval]))'
         % (job, SCOPE), "{{check}}")])
    d.ts("Health check duration", [
        ('livetranslate_health_check_duration_seconds{job="%s", %s}' % (job, SCOPE), "{{check}}")], unit="s")


def orchestration():
    d = Dash("livetranslate-orchestration", "LiveTranslate / Orchestration overview", ["livetranslate"], ENV_VARS,
             "API gateway: traffic, errors, latency per route, WebSocket capacity, circuit breakers, sessions, "
             "translation quality.")
    sel = 'service="orchestration"'
    d.stat("Up", 'min(up{job="orchestration", %s})' % SCOPE, thresholds={"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "green", "value": 1}]},
        mappings=[{"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}])
    d.stat("Requests/s", 'sum(service:http_server_requests:rate5m{%s, %s})' % (sel, SCOPE), unit="reqps")
    d.stat("5xx ratio", 'sum(service:http_server_errors:ratio_rate5m{%s, %s})' % (sel, SCOPE), unit="percentunit",
           thresholds=PCT)
    d.stat("p95 latency", 'max(service:http_server_request_duration_seconds:p95_5m{%s, %s})' % (sel, SCOPE), unit="s",
           thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                     {"color": "orange", "value": 1}, {"color": "red", "value": 2.5}]},
           desc="ApiGatewayHighLatency fires above 1 s.")
    d.row("HTTP")
    http_section(d, sel, "orchestration")
    d.row("WebSocket")
    d.ts("WebSocket connections against the limit", [
        ('sum(livetranslate_websocket_connections{job="orchestration", %s})' % SCOPE, "open"),
        ('sum(livetranslate_websocket_connections_limit{job="orchestration", %s})' % SCOPE, "limit"),
        ('vector(9500)', "overload alert (9500)")],
        thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 9500}]})
    d.ts("WebSocket opened / rejected", [
        ('sum(rate(livetranslate_websocket_connections_opened_total{job="orchestration", %s}[$__rate_interval]))'
         % SCOPE, "opened/s"),
        ('sum(rate(livetranslate_websocket_connections_rejected_total{job="orchestration", %s}[$__rate_interval]))'
         % SCOPE, "rejected/s")], unit="ops")
    d.row("Circuit breakers")
    d.ts("Breaker state (open=2, half-open=1, closed=0)", [
        ('max by (upstream) (2 * livetranslate_circuit_breaker_state{job="orchestration", %s, state="open"}'
         ' + on (upstream) group_left livetranslate_circuit_breaker_state{job="orchestration", %s, state="half_open"})'
         % (SCOPE, SCOPE), "{{upstream}}")])
    d.ts("Breaker transitions and rejected calls", [
        ('sum by (upstream, to) (increase(livetranslate_circuit_breaker_transitions_total{job="orchestration", %s}'
         '[$__rate_interval]))' % SCOPE, "{{upstream}} -> {{to}}"),
        ('sum by (upstream) (rate(livetranslate_circuit_breaker_rejected_calls_total{job="orchestration", %s}'
         '[$__rate_interval]))' % SCOPE, "{{upstream}} rejected/s")])
    d.row("Sessions")
    d.ts("Active sessions", [('sum(livetranslate_sessions_active{job="orchestration", %s})' % SCOPE, "active")])
    d.ts("Sessions created / failed", [
        ('sum(rate(livetranslate_sessions_created_total{job="orchestration", %s}[$__rate_interval]))' % SCOPE,
         "created/s"),
        ('sum by (reason) (rate(livetranslate_sessions_failed_total{job="orchestration", %s}[$__rate_interval]))'
         % SCOPE, "failed/s {{reason}}"),
        ('service:livetranslate_sessions_failed:ratio_rate10m{%s, %s}' % (sel, SCOPE), "failure ratio")])
    d.row("Translation quality (all services)")
    d.ts("Mean translation quality", [
        ('service:livetranslate_translation_quality_score:avg_15m{%s}' % SCOPE, "{{service}} 15m"),
        ('service:livetranslate_translation_quality_score:avg_6h{%s}' % SCOPE, "{{service}} 6h")], unit="percentunit",
        thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "orange", "value": 0.5},
                                                  {"color": "green", "value": 0.7}]})
    d.ts("Quality by language pair", [
        ('service_language_pair:livetranslate_translation_quality_score:avg_15m{%s}' % SCOPE,
         "{{service}} {{language_pair}}")], unit="percentunit")
    d.row("Health and process")
    health_section(d, "orchestration")
    process_section(d, "orchestration")
    return d


def service_dashboard(svc, title, extra=None):
    d = Dash("livetranslate-%s" % svc, "LiveTranslate / %s service" % title, ["livetranslate"], ENV_VARS,
             "The %s service: HTTP, health checks, process resources." % svc)
    sel = 'service="%s"' % svc
    d.stat("Up", 'min(up{job="%s", %s})' % (svc, SCOPE), thresholds={"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "green", "value": 1}]},
        mappings=[{"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}])
    d.stat("Requests/s", 'sum(service:http_server_requests:rate5m{%s, %s})' % (sel, SCOPE), unit="reqps")
    d.stat("5xx ratio", 'sum(service:http_server_errors:ratio_rate5m{%s, %s})' % (sel, SCOPE), unit="percentunit",
           thresholds=PCT)
    d.stat("p95 latency", 'max(service:http_server_request_duration_seconds:p95_5m{%s, %s})' % (sel, SCOPE), unit="s")
    d.row("HTTP")
    http_section(d, sel, svc)
    if extra:
        extra(d)
    d.row("WebSocket and sessions")
    d.ts("WebSocket connections", [
        ('sum(livetranslate_websocket_connections{job="%s", %s})' % (svc, SCOPE), "open"),
        ('sum(livetranslate_websocket_connections_limit{job="%s", %s})' % (svc, SCOPE), "limit")])
    d.ts("Sessions", [
        ('sum(livetranslate_sessions_active{job="%s", %s})' % (svc, SCOPE), "active"),
        ('sum by (reason) (rate(livetranslate_sessions_failed_total{job="%s", %s}[$__rate_interval]))' % (svc, SCOPE),
         "failed/s {{reason}}")])
    d.row("Health")
    health_section(d, svc)
    # Collapsed row: the process panels are nested inside it.
    r = d.row("Process")
    first = len(d.panels)
    process_section(d, svc)
    r["panels"] = d.panels[first:]
    r["collapsed"] = True
    del d.panels[first:]
    return d


def translation_extra(d):
    d.row("Translation quality")
    d.ts("Mean quality score", [
        ('service:livetranslate_translation_quality_score:avg_15m{service="translation", %s}' % SCOPE, "15m mean"),
        ('service:livetranslate_translation_quality_score:avg_6h{service="translation", %s}' % SCOPE, "6h mean")],
        unit="percentunit")
    d.ts("Quality by language pair", [
        ('service_language_pair:livetranslate_translation_quality_score:avg_15m{service="translation", %s}' % SCOPE,
         "{{language_pair}}")], unit="percentunit")
    d.ts("Share of translations scoring <= 0.5", [
        ('sum by (language_pair) (rate(livetranslate_translation_quality_score_bucket{job="translation", %s, le="0.5"}'
         '[$__rate_interval])) / sum by (language_pair) (rate(livetranslate_translation_quality_score_count'
         '{job="translation", %s}[$__rate_interval]))' % (SCOPE, SCOPE), "{{language_pair}}")], unit="percentunit")
    d.ts("Translations per second by language pair", [
        ('service_language_pair:livetranslate_translation_quality_score_count:rate15m{service="translation", %s}'
         % SCOPE, "{{language_pair}}")], unit="ops")


def logs():
    v = [var("service", "label_values(service)", ds=LOKI, multi=True, include_all=True),
         var("level", "label_values(level)", ds=LOKI, multi=True, include_all=True)]
    for x in v:
        x["current"] = {"text": "All", "value": "$__all"}
    d = Dash("livetranslate-logs", "LiveTranslate / Logs", ["livetranslate", "logs"], v,
             "Logs shipped to Loki by livetranslate-agent, by service and level.")
    d.loki_ts("Log lines by service and level", [
        ('sum by (service, level) (count_over_time({service=~"$service", level=~"$level"} [$__interval]))',
         "{{service}} {{level}}")], w=24)
    d.loki_ts("Error lines by service", [
        ('sum by (service) (count_over_time({service=~"$service", level="error"} [$__interval]))', "{{service}}")])
    d.loki_ts("Warnings by service", [
        ('sum by (service) (count_over_time({service=~"$service", level=~"warn|warning"} [$__interval]))',
         "{{service}}")])
    d.logs("Error lines", '{service=~"$service", level="error"}')
    d.logs("All lines (filtered)", '{service=~"$service", level=~"$level"}')
    return d


def agent():
    d = Dash("livetranslate-agent", "LiveTranslate / Agent pipeline", ["livetranslate", "agent"], [
        var("instance", 'label_values(livetranslate_agent_build_info{job="livetranslate-agent"}, instance)',
            multi=True, include_all=True)],
        "livetranslate-agent: log tailing, Loki shipping, scraping and remote write.")
    sel = 'job="livetranslate-agent", instance=~"$instance"'
    d.stat("Agents up", 'sum(up{job="livetranslate-agent"})')
    d.stat("Files watched", 'sum(livetranslate_agent_log_files_watched{%s})' % sel)
    d.stat("Buffered for Loki", 'sum(livetranslate_agent_loki_buffered_bytes{%s})' % sel, unit="bytes")
    d.stat("Remote write age", 'max(time() - livetranslate_agent_remote_write_last_success_timestamp_seconds{%s})'
           % sel, unit="s")
    d.row("Logs: files")
    d.ts("Read bytes/s by file", [
        ('sum by (path) (rate(livetranslate_agent_log_read_bytes_total{%s}[$__rate_interval]))' % sel, "{{path}}")],
        unit="Bps")
    d.ts("Read lines/s by file", [
        ('sum by (path) (rate(livetranslate_agent_log_read_lines_total{%s}[$__rate_interval]))' % sel, "{{path}}")])
    d.ts("Lag by file (not yet acknowledged)", [
        ('livetranslate_agent_log_file_lag_bytes{%s}' % sel, "{{path}}")], unit="bytes")
    d.ts("Dropped lines by reason", [
        ('sum by (reason) (rate(livetranslate_agent_log_dropped_lines_total{%s}[$__rate_interval]))' % sel,
         "{{reason}}")])
    d.row("Logs: Loki")
    d.ts("Lines and bytes acknowledged by Loki", [
        ('sum(rate(livetranslate_agent_loki_sent_lines_total{%s}[$__rate_interval]))' % sel, "lines/s"),
        ('sum(rate(livetranslate_agent_loki_sent_bytes_total{%s}[$__rate_interval]))' % sel, "compressed bytes/s")])
    d.ts("Batches sent / retried / failed", [
        ('sum(rate(livetranslate_agent_loki_batches_sent_total{%s}[$__rate_interval]))' % sel, "sent"),
        ('sum(rate(livetranslate_agent_loki_batches_retried_total{%s}[$__rate_interval]))' % sel, "retried"),
        ('sum(rate(livetranslate_agent_loki_batches_failed_total{%s}[$__rate_interval]))' % sel, "failed")],
        unit="ops")
    d.ts("Push latency", [
        ('histogram_quantile(0.5, sum by (le) (rate(livetranslate_agent_loki_push_duration_seconds_bucket{%s}'
         '[$__rate_interval])))' % sel, "p50"),
        ('histogram_quantile(0.95, sum by (le) (rate(livetranslate_agent_loki_push_duration_seconds_bucket{%s}'
         '[$__rate_interval])))' % sel, "p95")], unit="s")
    d.ts("Buffered bytes", [('livetranslate_agent_loki_buffered_bytes{%s}' % sel, "{{instance}}")], unit="bytes")
    d.row("Metrics: scrape and remote write")
    d.ts("Scrape targets up", [('livetranslate_agent_target_up{%s}' % sel, "{{exported_job}} {{exported_instance}}")])
    d.ts("Scraped samples / errors", [
        ('sum by (exported_job) (rate(livetranslate_agent_scrape_samples_total{%s}[$__rate_interval]))' % sel,
         "samples/s {{exported_job}}"),
        ('sum by (exported_job) (rate(livetranslate_agent_scrape_errors_total{%s}[$__rate_interval]))' % sel,
         "errors/s {{exported_job}}")])
    d.ts("Remote write samples", [
        ('sum(rate(livetranslate_agent_remote_write_samples_sent_total{%s}[$__rate_interval]))' % sel, "sent"),
        ('sum(rate(livetranslate_agent_remote_write_samples_retried_total{%s}[$__rate_interval]))' % sel, "retried"),
        ('sum by (reason) (rate(livetranslate_agent_remote_write_samples_dropped_total{%s}[$__rate_interval]))' % sel,
         "dropped {{reason}}")], unit="ops")
    d.ts("Remote write queue", [
        ('sum(livetranslate_agent_remote_write_queue_samples{%s})' % sel, "queued"),
        ('sum(livetranslate_agent_remote_write_queue_capacity_samples{%s})' % sel, "capacity")])
    d.ts("Remote write latency", [
        ('histogram_quantile(0.95, sum by (le) (rate(livetranslate_agent_remote_write_request_duration_seconds_bucket'
         '{%s}[$__rate_interval])))' % sel, "p95")], unit="s")
    d.ts("Agent process", [
        ('rate(process_cpu_seconds_total{job="livetranslate-agent"}[$__rate_interval])', "CPU {{instance}}"),
        ('process_resident_memory_bytes{job="livetranslate-agent"} / 1e9', "RSS GB {{instance}}")])
    return d


def stack():
    d = Dash("monitoring-stack", "LiveTranslate / Monitoring stack", ["livetranslate", "monitoring"], [],
             "Health of Prometheus, Alertmanager, Loki, Grafana, node-exporter and the host.")
    d.ts("Targets up by job", [('sum by (job) (up)', "{{job}}"), ('count by (job) (up)', "{{job}} targets")], w=24)
    d.row("Prometheus")
    d.ts("Rule evaluation failures / missed iterations", [
        ('sum by (rule_group) (increase(prometheus_rule_evaluation_failures_total{job="prometheus"}[$__rate_interval]))',
         "failures {{rule_group}}"),
        ('sum by (rule_group) (increase(prometheus_rule_group_iterations_missed_total{job="prometheus"}'
         '[$__rate_interval]))', "missed {{rule_group}}")])
    d.ts("Head series and samples ingested", [
        ('prometheus_tsdb_head_series{job="prometheus"}', "head series"),
        ('rate(prometheus_tsdb_head_samples_appended_total{job="prometheus"}[$__rate_interval])', "samples/s")])
    d.ts("Alerts sent to Alertmanager", [
        ('rate(prometheus_notifications_sent_total{job="prometheus"}[$__rate_interval])', "sent {{alertmanager}}"),
        ('rate(prometheus_notifications_errors_total{job="prometheus"}[$__rate_interval])', "errors {{alertmanager}}"),
        ('prometheus_notifications_queue_length{job="prometheus"}', "queue")])
    d.ts("Firing alerts by severity", [('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")])
    d.ts("Remote-write receiver (agent)", [
        ('sum by (code) (rate(prometheus_http_requests_total{job="prometheus", handler="/api/v1/write"}'
         '[$__rate_interval]))', "{{code}}")], unit="reqps")
    d.ts("Scrape duration by job", [('max by (job) (scrape_duration_seconds)', "{{job}}")], unit="s")
    d.row("Alertmanager")
    d.ts("Notifications by integration", [
        ('sum by (integration) (rate(alertmanager_notifications_total{job="alertmanager"}[$__rate_interval]))',
         "sent {{integration}}"),
        ('sum by (integration) (rate(alertmanager_notifications_failed_total{job="alertmanager"}[$__rate_interval]))',
         "failed {{integration}}")], unit="ops")
    d.ts("Alerts and silences", [
        ('sum by (state) (alertmanager_alerts{job="alertmanager"})', "alerts {{state}}"),
        ('sum by (state) (alertmanager_silences{job="alertmanager"})', "silences {{state}}")])
    d.row("Loki")
    d.ts("Loki requests by route and status", [
        ('sum by (route, status_code) (rate(loki_request_duration_seconds_count{job="loki"}[$__rate_interval]))',
         "{{route}} {{status_code}}")], unit="reqps")
    d.ts("Loki push latency p99", [
        ('histogram_quantile(0.99, sum by (le) (rate(loki_request_duration_seconds_bucket{job="loki", '
         'route="loki_api_v1_push"}[$__rate_interval])))', "p99")], unit="s")
    d.ts("Loki discarded lines by reason", [
        ('sum by (reason) (increase(loki_discarded_samples_total{job="loki"}[$__rate_interval]))', "{{reason}}")])
    d.ts("Loki retention last run age", [
        ('time() - loki_compactor_apply_retention_last_successful_run_timestamp_seconds{job="loki"}', "age")],
        unit="s")
    d.row("Grafana")
    d.ts("Grafana HTTP by status", [
        ('sum by (status_code) (rate(grafana_http_request_duration_seconds_count{job="grafana"}[$__rate_interval]))',
         "{{status_code}}")], unit="reqps")
    d.ts("Grafana datasource requests", [
        ('sum by (datasource, code) (rate(grafana_datasource_request_total{job="grafana"}[$__rate_interval]))',
         "{{datasource}} {{code}}")], unit="reqps")
    d.row("Host (node-exporter)")
    d.ts("CPU and memory utilisation", [
        ('instance:node_cpu_utilisation:ratio5m', "CPU {{instance}}"),
        ('instance:node_memory_utilisation:ratio', "memory {{instance}}")], unit="percentunit",
        thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 0.7},
                                                  {"color": "red", "value": 0.85}]})
    d.ts("Disk usage by mountpoint", [
        ('instance_mountpoint:node_filesystem_utilisation:ratio', "{{instance}} {{mountpoint}}")], unit="percentunit")
    d.ts("Load per CPU", [
        ('node_load5{job="node-exporter"} / on (instance) count by (instance) '
         '(node_cpu_seconds_total{job="node-exporter", mode="idle"})', "{{instance}}")])
    d.ts("Network receive errors", [
        ('rate(node_network_receive_errs_total{job="node-exporter", device!="lo"}[$__rate_interval])',
         "{{instance}} {{device}}")])
    d.ts("Process memory of the stack", [
        ('process_resident_memory_bytes{job=~"prometheus|alertmanager|loki|grafana|node-exporter"}', "{{job}}")],
        unit="bytes", desc="Compare with the limits in docker-compose.monitoring.yml (Prometheus 2G, Loki 1G, "
                           "Grafana 512M).")
    return d


def build():
    return [orchestration(), service_dashboard("audio", "Audio"),
            service_dashboard("translation", "Translation", translation_extra), logs(), agent(), stack()]


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for d in build():
        path = os.path.join(OUT, d.uid + ".json")
        text = json.dumps(d.json(), indent=2) + "\n"
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            stale.append(os.path.basename(path))
            if not check:
                with open(path, "w") as f:
                    f.write(text)
    if check and stale:
        print("stale dashboards (run monitoring/grafana/dashboards.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
