"""Endpoint health shared by replicas (botsys/endpoint_health.py): three dispatchers, each with
its own Redis client and its own deliveries, send to one loopback receiver. A 10/s throttle
holds for all three together (not 3 × 10/s); a receiver failing 100 % opens the breaker for
all three after the window counted across them, one half-open probe at a time cluster-wide,
and a successful probe closes it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from botsys.endpoint_health import SharedHealth, circuit_states
from botsys.store.connection import Store
from botsys.store.keys import Keys
from botsys.webhooks.dispatcher import WebhookDispatcher
from botsys.webhooks.health import CLOSED, OPEN
from tests.integration.test_fan_out import start_receiver
from tests.webhooks.fakes import FakeStore, webhook_settings

ENDPOINT = "ep_01TESTCLUSTERHEALTH0000000"


def replicas(redis_factory, settings, keys: Keys, n: int = 3, **kw):
    """n dispatchers over their own in-memory stores, sharing endpoint health in Redis."""
    out = []
    for _ in range(n):
        store = FakeStore(time.time)
        health = SharedHealth(store_of(redis_factory, keys), settings)
        out.append((store, WebhookDispatcher(store, settings, health=health, **kw)))
    return out


def store_of(redis_factory, keys: Keys) -> Store:
    return Store(redis_factory(), False, "test", keys)


@contextlib.asynccontextmanager
async def running(dispatchers):
    tasks = [asyncio.create_task(d.run()) for d in dispatchers]
    try:
        yield
    finally:
        await asyncio.gather(*(d.stop(grace_s=1) for d in dispatchers))
        await asyncio.gather(*tasks, return_exceptions=True)


async def until(predicate, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def sends_through_three_replicas(redis_factory, aiohttp_server, per_s: float, n: int, **kw):
    """n deliveries on each of three replicas to one throttled endpoint, all sent: the
    receiver's arrival times in order, and the three (store, ids, dispatcher)."""
    receiver = await start_receiver(aiohttp_server)
    settings = webhook_settings(secret="", **kw)
    keys = Keys(f"t-throttle-{time.monotonic_ns()}")
    group = replicas(redis_factory, settings, keys, endpoint_rate=lambda _id: per_s)
    ids = [(store, store.add_many(receiver.url, n, endpoint=ENDPOINT), d) for store, d in group]

    def all_delivered() -> bool:
        return all(store.items[i].state == "delivered" for store, idl, _ in ids for i in idl)

    async with running([d for _, d in group]):
        await until(all_delivered)
    return sorted(h.at for h in receiver.hits), ids


def rate_of(at: list[float]) -> float:
    return (len(at) - 1) / (at[-1] - at[0])


async def test_a_throttle_of_10_per_second_holds_across_three_replicas(
    redis_factory, aiohttp_server
):
    at, ids = await sends_through_three_replicas(redis_factory, aiohttp_server, 10.0, 15)
    assert len(at) == 45
    rate = rate_of(at)
    # The limit is the upper bound (+10 %); below it, only that the throttle does not hold
    # sends back far past the rate (8.4/s seen once on fakeredis under CI load: released
    # deliveries are picked up again a little late; 10.00/s on an idle machine).
    assert 7.5 <= rate <= 11.0, f"{rate:.2f}/s for the three together"
    busiest = max(sum(1 for t in at if a <= t < a + 1.0) for a in at)
    # 13: a loop stall bunches delayed slots into one second; a per-replica throttle shows ~30.
    assert busiest <= 13, f"{busiest} arrivals within one second"
    for store, idl, _ in ids:  # waiting, here or in the store, spent no attempt
        assert all(len(store.items[i].attempts) == 1 for i in idl)


async def test_at_200_per_second_slots_are_reserved_in_batches(redis_factory, aiohttp_server):
    """A tenth of a second's slots per reservation: the rate holds and most sends need no
    round trip of their own."""
    at, ids = await sends_through_three_replicas(
        redis_factory, aiohttp_server, 200.0, 150, concurrency=64, per_host=64
    )
    rate = rate_of(at)
    # The limit is the upper bound (+10 %). Below, only that the throttle does not hold sends
    # back far past it: a loaded 2-core machine sends slower than 200/s by itself (177/s once,
    # with other tests beside it).
    assert 150 <= rate <= 220, f"{rate:.1f}/s for the three together"
    # throttle reservations and the breaker's success reports (every 100 ms) together
    trips = sum(d._health.scripts.round_trips for _, _, d in ids)
    assert trips < len(at) / 2, f"{trips} round trips for {len(at)} sends"


