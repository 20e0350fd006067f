"""Pub/sub fan-in: one Redis subscription per replica for the fixed wake-up channels.

Components register a callback per channel before ``run()``; a dropped connection is
re-established and every callback is then called with ``None`` (messages may have been missed,
so each component re-checks its work). ``on_connect`` callbacks run after every (re)connection:
a Redis that came back may have come back empty (the orchestrator re-creates lost records).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from ..backoff import Backoff
from .connection import REDIS_DOWN

log = logging.getLogger("botsys.store")

Handler = Callable[[str | None], None]


class Notifier:
    def __init__(self, redis: Redis):
        self.redis = redis
        self._handlers: dict[str, list[Handler]] = {}
        self._on_connect: list[Callable[[], None]] = []
        self.connected = asyncio.Event()
        self._pubsub = None  # the live subscription, while run() holds one
        self._late: set[asyncio.Task] = set()

    def on(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    def add(self, channel: str, handler: Handler) -> None:
        """``on``, also after ``run()`` began (a bot type created at runtime): the live
        subscription takes the new channel; a reconnection subscribes every channel anyway."""
        new = channel not in self._handlers
        self.on(channel, handler)
        if new and self._pubsub is not None:
            task = asyncio.ensure_future(self._subscribe_late(self._pubsub, channel))
            self._late.add(task)
            task.add_done_callback(self._late.discard)

    @staticmethod
    async def _subscribe_late(pubsub, channel: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):  # run() reconnects and subscribes it then
            await pubsub.subscribe(channel)

    def on_connect(self, callback: Callable[[], None]) -> None:
        self._on_connect.append(callback)

    async def run(self) -> None:
        retry = Backoff(0.1, 2.0)
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._handlers)
                self._pubsub = pubsub
                self.connected.set()
                retry.reset()
                for callback in self._on_connect:
                    callback()
                self._dispatch_all(None)  # we may have missed messages while (re)connecting
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        for handler in self._handlers.get(msg["channel"], ()):
                            handler(msg["data"])
            except REDIS_DOWN as exc:
                self.connected.clear()
                delay = retry.next_s()
                log.warning(
                    "pub/sub connection lost (%s); reconnecting in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch_all(self, data: str | None) -> None:
        for handlers in self._handlers.values():
            for handler in handlers:
                handler(data)
