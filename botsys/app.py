"""The application factory: builds the aiohttp app and wires every component.

Each resource or background loop is its own cleanup context, listed in start order; shutdown
unwinds them in reverse (HTTP stops first, then the webhook loop, then the orchestrator drains
its running bots, then Redis closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import socket
import time

from aiohttp import web

from . import __version__
from .api import setup_api
from .api.http_errors import install as install_http_errors  # noqa: F401 — serve's hook
from .appkeys import (
    BREAKER_STATE,
    DELIVERIES,
    ENDPOINTS,
    GROUPS,
    MEMBER_CHECK,
    METRICS,
    METRICS_REFRESH,
    ORCHESTRATOR,
    QUEUE,
    REGISTRY,
    REPLICA,
    SECRETS,
    SETTINGS,
    STARTED_AT,
    STORE,
    TYPE_CATALOG,
    TYPE_STORE,
    TYPE_WATCHER,
)
from .config import Settings
from .control.catalog import TypeCatalog
from .control.group_store import GroupStore
from .control.members import registry_member_check
from .control.type_store import TypeStore
from .control.watch import TypeWatcher
from .endpoint_health import SharedHealth, circuit_states
from .endpoints import EndpointStore
from .metrics import Metrics, TypeSnapshot, WebhookSnapshot
from .orchestrator import Orchestrator
from .queue import JobQueue
from .runners.process import ProcessRunner
from .runners.registry import BotRegistry
from .signing_secrets import SecretRing
from .store.connection import make_client, wait_until_ready, warn_on_risky_settings
from .store.notify import Notifier
from .store.outbox import Outbox
from .waiting import cancel_and_wait
from .webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger("botsys.app")


def replica_name(settings: Settings) -> str:
    return settings.server.replica or f"{socket.gethostname()}-{os.getpid()}"


def create_app(settings: Settings, *, runner=None, with_workers: bool = True) -> web.Application:
    """``runner`` replaces the subprocess runner (tests); ``with_workers=False`` serves the API
    only (no dispatchers, no webhook loop)."""
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    # Bot types change at runtime: every component reads them through the catalog's live view.
    catalog = TypeCatalog(settings.bot_types)
    settings = dataclasses.replace(settings, bot_types=catalog.live)
    app[TYPE_CATALOG] = catalog
    app[SETTINGS] = settings
    app[REPLICA] = replica_name(settings)
    app[STARTED_AT] = time.time()
    app[REGISTRY] = BotRegistry(settings)
    app[MEMBER_CHECK] = registry_member_check(app[REGISTRY])
    app[METRICS] = Metrics(
        version=__version__, replica=app[REPLICA], bot_types=list(settings.bot_types)
    )
    app.cleanup_ctx.append(_store)
    if with_workers:
        app.cleanup_ctx.append(_workers(runner))
    setup_api(app)
    return app


async def _store(app: web.Application):
    settings = app[SETTINGS]
    r = settings.redis
    store = make_client(
        r.url, r.connect_timeout_s, r.max_connections, r.pool_timeout_s, prefix=r.prefix
    )
    if store.embedded:
        log.warning("redis: %s", store.description)
    else:
        log.info("redis: connecting to %s", store.description)
    await wait_until_ready(store, settings.redis.startup_retry_max_s)
    await warn_on_risky_settings(store)
    app[STORE] = store
    queue = JobQueue(store, settings, app[REPLICA])
    types = app[TYPE_STORE] = TypeStore(store, queue)
    app[TYPE_CATALOG].on_change(lambda change: _forget_contexts(queue, change))
    await app[TYPE_CATALOG].refresh(types, force=True)  # runtime types, before seeding limits
    await queue.seed_limits()
    app[QUEUE] = queue
    app[TYPE_WATCHER] = watcher = TypeWatcher(app[TYPE_CATALOG], types)
    watching = asyncio.create_task(watcher.run(), name="bot-types")
    app[DELIVERIES] = Outbox(store, settings, queue.run_script)
    app[SECRETS] = SecretRing(store, settings.webhooks)
    app[ENDPOINTS] = EndpointStore(
        store, queue, settings.webhooks.secret_overlap_s, app[DELIVERIES]
    )
    await _first_load(app[ENDPOINTS])
    app[BREAKER_STATE] = functools.partial(circuit_states, store)
    app[GROUPS] = GroupStore(store)
    _install_snapshot(app)
    yield
    await cancel_and_wait([watching])
    await store.close()


def _forget_contexts(queue: JobQueue, change) -> None:
    """Script contexts carry a type's settings (its cadence): rebuilt after any change."""
    for t in (*change.added, *change.changed, *change.removed):
        queue.forget_context(t)


