"""Table-driven tests of each Lua script, on a real redis-server and on fakeredis.

Time is explicit (``now=``) so lease expiry and delays are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.exceptions import ResponseError

from botsys.states import TERMINAL as TERMINAL_STATES
from botsys.store.scripts import LUA_DIR, Signature
from botsys.webhooks.types import AttemptRecord
from tests.conftest import make_settings
from tests.support.store import outbox_for, queue_for

T0 = 1_800_000_000_000  # a fixed "now" in ms


@pytest.fixture
async def q(redis_client):
    queue = queue_for(redis_client, make_settings(**{"bot_types.python.limit": 2}), "r1")
    await queue.seed_limits()
    return queue


async def enqueue_n(q, n, **kw):
    return [
        (await q.enqueue("python", "simulate", {"i": i}, now=T0 + i, **kw)).job_id for i in range(n)
    ]


def test_every_script_documents_its_contract():
    for path in LUA_DIR.glob("*.lua"):
        if path.stem == "lib":
            continue
        header = "\n".join(line for line in path.read_text().split("\n") if line.startswith("--"))
        assert "-- KEYS:" in header and "-- ARGV:" in header and "Returns" in header, (
            f"{path.name} lacks its KEYS/Returns header"
        )


async def test_scripts_use_only_the_keys_the_keys_module_names(redis_client):
    """lib.lua derives key names from the type prefix; store/keys.py builds them for Python.
    After a job's whole life (an idempotent enqueue, a delayed job, a waiting replica, logs,
    completion with a webhook, one delivery attempt) every key is one Keys names, and the
    finished job's log got its retention (a name misspelt in Lua would expire another key)."""
    t, s = "python", make_settings(**{"bot_types.python.limit": 1})
    q, other = queue_for(redis_client, s, "r1"), queue_for(redis_client, s, "r2")
    await q.seed_limits()
    hook = "http://hooks.test/"
    job = (await q.enqueue(t, "simulate", {}, webhook_url=hook, idempotency_key="k1")).job_id
    later = (await q.enqueue(t, "simulate", {}, delay_ms=60_000)).job_id
    waiting = (await q.enqueue(t, "simulate", {})).job_id
    _, [claim] = await q.claim(t, 1)
    assert (await other.claim(t, 1))[1] == []  # full: r2 joins the line of waiters
    k = q.keys
    stored = set(await redis_client.keys(k.type_prefix(t) + "*"))  # the line goes on release
    await q.record_events(t, job, 50, ["a line"])
    did = (await q.complete(claim, "succeeded", result_json="{}")).delivery_id
    store = outbox_for(q)
    [delivery] = await store.claim_due(1)
    await store.finish_attempt(delivery, AttemptRecord(T0, 5, 200, None, "", "delivered"), None)

    named = {k.queue(t), k.delayed(t), k.active(t), k.meta(t), k.jobs(t), k.deliveries(t)}
    named |= {k.waiters(t), k.waiters_seen(t), k.idempotency(t, "k1")}
    named |= {k.job(t, job), k.job(t, later), k.job(t, waiting), k.log(t, job)}
    named |= {k.delivery(t, did)}
    named |= {k.attempts(t, did)} | {k.done(t, state) for state in TERMINAL_STATES}
    named |= {k.delivery_index(t, state) for state in ("pending", "delivered", "failed")}
    stored |= set(await redis_client.keys(k.type_prefix(t) + "*"))
    assert stored <= named, f"keys no Keys method names: {stored - named}"
    used = {k.idempotency(t, "k1"), k.waiters(t), k.done(t, "succeeded"), k.attempts(t, did)}
    assert used <= stored, f"never written: {used - stored}"
    assert await redis_client.ttl(k.log(t, job)) > 0, "the finished job's log never expires"


