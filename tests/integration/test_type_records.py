"""A bot type's record ({T}:meta) lost by Redis (restarted empty, flushed, failed over) is
re-created from configuration by the next claim, without a restart; fencing tokens and FIFO
order survive the loss. Real redis-server and fakeredis; time is explicit."""

from __future__ import annotations

import asyncio
import logging

import pytest

from botsys.store.notify import Notifier
from tests.conftest import make_settings
from tests.support.store import queue_for

T0 = 1_800_000_000_000
LEASE_MS = 2000  # make_settings' engine.lease_ms


@pytest.fixture
async def q(redis_client):
    queue = queue_for(redis_client, make_settings(**{"bot_types.python.limit": 2}), "r1")
    await queue.seed_limits()
    return queue


async def lose_record(q) -> None:
    await q.redis.delete(q.keys.meta("python"))


async def test_a_lost_record_is_re_created_by_the_next_claim_once(q, caplog):
    await q.set_queue("python", limit=5, paused=True)  # an admin's settings, lost with it
    reseeded = []
    q.on_reseeded = reseeded.append
    await lose_record(q)
    job = await q.enqueue("python", "simulate", {}, now=T0)
    assert (await q.stats())["python"].limit == 0

    with caplog.at_level(logging.WARNING, logger="botsys.queue"):
        wait_ms, claims = await q.claim("python", 2, now=T0 + 10)
        again = await q.claim("python", 2, now=T0 + 20)
    assert claims == [] and wait_ms == LEASE_MS, "no lease for one lease period after a loss"
    assert again == (LEASE_MS - 10, [])
    assert reseeded == ["python"], "re-created and reported once"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "python: its record was missing" in warnings[0]
    stats = (await q.stats())["python"]
    assert (stats.limit, stats.paused) == (2, False), "back to configuration"

    _, claims = await q.claim("python", 2, now=T0 + 10 + LEASE_MS)
    assert [c.job_id for c in claims] == [job.job_id]


async def test_enqueue_during_the_hold_waits_then_runs(q):
    await lose_record(q)
    await q.reseed("python", now=T0)
    job = await q.enqueue("python", "simulate", {}, take=True, now=T0 + 100)
    assert job.claim is None, "no direct lease while held"
    _, claims = await q.claim("python", 2, now=T0 + LEASE_MS)
    assert [c.job_id for c in claims] == [job.job_id]


async def test_a_new_token_never_equals_one_held_before_the_loss(q):
    """A failover that lost the latest writes: the job is back to queued and the token
    counter is gone, while the old owner still runs the attempt with its token."""
    job = await q.enqueue("python", "simulate", {}, now=T0)
    _, [old] = await q.claim("python", 1, now=T0 + 1)
    await lose_record(q)
    jk = q.keys.job("python", job.job_id)
    await q.redis.hset(jk, mapping={"state": "queued", "attempt": 0})
    await q.redis.hdel(jk, "token", "owner")
    await q.redis.zrem(q.keys.active("python"), job.job_id)
    await q.redis.zadd(q.keys.queue("python"), {job.job_id: 3 * 2**32 + 1})

    assert (await q.claim("python", 1, now=T0 + 2))[1] == []  # re-created, held
    _, [new] = await q.claim("python", 1, now=T0 + 2 + LEASE_MS)
    assert new.job_id == old.job_id and int(new.token) > int(old.token)
    assert await q.heartbeat("python", [(old.job_id, old.token)], now=T0 + 3 + LEASE_MS) == {
        old.job_id: 0
    }, "the old owner learns it lost the lease and stops its bot"
    assert not (await q.complete(old, "succeeded", now=T0 + 4 + LEASE_MS)).recorded
    assert (await q.complete(new, "succeeded", now=T0 + 5 + LEASE_MS)).state == "succeeded"


async def test_fifo_continues_above_the_jobs_still_queued(q):
    await q.set_queue("python", paused=True)
    first = [(await q.enqueue("python", "simulate", {}, now=T0 + i)).job_id for i in range(3)]
    await lose_record(q)
    later = (await q.enqueue("python", "simulate", {}, now=T0 + 5)).job_id
    await q.reseed("python", now=T0)
    _, claims = await q.claim("python", 2, now=T0 + LEASE_MS)
    _, more = await q.claim("python", 2, now=T0 + LEASE_MS + 1)
    assert [c.job_id for c in claims] == first[:2] and more == []
    await q.complete(claims[0], "succeeded", now=T0 + LEASE_MS + 2)
    _, rest = await q.claim("python", 2, now=T0 + LEASE_MS + 3)
    assert [c.job_id for c in rest] == [first[2]], f"{later} must not overtake older jobs"


async def test_start_up_seeding_creates_the_record_without_a_hold(redis_client):
    queue = queue_for(redis_client, make_settings(), "r1")
    await queue.seed_limits()
    await queue.enqueue("python", "simulate", {}, now=T0)
    _, claims = await queue.claim("python", 1, now=T0 + 1)
    assert len(claims) == 1


@pytest.mark.parametrize("redis_factory", ["redis"], indirect=True)
async def test_the_notifier_calls_on_connect_again_after_a_reconnection(redis_factory):
    """The orchestrator's hook to re-create lost records when pub/sub comes back."""
    client, admin = redis_factory(), redis_factory()
    notifier = Notifier(client)
    notifier.on("some-channel", lambda _msg: None)
    connects = asyncio.Queue()
    notifier.on_connect(lambda: connects.put_nowait(1))
    task = asyncio.create_task(notifier.run())
    try:
        await asyncio.wait_for(connects.get(), 5)
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        await asyncio.wait_for(connects.get(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