async def _disable_failing(app: web.Application, endpoint_id: str, since_ms: int):
    endpoint = await app[ENDPOINTS].disable_failing(endpoint_id, since_ms)
    if endpoint is not None:
        app[METRICS].endpoints_disabled.inc()
    return endpoint


async def _first_load(endpoints: EndpointStore) -> None:
    """Subscriptions before the first job completes here (the notifier reloads them later)."""
    await endpoints.reload()


def _install_snapshot(app: web.Application) -> None:
    """/metrics reads cluster-wide gauges from a snapshot refreshed in one pipelined call."""
    cache: dict = {"types": {}, "webhooks": None}

    async def refresh() -> None:
        stats = await app[QUEUE].stats()
        cache["types"] = {
            t: TypeSnapshot(s.waiting, s.delayed, s.running, s.limit, s.paused)
            for t, s in stats.items()
        }
        cache["webhooks"] = WebhookSnapshot(
            pending=sum(s.webhook_pending for s in stats.values()),
            failed=sum(s.webhook_dead for s in stats.values()),
        )

    app[METRICS].set_snapshot_provider(lambda: cache["types"], lambda: cache["webhooks"])
    app[METRICS_REFRESH] = refresh


def _workers(runner):
    async def ctx(app: web.Application):
        settings, queue, metrics = app[SETTINGS], app[QUEUE], app[METRICS]
        notifier = Notifier(app[STORE].redis)
        bots = runner or ProcessRunner(settings, app[REGISTRY])
        if runner is None:
            await bots.start()  # fork-mode zygotes, before the first claim
        orch = Orchestrator(
            queue,
            bots,
            settings,
            metrics=metrics,
            notifier=notifier,
        )
        app[ORCHESTRATOR] = orch
        app[TYPE_CATALOG].on_change(orch.types_changed)
        notifier.on(app[STORE].keys.types_channel(), app[TYPE_WATCHER].poke)
        deliveries = app[DELIVERIES]
        deliveries.subscribe(notifier)
        app[SECRETS].subscribe(notifier)
        app[ENDPOINTS].subscribe(notifier)
        dispatcher = WebhookDispatcher(
            deliveries,
            settings.webhooks,
            on_attempt=lambda record, delivery: metrics.observe_delivery(
                record.outcome, record.status_code, record.duration_ms / 1000
            ),
            idle_wait_s=settings.engine.idle_wait_s,
            keyring=app[SECRETS].keyring,
            endpoint_keyring=app[ENDPOINTS].keyring_for,
            endpoint_rate=app[ENDPOINTS].rate_for,
            endpoint_disabled=app[ENDPOINTS].is_disabled,
            endpoint_failing=lambda endpoint_id, since_ms: _disable_failing(
                app, endpoint_id, since_ms
            ),
            endpoint_exists=app[ENDPOINTS].exists,
            health=SharedHealth(app[STORE], settings.webhooks),
        )
        app[ENDPOINTS].on_enabled(dispatcher.forget_endpoint)
        tasks = [asyncio.create_task(notifier.run(), name="notifier")]
        await orch.start()
        tasks.append(asyncio.create_task(dispatcher.run(), name="webhooks"))
        log.info("replica %s started: bot types %s", app[REPLICA], ", ".join(orch.bot_types))
        yield
        log.info("draining: no new claims; running bots get %.0fs", settings.server.drain_timeout_s)
        await dispatcher.stop()
        await orch.stop()
        await cancel_and_wait(tasks)
        if hasattr(bots, "aclose"):  # a test's stand-in runner may have nothing to close
            await bots.aclose()
        with contextlib.suppress(Exception):
            await dispatcher.aclose()
        log.info("drained; bye")

    return ctx