@pytest.mark.parametrize(
    "priorities, expected_order",
    [
        ([5, 1, 3], [1, 2, 0]),  # lower runs first
        ([3, 3, 3], [0, 1, 2]),  # FIFO within a priority
        ([1000, 1, 1000, 1], [1, 3, 0, 2]),
    ],
)
async def test_claim_order_is_priority_then_fifo(redis_client, priorities, expected_order):
    q = queue_for(redis_client, make_settings(**{"bot_types.python.limit": 100}), "r1")
    await q.seed_limits()
    ids = [
        (await q.enqueue("python", "simulate", {}, priority=p, now=T0 + i)).job_id
        for i, p in enumerate(priorities)
    ]
    _, claims = await q.claim("python", 100, now=T0 + 10)
    assert [c.job_id for c in claims] == [ids[i] for i in expected_order]


@pytest.mark.parametrize(
    "limit, waiting, want, expect", [(2, 5, 10, 2), (2, 1, 10, 1), (5, 5, 3, 3), (0, 3, 3, 0)]
)
async def test_claim_admits_only_below_the_limit(redis_client, limit, waiting, want, expect):
    q = queue_for(redis_client, make_settings(**{"bot_types.python.limit": limit}), "r1")
    await q.seed_limits()
    await enqueue_n(q, waiting)
    _, claims = await q.claim("python", want, now=T0 + 100)
    assert len(claims) == expect
    _, more = await q.claim("python", 100, now=T0 + 101)
    assert len(claims) + len(more) == min(limit, waiting)  # never more than the limit in total
    assert await redis_client.zcard(q.keys.active("python")) == min(limit, waiting)


async def next_release(pubsub) -> str:
    """The replica the next ``release:<replica>`` wake-up is addressed to."""
    async with asyncio.timeout(5):
        while True:
            msg = await pubsub.get_message(timeout=1)  # None: nothing yet, or an ack
            data = msg and msg["data"]
            data = data.decode() if isinstance(data, bytes) else data
            if data and data.startswith("release:"):
                return data.removeprefix("release:")


async def test_a_freed_slot_is_handed_to_the_longest_waiting_replica(redis_client):
    settings = make_settings(**{"bot_types.python.limit": 1, "engine.idle_wait_s": 1.0})
    r1, r2, r3 = (queue_for(redis_client, settings, name) for name in ("r1", "r2", "r3"))
    await r1.seed_limits()
    await enqueue_n(r1, 5)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(r1.keys.wake_channel("python"))

    async def released_to() -> str:
        return await next_release(pubsub)

    _, [c1] = await r1.claim("python", 1, now=T0)  # got what it wanted: not waiting
    assert (await r2.claim("python", 1, now=T0 + 1))[1] == []  # full: r2 waits...
    assert (await r3.claim("python", 3, now=T0 + 2))[1] == []  # ...then r3
    await r1.complete(c1, "succeeded", now=T0 + 10)
    assert await released_to() == "r2"
    _, [c2] = await r2.claim("python", 1, now=T0 + 11)
    await r2.complete(c2, "succeeded", now=T0 + 20)
    assert await released_to() == "r3"
    _, [c3] = await r3.claim("python", 3, now=T0 + 21)  # wants more: waits again
    await r3.complete(c3, "succeeded", now=T0 + 30)
    assert await released_to() == "r3"
    _, [c4] = await r3.claim("python", 1, now=T0 + 31)
    assert (await r2.claim("python", 1, now=T0 + 32))[1] == []
    # r2's place is older than a live waiter's re-claims would leave it (documented: 2 idle
    # waits + 1 s): it is gone, so the completing replica keeps the slot rather than handing
    # it to nobody.
    gone_after_ms = (2 * settings.engine.idle_wait_s + 1) * 1000
    await r3.complete(c4, "succeeded", now=T0 + 32 + int(gone_after_ms) + 1)
    assert await released_to() == "r3"
    await pubsub.aclose()


