"""Every Prometheus metric botsys exports, on one registry owned by the app.

``Metrics`` is created once per app (tests make a fresh one): no module-level metric objects,
so two apps in one process never share counters. Per-replica counters and histograms are
updated by the engine through the ``observe_*`` methods; cluster-wide gauges (queue sizes,
semaphores, webhook backlog) come from a snapshot the app refreshes from Redis right before
each scrape — the collector only reads that cached snapshot, so a scrape costs one pipelined
round trip however many bot types there are.

Cluster-wide gauges are reported identically by every replica: aggregate them with ``max``
(never ``sum``) in queries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .states import TERMINAL

log = logging.getLogger(__name__)

EXECUTION_STATUSES = TERMINAL
# The webhook policy's own outcomes (botsys.webhooks.types.Outcome).
DELIVERY_STATUSES = ("delivered", "retry", "failed")
QUEUE_STATES = ("waiting", "delayed", "running")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"  # any label value outside a closed set collapses here: cardinality stays bounded
UNMATCHED_ROUTE = "<unmatched>"

# Bots run up to the 300 s default timeout (longer ones land in +Inf).
EXECUTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Enqueue → start: sub-second when there is capacity, minutes to an hour behind a full semaphore.
WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
# One delivery attempt: bounded by webhooks.timeout_s (15 s default).
DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True, slots=True)
class TypeSnapshot:
    """One bot type's cluster-wide state, as read from Redis."""

    waiting: int  # ready to run now (the priority queue)
    delayed: int  # scheduled for later (retry backoff or a requested delay)
    running: int  # leases held: the semaphore's usage
    limit: int  # the live concurrency limit
    paused: bool = False

    @property
    def blocked(self) -> int:
        """Ready jobs that cannot start because the semaphore is full (``semaphore_waiting``).

        ``max(0, waiting - free slots)``: all of ``waiting`` when usage ≥ limit, 0 when the free
        slots cover every ready job. A paused queue reports 0 — its jobs wait for ``resume``,
        not for a lease (``queue_paused`` says so instead).
        """
        if self.paused:
            return 0
        free = max(0, self.limit - self.running)
        return max(0, self.waiting - free)


@dataclass(frozen=True, slots=True)
class WebhookSnapshot:
    """Cluster-wide webhook backlog."""

    pending: int  # deliveries not yet delivered: due now, being sent or waiting for a retry
    failed: int  # dead-lettered (retries exhausted or permanent 4xx) and still retained


SnapshotProvider = Callable[[], Mapping[str, TypeSnapshot]]
WebhookSnapshotProvider = Callable[[], WebhookSnapshot | None]


