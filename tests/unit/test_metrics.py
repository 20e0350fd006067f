"""Metrics: values after observations, the snapshot collector, bounded label sets."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from botsys.metrics import (
    UNMATCHED_ROUTE,
    Metrics,
    TypeSnapshot,
    WebhookSnapshot,
    http_code_label,
    make_handler,
    render,
    route_label,
)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset], float]:
    body, _ = render(metrics)
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="1.2.3", replica="r1", bot_types=["python"], process_metrics=False)


def test_execution_counter_and_histogram(metrics: Metrics) -> None:
    metrics.observe_execution("python", "succeeded", 1.5)
    metrics.observe_execution("python", "succeeded", 0.2)
    metrics.observe_execution("python", "timed_out", 300.0)
    assert value(metrics, "bot_executions_total", bot_type="python", status="succeeded") == 2
    assert value(metrics, "bot_executions_total", bot_type="python", status="timed_out") == 1
    assert value(metrics, "bot_execution_duration_seconds_count", bot_type="python") == 3
    assert value(metrics, "bot_execution_duration_seconds_sum", bot_type="python") == 301.7
    le = {"bot_type": "python", "le": "300.0"}
    assert value(metrics, "bot_execution_duration_seconds_bucket", **le) == 3


def test_declared_types_start_at_zero(metrics: Metrics) -> None:
    for status in ("succeeded", "failed", "timed_out", "cancelled"):
        assert value(metrics, "bot_executions_total", bot_type="python", status=status) == 0


def test_wait_delivery_http(metrics: Metrics) -> None:
    metrics.observe_wait("python", 0.04)
    metrics.observe_delivery("delivered", 200, 0.1)
    metrics.observe_delivery("retry", None, 15.0)
    metrics.observe_http("/job/{jobId}", "get", 200, 0.003)
    assert value(metrics, "job_wait_seconds_count", bot_type="python") == 1
    assert value(metrics, "webhook_deliveries_total", status="delivered", http_code="200") == 1
    assert value(metrics, "webhook_deliveries_total", status="retry", http_code="none") == 1
    assert value(metrics, "webhook_delivery_duration_seconds_count", status="retry") == 1
    labels = {"route": "/job/{jobId}", "method": "GET", "status": "200"}
    assert value(metrics, "http_requests_total", **labels) == 1
    assert value(metrics, "http_request_duration_seconds_count", route="/job/{jobId}", method="GET")


def test_info_gauge(metrics: Metrics) -> None:
    assert value(metrics, "botsys_info", version="1.2.3", replica="r1") == 1


def test_snapshot_collector_exposes_cluster_gauges(metrics: Metrics) -> None:
    snap = {
        "python": TypeSnapshot(waiting=7, delayed=2, running=5, limit=5),
        "node": TypeSnapshot(waiting=3, delayed=0, running=1, limit=10),
        "java": TypeSnapshot(waiting=4, delayed=0, running=0, limit=3, paused=True),
    }
    metrics.set_snapshot_provider(lambda: snap, lambda: WebhookSnapshot(pending=4, failed=1))
    s = samples(metrics)

    def g(name: str, **labels: str) -> float:
        return s[(name, frozenset(labels.items()))]

    assert g("queue_size", bot_type="python", state="waiting") == 7
    assert g("queue_size", bot_type="python", state="delayed") == 2
    assert g("queue_size", bot_type="python", state="running") == 5
    assert g("semaphore_usage", bot_type="python") == 5
    assert g("semaphore_limit", bot_type="node") == 10
    assert g("semaphore_waiting", bot_type="python") == 7  # full: every ready job is blocked
    assert g("semaphore_waiting", bot_type="node") == 0  # free slots cover the ready jobs
    assert g("semaphore_waiting", bot_type="java") == 0  # paused: waiting for resume, not a lease
    assert g("queue_paused", bot_type="java") == 1
    assert g("webhook_pending") == 4
    assert g("webhook_failed") == 1


@pytest.mark.parametrize(
    ("waiting", "running", "limit", "paused", "blocked"),
    [(5, 2, 4, False, 3), (0, 4, 4, False, 0), (3, 9, 4, False, 3), (2, 0, 0, False, 2)],
)
def test_blocked_definition(waiting, running, limit, paused, blocked) -> None:
    assert TypeSnapshot(waiting, 0, running, limit, paused).blocked == blocked


def test_failing_provider_costs_only_its_gauges(metrics: Metrics) -> None:
    def broken():
        raise RuntimeError("redis down")

    metrics.set_snapshot_provider(broken)
    s = samples(metrics)
    assert not any(name == "queue_size" for name, _ in s)
    assert value(metrics, "botsys_info", version="1.2.3", replica="r1") == 1


def test_label_values_are_bounded(metrics: Metrics) -> None:
    for i in range(200):
        metrics.observe_execution("python", f"weird-{i}", 1)
        metrics.observe_delivery(f"odd-{i}", 1000 + i, 0.1)
        metrics.observe_http("/job/{jobId}", f"M{i}", 200, 0.01)
    s = samples(metrics)
    statuses = {dict(lbl)["status"] for n, lbl in s if n == "bot_executions_total"}
    assert statuses <= {"succeeded", "failed", "timed_out", "cancelled", "other"}
    codes = {dict(lbl)["http_code"] for n, lbl in s if n == "webhook_deliveries_total"}
    assert codes == {"none"}
    methods = {dict(lbl)["method"] for n, lbl in s if n == "http_requests_total"}
    assert methods == {"other"}
    assert len(metrics._http_children) == 1  # the label-children cache is bounded too


def test_http_code_label() -> None:
    assert http_code_label(503) == "503"
    assert http_code_label(None) == "none"
    assert http_code_label(0) == "none"


def test_process_metrics_on_app_registry() -> None:
    m = Metrics(replica="r1")
    names = {name for name, _ in samples(m)}
    assert "process_resident_memory_bytes" in names
    assert "python_info" in names


def test_registries_are_independent() -> None:
    a, b = (Metrics(process_metrics=False) for _ in range(2))
    a.observe_execution("python", "failed", 1)
    assert value(b, "bot_executions_total", bot_type="python", status="failed") is None


async def test_route_label_and_handler(aiohttp_client) -> None:
    from aiohttp import web

    m = Metrics(process_metrics=False)
    refreshed = []
    seen = []

    async def refresh() -> None:
        refreshed.append(1)

    @web.middleware
    async def record(request, handler):
        try:
            return await handler(request)
        finally:  # 404s raise HTTPNotFound through the middleware
            seen.append(route_label(request))

    async def job(request):
        return web.json_response({})

    app = web.Application(middlewares=[record])
    app.router.add_get("/job/{jobId}", job)
    app.router.add_get("/metrics", make_handler(m, refresh))
    client = await aiohttp_client(app)
    assert (await client.get("/job/python-123")).status == 200
    resp = await client.get("/metrics")
    assert resp.status == 200 and "text/plain" in resp.headers["Content-Type"]
    assert "botsys_info" in await resp.text()
    assert refreshed == [1]
    await client.get("/nope")
    assert seen == ["/job/{jobId}", "/metrics", UNMATCHED_ROUTE]