@pytest.mark.parametrize(
    "case, leased",
    [
        ("nobody waits", True),
        ("another replica waits", False),
        ("caller cannot take one", False),
        ("paused", False),
        ("limit lowered below the running", False),
    ],
)
async def test_complete_leases_the_next_job_to_a_completer_that_keeps_the_slot(
    redis_client, case, leased
):
    settings = make_settings(**{"bot_types.python.limit": 2})
    r1, r2 = queue_for(redis_client, settings, "r1"), queue_for(redis_client, settings, "r2")
    await r1.seed_limits()
    ids = await enqueue_n(r1, 4)
    _, [c1, _c2] = await r1.claim("python", 2, now=T0 + 10)  # full; 2 wait
    if case == "another replica waits":
        assert (await r2.claim("python", 1, now=T0 + 11))[1] == []  # r2 joins the line
    if case == "paused":
        await r1.set_queue("python", paused=True)
    if case == "limit lowered below the running":
        await r1.set_queue("python", limit=1)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(r1.keys.wake_channel("python"))
    take = 0 if case == "caller cannot take one" else 1
    done = await r1.complete(c1, "succeeded", take_next=take, now=T0 + 20)
    assert done.recorded and done.state == "succeeded"
    active = await redis_client.zrange(r1.keys.active("python"), 0, -1)
    if not leased:
        assert done.next is None and ids[2] not in active
        if case in ("another replica waits", "caller cannot take one"):
            expected = "r2" if case == "another replica waits" else "r1"
            assert await next_release(pubsub) == expected
        await pubsub.aclose()
        return
    nxt = done.next
    assert nxt.job_id == ids[2] and nxt.attempt == 1 and nxt.token, "the best waiting job"
    stored = await r1.get(ids[2])
    assert stored.state == "running" and stored.get("owner") == "r1"
    assert sorted(active) == sorted([ids[1], ids[2]]), "the freed slot, not one more"
    assert await messages(pubsub, 0.2) == [], "no wake-up when the completer keeps the slot"
    await pubsub.aclose()
    # An ordinary lease: complete records it.
    assert (await r1.complete(nxt, "succeeded", now=T0 + 30)).recorded


async def test_a_completer_that_wants_more_keeps_waiting_in_line(redis_client):
    settings = make_settings(**{"bot_types.python.limit": 1})
    r1, r2 = queue_for(redis_client, settings, "r1"), queue_for(redis_client, settings, "r2")
    await r1.seed_limits()
    await enqueue_n(r1, 4)
    _, [c1] = await r1.claim("python", 1, now=T0)
    done = await r1.complete(c1, "succeeded", take_next=3, now=T0 + 10)  # room for 3
    assert done.next is not None
    assert await redis_client.zrange(r1.keys.waiters("python"), 0, -1) == ["r1"]
    assert (await r2.claim("python", 1, now=T0 + 11))[1] == []  # r2 joins behind r1
    done = await r1.complete(done.next, "succeeded", take_next=3, now=T0 + 20)
    assert done.next is not None, "r1 was first in line"
    assert await redis_client.zrange(r1.keys.waiters("python"), 0, -1) == ["r2", "r1"]


@pytest.mark.parametrize("waiter", [False, True])
async def test_enqueue_to_a_full_semaphore_wakes_replicas_only_if_nobody_waits(
    redis_client, waiter
):
    settings = make_settings(**{"bot_types.python.limit": 1})
    r1, r2 = queue_for(redis_client, settings, "r1"), queue_for(redis_client, settings, "r2")
    await r1.seed_limits()
    await enqueue_n(r1, 2)
    await r1.claim("python", 1, now=T0 + 5)  # full, one waits; r1 got all it wanted
    if waiter:
        assert (await r2.claim("python", 1, now=T0 + 6))[1] == []
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(r1.keys.wake_channel("python"))
    await r1.enqueue("python", "simulate", {}, now=T0 + 10)
    assert await messages(pubsub, 0.3) == ([] if waiter else ["enqueue"])
    await pubsub.aclose()


async def messages(pubsub, seconds: float) -> list[str]:
    """What the channel carried within ``seconds`` (subscribe acks skipped)."""
    out, deadline = [], asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        msg = await pubsub.get_message(timeout=left)
        if msg is not None:
            out.append(msg["data"])
    return out


