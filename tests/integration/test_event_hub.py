"""JobEventHub: every event stream of a replica on one pub/sub connection (real Redis, and
fakeredis where the embedded mode relies on it)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from botsys.store.connection import make_client
from botsys.store.event_hub import OVERFLOW, RESYNC, JobEventHub
from botsys.store.keys import Keys
from tests.support.waits import until

HUB = Keys("test").event_hub_channel()


async def next_item(queue: asyncio.Queue, timeout: float = 5.0):
    return await asyncio.wait_for(queue.get(), timeout)


async def pubsub_clients(admin: Redis) -> int:
    return len(await admin.client_list(_type="pubsub"))


async def test_watchers_get_their_channel_only(redis_factory):
    publisher, hub = redis_factory(), JobEventHub(redis_factory(), HUB)
    try:
        async with hub.watch("ev:a") as a1, hub.watch("ev:a") as a2, hub.watch("ev:b") as b:
            await publisher.publish("ev:a", '{"n":1}')
            await publisher.publish("ev:b", '{"n":2}')
            assert await next_item(a1) == '{"n":1}' and await next_item(a2) == '{"n":1}'
            assert await next_item(b) == '{"n":2}'
            assert a1.empty() and b.empty()
            assert hub.watched() == 2
        assert hub.watched() == 0
    finally:
        await hub.close()


async def test_many_streams_share_one_connection_and_leave_no_subscription(redis_server):
    admin = Redis.from_url(redis_server.url, decode_responses=True)
    hub = JobEventHub(Redis.from_url(redis_server.url, decode_responses=True), HUB)
    before = await pubsub_clients(admin)
    # UNSUBSCRIBE is written when a watch closes; Redis may still serve another client's
    # NUMSUB before it reads it, so the check waits for the reply on the hub's connection.
    unsubscribed, on_message = asyncio.Event(), hub._on_message

    def seen(message: dict) -> None:
        on_message(message)
        if message.get("type") == "unsubscribe":
            unsubscribed.set()

    hub._on_message = seen
    try:
        async with asyncio.TaskGroup() as tg:
            opened, close = asyncio.Event(), asyncio.Event()
            count = 0

            async def stream(i: int) -> None:
                nonlocal count
                async with hub.watch(f"ev:{i % 5}"):
                    count += 1
                    if count == 20:
                        opened.set()
                    await close.wait()

            for i in range(20):
                tg.create_task(stream(i))
            await opened.wait()
            assert await pubsub_clients(admin) - before == 1, "20 streams, one connection"
            numsub = dict(await admin.pubsub_numsub(*(f"ev:{i}" for i in range(5))))
            assert set(numsub.values()) == {1}
            close.set()

        async def none_left() -> bool:
            numsub = dict(await admin.pubsub_numsub(*(f"ev:{i}" for i in range(5))))
            return set(numsub.values()) == {0}

        await until(none_left, unsubscribed, timeout=5)  # the last watcher unsubscribes
    finally:
        await hub.close()
        await admin.aclose()


async def test_every_watcher_is_subscribed_once_its_watch_opens(redis_factory):
    """A stream reads the job's state right after ``watch`` yields, so whatever is published
    from then on must reach it: also for watchers that arrive while the hub's connection is
    being set up, and for hundreds arriving together (1000 SSE streams: up to 60 never saw
    their job end)."""
    publisher, hub = redis_factory(), JobEventHub(redis_factory(), HUB)

    async def one(i: int) -> str:
        async with hub.watch(f"ev:{i}") as events:
            await publisher.publish(f"ev:{i}", f"m{i}")
            return await next_item(events)

    try:
        watchers = []
        for i in range(300):  # arriving over many loop turns, the first one starts the hub
            watchers.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0)
        assert await asyncio.gather(*watchers) == [f"m{i}" for i in range(300)]
        assert hub.watched() == 0
    finally:
        await hub.close()


async def test_a_watcher_that_stops_reading_is_dropped_and_the_others_go_on(redis_factory):
    publisher, hub = redis_factory(), JobEventHub(redis_factory(), HUB, max_queued=3)
    try:
        async with hub.watch("ev:slow") as slow, hub.watch("ev:slow") as fast:
            for i in range(5):
                await publisher.publish("ev:slow", str(i))
                assert await next_item(fast) == str(i)
            assert await next_item(slow) == OVERFLOW
            assert slow.empty(), "nothing after the overflow marker"
            await publisher.publish("ev:slow", "5")
            assert await next_item(fast) == "5"
    finally:
        await hub.close()


@pytest.mark.parametrize("how", ["client kill", "redis restart"])
async def test_after_a_lost_connection_watchers_resync_and_keep_receiving(tmp_path, how):
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    store = make_client(server.url)  # the serve client: its own retries reconnect too
    publisher = Redis.from_url(server.url, decode_responses=True)
    try:
        async with store.events.watch("ev:r") as events:
            await publisher.publish("ev:r", "before")
            assert await next_item(events) == "before"
            if how == "client kill":
                await publisher.client_kill_filter(_type="pubsub")
            else:
                server.kill()
                server.start()
                publisher = Redis.from_url(server.url, decode_responses=True)
            assert await next_item(events, timeout=10) == RESYNC
            # RESYNC comes once Redis confirmed the new subscription: no need to wait for it.
            assert dict(await publisher.pubsub_numsub("ev:r"))["ev:r"] == 1
            await publisher.publish("ev:r", "after")
            assert await next_item(events) == "after"
    finally:
        await store.close()
        await publisher.aclose()
        server.kill()


async def test_a_watcher_waits_for_redis_while_it_is_unreachable(tmp_path):
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis")  # not started yet
    store = make_client(server.url, connect_timeout_s=0.2)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                async with store.events.watch("ev:w"):
                    pass
        assert store.events.watched() == 0, "a watcher that gave up leaves nothing behind"
    finally:
        await store.close()


async def test_the_hub_holds_its_channel_under_the_configured_prefix(redis_server):
    """Replicas of two deployments sharing one Redis (two prefixes) stay apart."""
    store = make_client(redis_server.url, prefix="tenant")
    admin = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with store.events.watch("tenant:events:x"):
            channels = await admin.pubsub_channels("*event-hub")
        assert "tenant:event-hub" in channels
    finally:
        await store.close()
        await admin.aclose()
