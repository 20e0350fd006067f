"""GET /health and GET /metrics: open, never rate limited, answer even when Redis is down.

/health is 503 ``degraded``, with its ``reasons``, while this replica cannot do its work:
Redis unreachable, refusing writes (full, read-only, cannot persist, busy, loading — probed
with a small write), or a configured bot type that cannot start jobs for a reason other than an
operator's pause (its record lost by Redis, or held for one lease after being re-created).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp_apispec import docs, response_schema

from .. import __version__
from ..appkeys import METRICS, METRICS_REFRESH, QUEUE, REPLICA, STARTED_AT, STORE
from ..metrics import make_handler
from ..store.connection import REDIS_DOWN
from ..store.errors import refusal_of
from . import schemas as s
from .problems import STORE_DEADLINE_S

PROBE_TTL_MS = 60_000
# The probe write is as big as a small job: a Redis too full to accept one refuses it too (a
# command's own size counts against maxmemory).
PROBE_VALUE = "1" * 2048


@docs(
    tags=["system"],
    summary="Liveness and Redis reachability",
    description="200 while serving normally; 503 (status 'degraded', with `reasons`) when Redis "
    "is unreachable or refuses writes (full, read-only, …), or a bot type cannot start jobs for "
    "a reason other than a pause.",
    security=[],
)
@response_schema(s.Health, 200, description="ok")
@response_schema(s.Health, 503, description="degraded: see reasons")
async def health(request: web.Request) -> web.Response:
    app = request.app
    store = app[STORE]
    try:
        async with asyncio.timeout(STORE_DEADLINE_S):
            redis_state, reasons = await _check(app)
    except (*REDIS_DOWN, TimeoutError) as exc:
        refusal = refusal_of(exc)  # LOADING arrives as a connection error
        redis_state = refusal.kind if refusal else "unreachable"
        reasons = [refusal.detail if refusal else "the job store (Redis) is unreachable"]
    status = 503 if reasons else 200
    body = {
        "status": "ok" if status == 200 else "degraded",
        "redis": redis_state,
        "reasons": reasons,
        "embedded": store.embedded,
        "replica": app[REPLICA],
        "version": __version__,
        "uptimeSeconds": round(time.time() - app[STARTED_AT], 1),
    }
    return web.json_response(body, status=status)


health.no_deadline = True  # has its own, and must answer 503 with its body, not a problem


async def _check(app: web.Application) -> tuple[str, list[str]]:
    """(Redis state, reasons to be degraded) in one pipelined round trip."""
    store, queue = app[STORE], app[QUEUE]
    types = queue.bot_types
    pipe = store.redis.pipeline(transaction=False)
    pipe.time()
    for t in types:
        pipe.hmget(store.keys.meta(t), "limit", "heldUntil")
    if not store.embedded:  # a small write: refused when Redis is full, read-only, …
        pipe.set(store.keys.health_probe(app[REPLICA]), PROBE_VALUE, px=PROBE_TTL_MS)
    replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception):
            refusal = refusal_of(reply)
            if refusal is None:
                raise reply
            return refusal.kind, [refusal.detail]
    secs, micros = replies[0]
    now_ms = secs * 1000 + micros // 1000
    return "ok", [r for t, m in zip(types, replies[1:], strict=False) if (r := _why(t, m, now_ms))]


def _why(bot_type: str, meta: list, now_ms: int) -> str | None:
    """Why a bot type cannot start jobs now (a pause is the operator's choice: not listed)."""
    limit, held_until = meta
    if limit is None:
        return (
            f"bot type {bot_type}: its record is missing in Redis (restarted empty, flushed or "
            "failed over?); a replica re-creates it from configuration on its next claim"
        )
    wait_ms = int(held_until or 0) - now_ms
    if wait_ms > 0:
        return (
            f"bot type {bot_type}: its record was re-created after Redis lost it; jobs start "
            f"again in {wait_ms} ms, once attempts of the lost state have stopped"
        )
    return None


def metrics_handler(app: web.Application):
    """GET /metrics: prometheus-client's handler after a bounded snapshot refresh."""

    async def refresh() -> None:
        async with asyncio.timeout(STORE_DEADLINE_S):
            await app[METRICS_REFRESH]()

    serve = make_handler(app[METRICS], refresh)

    @docs(
        tags=["system"],
        summary="Prometheus metrics",
        security=[],
        responses={
            "200": {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics(request: web.Request) -> web.StreamResponse:
        return await serve(request)

    metrics.no_deadline = True  # a failed refresh still serves the last snapshot
    return metrics