@pytest.mark.parametrize(
    "case, expect_claimed",
    [
        ("slot free, queue empty", True),
        ("semaphore full", False),
        ("a better job waits", False),
        ("paused", False),
        ("delayed", False),
    ],
)
async def test_enqueue_claims_for_the_caller_only_when_the_job_could_start_now(
    q, case, expect_claimed
):
    if case == "semaphore full":
        await enqueue_n(q, 2)
        await q.claim("python", 2, now=T0 + 5)
    if case == "a better job waits":
        await q.enqueue("python", "simulate", {}, priority=1, now=T0)
    if case == "paused":
        await q.set_queue("python", paused=True)
    job = await q.enqueue(
        "python", "simulate", {}, delay_ms=500 if case == "delayed" else 0, take=True, now=T0 + 10
    )
    if not expect_claimed:
        assert job.claim is None and (await q.get(job.job_id)).state != "running"
        return
    claim = job.claim
    stored = await q.get(job.job_id)
    assert claim.job_id == job.job_id and claim.attempt == 1 and claim.token
    assert stored.state == "running" and stored.get("owner") == "r1"
    assert await q.redis.zscore(q.keys.active("python"), job.job_id) == T0 + 10 + 2000
    assert await q.redis.zcard(q.keys.queue("python")) == 0
    # The lease is an ordinary one: heartbeats renew it and complete records the outcome.
    assert await q.heartbeat("python", [(job.job_id, claim.token)], now=T0 + 20) == {job.job_id: 1}
    assert (await q.complete(claim, "succeeded", now=T0 + 30)).recorded


async def test_a_waiter_that_claims_again_keeps_its_place_in_line(redis_client):
    # An idle re-claim only proves the waiter is alive: moving it to the back of the line
    # starved a replica that held no slot while the others kept handing slots to each other.
    settings = make_settings(**{"bot_types.python.limit": 1})
    r1, r2, r3 = (queue_for(redis_client, settings, name) for name in ("r1", "r2", "r3"))
    await r1.seed_limits()
    await enqueue_n(r1, 4)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(r1.keys.wake_channel("python"))
    _, [c1] = await r1.claim("python", 1, now=T0)
    assert (await r2.claim("python", 1, now=T0 + 1))[1] == []  # r2 joins the line first
    assert (await r3.claim("python", 1, now=T0 + 2))[1] == []
    assert (await r2.claim("python", 1, now=T0 + 500))[1] == []  # r2's idle re-claim
    await r1.complete(c1, "succeeded", now=T0 + 600)
    assert await next_release(pubsub) == "r2"
    await pubsub.aclose()


async def test_claim_gives_increasing_tokens_and_counts_attempts(q):
    await enqueue_n(q, 2)
    _, claims = await q.claim("python", 2, now=T0 + 10)
    first = (T0 + 10) * 1000  # never below Redis time in µs (next_token in lib.lua)
    assert [int(c.token) for c in claims] == [first, first + 1]
    assert [c.attempt for c in claims] == [1, 1]
    assert all(c.job.get("owner") == "r1" for c in claims)


async def test_enqueue_idempotency_key_returns_the_first_job(q):
    a = await q.enqueue("python", "simulate", {"x": 1}, idempotency_key="abc")
    b = await q.enqueue("python", "simulate", {"x": 2}, idempotency_key="abc")
    c = await q.enqueue("python", "simulate", {"x": 3}, idempotency_key="other")
    assert (a.created, b.created, c.created) == (True, False, True)
    assert b.job_id == a.job_id != c.job_id
    assert await q.redis.zcard(q.keys.queue("python")) == 2


async def test_delayed_job_waits_until_due(q):
    job = await q.enqueue("python", "simulate", {}, delay_ms=5000, now=T0)
    assert (await q.get(job.job_id)).state == "delayed"
    wait, claims = await q.claim("python", 1, now=T0 + 4999)
    assert claims == [] and wait == 1
    _, claims = await q.claim("python", 1, now=T0 + 5000)
    assert [c.job_id for c in claims] == [job.job_id]


