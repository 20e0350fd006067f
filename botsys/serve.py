"""`botsys serve`: logging, the event loop, the app, signals. SIGTERM drains (see app.py)."""

from __future__ import annotations

import faulthandler
import functools
import gc
import logging

from aiohttp import web

from .app import create_app, install_http_errors, replica_name
from .config import Settings, ignored_environment
from .heap import settle_heap
from .listen import bind_sockets, port_of
from .logs import setup_logging
from .undumpable import make_undumpable

log = logging.getLogger("botsys.serve")

EXIT_AFTER_CLEANUP_S = 5.0
SHUTDOWN_TIMEOUT_S = 5.0  # open connections (SSE) get this long; bots drain afterwards
SHUTDOWN_SLACK_S = 30.0  # the rest of the cleanup: closing clients, zygotes, re-cancels


def serve(settings: Settings) -> int:
    # First: bots of the same user must not read our environment (REDIS_URL, keys) via /proc.
    undumpable = make_undumpable()
    # Bound next: a taken port stops here with one line (BindError), before anything starts.
    sockets = bind_sockets(settings.server.host, settings.server.port)
    setup_logging(settings.logging.level, settings.logging.format, replica_name(settings))
    if not undumpable:
        log.warning("could not make the server non-dumpable: same-user bots may read its secrets")
    for warning in ignored_environment():
        log.warning(warning)
    try:
        import uvloop  # measurably faster event loop where available (see bench/)

        uvloop.install()
    except ImportError:
        pass
    install_http_errors()  # malformed HTTP answered as problem+json, logged at INFO
    app = create_app(settings)
    app.on_startup.append(_settle_heap)  # last: after the store, workers and clients exist
    app.on_shutdown.append(functools.partial(_bound_the_shutdown, shutdown_budget_s(settings)))
    app.on_cleanup.append(_bound_the_exit)  # last: after the drain and every cleanup
    url = f"http://{settings.server.host}:{port_of(sockets)}"
    web.run_app(
        app,
        sock=sockets,
        access_log=None,  # the access-log middleware writes one structured line per request
        # run_app calls `print` once every socket listens: the moment "listening" is true
        print=lambda _banner: log.info("listening on %s", url),
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        handle_signals=True,
    )
    return 0


async def _settle_heap(app: web.Application) -> None:
    frozen = settle_heap()
    log.info(
        "heap settled: startup objects frozen, first GC threshold raised",
        extra={"frozen_objects": frozen, "gc_threshold": gc.get_threshold()[0]},
    )


def shutdown_budget_s(settings: Settings) -> float:
    """The longest a SIGTERM'd replica may take to end: open requests, the webhook sends'
    grace, the dispatchers' claims in flight (a lease), the bots' drain, then the slack."""
    return (
        SHUTDOWN_TIMEOUT_S
        + settings.webhooks.timeout_s
        + settings.engine.lease_ms / 1000
        + settings.server.drain_timeout_s
        + SHUTDOWN_SLACK_S
    )


async def _bound_the_shutdown(budget_s: float, app: web.Application) -> None:
    """The whole shutdown is bounded too, not only what follows the cleanup: a step that
    waits forever (a task that lost its cancel, a client that never answers) would keep the
    replica alive and its port bound. Past the budget, every thread's stack goes to stderr and
    the process exits 1. ``_bound_the_exit`` replaces this timer once the cleanup is done."""
    faulthandler.dump_traceback_later(budget_s, exit=True)


async def _bound_the_exit(app: web.Application) -> None:
    """Drained and cleaned up, the process must end: what is left (cancelling tasks, joining
    executor threads, interpreter exit) gets EXIT_AFTER_CLEANUP_S. Past that, a thread is
    stuck: every thread's stack goes to stderr and the process exits 1, instead of a replica
    that never ends (seen once, after "drained; bye", on a loaded machine)."""
    faulthandler.dump_traceback_later(EXIT_AFTER_CLEANUP_S, exit=True)