class Metrics:
    """The app's registry and every metric on it.

    ``bot_types`` pre-creates the per-type series at 0 so ``rate()`` and ratios work from the
    first scrape instead of showing "no data" until each outcome happened once.
    """

    def __init__(
        self,
        *,
        version: str = "",
        replica: str = "",
        bot_types: Iterable[str] = (),
        snapshot: SnapshotProvider | None = None,
        webhook_snapshot: WebhookSnapshotProvider | None = None,
        process_metrics: bool = True,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.executions = Counter(
            "bot_executions_total",
            "Finished attempts by outcome.",
            ["bot_type", "status"],
            registry=reg,
        )
        self.execution_duration = Histogram(
            "bot_execution_duration_seconds",
            "Wall time of one attempt, start of the subprocess to its end.",
            ["bot_type"],
            buckets=EXECUTION_BUCKETS,
            registry=reg,
        )
        self.job_wait = Histogram(
            "job_wait_seconds",
            "Time from enqueue (or becoming due) to the start of an attempt.",
            ["bot_type"],
            buckets=WAIT_BUCKETS,
            registry=reg,
        )
        self.deliveries = Counter(
            "webhook_deliveries_total",
            "Webhook delivery attempts by outcome and HTTP status code ('none': no response).",
            ["status", "http_code"],
            registry=reg,
        )
        self.delivery_duration = Histogram(
            "webhook_delivery_duration_seconds",
            "Duration of one webhook delivery attempt.",
            ["status"],
            buckets=DELIVERY_BUCKETS,
            registry=reg,
        )
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests served, by route pattern (never the raw path).",
            ["route", "method", "status"],
            registry=reg,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request handling time, by route pattern.",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.reseeded = Counter(
            "botsys_type_records_reseeded_total",
            "Bot type records ({T}:meta: limit, pause, counters) found missing in Redis "
            "(restarted empty, flushed, failed over) and re-created from configuration.",
            ["bot_type"],
            registry=reg,
        )
        self.ratelimit_fail_open = Counter(
            "botsys_ratelimit_fail_open_total",
            "Requests let through unchecked because Redis refused the rate limiter's write "
            "(reason: OOM, READONLY, MISCONF, BUSY, LOADING).",
            ["reason"],
            registry=reg,
        )
        self.endpoints_disabled = Counter(
            "botsys_webhook_endpoints_disabled_total",
            "Endpoints disabled automatically after webhooks.endpoint_disable_after_s of "
            "continuous failure (counted by the replica that disabled them).",
            registry=reg,
        )
        self.group_selections = Counter(
            "botsys_group_selections_total",
            "Jobs routed through a bot group, by group and the member its rule chose.",
            ["group", "member"],
            registry=reg,
        )
        # (route, method, status) → the two label children: labels() validates and locks on
        # every call (~5 µs per request); routes, methods and statuses are bounded sets.
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        info = Gauge(
            "botsys_info",
            "Always 1; labels name this process.",
            ["version", "replica"],
            registry=reg,
        )
        info.labels(version=version, replica=replica).set(1)
        self._cluster = ClusterCollector(snapshot, webhook_snapshot)
        reg.register(self._cluster)
        if process_metrics:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
            GCCollector(registry=reg)
        for bot_type in bot_types:
            self.declare_bot_type(bot_type)

    def declare_bot_type(self, bot_type: str) -> None:
        for status in EXECUTION_STATUSES:
            self.executions.labels(bot_type=bot_type, status=status)
        self.execution_duration.labels(bot_type=bot_type)
        self.job_wait.labels(bot_type=bot_type)
        self.reseeded.labels(bot_type=bot_type)

    def set_snapshot_provider(
        self, types: SnapshotProvider, webhooks: WebhookSnapshotProvider | None = None
    ) -> None:
        """Install the (synchronous, cache-reading) providers of the cluster-wide gauges."""
        self._cluster.types = types
        self._cluster.webhooks = webhooks

    def observe_execution(self, bot_type: str, status: str, duration_s: float) -> None:
        status = status if status in EXECUTION_STATUSES else OTHER
        self.executions.labels(bot_type=bot_type, status=status).inc()
        self.execution_duration.labels(bot_type=bot_type).observe(max(0.0, duration_s))

    def observe_group_selection(self, group: str, member: str) -> None:
        self.group_selections.labels(group=group, member=member).inc()

    def observe_reseed(self, bot_type: str) -> None:
        self.reseeded.labels(bot_type=bot_type).inc()

    def observe_ratelimit_fail_open(self, reason: str) -> None:
        self.ratelimit_fail_open.labels(reason=reason).inc()

    def observe_wait(self, bot_type: str, seconds: float) -> None:
        self.job_wait.labels(bot_type=bot_type).observe(max(0.0, seconds))

    def observe_delivery(self, status: str, http_code: int | None, duration_s: float) -> None:
        status = status if status in DELIVERY_STATUSES else OTHER
        self.deliveries.labels(status=status, http_code=http_code_label(http_code)).inc()
        self.delivery_duration.labels(status=status).observe(max(0.0, duration_s))

    def observe_http(self, route: str, method: str, status: int, duration_s: float) -> None:
        if method not in HTTP_METHODS:  # the usual case skips upper()
            method = method.upper() if method.upper() in HTTP_METHODS else OTHER
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:
            children = self._http_children[key] = (
                self.http_requests.labels(route=route, method=method, status=str(int(status))),
                self.http_duration.labels(route=route, method=method),
            )
        children[0].inc()
        children[1].observe(max(0.0, duration_s))


