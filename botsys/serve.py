"""`botsys serve`: logging, the event loop, the app, signals. SIGTERM drains (see app.py)."""

from __future__ import annotations

import gc
import logging

from aiohttp import web

from .app import create_app, replica_name
from .config import Settings
from .heap import settle_heap
from .logs import setup_logging
from .undumpable import make_undumpable

log = logging.getLogger("botsys.serve")


def serve(settings: Settings) -> int:
    setup_logging(settings.logging.level, settings.logging.format, replica_name(settings))
    # First: bots of the same user must not read our environment (REDIS_URL, keys) via /proc.
    if not make_undumpable():
        log.warning("could not make the server non-dumpable: same-user bots may read its secrets")
    try:
        import uvloop  # measurably faster event loop where available (see bench/)

        uvloop.install()
    except ImportError:
        pass
    app = create_app(settings)
    app.on_startup.append(_settle_heap)  # last: after the store, workers and clients exist
    log.info("listening on http://%s:%s", settings.server.host, settings.server.port)
    web.run_app(
        app,
        host=settings.server.host,
        port=settings.server.port,
        access_log=None,  # the access-log middleware writes one structured line per request
        print=None,
        shutdown_timeout=5.0,  # open connections (SSE) get this long; bots drain afterwards
        handle_signals=True,
    )
    return 0


async def _settle_heap(app: web.Application) -> None:
    frozen = settle_heap()
    log.info(
        "heap settled: startup objects frozen, first GC threshold raised",
        extra={"frozen_objects": frozen, "gc_threshold": gc.get_threshold()[0]},
    )
