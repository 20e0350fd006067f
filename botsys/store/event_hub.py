"""Job event streams (SSE) over one pub/sub connection per replica.

One connection carries every ``GET /job/{jobId}/events`` stream of the replica, so a thousand
watchers cost one Redis connection, not a thousand (each with its connect, HELLO and SUBSCRIBE
while the job's bot is starting): the first watcher of a channel subscribes it, the last one
unsubscribes it, and one reader task hands each message to the watchers' queues.

A watch opens only once Redis has *confirmed* its subscription (the reader sees the
``subscribe`` reply), not once the SUBSCRIBE is written, so a stream that then reads the job's
state cannot miss a later change; a channel first watched while the connection is being set
up is subscribed with the rest once it is up. SUBSCRIBE and UNSUBSCRIBE commands are sent one
batch at a time, in order, for the channels that gained their first or lost their last watcher
since the previous batch: a thousand streams opening together cost a few commands, and a
channel left and re-watched is unsubscribed before it is subscribed again.

A lost connection is re-established (every watched channel subscribed again) and each watcher
then receives ``RESYNC`` once its channel is confirmed again: messages may have been missed,
so it re-reads the job. A watcher whose queue is full (a client that stopped reading)
receives ``OVERFLOW`` and is dropped, as Redis drops a slow subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ..backoff import Backoff
from .errors import REDIS_DOWN

log = logging.getLogger("botsys.store")

RESYNC = "\x00resync"  # never a published payload: those are JSON objects
OVERFLOW = "\x00overflow"
CLOSE_WAIT_S = 1.0
MAX_QUEUED = 256  # events waiting for one slow client before it is dropped


@dataclass
class _Channel:
    # Done once Redis confirmed the subscription: a watcher reads the job's state only after
    # that, so no change slips between the two.
    ready: asyncio.Future
    queues: set[asyncio.Queue] = field(default_factory=set)


class JobEventHub:
    """``async with hub.watch(channel) as events: await events.get()``."""

    def __init__(self, redis: Redis, hub_channel: str, *, max_queued: int = MAX_QUEUED) -> None:
        self.redis = redis
        # Subscribed while the hub runs, published to by nobody (``Keys.event_hub_channel``):
        # listen() ends when a connection has no subscription, and the reader must outlive the
        # last stream.
        self._hub_channel = hub_channel
        self._max_queued = max_queued
        self._channels: dict[str, _Channel] = {}
        self._pubsub: PubSub | None = None  # set while connected
        self._reader: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one batch of (UN)SUBSCRIBEs at a time
        self._joining: set[str] = set()  # channels that got their first watcher
        self._leaving: set[str] = set()  # channels that lost their last watcher
        self._subscribed: set[str] = set()  # SUBSCRIBE sent (no UNSUBSCRIBE since)
        self._unconfirmed: dict[str, deque[_Channel]] = {}  # by SUBSCRIBE sent, per channel

    @contextlib.asynccontextmanager
    async def watch(self, channel: str) -> AsyncIterator[asyncio.Queue]:
        """Messages published on ``channel`` from the moment this yields (``RESYNC`` and
        ``OVERFLOW`` as described above). Waits for Redis while it is unreachable: callers
        bound it with their own deadline."""
        queue: asyncio.Queue = asyncio.Queue(self._max_queued)
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel(asyncio.get_running_loop().create_future())
            self._joining.add(channel)
        entry.queues.add(queue)
        try:  # from here on, leaving (even cancelled mid-subscribe) cleans up after us
            self._start()
            await self._sync()
            await asyncio.shield(entry.ready)
            yield queue
        finally:
            entry.queues.discard(queue)
            if not entry.queues:
                self._leaving.add(channel)
                await self._sync()

    def watched(self) -> int:
        """Channels with at least one watcher (tests, metrics)."""
        return sum(1 for entry in self._channels.values() if entry.queues)

    async def close(self) -> None:
        """Stop the reader. It is cancelled, and waited for at most ``CLOSE_WAIT_S``: with
        fakeredis (the embedded mode) a read cancelled just after an UNSUBSCRIBE only ends at
        the loop's next wake-up."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader}, timeout=CLOSE_WAIT_S)

    # -- subscriptions ---------------------------------------------------------------------

    async def _sync(self) -> None:
        """Send the (UN)SUBSCRIBEs the watchers' comings and goings call for, in one batch.
        Not connected: the reader subscribes every watched channel when it connects."""
        if not (self._joining or self._leaving):
            return
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            leave = [c for c in self._leaving if self._idle(c)]
            join = [c for c in self._joining if not self._idle(c) and c not in self._subscribed]
            self._joining.clear()
            self._leaving.clear()
            unsubscribe = [c for c in leave if c in self._subscribed]
            for c in leave:
                self._channels.pop(c, None)
                self._subscribed.discard(c)
            self._expect(join)
            with contextlib.suppress(*REDIS_DOWN):  # the reader reconnects and resubscribes
                if unsubscribe:
                    await pubsub.unsubscribe(*unsubscribe)
                if join:
                    await pubsub.subscribe(*join)

    def _idle(self, channel: str) -> bool:
        entry = self._channels.get(channel)
        return entry is None or not entry.queues

    def _expect(self, channels: list[str]) -> None:
        """SUBSCRIBEs about to be sent: each reply confirms the oldest one of its channel."""
        for c in channels:
            self._subscribed.add(c)
            self._unconfirmed.setdefault(c, deque()).append(self._channels[c])

    def _confirmed(self, channel: str) -> None:
        pending = self._unconfirmed.get(channel)
        entry = pending.popleft() if pending else self._channels.get(channel)
        if pending is not None and not pending:
            del self._unconfirmed[channel]
        if entry is None:
            return
        if not entry.ready.done():
            entry.ready.set_result(None)  # a watcher waiting to start
        else:
            for queue in list(entry.queues):  # subscribed again after a lost connection
                self._put(entry, queue, RESYNC)

    # -- the reader ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run(), name="job-event-hub")

    async def _run(self) -> None:
        retry = Backoff(0.1, 2.0)
        while True:
            # Subscribe confirmations are what opens a watch, so they are not ignored.
            pubsub = self.redis.pubsub()
            try:
                await self._connect(pubsub)
                retry.reset()
                async for message in pubsub.listen():
                    self._on_message(message)
                delay = retry.next_s()
            except REDIS_DOWN as exc:
                delay = retry.next_s()
                log.warning(
                    "event streams lost their pub/sub connection (%s); reconnecting in %.1fs",
                    type(exc).__name__,
                    delay,
                )
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)

    async def _connect(self, pubsub: PubSub) -> None:
        """Subscribe every watched channel on a new connection (their watchers resync)."""
        async with self._lock:
            for c in [c for c in self._channels if self._idle(c)]:
                del self._channels[c]
            self._joining.clear()
            self._leaving.clear()
            self._subscribed.clear()
            self._unconfirmed.clear()
            channels = list(self._channels)
            self._expect(channels)
            await pubsub.subscribe(self._hub_channel, *channels)
            self._pubsub = pubsub

    def _on_message(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "message":
            self._deliver(message["channel"], message["data"])
        elif kind == "subscribe":
            self._confirmed(message["channel"])

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