@pytest.mark.parametrize(
    "status, max_attempts, expect_state",
    [
        ("succeeded", 1, "succeeded"),
        ("failed", 1, "failed"),
        ("timed_out", 1, "timed_out"),
        ("failed", 3, "delayed"),
        ("timed_out", 2, "delayed"),
        ("cancelled", 3, "cancelled"),
    ],
)
async def test_complete_outcomes(q, status, max_attempts, expect_state):
    job = await q.enqueue("python", "simulate", {}, max_attempts=max_attempts, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0 + 1)
    done = await q.complete(
        claim, status, result_json='{"ok":1}', error="boom", retry_delay_ms=700, now=T0 + 50
    )
    assert done.recorded and done.state == expect_state
    stored = await q.get(job.job_id)
    assert stored.state == expect_state
    assert await q.redis.zcard(q.keys.active("python")) == 0  # slot released either way
    if expect_state == "delayed":
        assert done.retry_at_ms == T0 + 750
        assert await q.redis.zscore(q.keys.delayed("python"), job.job_id) == T0 + 750
    else:
        assert await q.redis.zscore(q.keys.done("python", expect_state), job.job_id) == T0 + 50
        assert await q.redis.ttl(q.keys.job("python", job.job_id)) > 0


async def test_retry_backoff_waits_in_delayed_not_mistaken_for_stalled(q):
    job = await q.enqueue("python", "simulate", {}, max_attempts=2, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0)
    await q.complete(claim, "failed", error="x", retry_delay_ms=10_000, now=T0 + 100)
    # Long after the lease would have expired, the job is still delayed, not stalled.
    _, claims = await q.claim("python", 1, now=T0 + 9_000)
    stored = await q.get(job.job_id)
    assert claims == [] and stored.state == "delayed" and stored.get("stalls") == "0"
    _, [again] = await q.claim("python", 1, now=T0 + 10_100)
    assert again.attempt == 2 and again.failures == 1


async def test_complete_with_a_stale_token_is_refused_and_writes_nothing(q):
    job = await q.enqueue("python", "simulate", {}, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0)
    # Lease expires (2 s in test settings), another replica reclaims the job.
    _, [reclaimed] = await q.claim("python", 1, now=T0 + 2500)
    assert reclaimed.job_id == job.job_id and reclaimed.token != claim.token
    before = await q.redis.hgetall(q.keys.job("python", job.job_id))
    stale = await q.complete(claim, "succeeded", result_json='{"stale":true}', now=T0 + 2600)
    assert not stale.recorded
    assert await q.redis.hgetall(q.keys.job("python", job.job_id)) == before
    assert (await q.heartbeat("python", [(job.job_id, claim.token)], now=T0 + 2600)) == {
        job.job_id: 0
    }
    fresh = await q.complete(reclaimed, "succeeded", result_json='{"fresh":true}', now=T0 + 2700)
    assert fresh.recorded and (await q.get(job.job_id)).view()["result"] == {"fresh": True}


@pytest.mark.parametrize(
    "offset_ms, expect", [(1000, 1), (1999, 1), (2000, 1), (2001, 0), (9000, 0)]
)
async def test_heartbeat_extends_only_a_live_lease(q, offset_ms, expect):
    job = await q.enqueue("python", "simulate", {}, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0)
    status = await q.heartbeat("python", [(job.job_id, claim.token)], now=T0 + offset_ms)
    assert status == {job.job_id: expect}
    if expect:
        assert await q.redis.zscore(q.keys.active("python"), job.job_id) == T0 + offset_ms + 2000


async def test_heartbeat_reports_a_requested_cancel(q):
    job = await q.enqueue("python", "simulate", {}, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0)
    assert await q.cancel(job.job_id, now=T0 + 1) == (2, "running")
    assert await q.heartbeat("python", [(job.job_id, claim.token)], now=T0 + 2) == {job.job_id: 2}


async def test_expired_lease_requeues_then_fails_after_max_stalls(q):
    # test settings: lease 2 s, max_stalls 2 (default)
    job = await q.enqueue("python", "simulate", {}, now=T0)
    now = T0
    for stall in (1, 2):
        _, [claim] = await q.claim("python", 1, now=now)
        now += 2001
        _, claims = await q.claim("python", 0, now=now)  # reaps without taking
        stored = await q.get(job.job_id)
        assert stored.state == "queued" and stored.get("stalls") == str(stall)
    _, [claim] = await q.claim("python", 1, now=now)
    _, _ = await q.claim("python", 0, now=now + 2001)
    stored = await q.get(job.job_id)
    assert stored.state == "failed" and "stalled" in stored.get("error")
    assert await q.redis.zcard(q.keys.active("python")) == 0


