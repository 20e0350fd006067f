"""The testing webhook receiver: a real aiohttp server (``python -m botsys mock-webhook``).

Records every POST (any path) with its headers, body and signature check, answers 200 — or
500 with the configured probability, or whatever ``/control/fail-next`` asked for — and lets
tests and humans read the history back. History is a bounded ring buffer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter

from botsys.config import MockWebhookSettings, Settings
from botsys.listen import bind_sockets, port_of
from botsys.webhooks.signing import WebhookVerificationError, verify

MAX_LIMIT = 1000
TEST_KINDS = {
    "success": (200, {"message": "Test success response"}),
    "error": (500, {"error": "Test error response"}),
    "not-found": (404, {"error": "Test not found response"}),
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class MockState:
    """Everything the mock remembers; one per app."""

    history: deque
    failure_rate: float
    secret: str
    delay_timeout_s: float  # /test/timeout sleeps this long
    rng: random.Random
    clock: Any
    started: float
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    fail_next: deque = field(default_factory=deque)  # statuses for the next requests
    totals: Counter = field(default_factory=Counter)
    bot_types: Counter = field(default_factory=Counter)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = PromCounter(
            "mock_webhook_requests",
            "Webhook requests received, by answered status",
            ["status"],
            registry=self.registry,
        )
        self.signatures = PromCounter(
            "mock_webhook_signature_checks",
            "Signature checks, by result (valid, invalid, unchecked)",
            ["result"],
            registry=self.registry,
        )

    def next_status(self) -> int:
        if self.fail_next:
            return self.fail_next.popleft()
        return 500 if self.rng.random() < self.failure_rate else 200

    def clear(self) -> int:
        count = len(self.history)
        self.history.clear()
        self.totals.clear()
        self.bot_types.clear()
        return count


STATE = web.AppKey("mock_state", MockState)


def create_mock_app(
    settings: MockWebhookSettings,
    *,
    secret: str = "",
    delivery_timeout_s: float = 15.0,
    rng: random.Random | None = None,
    clock=time.time,
) -> web.Application:
    """The mock webhook application. ``secret`` (whsec_...) enables signature checks;
    ``/test/timeout`` sleeps 5 s longer than ``delivery_timeout_s``."""
    app = web.Application(client_max_size=10 * 1024 * 1024)
    app[STATE] = MockState(
        history=deque(maxlen=settings.history),
        failure_rate=settings.failure_rate,
        secret=secret,
        delay_timeout_s=delivery_timeout_s + 5.0,
        rng=rng or random.Random(),
        clock=clock,
        started=clock(),
    )
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/metrics", metrics),
            web.get("/stats", stats),
            web.get("/webhooks", list_webhooks),
            web.get("/webhooks/{id}", get_webhook),
            web.delete("/webhooks", clear_webhooks),
            web.post("/test/{kind}", test_response),
            web.post("/control/fail-next", fail_next),
            web.post("/control/failure-rate", failure_rate),
            web.post("/{tail:.*}", receive),
        ]
    )
    return app


def mock_app_from_settings(settings: Settings) -> web.Application:
    return create_mock_app(
        settings.mock_webhook,
        secret=settings.webhooks.secret,
        delivery_timeout_s=settings.webhooks.timeout_s,
    )


async def serve_mock_webhook(
    settings: Settings, host: str | None = None, port: int | None = None
) -> None:
    """Serve until cancelled (the CLI runs this under ``asyncio.run``). A taken port raises
    ``BindError`` before anything is set up."""
    host = host or settings.mock_webhook.host
    sockets = bind_sockets(host, settings.mock_webhook.port if port is None else port)
    runner = web.AppRunner(mock_app_from_settings(settings), access_log=None)
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    print(f"mock webhook on http://{host}:{port_of(sockets)}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# -- receiving ---------------------------------------------------------------------------


async def receive(request: web.Request) -> web.Response:
    state = request.app[STATE]
    raw = await request.read()
    status = state.next_status()
    record = _record(state, request, raw, status)
    state.history.append(record)
    _count(state, record)
    now = _iso(state.clock())
    if status >= 400:
        return web.json_response(
            {"error": "Simulated webhook failure", "timestamp": now}, status=status
        )
    body = {"message": "Webhook received successfully", "webhookId": record["id"]}
    return web.json_response({**body, "timestamp": now, "processed": True}, status=status)


def _record(state: MockState, request: web.Request, raw: bytes, status: int) -> dict:
    body = _json_or_none(raw)
    fields = body if isinstance(body, dict) else {}
    headers = request.headers
    return {
        "id": f"wh_{next(state.ids)}",
        "receivedAt": _iso(state.clock()),
        "receivedAtMs": int(state.clock() * 1000),
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "headers": dict(headers),
        "body": body,
        "rawBody": raw[:65536].decode("utf-8", "replace") if body is None else None,
        "bodySize": len(raw),
        "webhookId": headers.get("webhook-id"),
        "attempt": _int_or_none(headers.get("X-Delivery-Attempt")),
        "jobId": fields.get("jobId") or headers.get("X-Bot-Job-Id"),
        "botType": fields.get("botType"),
        "success": fields.get("success"),
        "signature": _check_signature(state, headers, raw),
        "responseStatus": status,
    }


def _check_signature(state: MockState, headers, raw: bytes) -> dict:
    if not state.secret:
        return {"checked": False, "valid": None, "error": None}
    try:
        verify(state.secret, headers, raw)
    except WebhookVerificationError as exc:
        return {"checked": True, "valid": False, "error": str(exc)}
    return {"checked": True, "valid": True, "error": None}


def _count(state: MockState, record: dict) -> None:
    state.totals["total"] += 1
    if record["success"] is True:
        state.totals["successful"] += 1
    elif record["success"] is False:
        state.totals["failed"] += 1
    state.bot_types[record["botType"] or "unknown"] += 1
    state.requests.labels(str(record["responseStatus"])).inc()
    sig = record["signature"]
    state.signatures.labels(
        "unchecked" if not sig["checked"] else "valid" if sig["valid"] else "invalid"
    ).inc()


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


# -- reading back ------------------------------------------------------------------------


async def list_webhooks(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _query_int(request, "limit", 50, 1, MAX_LIMIT)
    offset = _query_int(request, "offset", 0, 0, 1 << 31)
    newest_first = list(reversed(state.history))
    page = newest_first[offset : offset + limit]
    return web.json_response(
        {"webhooks": page, "total": len(newest_first), "limit": limit, "offset": offset}
    )


def _query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an integer in [{lo}, {hi}]"}),
            content_type="application/json",
        )
    return int(text)


async def get_webhook(request: web.Request) -> web.Response:
    wanted = request.match_info["id"]
    for record in request.app[STATE].history:
        if record["id"] == wanted:
            return web.json_response(record)
    return web.json_response({"error": "Webhook not found"}, status=404)


async def clear_webhooks(request: web.Request) -> web.Response:
    state = request.app[STATE]
    count = state.clear()
    return web.json_response(
        {"message": f"Cleared {count} webhooks", "timestamp": _iso(state.clock())}
    )


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now_ms = int(state.clock() * 1000)
    times = [r["receivedAtMs"] for r in state.history]
    return web.json_response(
        {
            "total": state.totals["total"],
            "lastHour": sum(1 for t in times if now_ms - t <= 3_600_000),
            "lastDay": sum(1 for t in times if now_ms - t <= 86_400_000),
            "successful": state.totals["successful"],
            "failed": state.totals["failed"],
            "botTypeStats": dict(state.bot_types),
            "remembered": len(times),
            "uptime": round(state.clock() - state.started, 3),
            "timestamp": _iso(state.clock()),
        }
    )


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "status": "healthy",
            "timestamp": _iso(state.clock()),
            "totalWebhooksReceived": state.totals["total"],
        }
    )


async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[STATE].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


# -- controls ----------------------------------------------------------------------------


async def test_response(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind == "timeout":
        await asyncio.sleep(request.app[STATE].delay_timeout_s)
        return web.json_response({"message": "Delayed response"})
    if kind not in TEST_KINDS:
        return web.json_response({"error": "Invalid test type"}, status=400)
    status, body = TEST_KINDS[kind]
    return web.json_response(body, status=status)


async def fail_next(request: web.Request) -> web.Response:
    """``{"count": N, "status": 500}``: the next N received webhooks get that status."""
    params = await _json_body(request)
    count, status = params.get("count", 1), params.get("status", 500)
    if not _is_int(count, 0, 100_000) or not _is_int(status, 100, 599):
        return web.json_response({"error": "count 0..100000, status 100..599"}, status=400)
    state = request.app[STATE]
    state.fail_next.clear()
    state.fail_next.extend([status] * count)
    return web.json_response({"failNext": count, "status": status})


async def failure_rate(request: web.Request) -> web.Response:
    """``{"rate": 0.1}``: share of requests answered 500 from now on."""
    rate = (await _json_body(request)).get("rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        return web.json_response({"error": "rate must be a number in [0, 1]"}, status=400)
    request.app[STATE].failure_rate = float(rate)
    return web.json_response({"failureRate": float(rate)})


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return body


def _is_int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
