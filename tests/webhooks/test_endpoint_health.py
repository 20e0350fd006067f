"""Endpoint health in the real dispatcher against real loopback receivers (in-memory store,
real time): a receiver failing 100 % trips its endpoint's breaker while a healthy endpoint's
attempts stay fast; a throttle of 10/s is exceeded by at most 10 %."""

from __future__ import annotations

import time

from botsys.webhooks.dispatcher import WebhookDispatcher
from botsys.webhooks.health import OPEN
from tests.support.waits import run_dispatcher_until as run_until
from tests.webhooks.fakes import FakeStore, webhook_settings


async def test_a_failing_endpoint_trips_its_breaker_the_healthy_one_stays_fast(make_receiver):
    failing, healthy = await make_receiver(), await make_receiver()
    failing.default = 500
    store = FakeStore(time.time)
    settings = webhook_settings(
        retry_delay_ms=20, max_retries=50, breaker_window=10, breaker_open_s=0.5, secret=""
    )
    store.add_many(failing.url, 100, max_attempts=50, endpoint="ep_bad")
    good = store.add_many(healthy.url, 300, max_attempts=50, endpoint="ep_ok")
    d = WebhookDispatcher(store, settings)

    def healthy_done():
        return all(store.items[i].state == "delivered" for i in good)

    await run_until(d, healthy_done)
    breaker = d.breaker("ep_bad")
    assert breaker.trips >= 1 and breaker.state == OPEN
    assert d.breaker("ep_ok").trips == 0
    # Without the breaker each of the 100 would have been tried at least once by now.
    assert len(failing.hits) < 40, len(failing.hits)
    durations = sorted(store.items[i].attempts[-1].duration_ms for i in good)
    p99 = durations[int(len(durations) * 0.99) - 1]
    assert p99 <= 50, f"healthy endpoint p99 {p99} ms"
    # the held deliveries spent no attempt while the circuit was open
    bad = [s for s in store.items.values() if s.delivery.endpoint == "ep_bad"]
    assert sum(len(s.attempts) for s in bad) == len(failing.hits)


async def test_a_throttle_of_10_per_second_holds_within_10_percent(make_receiver):
    receiver = await make_receiver()
    store = FakeStore(time.time)
    ids = store.add_many(receiver.url, 40, endpoint="ep_slow")
    d = WebhookDispatcher(
        store,
        webhook_settings(secret=""),
        endpoint_rate=lambda _id: 10.0,
    )
    await run_until(d, lambda: all(store.items[i].state == "delivered" for i in ids))
    at = sorted(h.at for h in receiver.hits)
    rate = (len(at) - 1) / (at[-1] - at[0])
    # The limit is the upper bound (+10 %); below it, only that the throttle does not hold
    # sends back far past the rate (a loaded CI machine picks released deliveries up again a
    # little late, as in tests/integration/test_endpoint_health_cluster.py; 10.00/s idle).
    assert 7.5 <= rate <= 11.0, f"{rate:.2f}/s"
    # No burst either: at most 10 in any second (11 with a window's two edges), though one
    # send delayed by a busy loop can land closer to the next than 100 ms.
    busiest = max(sum(1 for t in at if a <= t < a + 1.0) for a in at)
    # 13: a stall of the event loop bunches delayed slots into one second (no throttle: ~40).
    assert busiest <= 13, f"{busiest} arrivals within one second"
    assert all(len(store.items[i].attempts) == 1 for i in ids)  # waiting spent no attempt