async def test_cancel_table(q):
    queued = await q.enqueue("python", "simulate", {}, now=T0)
    delayed = await q.enqueue("python", "simulate", {}, delay_ms=10_000, now=T0)
    assert await q.cancel(queued.job_id, now=T0 + 1) == (1, "cancelled")
    assert await q.cancel(delayed.job_id, now=T0 + 1) == (1, "cancelled")
    assert await q.cancel(queued.job_id, now=T0 + 2) == (0, "cancelled")
    assert await q.cancel("python-01JD0000000000000000000000", now=T0) == (-1, "")
    assert await q.redis.zcard(q.keys.queue("python")) == 0
    assert await q.redis.zcard(q.keys.delayed("python")) == 0


async def test_cancel_of_running_job_whose_owner_died_ends_cancelled(q):
    job = await q.enqueue("python", "simulate", {}, now=T0)
    await q.claim("python", 1, now=T0)
    await q.cancel(job.job_id, now=T0 + 1)
    await q.claim("python", 0, now=T0 + 2500)  # the reaper sees the expired lease
    assert (await q.get(job.job_id)).state == "cancelled"


async def test_requeue_gives_the_job_back_without_charging_an_attempt(q):
    job = await q.enqueue("python", "simulate", {}, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0)
    assert await q.requeue(claim)
    stored = await q.get(job.job_id)
    assert stored.state == "queued" and stored.get("attempt") == "0"
    assert not await q.requeue(claim)  # token no longer valid


async def test_retry_reruns_a_failed_job(q):
    job = await q.enqueue("python", "simulate", {}, now=T0)
    _, [claim] = await q.claim("python", 1, now=T0)
    await q.complete(claim, "failed", error="x", now=T0 + 1)
    assert await q.retry(job.job_id, now=T0 + 2) == (1, "queued")
    assert await q.retry(job.job_id, now=T0 + 3) == (0, "queued")
    _, [again] = await q.claim("python", 1, now=T0 + 4)
    assert again.attempt == 2 and (await q.get(job.job_id)).get("error") is None


async def test_completion_schedules_the_webhook_delivery_atomically(q):
    job = await q.enqueue(
        "python", "simulate", {}, webhook_url="http://localhost:5000/hook", now=T0
    )
    _, [claim] = await q.claim("python", 1, now=T0 + 10)
    done = await q.complete(
        claim, "succeeded", result_json='{"big": 12345678901234567890}', now=T0 + 1010
    )
    assert done.delivery_id == f"msg_{job.job_id}"
    d = await q.redis.hgetall(q.keys.delivery("python", done.delivery_id))
    body = json.loads(d["body"])
    assert body["jobId"] == job.job_id and body["success"] is True and body["state"] == "succeeded"
    assert body["durationMs"] == 1000 and body["executionNode"] == "r1"
    assert '"big": 12345678901234567890' in d["body"]  # the bot's JSON is spliced in verbatim
    assert body["finishedAt"] == "2027-01-15T08:00:01.010Z"
    assert await q.redis.zscore(q.keys.deliveries("python"), done.delivery_id) == T0 + 1010


async def test_limit_change_and_pause_take_effect_on_next_claim(q):
    await enqueue_n(q, 5)
    await q.set_queue("python", paused=True)
    assert (await q.claim("python", 5, now=T0 + 10))[1] == []
    await q.set_queue("python", paused=False, limit=4)
    assert len((await q.claim("python", 5, now=T0 + 11))[1]) == 4
    stats = (await q.stats())["python"]
    assert (stats.running, stats.waiting, stats.limit) == (4, 1, 4)


async def test_seeded_limit_keeps_a_live_change_until_config_changes(redis_client):
    s = make_settings(**{"bot_types.python.limit": 2})
    q = queue_for(redis_client, s, "r1")
    assert (await q.seed_limits())["python"] == 2
    await q.set_queue("python", limit=7)
    assert (await q.seed_limits())["python"] == 7  # restart, same config: live value kept
    changed = make_settings(**{"bot_types.python.limit": 3, "redis.prefix": s.redis.prefix})
    assert (await queue_for(redis_client, changed, "r1").seed_limits())["python"] == 3