def http_code_label(code: int | None) -> str:
    """The numeric code as a string, or 'none' when no response came (timeout, refused)."""
    if code is None or not 100 <= int(code) <= 599:
        return "none"
    return str(int(code))


class ClusterCollector(Collector):
    """Cluster-wide gauges from the cached snapshot; reads no Redis itself.

    A provider that raises (or was never installed) costs only these gauges, never the scrape.
    """

    def __init__(
        self, types: SnapshotProvider | None, webhooks: WebhookSnapshotProvider | None
    ) -> None:
        self.types = types
        self.webhooks = webhooks

    def describe(self) -> Iterator[Metric]:
        # Declared names let the registry detect clashes without calling the providers.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        by_name = {f.name: f for f in families}
        for bot_type, snap in sorted(self._read(self.types, {}).items()):
            for state in QUEUE_STATES:
                by_name["queue_size"].add_metric([bot_type, state], getattr(snap, state))
            by_name["semaphore_usage"].add_metric([bot_type], snap.running)
            by_name["semaphore_limit"].add_metric([bot_type], snap.limit)
            by_name["semaphore_waiting"].add_metric([bot_type], snap.blocked)
            by_name["queue_paused"].add_metric([bot_type], 1 if snap.paused else 0)
        hooks = self._read(self.webhooks, None)
        if hooks is not None:
            by_name["webhook_pending"].add_metric([], hooks.pending)
            by_name["webhook_failed"].add_metric([], hooks.failed)
        yield from families

    @staticmethod
    def _read(provider, default):
        if provider is None:
            return default
        try:
            value = provider()
        except Exception:  # a metrics bug must not fail the whole scrape
            log.exception("metrics snapshot provider failed")
            return default
        return default if value is None else value

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        t = ["bot_type"]
        return [
            GaugeMetricFamily(
                "queue_size",
                "Jobs per bot type and state, cluster-wide.",
                labels=["bot_type", "state"],
            ),
            GaugeMetricFamily("semaphore_usage", "Leases held (running attempts).", labels=t),
            GaugeMetricFamily("semaphore_limit", "Live concurrency limit.", labels=t),
            GaugeMetricFamily(
                "semaphore_waiting",
                "Ready jobs that cannot start because the semaphore is full "
                "(max(0, waiting - free slots); 0 while paused).",
                labels=t,
            ),
            GaugeMetricFamily("queue_paused", "1 when the bot type's queue is paused.", labels=t),
            GaugeMetricFamily("webhook_pending", "Deliveries not yet delivered or dead-lettered."),
            GaugeMetricFamily("webhook_failed", "Dead-lettered deliveries still retained."),
        ]


def render(metrics: Metrics, accept: str = "") -> tuple[bytes, str]:
    """The exposition body and its content type (OpenMetrics if ``accept`` asks for it)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(metrics.registry), content_type


def route_label(request) -> str:
    """The matched route's canonical pattern (``/job/{jobId}``), never the raw path."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return UNMATCHED_ROUTE  # 404s and pre-routing failures share one series
    return resource.canonical


def make_handler(metrics: Metrics, refresh: Callable[[], Awaitable[None]] | None = None):
    """An aiohttp handler for ``GET /metrics``: refresh the snapshot, then serve the registry.

    Uses prometheus_client's own aiohttp handler (content negotiation, compression). A failed
    refresh is logged and the previous snapshot is served.
    """
    from prometheus_client.aiohttp import make_aiohttp_handler

    serve = make_aiohttp_handler(metrics.registry)

    async def metrics_handler(request):
        if refresh is not None:
            try:
                await refresh()
            except Exception:
                log.warning("metrics snapshot refresh failed; serving the last one", exc_info=True)
        return await serve(request)

    return metrics_handler
