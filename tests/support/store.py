"""The Store over a test's own client: what the app builds with make_client, minus the pool."""

from __future__ import annotations

import fakeredis
from redis.asyncio import Redis

from botsys.config import Settings
from botsys.queue import JobQueue
from botsys.store.connection import Store
from botsys.store.keys import Keys
from botsys.store.outbox import Outbox


def store_for(client: Redis, settings: Settings) -> Store:
    """A Store on ``client`` with the settings' key prefix (each test has its own)."""
    embedded = isinstance(client, fakeredis.FakeAsyncRedis)
    return Store(client, embedded, "test client", Keys(settings.redis.prefix))


def store_of(queue: JobQueue) -> Store:
    """A Store on ``queue``'s client and key prefix: for what stands beside that queue."""
    return store_for(queue.redis, queue.settings)


def outbox_for(queue: JobQueue) -> Outbox:
    """The outbox beside ``queue``: its client and settings, its script runner."""
    return Outbox(store_of(queue), queue.settings, queue.run_script)


def queue_for(client: Redis, settings: Settings, replica: str) -> JobQueue:
    """A JobQueue on ``client``, as one replica's."""
    return JobQueue(store_for(client, settings), settings, replica)