async def test_a_failing_receiver_opens_the_breaker_for_all_replicas_one_probe_at_a_time(
    redis_factory, aiohttp_server
):
    receiver = await start_receiver(aiohttp_server)
    receiver.default = 500
    window = 9
    settings = webhook_settings(
        secret="",
        retry_delay_ms=20,
        max_retries=200,
        breaker_window=window,
        breaker_open_s=0.5,
        concurrency=1,  # one send at a time per replica: attempts are easy to count
        per_host=1,
    )
    keys = Keys(f"t-breaker-{time.monotonic_ns()}")
    group = replicas(redis_factory, settings, keys)
    ids = [
        (store, store.add_many(receiver.url, 20, max_attempts=200, endpoint=ENDPOINT))
        for store, _ in group
    ]
    dispatchers = [d for _, d in group]

    def gates_open() -> bool:
        return all((g := d.breaker(ENDPOINT)) and g.state == OPEN for d in dispatchers)

    assert await circuit_states(store_of(redis_factory, keys), [ENDPOINT]) == {ENDPOINT: None}
    async with running(dispatchers):
        # 1. Opened for all three after the window counted across them (each replica alone
        # would have needed `window` failures of its own: 3 × window before all three held).
        await until(gates_open)
        opened = len(receiver.hits)
        assert window <= opened <= window + len(dispatchers), opened
        for store, _ in group:
            sent = sum(len(s.attempts) for s in store.items.values())
            assert sent < window, f"one replica sent {sent} of the window"
        states = await circuit_states(store_of(redis_factory, keys), [ENDPOINT])
        assert states == {ENDPOINT: OPEN}

        # 2. Half-open: one probe at a time cluster-wide (each a slow failure, re-opening it).
        receiver.delay_s = 0.3
        receiver.max_in_flight = 0
        before = len(receiver.hits)
        await asyncio.sleep(2.0)  # the time under test: ~2 open periods plus probes
        probes = len(receiver.hits) - before
        assert 1 <= probes <= 4, probes
        assert receiver.max_in_flight == 1

        # 3. A successful probe closes it for everyone: everything else goes out.
        receiver.delay_s = 0.0
        receiver.default = 200

        def all_delivered() -> bool:
            return all(store.items[i].state == "delivered" for store, idl in ids for i in idl)

        await until(all_delivered)
    states = await circuit_states(store_of(redis_factory, keys), [ENDPOINT])
    assert states == {ENDPOINT: CLOSED}
    assert all(d.breaker(ENDPOINT).state == CLOSED for d in dispatchers)


async def test_a_re_enabled_endpoint_gets_a_closed_circuit_in_redis(redis_factory):
    settings = webhook_settings(secret="", breaker_window=2, breaker_open_s=60)
    keys = Keys(f"t-reset-{time.monotonic_ns()}")
    store = store_of(redis_factory, keys)
    health = SharedHealth(store, settings)
    gate = health.gate(ENDPOINT)
    for _ in range(2):
        await gate.record(False, time.monotonic())
    assert await circuit_states(store, [ENDPOINT]) == {ENDPOINT: OPEN}
    health.forget(ENDPOINT)
    await asyncio.gather(*health._resets)
    assert await circuit_states(store, [ENDPOINT]) == {ENDPOINT: None}
    assert health.gate(ENDPOINT).state == CLOSED


async def test_the_shared_window_opens_on_the_ratio_and_not_below_it(redis_factory):
    """endpoint_record.lua: a third failing never opens a 0.5 breaker; all failing opens it
    at exactly the window; outcomes reported in batches count like one by one."""
    store = store_of(redis_factory, Keys(f"t-window-{time.monotonic_ns()}"))
    keys = {
        "breaker": store.keys.endpoint_breaker(ENDPOINT),
        "probe": store.keys.endpoint_probe(ENDPOINT),
    }

    async def report(ok: int, failed: int) -> int:
        args = {"ok": ok, "failed": failed, "probe": "", "window": 20}
        args |= {"failure_ratio": 0.5, "open_ms": 60_000}
        return (await store.scripts.run("endpoint_record", keys, args))[0]

    for i in range(300):
        assert await report(int(i % 3 != 0), int(i % 3 == 0)) == 0
    assert await report(40, 20) == 0  # a batch at the same ratio
    await store.redis.delete(*keys.values())
    states = [await report(0, 1) for _ in range(20)]
    assert states == [0] * 19 + [1]  # opened by the 20th failure
