"""The global signing-secret ring in Redis, shared by every replica (policy: webhooks/rotation.py).

Until the first rotation there is no ring in Redis and ``webhooks.secret`` alone signs. A
rotation (POST /webhooks/secret/rotate) writes the ring, seeded with that secret, and publishes
on a channel; each replica reloads its Keyring on the message and on every (re)connection, so
a rotation signs everywhere within a round trip and a missed message costs nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time

from .config import WebhookSettings
from .store.connection import Store
from .store.errors import STORE_FAILED, WatchError
from .webhooks.rotation import Keyring, RingSecret, rotate

log = logging.getLogger("botsys.webhooks")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class SecretRing:
    def __init__(self, store: Store, settings: WebhookSettings) -> None:
        self.redis, self.keys = store.redis, store.keys
        self.settings = settings
        self.keyring = Keyring.single(settings.secret)
        self._reloading: asyncio.Task | None = None

    async def load(self) -> list[RingSecret]:
        """The ring as stored; before the first rotation, the configured secret alone."""
        raw = await self.redis.get(self.keys.webhook_secrets())
        if raw:
            return [RingSecret.from_json(d) for d in json.loads(raw)]
        return [RingSecret(self.settings.secret, 0)] if self.settings.secret else []

    async def rotate(
        self, secret: str | None = None, overlap_s: int | None = None
    ) -> tuple[str, list[RingSecret]]:
        """Make ``secret`` (a new random one if None) current; older ones expire after the
        overlap. Optimistic (WATCH): concurrent rotations both land, one after the other."""
        secret = secret or new_secret()
        overlap_ms = (self.settings.secret_overlap_s if overlap_s is None else overlap_s) * 1000
        key = self.keys.webhook_secrets()
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    ring = (
                        [RingSecret.from_json(d) for d in json.loads(raw)]
                        if raw
                        else await self.load()
                    )
                    ring = rotate(ring, secret, int(time.time() * 1000), overlap_ms)
                    pipe.multi()
                    pipe.set(key, json.dumps([s.to_json() for s in ring]))
                    pipe.publish(self.keys.secrets_channel(), "rotated")
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        self.keyring.replace(ring)
        log.info("webhook signing secret rotated: %d secret(s) sign", len(ring))
        return secret, ring

    def subscribe(self, notifier) -> None:
        notifier.on(self.keys.secrets_channel(), lambda _msg: self._reload_soon())

    def _reload_soon(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self.reload(), name="secret-ring")

    async def reload(self) -> None:
        try:
            self.keyring.replace(await self.load())
        except STORE_FAILED as exc:  # Redis away: keep signing with what we have
            log.warning("reloading the webhook secret ring failed (%s)", exc)
