"""Admission control in enqueue.lua (engine.max_queued, engine.max_queued_bytes) and the
queued-bytes count every script keeps for it, on a real redis-server and on fakeredis."""

from __future__ import annotations

import pytest

from botsys.queue import JobQueue, QueueFull
from tests.conftest import make_settings
from tests.support.store import queue_for

T0 = 1_800_000_000_000
LEASE_MS = 2000  # make_settings' engine.lease_ms


def queue(redis_client, **overrides) -> JobQueue:
    settings = make_settings(
        **{"bot_types.python.limit": 1, "server.max_body_bytes": 1024, **overrides}
    )
    return queue_for(redis_client, settings, "r1")


@pytest.fixture
async def q(redis_client):
    q = queue(redis_client)
    await q.seed_limits()
    return q


async def enqueue(q, size=100, **kw):
    payload = {"pad": "x" * (size - 10)}  # {"pad":""} is 10 bytes
    return (await q.enqueue("python", "simulate", payload, now=kw.pop("now", T0), **kw)).job_id


async def counted(q) -> int:
    return int(await q.redis.hget(q.keys.meta("python"), "queuedBytes") or 0)


async def truth(q) -> int:
    """What the count must be: the payload bytes of every waiting or delayed job."""
    r, k = q.redis, q.keys
    ids = await r.zrange(k.queue("python"), 0, -1) + await r.zrange(k.delayed("python"), 0, -1)
    return sum([await r.hstrlen(k.job("python", i), "payload") for i in ids])


# -- every path into or out of the waiting/delayed sets, each with its own check ----------


async def claimed(q):
    await enqueue(q, 300)
    _, (claim,) = await q.claim("python", 1, now=T0)
    return claim


async def path_enqueue_waiting(q):
    await enqueue(q, 300)


async def path_enqueue_delayed(q):
    await enqueue(q, 300, delay_ms=5000)


async def path_claim(q):
    await claimed(q)


async def path_claim_of_a_due_delayed_job(q):
    await enqueue(q, 300, delay_ms=10)
    _, claims = await q.claim("python", 1, now=T0 + 20)
    assert len(claims) == 1


async def path_claimed_at_enqueue(q):
    payload = {"pad": "x" * 290}
    assert (await q.enqueue("python", "simulate", payload, take=True, now=T0)).claim is not None


async def path_retry_backoff(q):
    job_id = await enqueue(q, 300, max_attempts=2)
    _, (claim,) = await q.claim("python", 1, now=T0)
    done = await q.complete(claim, "failed", retry_delay_ms=1000, now=T0 + 1)
    assert done.state == "delayed" and claim.job_id == job_id


async def path_stalled_lease_requeued(q):
    await claimed(q)
    await q.claim("python", 0, now=T0 + LEASE_MS + 1)  # reaps the expired lease


async def path_requeue(q):
    assert await q.requeue(await claimed(q))


async def path_cancel_waiting(q):
    job_id = await enqueue(q, 300)
    assert await q.cancel(job_id, now=T0 + 1) == (1, "cancelled")


async def path_cancel_delayed(q):
    job_id = await enqueue(q, 300, delay_ms=5000)
    assert await q.cancel(job_id, now=T0 + 1) == (1, "cancelled")


async def path_retry_of_a_failed_job(q):
    claim = await claimed(q)
    await q.complete(claim, "failed", now=T0 + 1)
    assert await q.retry(claim.job_id, now=T0 + 2) == (1, "queued")


PATHS = [
    path_enqueue_waiting,
    path_enqueue_delayed,
    path_claim,
    path_claim_of_a_due_delayed_job,
    path_claimed_at_enqueue,
    path_retry_backoff,
    path_stalled_lease_requeued,
    path_requeue,
    path_cancel_waiting,
    path_cancel_delayed,
    path_retry_of_a_failed_job,
]


@pytest.mark.parametrize("path", PATHS, ids=[p.__name__[5:] for p in PATHS])
async def test_the_queued_bytes_count_stays_exact_on_every_path(q, path):
    await enqueue(q, 200, priority=1000)  # someone else's job waits behind, all along
    await enqueue(q, 150, delay_ms=60_000)
    await path(q)
    assert await counted(q) == await truth(q) > 0


async def test_a_job_past_max_queued_is_refused_and_leaves_nothing(redis_client):
    q = queue(redis_client, **{"engine.max_queued": 3})
    await q.seed_limits()
    await enqueue(q)
    await enqueue(q)
    await enqueue(q, delay_ms=5000)  # delayed jobs count too
    before = await q.redis.zcard(q.keys.jobs("python"))
    with pytest.raises(QueueFull) as refused:
        await enqueue(q, idempotency_key="k1")
    assert (refused.value.cap, refused.value.limit) == ("max_queued", 3)
    assert await q.redis.zcard(q.keys.jobs("python")) == before
    assert not await q.redis.exists(q.keys.idempotency("python", "k1"))
    await q.claim("python", 1, now=T0)  # one leaves the queue: room again
    job_id = await enqueue(q, idempotency_key="k1")
    assert (await q.enqueue("python", "simulate", {}, idempotency_key="k1")).job_id == job_id


async def test_payload_bytes_past_max_queued_bytes_are_refused_until_some_leave(redis_client):
    q = queue(redis_client, **{"engine.max_queued_bytes": 2048})
    await q.seed_limits()
    first = await enqueue(q, 1000)
    await enqueue(q, 1000)
    with pytest.raises(QueueFull) as refused:
        await enqueue(q, 100)
    assert (refused.value.cap, refused.value.limit) == ("max_queued_bytes", 2048)
    await enqueue(q, 48)  # exactly at the cap is allowed
    await q.cancel(first)  # a cancelled job's bytes are freed at once
    await enqueue(q, 1000)
    assert await counted(q) == await truth(q) == 2048


async def test_the_count_starts_again_from_zero_when_nothing_is_queued(q):
    await q.redis.hset(q.keys.meta("python"), "queuedBytes", 10**12)  # drifted somehow
    await enqueue(q, 300)
    assert await counted(q) == await truth(q) == 300


@pytest.mark.parametrize(
    "caps", [{"engine.max_queued": 0, "engine.max_queued_bytes": 0}], ids=["no caps"]
)
async def test_zero_turns_the_caps_off(redis_client, caps):
    q = queue(redis_client, **caps)
    await q.seed_limits()
    for _ in range(20):
        await enqueue(q, 1000)
    assert await counted(q) == await truth(q) == 20_000
