"""GET /health and GET /metrics: open, never rate limited, answer even when Redis is down."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp_apispec import docs, response_schema

from .. import __version__
from ..metrics import make_handler
from ..store.connection import REDIS_DOWN
from . import schemas as s
from .appkeys import METRICS, METRICS_REFRESH, REPLICA, STARTED_AT, STORE
from .problems import STORE_DEADLINE_S


@docs(
    tags=["system"],
    summary="Liveness and Redis reachability",
    description="200 while serving normally; 503 (status 'degraded') when Redis is unreachable.",
    security=[],
)
@response_schema(s.Health, 200, description="ok")
@response_schema(s.Health, 503, description="degraded: Redis unreachable")
async def health(request: web.Request) -> web.Response:
    app = request.app
    store = app[STORE]
    try:
        async with asyncio.timeout(STORE_DEADLINE_S):
            await store.redis.ping()
        redis_state, status = "ok", 200
    except (*REDIS_DOWN, TimeoutError):
        redis_state, status = "unreachable", 503
    body = {
        "status": "ok" if status == 200 else "degraded",
        "redis": redis_state,
        "embedded": store.embedded,
        "replica": app[REPLICA],
        "version": __version__,
        "uptimeSeconds": round(time.time() - app[STARTED_AT], 1),
    }
    return web.json_response(body, status=status)


health.no_deadline = True  # has its own, and must answer 503 with its body, not a problem


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
