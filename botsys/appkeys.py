"""Typed application keys: every component the app wires, declared in one place.

Both HTTP packages (api/ and dashboard/) read them, so they live beside the app factory rather
than in either package: the dashboard never imports the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import Settings
from .control.catalog import TypeCatalog
from .control.group_store import GroupStore
from .control.type_store import TypeStore
from .control.watch import TypeWatcher
from .endpoints import EndpointStore
from .metrics import Metrics
from .orchestrator import Orchestrator
from .queue import JobQueue
from .runners.registry import BotRegistry
from .signing_secrets import SecretRing
from .store.connection import Store
from .store.outbox import Outbox

SETTINGS = web.AppKey("settings", Settings)
REPLICA = web.AppKey("replica", str)
STARTED_AT = web.AppKey("started_at", float)
STORE = web.AppKey("store", Store)
QUEUE = web.AppKey("queue", JobQueue)
# This replica's orchestrator; absent when the app serves the API only (no workers).
ORCHESTRATOR = web.AppKey("orchestrator", Orchestrator)
REGISTRY = web.AppKey("registry", BotRegistry)
DELIVERIES = web.AppKey("deliveries", Outbox)
SECRETS = web.AppKey("secrets", SecretRing)
ENDPOINTS = web.AppKey("endpoints", EndpointStore)
METRICS = web.AppKey("metrics", Metrics)
# The bot types that exist now (configuration + runtime records): names(), get(name).
TYPE_CATALOG = web.AppKey("type_catalog", TypeCatalog)
TYPE_STORE = web.AppKey("type_store", TypeStore)
TYPE_WATCHER = web.AppKey("type_watcher", TypeWatcher)
METRICS_REFRESH = web.AppKey("metrics_refresh", Callable[[], Awaitable[None]])
GROUPS = web.AppKey("groups", GroupStore)
# An endpoint id → this replica's circuit breaker state for it, None before its first send;
# absent when the app serves the API only (no dispatcher).
BREAKER_STATE = web.AppKey("breaker_state", Callable[[str], "str | None"])
# A group member (`type` or `type/bot`) → why it cannot run now, or None when it can.
MEMBER_CHECK = web.AppKey("member_check", Callable[[str], "str | None"])

# Set by handlers that serve an HTML page (dashboard, Swagger UI): the page's own CSP.
PAGE_CSP = web.RequestKey("page_csp", str)
