"""Installs the HTTP layer on the app (a minimal first cut: health and metrics)."""

from __future__ import annotations

import time

from aiohttp import web

from .. import __version__
from ..metrics import make_handler
from ..store.connection import REDIS_DOWN
from .appkeys import METRICS, METRICS_REFRESH, REPLICA, STARTED_AT, STORE


async def health(request: web.Request) -> web.Response:
    app = request.app
    store = app[STORE]
    try:
        await store.redis.ping()
        redis_state, status = "ok", 200
    except REDIS_DOWN:
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


def setup_api(app: web.Application) -> None:
    async def refresh():
        await app[METRICS_REFRESH]()

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", make_handler(app[METRICS], refresh))
