"""The bounded Redis connection pool waits for a free connection instead of failing, on a real
redis-server and in the embedded (fakeredis) mode."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import MaxConnectionsError

from botsys.store.connection import make_client


@pytest.fixture(params=["redis", "embedded"])
def url(request, redis_server):
    return redis_server.url if request.param == "redis" else ""


async def test_many_more_callers_than_connections_all_get_an_answer(url):
    store = make_client(url, max_connections=4)
    try:
        pool = store.redis.connection_pool
        most = 0

        async def one(i: int) -> str:
            nonlocal most
            await store.redis.set(f"pool-test:{i}", i)
            most = max(most, len(pool._in_use_connections))
            return await store.redis.get(f"pool-test:{i}")

        got = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(500))), 30)
        assert got == [str(i) for i in range(500)]
        assert most <= 4
    finally:
        await store.close()


async def test_a_waiter_cancelled_after_its_turn_came_hands_the_connection_on(url):
    store = make_client(url, max_connections=1)
    try:
        pool = store.redis.connection_pool
        held = await pool.get_connection()
        first = asyncio.create_task(pool.get_connection())
        second = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0)  # both wait now
        await pool.release(held)  # first's turn...
        first.cancel()  # ...but it is cancelled before it runs (a request's deadline)
        with pytest.raises(asyncio.CancelledError):
            await first
        conn = await asyncio.wait_for(second, 2)  # the turn went on, not lost
        await pool.release(conn)
    finally:
        await store.close()


async def test_no_free_connection_within_the_pool_timeout_is_an_error_not_a_hang(url):
    store = make_client(url, max_connections=1, pool_timeout_s=0.05)
    try:
        pool = store.redis.connection_pool
        held = await pool.get_connection()
        with pytest.raises(MaxConnectionsError, match="no Redis connection free within 0.05 s"):
            await store.redis.ping()
        await pool.release(held)
        assert await store.redis.ping()
    finally:
        await store.close()
