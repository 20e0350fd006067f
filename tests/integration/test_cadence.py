"""A type's cadence — at most max starts in any interval — enforced where jobs start: claim.lua,
enqueue.lua's direct claim and complete.lua's hand-over (lib.lua cadence_room). Real
redis-server and fakeredis; time is explicit (Redis TIME otherwise)."""

from __future__ import annotations

import pytest

from botsys.queue import QueueFull
from tests.conftest import make_settings
from tests.support.job_events import wait_jobs
from tests.support.store import queue_for
from tests.support.timing import MARGIN_S

T0 = 1_800_000_000_000
INTERVAL_MS = 2000


def cadenced(max_starts: int = 3, mode: str = "queue", limit: int = 100):
    return make_settings(
        **{
            "bot_types.python.limit": limit,
            "bot_types.python.cadence_max": max_starts,
            "bot_types.python.cadence_interval_s": INTERVAL_MS / 1000,
            "bot_types.python.cadence_mode": mode,
        }
    )


@pytest.fixture
async def q(redis_client):
    queue = queue_for(redis_client, cadenced(), "r1")
    await queue.seed_limits()
    return queue


async def enqueue(q, n: int, now: int = T0) -> list[str]:
    return [(await q.enqueue("python", "simulate", {}, now=now)).job_id for _ in range(n)]


async def test_a_claim_starts_at_most_max_then_says_when_the_next_may(q):
    ids = await enqueue(q, 5)
    wait_ms, claims = await q.claim("python", 10, now=T0 + 100)
    assert [c.job_id for c in claims] == ids[:3]
    assert wait_ms == INTERVAL_MS, "the first start leaves the window at T0+100+2000"
    assert await q.claim("python", 10, now=T0 + 2099) == (1, [])
    wait_ms, claims = await q.claim("python", 10, now=T0 + 2100)
    assert [c.job_id for c in claims] == ids[3:5]


async def test_the_window_slides_no_burst_at_an_edge(q):
    """Starts at 0, 1000, 1900: at 2000 only the first has left; a fixed window anchored at 0
    would allow three more at 2000."""
    await enqueue(q, 10)
    for t in (0, 1000, 1900):
        _, claims = await q.claim("python", 1, now=T0 + t)
        assert len(claims) == 1
    _, claims = await q.claim("python", 10, now=T0 + 2000)
    assert len(claims) == 1
    wait_ms, claims = await q.claim("python", 10, now=T0 + 2001)
    assert claims == [] and wait_ms == 999


async def test_the_direct_claim_at_enqueue_respects_the_cadence(q):
    got = [await q.enqueue("python", "simulate", {}, take=True, now=T0 + i) for i in range(4)]
    assert [e.claim is not None for e in got] == [True, True, True, False]


async def test_a_freed_slot_is_not_handed_over_past_the_cadence(redis_client):
    queue = queue_for(redis_client, cadenced(max_starts=2, limit=1), "r1")
    await queue.seed_limits()
    await enqueue(queue, 3)
    _, [first] = await queue.claim("python", 1, now=T0)
    done = await queue.complete(first, "succeeded", take_next=1, now=T0 + 10)
    assert done.next is not None, "the second start is within the cadence"
    done = await queue.complete(done.next, "succeeded", take_next=1, now=T0 + 20)
    assert done.next is None, "a third start within 2 s would break the cadence"
    wait_ms, claims = await queue.claim("python", 1, now=T0 + 30)
    assert claims == [] and wait_ms == INTERVAL_MS - 30


async def test_retries_count_as_starts(q):
    [job] = await enqueue(q, 1)
    await enqueue(q, 3)
    _, claims = await q.claim("python", 3, now=T0)
    assert len(claims) == 3
    await q.redis.hset(q.keys.job("python", job), "maxAttempts", 2)
    await q.complete(claims[0], "failed", retry_delay_ms=0, now=T0 + 1)
    assert (await q.claim("python", 5, now=T0 + 2))[1] == []


