"""Retention by count (engine.keep_finished): at most N finished jobs per bot type and state;
older ones are deleted with their log, deliveries and index entries, unless a delivery is still
pending. On a real redis-server and on fakeredis."""

from __future__ import annotations

import pytest

from botsys.queue import JobQueue
from botsys.store import results
from tests.conftest import make_settings
from tests.support.store import queue_for

T0 = 1_800_000_000_000
HOOK = "http://localhost:5000/hook"


async def make_queue(redis_client, keep: int) -> JobQueue:
    settings = make_settings(**{"engine.keep_finished": keep, "bot_types.python.limit": 1000})
    q = queue_for(redis_client, settings, "r1")
    await q.seed_limits()
    return q


async def finish(q, state: str, at: int, webhook: str = "") -> str:
    job_id = (await q.enqueue("python", "simulate", {"at": at}, webhook_url=webhook, now=at)).job_id
    _, (claim,) = await q.claim("python", 1, now=at)
    await q.record_events("python", job_id, 50, ["a log line"])
    await q.complete(claim, state, result_json='{"ok":1}', now=at + 1)
    return job_id


async def stored(q, job_id: str) -> dict[str, bool]:
    r, k = q.redis, q.keys
    did = f"msg_{job_id}"
    return {
        "job": bool(await r.exists(k.job("python", job_id))),
        "log": bool(await r.exists(k.log("python", job_id))),
        "listed": await r.zscore(k.jobs("python"), job_id) is not None,
        "delivery": bool(await r.exists(k.delivery("python", did))),
    }


@pytest.mark.parametrize(
    "keep, succeeded, failed, kept_succeeded",
    [
        (3, 5, 2, 3),  # the two oldest succeeded jobs go; the failed ones count apart
        (3, 3, 4, 3),  # at the cap: nothing goes
        (1, 4, 1, 1),
    ],
)
async def test_only_the_newest_finished_jobs_of_each_state_are_kept(
    redis_client, keep, succeeded, failed, kept_succeeded
):
    q = await make_queue(redis_client, keep)
    ok = [await finish(q, "succeeded", T0 + 10 * i) for i in range(succeeded)]
    bad = [await finish(q, "failed", T0 + 1000 + 10 * i) for i in range(failed)]
    index = await q.redis.zrange(q.keys.done("python", "succeeded"), 0, -1)
    assert index == ok[-kept_succeeded:]
    for job_id in ok[:-kept_succeeded]:
        assert await stored(q, job_id) == dict.fromkeys(("job", "log", "listed", "delivery"), False)
    for job_id in ok[-kept_succeeded:]:
        assert (await stored(q, job_id))["job"] and (await stored(q, job_id))["log"]
    assert await q.redis.zrange(q.keys.done("python", "failed"), 0, -1) == bad[-keep:]
    page = await q.list_jobs("python", "succeeded", limit=100)
    assert [j.id for j in page] == ok[-kept_succeeded:][::-1]


async def test_deliveries_go_with_their_job_but_a_pending_one_keeps_it(redis_client):
    q = await make_queue(redis_client, 1)
    delivered = await finish(q, "succeeded", T0, webhook=HOOK)
    [d] = await claim_deliveries(q)
    await q.run_script(
        "finish_delivery",
        "python",
        id=d["id"],
        token=d["token"],
        record="{}",
        outcome="delivered",
        next_at="",
        status=200,
        now=T0 + 5,
    )
    everything = dict.fromkeys(("job", "log", "listed", "delivery"), True)
    assert await stored(q, delivered) == everything
    pending = await finish(q, "succeeded", T0 + 10, webhook=HOOK)  # pushes `delivered` out
    assert await stored(q, delivered) == dict.fromkeys(everything, False)
    assert not await q.redis.exists(q.keys.attempts("python", f"msg_{delivered}"))
    assert not await q.redis.zrange(q.keys.delivery_index("python", "delivered"), 0, -1)
    await finish(q, "succeeded", T0 + 20)  # pushes `pending` out: its webhook is not sent yet
    assert await stored(q, pending) == everything  # kept (its retention TTL ends it)
    assert pending not in await q.redis.zrange(q.keys.done("python", "succeeded"), 0, -1)


async def claim_deliveries(q) -> list[dict]:
    reply = await q.run_script("claim_deliveries", "python", max=10, now=T0 + 1)
    return results.claim_deliveries(reply).deliveries


async def test_a_lowered_keep_trims_at_most_100_jobs_per_finish(redis_client):
    q = await make_queue(redis_client, 1000)
    for i in range(150):
        await finish(q, "succeeded", T0 + 10 * i)
    settings = make_settings(
        **{
            "redis.prefix": q.settings.redis.prefix,
            "engine.keep_finished": 10,
            "bot_types.python.limit": 1000,
        }
    )
    lowered = queue_for(redis_client, settings, "r1")
    index = q.keys.done("python", "succeeded")
    await finish(lowered, "succeeded", T0 + 10_000)
    assert await q.redis.zcard(index) == 151 - 100
    await finish(lowered, "succeeded", T0 + 10_010)
    assert await q.redis.zcard(index) == 10
    assert await q.redis.zcard(q.keys.jobs("python")) == 10
