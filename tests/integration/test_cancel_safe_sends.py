"""A cancel that lands as a Redis send completes is delivered (botsys/store/cancel_safe.py).

redis-py bounds each send with asyncio.wait_for, which on Python 3.11 returns the send's result
instead of raising the cancel that arrived with it (gh-86296): the cancelled task ran on. Here
the send itself cancels its caller just as it completes, which is exactly that race, on a real
redis-server through the client serve makes."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import AbstractConnection

from botsys.store.cancel_safe import NEEDED
from botsys.store.connection import make_client


async def test_a_cancel_landing_as_a_send_completes_is_not_lost(redis_server, monkeypatch):
    store = make_client(redis_server.url, prefix="t-cancel-safe")
    r = store.redis
    await r.set("t-cancel-safe:k", "before")  # connected: the next send is the command's own
    victim: list[asyncio.Task] = []
    send = AbstractConnection._send_packed_command

    async def send_then_be_cancelled(self, command):
        await send(self, command)
        victim[0].cancel()  # the caller is cancelled as its send completes

    monkeypatch.setattr(AbstractConnection, "_send_packed_command", send_then_be_cancelled)
    task = asyncio.create_task(r.get("t-cancel-safe:k"))
    victim.append(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()
    # The connection whose reply was never read went away: the next command gets its own reply.
    assert await r.set("t-cancel-safe:k", "after") is True
    assert await r.get("t-cancel-safe:k") == "after"
    await store.close()


def test_the_guard_is_on_where_wait_for_loses_cancels():
    store = make_client("redis://127.0.0.1:1/0")  # never connects: only the classes are built
    names = [c.__name__ for c in store.redis.connection_pool.connection_class.__mro__]
    assert ("CancelSafeSend" in names) == NEEDED