async def test_no_cadence_no_window_kept(redis_client):
    queue = queue_for(redis_client, make_settings(), "r1")
    await queue.seed_limits()
    await enqueue(queue, 3)
    _, claims = await queue.claim("python", 3, now=T0)
    assert len(claims) == 3
    assert await redis_client.exists(queue.keys.starts("python")) == 0


async def test_reject_mode_refuses_at_the_door_until_the_window_slides(redis_client):
    queue = queue_for(redis_client, cadenced(max_starts=2, mode="reject"), "r1")
    await queue.seed_limits()
    await enqueue(queue, 2, now=T0)
    with pytest.raises(QueueFull) as refused:
        await queue.enqueue("python", "simulate", {}, now=T0 + 500)
    assert refused.value.cap == "cadence" and refused.value.limit == INTERVAL_MS - 500
    await enqueue(queue, 1, now=T0 + INTERVAL_MS)


async def test_two_replicas_share_one_window(redis_factory):
    settings = cadenced(max_starts=4)
    a = queue_for(redis_factory(), settings, "a")
    b = queue_for(redis_factory(), settings, "b")
    await a.seed_limits()
    await enqueue(a, 10)
    _, got_a = await a.claim("python", 3, now=T0)
    _, got_b = await b.claim("python", 3, now=T0 + 1)
    assert (len(got_a), len(got_b)) == (3, 1)


async def test_reject_mode_answers_a_repeated_idempotency_key_with_its_job(redis_client):
    queue = queue_for(redis_client, cadenced(max_starts=1, mode="reject"), "r1")
    await queue.seed_limits()
    first = await queue.enqueue("python", "simulate", {}, idempotency_key="k", now=T0)
    again = await queue.enqueue("python", "simulate", {}, idempotency_key="k", now=T0 + 1)
    assert (again.job_id, again.created) == (first.job_id, False)
    with pytest.raises(QueueFull):
        await queue.enqueue("python", "simulate", {}, idempotency_key="other", now=T0 + 2)
    # The refused key was not kept: once the window slides, it creates its job.
    later = await queue.enqueue("python", "simulate", {}, idempotency_key="other", now=T0 + 2000)
    assert later.created


async def test_dispatchers_sleep_until_the_cadence_allows_no_busy_polling(redis_factory):
    """3 orchestrators, cadence 2 per 1 s, 6 jobs: they start in 3 waves 1 s apart, and
    while held each replica claims once when a start may happen, not in a loop (a 10 ms poll
    would be ~600 claims over the 2 s)."""
    from tests.integration.test_orchestrator import CountingRunner, replicas

    settings = make_settings(
        **{
            "bot_types.python.limit": 10,
            "bot_types.python.cadence_max": 2,
            "bot_types.python.cadence_interval_s": 1.0,
            "engine.idle_wait_s": 5.0,  # the cadence, not the idle re-check, wakes them
        }
    )
    runner = CountingRunner(durations=(0.001, 0.002))
    orchs = replicas(redis_factory, settings, runner)
    claims: list[int] = []
    for o in orchs:
        real = o.queue.claim

        async def counted(*args, real=real, **kw):
            reply = await real(*args, **kw)
            claims.append(len(reply[1]))
            return reply

        o.queue.claim = counted
        await o.start()
    try:
        q = orchs[0].queue
        ids = [(await q.enqueue("python", "simulate", {})).job_id for _ in range(6)]
        await runner.wait_started(2)  # the first wave (its claims are counted before it starts)
        claims.clear()
        jobs = await wait_jobs(q, ids, timeout=10)
        started = sorted(int(j.get("startedAt")) for j in jobs)
        assert started[2] - started[0] >= 1000 and started[4] - started[2] >= 1000
        assert started[-1] - started[0] < 2000 + 1000 * MARGIN_S, started
        held_starts = sum(claims)
        assert held_starts == 4 and len(claims) <= 3 * (held_starts + 2), claims
    finally:
        for o in orchs:
            await o.stop()
