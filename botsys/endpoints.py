"""Endpoints in Redis (policy: webhooks/endpoints.py), shared by every replica.

One hash of endpoint JSON. Each replica caches the list: it feeds the completion scripts'
fan-out (JobQueue.set_endpoints) and the per-endpoint signing keyrings. A change publishes on
a channel and every replica reloads on it and on every (re)connection, so a new subscription
applies everywhere within a round trip.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from .jobs import iso_ms, new_job_id
from .queue import JobQueue
from .signing_secrets import new_secret
from .store.connection import Store
from .store.errors import STORE_FAILED, WatchError
from .store.outbox import ADHOC
from .webhooks.endpoints import (
    ENDPOINT_DISABLED,
    Endpoint,
    dead_letter_context,
    fan_out_context,
)
from .webhooks.rotation import Keyring, RingSecret, rotate

if TYPE_CHECKING:
    from .store.outbox import Outbox

log = logging.getLogger("botsys.webhooks")


def new_endpoint_id() -> str:
    return "ep_" + new_job_id("x").split("-", 1)[1]


def _now_ms() -> int:
    return int(time.time() * 1000)


class EndpointStore:
    def __init__(
        self,
        store: Store,
        queue: JobQueue,
        overlap_s: int,
        deliveries: Outbox | None = None,
    ) -> None:
        """``queue``: whose completion scripts get the fan-out (``set_endpoints``);
        ``deliveries``: where endpoint events go and held deliveries are woken (None: not)."""
        self.redis, self.keys = store.redis, store.keys
        self.queue = queue
        self.overlap_s = overlap_s
        self.deliveries = deliveries
        self._keyrings: dict[str, Keyring] = {}
        self._rates: dict[str, float] = {}
        self._disabled: set[str] | None = None  # None: not loaded yet
        self._on_enabled: list[Callable[[str], None]] = []
        self._reloading: asyncio.Task | None = None

    # -- reads and writes (the API) --------------------------------------------------------

    async def all(self) -> list[Endpoint]:
        raw = await self.redis.hgetall(self.keys.endpoints())
        return sorted((Endpoint.from_json(json.loads(v)) for v in raw.values()), key=_by_age)

    async def get(self, endpoint_id: str) -> Endpoint | None:
        raw = await self.redis.hget(self.keys.endpoints(), endpoint_id)
        return Endpoint.from_json(json.loads(raw)) if raw else None

    async def exists(self, endpoint_id: str) -> bool:
        return bool(await self.redis.hexists(self.keys.endpoints(), endpoint_id))

    async def create(self, fields: dict, secret: str | None) -> tuple[Endpoint, str]:
        now = _now_ms()
        secret = secret or new_secret()
        endpoint = Endpoint(
            id=new_endpoint_id(),
            url=fields["url"],
            event_types=tuple(fields.get("eventTypes") or Endpoint.event_types),
            bot_types=tuple(fields.get("botTypes") or ()),
            secrets=(RingSecret(secret, now),),
            disabled=bool(fields.get("disabled", False)),
            rate_limit=float(fields.get("rateLimit") or 0),
            description=fields.get("description", ""),
            created_at_ms=now,
            updated_at_ms=now,
        )
        await self._save(endpoint)
        return endpoint, secret

    async def update(self, endpoint_id: str, changes: dict) -> Endpoint | None:
        endpoint = await self.get(endpoint_id)
        if endpoint is None:
            return None
        was_disabled = endpoint.disabled
        endpoint = endpoint.patched(changes, _now_ms())
        woken = await self._save(endpoint)
        if was_disabled and not endpoint.disabled and endpoint.id not in woken:
            await self._wake_held(endpoint.id)  # this replica's cache had not seen it disabled
        return endpoint

    async def disable_failing(self, endpoint_id: str, failing_since_ms: int) -> Endpoint | None:
        """Disable an endpoint that has had no successful delivery since ``failing_since_ms``
        and tell the endpoints subscribed to ``endpoint.disabled``. Once across replicas: None
        when it is already disabled (or gone)."""
        key = self.keys.endpoints()
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, endpoint_id)
                    endpoint = Endpoint.from_json(json.loads(raw)) if raw else None
                    if endpoint is None or endpoint.disabled:
                        return None
                    reason = f"no successful delivery since {iso_ms(failing_since_ms)}"
                    endpoint = endpoint.disabled_for(reason, _now_ms())
                    pipe.multi()
                    pipe.hset(key, endpoint.id, json.dumps(endpoint.to_json()))
                    pipe.publish(self.keys.endpoints_channel(), endpoint.id)
                    await pipe.execute()
                    break
                except WatchError:  # another endpoint changed meanwhile: read again
                    continue
        log.warning(
            "endpoint %s disabled: %s; its deliveries are held until it is re-enabled",
            endpoint.id,
            reason,
            extra={"endpoint": endpoint.id},
        )
        await self.reload()
        await self._announce_disabled(endpoint, failing_since_ms)
        return endpoint

    async def _announce_disabled(self, disabled: Endpoint, failing_since_ms: int) -> None:
        """An ``endpoint.disabled`` event to every enabled endpoint subscribed to it (never
        to the disabled one), one per subscriber even if two replicas get here."""
        if self.deliveries is None:
            return
        now = _now_ms()
        body = {
            "type": ENDPOINT_DISABLED,
            "timestamp": iso_ms(now),
            "data": {
                "endpointId": disabled.id,
                "description": disabled.description,
                "disabledAt": iso_ms(disabled.disabled_at_ms),
                "reason": disabled.disabled_reason,
                "failingSince": iso_ms(failing_since_ms),
            },
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        for e in await self.all():
            if e.disabled or e.id == disabled.id or ENDPOINT_DISABLED not in e.event_types:
                continue
            key = f"{ENDPOINT_DISABLED}:{disabled.id}:{disabled.disabled_at_ms}:{e.id}"
            await self.deliveries.create_adhoc(e.url, raw, ENDPOINT_DISABLED, key, endpoint=e.id)

    async def rotate_secret(
        self, endpoint_id: str, secret: str | None, overlap_s: int | None
    ) -> tuple[Endpoint, str] | None:
        endpoint = await self.get(endpoint_id)
        if endpoint is None:
            return None
        secret = secret or new_secret()
        overlap_ms = (self.overlap_s if overlap_s is None else overlap_s) * 1000
        now = _now_ms()
        ring = rotate(list(endpoint.secrets), secret, now, overlap_ms)
        endpoint = replace(endpoint, secrets=tuple(ring), updated_at_ms=now)
        await self._save(endpoint)
        return endpoint, secret

    async def delete(self, endpoint_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.endpoints(), endpoint_id)
        pipe.publish(self.keys.endpoints_channel(), endpoint_id)
        gone, _ = await pipe.execute()
        await self.reload()
        return bool(gone)

    async def _save(self, endpoint: Endpoint) -> set[str]:
        """Returns the endpoints this replica's reload saw re-enabled (and woke)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.endpoints(), endpoint.id, json.dumps(endpoint.to_json()))
        pipe.publish(self.keys.endpoints_channel(), endpoint.id)
        await pipe.execute()
        return await self.reload()  # this replica at once; the others on the message

    # -- this replica's cache --------------------------------------------------------------

    def keyring_for(self, endpoint_id: str) -> Keyring | None:
        """The signing keyring of an endpoint's deliveries; None for one this replica does
        not know (deleted, or created so recently that its reload is still on the way: one
        is started, and the dispatcher holds the delivery back once)."""
        keyring = self._keyrings.get(endpoint_id)
        if keyring is None:
            self._reload_soon()
        return keyring

    def rate_for(self, endpoint_id: str) -> float:
        """An endpoint's throttle, deliveries/s on each replica (0: none)."""
        return self._rates.get(endpoint_id, 0.0)

    def is_disabled(self, endpoint_id: str) -> bool:
        """Disabled: its deliveries are held (the dispatcher hands them back unsent)."""
        return self._disabled is not None and endpoint_id in self._disabled

    def on_enabled(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(endpoint_id)`` when this replica sees an endpoint re-enabled."""
        self._on_enabled.append(listener)

    def subscribe(self, notifier) -> None:
        notifier.on(self.keys.endpoints_channel(), lambda _msg: self._reload_soon())

    def _reload_soon(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self.reload(), name="endpoints")

    async def reload(self) -> set[str]:
        """Returns the endpoints it saw re-enabled (their held deliveries woken)."""
        try:
            endpoints = await self.all()
        except STORE_FAILED as exc:  # Redis away: keep the last list
            log.warning("reloading the endpoints failed (%s)", exc)
            return set()
        self._keyrings = {e.id: e.keyring() for e in endpoints}
        self._rates = {e.id: e.rate_limit for e in endpoints}
        disabled = {e.id for e in endpoints if e.disabled}
        enabled = set(self._keyrings) - disabled
        before, self._disabled = self._disabled, disabled
        context = fan_out_context(endpoints, self.queue.bot_types)
        context[ADHOC] = dead_letter_context(endpoints)
        self.queue.set_endpoints(context)
        re_enabled = (before or set()) & enabled
        for endpoint_id in re_enabled:
            for listener in self._on_enabled:
                listener(endpoint_id)
            await self._wake_held(endpoint_id)
        return re_enabled

    async def _wake_held(self, endpoint_id: str) -> None:
        """Seen re-enabled here: wake its held deliveries again. Until this reload this
        replica still held them back, and one it handed back after the re-enabling replica's
        wake would otherwise wait out the whole hold."""
        if self.deliveries is None:
            return
        try:
            woken = await self.deliveries.wake_endpoint(endpoint_id)
        except STORE_FAILED as exc:  # they go when their hold ends
            log.warning("waking endpoint %s's held deliveries failed (%s)", endpoint_id, exc)
            return
        log.info("endpoint %s re-enabled: %d held deliveries go out", endpoint_id, woken)


def _by_age(e: Endpoint) -> tuple[int, str]:
    return e.created_at_ms, e.id
