"""Case 7: a receiver down for ~20 s, then back; a black-holed receiver beside a healthy one."""

from __future__ import annotations

import time

import pytest

from tests.support.procs import wait_for

from .harness import WEBHOOK_TIMEOUT_S
from .receiver import BlackHole, Receiver

pytestmark = [pytest.mark.faults]

DOWN_S = 20.0


def test_a_receiver_down_for_20s_gets_every_delivery_with_a_stable_id(env):
    env.start()
    receiver = Receiver().reserve()  # the port is ours, but nothing listens yet
    try:
        t_down = time.monotonic()
        ids = env.invoke_many(
            [(t, 20) for t in ("python", "node") for _ in range(15)], webhook=receiver.url
        )
        env.wait_terminal(ids, 30)
        pending = wait_for(
            lambda: (m := _webhook_meta(env))["pending"] == len(ids) and m, 10, what="retrying"
        )
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_down)))  # the outage itself
        assert _webhook_meta(env)["dead"] == 0, "nothing dead-lettered during the outage"
        receiver.start()
        t_up = time.monotonic()
        got = wait_for(
            lambda: (b := receiver.by_job()) and set(ids) <= set(b) and b, 20, what="every delivery"
        )
        all_in_s = time.monotonic() - t_up
        done = wait_for(
            lambda: (m := _webhook_meta(env))["delivered"] == len(ids) and m,
            10,
            what="deliveries recorded",
        )
    finally:
        receiver.stop()
    wrong = {
        j: {r.webhook_id for r in got[j]}
        for j in ids
        if {r.webhook_id for r in got[j]} != {f"msg_{j}"}
    }
    assert not wrong, f"webhook ids: {wrong}"
    copies = sum(len(got[j]) for j in ids)
    print(
        f"receiver down {DOWN_S:.0f}s: {len(ids)}/{len(ids)} delivered ({copies} copies, one id "
        f"each) {all_in_s:.2f}s after it came back; pending during the outage {pending}, "
        f"after {done}"
    )


def _webhook_meta(env) -> dict[str, int]:
    meta = [env.redis.hgetall(env.keys.meta(t)) for t in ("python", "node")]
    pending = sum(env.redis.zcard(env.keys.deliveries(t)) for t in ("python", "node"))
    return {
        "pending": pending,
        "delivered": sum(int(m.get("webhook_delivered", 0)) for m in meta),
        "dead": sum(int(m.get("webhook_dead", 0)) for m in meta),
    }


def test_a_black_holed_receiver_does_not_delay_a_healthy_one(env):
    env.start()
    healthy, hole = Receiver().start(), BlackHole()
    try:
        specs = [(t, 0) for t in ("python", "node") for _ in range(30)]
        holed = env.invoke_many(specs, webhook=hole.url)
        good = env.invoke_many(specs, webhook=healthy.url)
        more_holed = env.invoke_many(specs[:20], webhook=hole.url)
        jobs = env.wait_terminal(good + holed + more_holed, 60)
        got = wait_for(
            lambda: (b := healthy.by_job()) and set(good) <= set(b) and b,
            30,
            what="healthy deliveries",
        )
    finally:
        healthy.stop()
        hole.close()
    lat = sorted(min(r.received_ms for r in got[j]) - int(jobs[j]["finishedAt"]) for j in good)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1000
    print(
        f"black hole: {len(hole.accepted)} connections held; healthy delivery latency "
        f"p50 {lat[len(lat) // 2] / 1000:.3f}s p99 {p99:.3f}s max {lat[-1] / 1000:.3f}s "
        f"over {len(good)}"
    )
    assert len(hole.accepted) >= 8, f"the black hole was hit {len(hole.accepted)} times"
    # A healthy delivery that waited for a black-holed one would take its whole timeout.
    assert p99 < WEBHOOK_TIMEOUT_S, f"healthy p99 delivery latency {p99:.2f}s"