async def test_concurrent_calls_share_one_round_trip_and_survive_a_script_flush(redis_client):
    q = queue_for(redis_client, make_settings(**{"bot_types.python.limit": 100}), "r1")
    await q.seed_limits()
    before = q.scripts.round_trips
    jobs = await asyncio.gather(*(q.enqueue("python", "simulate", {"i": i}) for i in range(20)))
    assert q.scripts.round_trips - before == 1, "20 enqueues in one tick → one pipeline"
    assert len({j.job_id for j in jobs}) == 20
    await redis_client.script_flush()  # as after a Redis restart without AOF
    results = await asyncio.gather(*(q.cancel(j.job_id) for j in jobs[:5]))
    assert results == [(1, "cancelled")] * 5


async def test_list_jobs_filters_by_state_and_searches_payload_text(redis_client):
    q = queue_for(redis_client, make_settings(**{"bot_types.python.limit": 1}), "r1")
    await q.seed_limits()
    ids = [
        (await q.enqueue("python", "simulate", {"city": c}, now=T0 + i)).job_id
        for i, c in enumerate(["Lisbon", "Oslo", "Lima", "Osaka"])
    ]
    _, [running] = await q.claim("python", 1, now=T0 + 10)
    assert [j.id for j in await q.list_jobs("python")] == ids[::-1]
    assert [j.id for j in await q.list_jobs("python", state="running")] == [running.job_id]
    assert [j.id for j in await q.list_jobs("python", state="queued")] == ids[:0:-1]
    assert [j.id for j in await q.list_jobs("python", query="os")] == [ids[3], ids[1]]
    assert [j.id for j in await q.list_jobs("python", query="LIS")] == [ids[0]]
    page = await q.list_jobs("python", limit=2)
    rest = await q.list_jobs(
        "python", limit=2, before=(await q.index_score(page[-1], None), page[-1].id)
    )
    assert [j.id for j in page + rest] == ids[::-1]


async def test_list_jobs_pages_through_jobs_created_in_the_same_millisecond(redis_client):
    q = queue_for(redis_client, make_settings(), "r1")
    ids = {(await q.enqueue("python", "simulate", {}, now=T0)).job_id for _ in range(7)}
    seen, before = [], None
    while True:
        page = await q.list_jobs("python", limit=3, before=before)
        if not page:
            break
        seen += [j.id for j in page]
        before = (T0, page[-1].id)
    assert sorted(seen) == sorted(ids) and len(seen) == 7


async def test_a_group_routed_job_carries_its_selection_into_the_webhook_body(q):
    selection = '{"groupId":"g","rule":"ROUND_ROBIN","member":"python/simulate"}'
    job = await q.enqueue(
        "python", "simulate", {}, webhook_url="http://localhost:5000/h", group=selection, now=T0
    )
    assert (await q.get(job.job_id)).view()["group"] == json.loads(selection)
    _, [claim] = await q.claim("python", 1, now=T0 + 10)
    done = await q.complete(claim, "succeeded", result_json="{}", now=T0 + 20)
    d = await q.redis.hgetall(q.keys.delivery("python", done.delivery_id))
    assert json.loads(d["body"])["group"] == json.loads(selection)
    plain = await q.enqueue("python", "simulate", {}, webhook_url="http://localhost:5000/h")
    _, [claim] = await q.claim("python", 1)
    done = await q.complete(claim, "succeeded", result_json="{}")
    d = await q.redis.hgetall(q.keys.delivery("python", done.delivery_id))
    assert json.loads(d["body"])["group"] is None and plain.created


async def test_a_name_the_header_does_not_declare_is_an_error(redis_client):
    sig = Signature.parse("t", "-- KEYS: queue\n-- ARGV: now\n")
    reads = sig.prologue() + "return {K.queue, A.now}"
    assert [str(x) for x in await redis_client.eval(reads, 1, "q", "5")] == ["q", "5"]
    with pytest.raises(ResponseError, match="not declared in KEYS or ARGV: lease_ms"):
        await redis_client.eval(sig.prologue() + "return A.lease_ms", 1, "q", "5")
    with pytest.raises(ResponseError, match="not declared in KEYS or ARGV: active"):
        await redis_client.eval(sig.prologue() + "return K.active", 1, "q", "5")
