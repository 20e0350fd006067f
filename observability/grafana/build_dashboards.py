"""Build the two Grafana dashboards from this one readable description.

Run ``python observability/grafana/build_dashboards.py`` after editing; it rewrites
``dashboards/*.json``. tests/deploy checks the JSON is up to date, validates it against the
Grafana schema, parses every query and checks every metric and label it uses really exists.

Cluster-wide gauges are exported identically by each replica: queries take ``max``, never
``sum``, of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
BT = 'bot_type=~"$bot_type"'
RATE = "[$__rate_interval]"


def target(expr: str, legend: str = "", ref: str = "A", ds: dict = PROM) -> dict:
    t = {"refId": ref, "datasource": ds, "expr": expr}
    if legend:
        t["legendFormat"] = legend
    return t


def panel(kind: str, title: str, targets: list[dict], pos: tuple[int, int, int, int], **extra):
    x, y, w, h = pos
    p = {
        "type": kind,
        "title": title,
        "datasource": targets[0]["datasource"],
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
    }
    p.update(extra)
    return p


def timeseries(title, targets, pos, unit="short", description="", **extra):
    field = {"defaults": {"unit": unit}, "overrides": []}
    return panel(
        "timeseries", title, targets, pos, fieldConfig=field, description=description, **extra
    )


def stat(title, targets, pos, unit="short", description="", thresholds=None):
    steps = thresholds or [{"color": "green", "value": None}]
    field = {
        "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
        "overrides": [],
    }
    return panel("stat", title, targets, pos, fieldConfig=field, description=description)


def quantiles(metric: str, by: str, selector: str, legend: str) -> list[dict]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}{RATE})))",
            f"p{int(q * 100)} {legend}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]


def metrics_panels() -> list[dict]:
    finished = 'status=~"succeeded|failed|timed_out"'
    return [
        stat(
            "Replicas up",
            [target('sum(up{job="botsys"})', "replicas")],
            (0, 0, 4, 4),
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
        ),
        stat(
            "Success rate",
            [
                target(
                    f'sum(rate(bot_executions_total{{status="succeeded",{BT}}}{RATE}))'
                    f" / sum(rate(bot_executions_total{{{finished},{BT}}}{RATE}))"
                )
            ],
            (4, 0, 4, 4),
            unit="percentunit",
            description="Succeeded / (succeeded + failed + timed out) attempts. Cancelled "
            "attempts are left out: a cancellation says nothing about the bot.",
            thresholds=[
                {"color": "red", "value": None},
                {"color": "orange", "value": 0.8},
                {"color": "green", "value": 0.95},
            ],
        ),
        stat(
            "Running",
            [target(f"sum(max by (bot_type) (semaphore_usage{{{BT}}}))", "running")],
            (8, 0, 4, 4),
        ),
        stat(
            "Waiting",
            [target(f'sum(max by (bot_type) (queue_size{{state="waiting",{BT}}}))', "waiting")],
            (12, 0, 4, 4),
        ),
        stat(
            "Blocked by the limit",
            [target(f"sum(max by (bot_type) (semaphore_waiting{{{BT}}}))", "blocked")],
            (16, 0, 4, 4),
            description="Ready jobs that cannot start because their semaphore is full.",
        ),
        stat(
            "Webhooks pending",
            [target("max(webhook_pending)", "pending")],
            (20, 0, 4, 4),
        ),
        timeseries(
            "Executions by type and status",
            [
                target(
                    f"sum by (bot_type, status) (rate(bot_executions_total{{{BT}}}{RATE}))",
                    "{{bot_type}} {{status}}",
                )
            ],
            (0, 4, 12, 8),
            unit="ops",
        ),
        timeseries(
            "Success rate by type",
            [
                target(
                    f'sum by (bot_type) (rate(bot_executions_total{{status="succeeded",{BT}}}'
                    f"{RATE})) / sum by (bot_type) (rate(bot_executions_total{{{finished},{BT}}}"
                    f"{RATE}))",
                    "{{bot_type}}",
                )
            ],
            (12, 4, 12, 8),
            unit="percentunit",
            description="Over finished attempts only (succeeded, failed, timed out).",
        ),
        timeseries(
            "Execution duration p50 / p95 / p99",
            quantiles("bot_execution_duration_seconds", "bot_type", BT, "{{bot_type}}"),
            (0, 12, 12, 8),
            unit="s",
        ),
        timeseries(
            "Job wait (enqueue → start) p50 / p95 / p99",
            quantiles("job_wait_seconds", "bot_type", BT, "{{bot_type}}"),
            (12, 12, 12, 8),
            unit="s",
        ),
        timeseries(
            "Queue size",
            [target(f"max by (bot_type, state) (queue_size{{{BT}}})", "{{bot_type}} {{state}}")],
            (0, 20, 8, 8),
        ),
        timeseries(
            "Semaphore usage vs limit",
            [
                target(f"max by (bot_type) (semaphore_usage{{{BT}}})", "{{bot_type}} used"),
                target(f"max by (bot_type) (semaphore_limit{{{BT}}})", "{{bot_type}} limit", "B"),
            ],
            (8, 20, 8, 8),
        ),
        timeseries(
            "Ready jobs blocked by the limit",
            [target(f"max by (bot_type) (semaphore_waiting{{{BT}}})", "{{bot_type}}")],
            (16, 20, 8, 8),
            description="max(0, waiting − free slots); 0 while a queue is paused.",
        ),
        timeseries(
            "Webhook deliveries by outcome and code",
            [
                target(
                    f"sum by (status, http_code) (rate(webhook_deliveries_total{RATE}))",
                    "{{status}} {{http_code}}",
                )
            ],
            (0, 28, 8, 8),
            unit="ops",
        ),
        timeseries(
            "Webhook delivery duration p50 / p95 / p99",
            quantiles("webhook_delivery_duration_seconds", "status", "", "{{status}}"),
            (8, 28, 8, 8),
            unit="s",
        ),
        timeseries(
            "Webhook backlog",
            [
                target("max(webhook_pending)", "pending"),
                target("max(webhook_failed)", "dead-lettered", "B"),
            ],
            (16, 28, 8, 8),
        ),
        timeseries(
            "HTTP requests by route and status",
            [
                target(
                    f"sum by (route, status) (rate(http_requests_total{RATE}))",
                    "{{route}} {{status}}",
                )
            ],
            (0, 36, 12, 8),
            unit="reqps",
        ),
        timeseries(
            "HTTP latency p95 by route",
            [
                target(
                    "histogram_quantile(0.95, sum by (le, route) "
                    f"(rate(http_request_duration_seconds_bucket{RATE})))",
                    "{{route}}",
                )
            ],
            (12, 36, 12, 8),
            unit="s",
        ),
        timeseries(
            "Replicas up",
            [target('up{job="botsys"}', "{{instance}}")],
            (0, 44, 8, 8),
        ),
        timeseries(
            "Memory per replica",
            [target('process_resident_memory_bytes{job="botsys"}', "{{instance}}")],
            (8, 44, 8, 8),
            unit="bytes",
        ),
        timeseries(
            "CPU per replica",
            [target(f'rate(process_cpu_seconds_total{{job="botsys"}}{RATE})', "{{instance}}")],
            (16, 44, 8, 8),
            unit="percentunit",
        ),
    ]


def bot_type_variable() -> dict:
    return {
        "name": "bot_type",
        "label": "Bot type",
        "type": "query",
        "datasource": PROM,
        "query": {"query": "label_values(semaphore_limit, bot_type)", "refId": "bot_type"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard(uid: str, title: str, panels: list[dict], tags: list[str], **extra) -> dict:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid,
        "title": title,
        "tags": tags,
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
        **extra,
    }


def logs(title: str, expr: str, pos) -> dict:
    options = {
        "showTime": True,
        "wrapLogMessage": True,
        "enableLogDetails": True,
        "sortOrder": "Descending",
        "dedupStrategy": "none",
        "prettifyLogMessage": False,
    }
    return panel("logs", title, [target(expr, ds=LOKI)], pos, options=options)


def logs_panels() -> list[dict]:
    # Labels used here are exactly those observability/alloy/config.alloy produces.
    project = 'service=~".+"'
    return [
        timeseries(
            "Log lines per second by service",
            [
                target(
                    f"sum by (service) (rate({{{project}}} [$__auto]))",
                    "{{service}}",
                    ds=LOKI,
                )
            ],
            (0, 0, 12, 7),
        ),
        timeseries(
            "botsys errors and warnings per second",
            [
                target(
                    'sum by (level) (rate({service="botsys", level=~"ERROR|WARNING|CRITICAL"}'
                    " [$__auto]))",
                    "{{level}}",
                    ds=LOKI,
                )
            ],
            (12, 0, 12, 7),
        ),
        logs(
            "Errors (all services)",
            f"{{{project}}} |~ `(?i)\\b(error|critical|fatal|exception)\\b`",
            (0, 7, 24, 8),
        ),
        logs(
            'botsys (filter with $search; job id, e.g. | job_id="python-…")',
            '{service="botsys", bot_type=~"$bot_type|"} |= "$search"',
            (0, 15, 24, 10),
        ),
        logs("Mock webhook", '{service="mock-webhook"} |= "$search"', (0, 25, 12, 8)),
        logs("nginx (load balancer)", '{service="nginx"} |= "$search"', (12, 25, 12, 8)),
        logs("Redis", '{service="redis"}', (0, 33, 12, 8)),
        logs("All logs", f'{{{project}}} |= "$search"', (12, 33, 12, 8)),
    ]


def logs_variables() -> list[dict]:
    return [
        {
            "name": "bot_type",
            "label": "Bot type",
            "type": "query",
            "datasource": LOKI,
            "query": {"label": "bot_type", "refId": "bot_type", "stream": "", "type": 1},
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": ["All"], "value": ["$__all"]},
        },
        {
            "name": "search",
            "label": "Line contains",
            "type": "textbox",
            "query": "",
            "current": {"text": "", "value": ""},
        },
    ]


def build() -> dict[str, dict]:
    return {
        "bot-system-metrics.json": dashboard(
            "bot-metrics",
            "Bot System Metrics",
            metrics_panels(),
            ["botsys", "metrics"],
            templating={"list": [bot_type_variable()]},
        ),
        "bot-system-logs.json": dashboard(
            "bot-logs",
            "Bot System Logs",
            logs_panels(),
            ["botsys", "logs"],
            templating={"list": logs_variables()},
        ),
    }


def render(board: dict) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(out_dir: Path = HERE / "dashboards") -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, board in build().items():
        (out_dir / name).write_text(render(board), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "dashboards"))
