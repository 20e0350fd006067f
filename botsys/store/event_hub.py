"""Job event streams (SSE) over one pub/sub connection per replica.

Each ``GET /job/{jobId}/events`` used to open its own Redis connection (TCP connect, HELLO,
SUBSCRIBE, all while the job's bot was starting) and hold it for the stream's life, so a
thousand watchers were a thousand Redis connections. Here one connection carries them all:
the first watcher of a channel subscribes it, the last one unsubscribes it, and one reader task
hands each message to the watchers' queues.

A lost connection is re-established (every watched channel subscribed again) and each watcher
then receives ``RESYNC``: messages may have been missed, so it re-reads the job. A watcher whose
queue is full (a client that stopped reading) receives ``OVERFLOW`` and is dropped, as Redis
drops a slow subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from .errors import REDIS_DOWN

log = logging.getLogger("botsys.store")

RESYNC = "\x00resync"  # never a published payload: those are JSON objects
OVERFLOW = "\x00overflow"
CLOSE_WAIT_S = 1.0
MAX_QUEUED = 256  # events waiting for one slow client before it is dropped
# Subscribed while the hub runs, published to by nobody: listen() ends when a connection has
# no subscription, and the reader must outlive the last stream.
HUB_CHANNEL = "botsys:event-hub"


@dataclass
class _Channel:
    # Done once SUBSCRIBE for this channel was sent on the current connection: a watcher
    # reads the job's state only after that, so no change slips between the two.
    sent: asyncio.Future
    queues: set[asyncio.Queue] = field(default_factory=set)


class JobEventHub:
    """``async with hub.watch(channel) as events: await events.get()``."""

    def __init__(self, redis: Redis, *, max_queued: int = MAX_QUEUED) -> None:
        self.redis = redis
        self._max_queued = max_queued
        self._channels: dict[str, _Channel] = {}
        self._pubsub: PubSub | None = None  # set while connected
        self._reader: asyncio.Task | None = None

    @contextlib.asynccontextmanager
    async def watch(self, channel: str) -> AsyncIterator[asyncio.Queue]:
        """Messages published on ``channel`` from the moment this yields (``RESYNC`` and
        ``OVERFLOW`` as described above). Waits for Redis while it is unreachable: callers
        bound it with their own deadline."""
        queue: asyncio.Queue = asyncio.Queue(self._max_queued)
        entry = self._channels.get(channel)
        first = entry is None
        if entry is None:
            entry = self._channels[channel] = _Channel(asyncio.get_running_loop().create_future())
        entry.queues.add(queue)
        try:  # from here on, leaving (even cancelled mid-subscribe) cleans up after us
            self._start()
            if first and self._pubsub is not None:
                await self._send(self._pubsub.subscribe(channel), entry)
            await asyncio.shield(entry.sent)
            yield queue
        finally:
            entry.queues.discard(queue)
            if not entry.queues and self._channels.get(channel) is entry:
                del self._channels[channel]
                if self._pubsub is not None:
                    with contextlib.suppress(*REDIS_DOWN):  # a new connection won't have it
                        await self._pubsub.unsubscribe(channel)

    def watched(self) -> int:
        """Channels with at least one watcher (tests, metrics)."""
        return len(self._channels)

    async def close(self) -> None:
        """Stop the reader. It is cancelled, and waited for at most ``CLOSE_WAIT_S``: with
        fakeredis (the embedded mode) a read cancelled just after an UNSUBSCRIBE only ends at
        the loop's next wake-up."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader}, timeout=CLOSE_WAIT_S)

    # -- the reader ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run(), name="job-event-hub")

    async def _send(self, subscribing, entry: _Channel) -> None:
        """Send a SUBSCRIBE; a failure leaves it to the reader's reconnect."""
        try:
            await subscribing
        except REDIS_DOWN:
            return
        if not entry.sent.done():
            entry.sent.set_result(None)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(HUB_CHANNEL, *self._channels)
                # The client may reconnect by itself (its retry policy) and re-subscribe:
                # watchers must hear of that too, as messages may have been missed meanwhile.
                pubsub.connection.register_connect_callback(self._reconnected)
                self._pubsub, delay = pubsub, 0.1
                self._subscribed_all()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["channel"], message["data"])
            except REDIS_DOWN as exc:
                log.warning(
                    "event streams lost their pub/sub connection (%s); reconnecting in %.1fs",
                    type(exc).__name__,
                    delay,
                )
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    if pubsub.connection is not None:  # it goes back to the pool
                        pubsub.connection.deregister_connect_callback(self._reconnected)
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _reconnected(self, _connection) -> None:
        self._subscribed_all()

    def _subscribed_all(self) -> None:
        for entry in self._channels.values():
            if not entry.sent.done():
                entry.sent.set_result(None)  # a watcher still waiting to start
            else:
                for queue in list(entry.queues):  # watching across the reconnect
                    self._put(entry, queue, RESYNC)

    def _deliver(self, channel: str, data: str) -> None:
        entry = self._channels.get(channel)
        if entry is not None:
            for queue in list(entry.queues):
                self._put(entry, queue, data)

    @staticmethod
    def _put(entry: _Channel, queue: asyncio.Queue, data: str) -> None:
        try:
            queue.put_nowait(data)
        except asyncio.QueueFull:
            entry.queues.discard(queue)  # no more events for it
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(OVERFLOW)
