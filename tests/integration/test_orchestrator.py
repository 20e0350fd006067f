"""The orchestrator and the distributed semaphore, with in-process fake runners.

Several Orchestrators, each on its own Redis connection, stand in for replicas. The fake
runner measures concurrency from the runner side: how many attempts are inside ``run`` at once.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from botsys.intake import submit
from botsys.orchestrator import Orchestrator
from botsys.queue import JobQueue
from botsys.runners.types import AttemptOutcome
from tests.conftest import make_settings
from tests.support.job_events import wait_jobs
from tests.support.store import queue_for, store_for
from tests.support.timing import MARGIN_S


class CountingRunner:
    """Shared by every replica in a test: records the peak number of concurrent attempts."""

    def __init__(self, durations=(0.005, 0.04), fail_ids=(), seed=1):
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.finished: list[str] = []
        self.durations = durations
        self.fail_ids = set(fail_ids)
        self.rng = random.Random(seed)
        self.gate: asyncio.Event | None = None
        self._step = asyncio.Event()  # set at each start

    async def wait_started(self, n: int, timeout: float = 10.0) -> None:
        """Until ``n`` attempts have entered ``run`` (the runner's side of a start)."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.started) < n:
                    self._step.clear()
                    await self._step.wait()
        except TimeoutError:
            raise AssertionError(f"{len(self.started)} of {n} attempts started") from None

    async def run(self, spec, sink):
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.append(spec.job_id)
        self._step.set()
        try:
            sink.started(1)
            sink.progress(50)
            sink.log(f"hello from {spec.job_id}")
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(self.rng.uniform(*self.durations))
            if spec.job_id in self.fail_ids:
                return AttemptOutcome("failed", error="planned failure")
            return AttemptOutcome("succeeded", result={"job": spec.job_id, "attempt": spec.attempt})
        finally:
            self.running -= 1
            self.finished.append(spec.job_id)


def replicas(redis_factory, settings, runner, n=3, **kw):
    out = []
    for i in range(n):
        q = queue_for(redis_factory(), settings, f"replica-{i}")
        out.append(Orchestrator(q, runner, settings, **kw))
    return out


async def test_semaphore_never_exceeds_the_limit_and_reaches_it(redis_factory):
    limit = 4
    settings = make_settings(**{"bot_types.python.limit": limit})
    runner = CountingRunner()
    orchs = replicas(redis_factory, settings, runner, bot_types=["python"])
    for o in orchs:
        await o.start()
    q = orchs[0].queue
    ids = [(await submit(q, orchs[0], "python", "simulate", {"i": i})).job_id for i in range(60)]
    jobs = await wait_jobs(q, ids)
    for o in orchs:
        await o.stop(0)
    assert all(j.state == "succeeded" for j in jobs)
    assert runner.peak == limit, (
        f"peak concurrency {runner.peak} with limit {limit} over 3 replicas"
    )
    assert sorted(runner.started) == sorted(ids), "every job ran exactly once"
    assert sum(o.claimed_total > 0 for o in orchs) >= 2, "work spread over replicas"


async def test_a_freed_slot_wakes_one_replica_and_the_work_stays_spread(redis_factory):
    """complete.lua addresses each freed slot to the replica that has waited longest for
    one: no herd of empty claims (racing cost N-1 per release), and no replica keeps the
    slots it happened to claim first."""
    n_jobs = 60
    settings = make_settings(**{"bot_types.python.limit": 2})
    runner = CountingRunner(durations=(0.005, 0.015))
    orchs = replicas(redis_factory, settings, runner, bot_types=["python"])
    empty = dict.fromkeys((o.queue.replica for o in orchs), 0)
    for o in orchs:

        async def counted(bot_type, n, claim=o.queue.claim, name=o.queue.replica):
            wait_ms, claims = await claim(bot_type, n)
            empty[name] += not claims
            return wait_ms, claims

        o.queue.claim = counted
    q = orchs[0].queue
    await q.seed_limits()
    ids = [
        (await submit(q, orchs[0], "python", "simulate", {"i": i})).job_id for i in range(n_jobs)
    ]
    for o in orchs:
        await o.start()
    jobs = await wait_jobs(q, ids)
    for o in orchs:
        await o.stop(0)
    assert all(j.state == "succeeded" for j in jobs) and runner.peak == 2
    ran = {o.queue.replica: o.claimed_total for o in orchs}
    assert sum(ran.values()) == n_jobs
    # Pinned to the first claimers, a replica runs ~0 of them; spread, each runs ~20. The bound
    # leaves room for a loaded machine, where a replica's claim can come late (seen: 40/12/8).
    assert min(ran.values()) >= n_jobs // 15, f"work not spread over the replicas: {ran}"
    assert sum(empty.values()) <= n_jobs // 4, f"empty claims per replica: {empty}"


async def test_priority_order_with_limit_one(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 1})
    runner = CountingRunner(durations=(0.001, 0.002))
    q = queue_for(redis_factory(), settings, "r")
    await q.seed_limits()
    ids = {}
    for i, prio in enumerate([5, 5, 1, 3, 1, 1000]):
        ids[(prio, i)] = (await q.enqueue("python", "simulate", {}, priority=prio)).job_id
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    await wait_jobs(q, list(ids.values()))
    await orch.stop(0)
    expected = [ids[k] for k in sorted(ids)]
    assert runner.started == expected, "jobs ran in (priority, FIFO) order"


async def test_failed_job_retries_with_backoff_then_fails(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 2, "engine.retry_delay_ms": 100})
    q = queue_for(redis_factory(), settings, "r")
    job = (await q.enqueue("python", "simulate", {}, max_attempts=3)).job_id
    runner = CountingRunner(fail_ids=[job], durations=(0.001, 0.002))
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    [final] = await wait_jobs(q, [job])
    await orch.stop(0)
    assert final.state == "failed" and final.get("attempt") == "3" and final.get("failures") == "3"
    assert runner.started == [job] * 3


async def test_vanished_replica_jobs_are_reclaimed_after_lease_expiry(redis_factory):
    settings = make_settings(
        **{
            "bot_types.python.limit": 3,
            "engine.lease_ms": 1000,
            "engine.heartbeat_ms": 200,
            "engine.idle_wait_s": 0.1,
        }
    )
    runner = CountingRunner()
    runner.gate = asyncio.Event()
    doomed, survivor = replicas(redis_factory, settings, runner, n=2, bot_types=["python"])
    await doomed.start()
    q = survivor.queue
    # Not submitted through the survivor: it would lease them to itself, not yet started.
    ids = [(await q.enqueue("python", "simulate", {})).job_id for _ in range(3)]
    await runner.wait_started(3)
    assert len(doomed.inflight) == 3
    held = {ra.claim.job_id: ra.claim for ra in doomed.inflight.values()}
    # The replica vanishes: its tasks die without releasing anything. (Its dispatchers also
    # lose their wake-up events: Python 3.11's wait_for drops a cancel that meets a wake-up,
    # and such a dispatcher would go on claiming.)
    doomed._wake.clear()
    vanished = doomed._tasks + doomed._dispatchers
    for task in vanished:
        task.cancel()
    await asyncio.gather(*vanished, return_exceptions=True)
    for ra in doomed.inflight.values():
        ra.task.cancel()
    doomed.inflight.clear()
    runner.gate = None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await survivor.start()
    jobs = await wait_jobs(q, ids)
    took = loop.time() - t0
    await survivor.stop(0)
    assert all(j.state == "succeeded" and j.get("owner") == "replica-1" for j in jobs), [
        (j.state, j.get("owner")) for j in jobs
    ]
    assert took < 1.0 + MARGIN_S, f"reclaimed {took:.2f}s after the vanish (lease 1 s)"
    # The vanished replica's stale token can no longer write anything.
    stale = next(iter(held.values()))
    assert not (await q.complete(stale, "failed", error="stale")).recorded
    assert (await q.heartbeat("python", [(stale.job_id, stale.token)])) == {stale.job_id: 0}
    assert (await q.get(stale.job_id)).state == "succeeded"


async def test_a_job_longer_than_several_leases_keeps_its_lease_and_runs_once(redis_factory):
    """Heartbeats renew the lease: a job running for three leases is never reaped and re-run
    by the other replica, whose claims (every 50 ms) would reap an expired lease at once."""
    # Renewed every 0.5 s; self-fenced only after 1.75 s without a renewal (a stalled loop).
    # Not shorter: a loaded machine's event loop stalls longer than 0.7 s (800/200 before).
    lease_ms, heartbeat_ms = 2000, 500
    settings = make_settings(
        **{
            "bot_types.python.limit": 1,
            "engine.lease_ms": lease_ms,
            "engine.heartbeat_ms": heartbeat_ms,
            "engine.idle_wait_s": 0.05,
        }
    )
    runner = CountingRunner(durations=(3 * lease_ms / 1000,) * 2)
    orchs = replicas(redis_factory, settings, runner, n=2, bot_types=["python"])
    for o in orchs:
        await o.start()
    q = orchs[0].queue
    job = (await submit(q, orchs[0], "python", "simulate", {})).job_id
    [final] = await wait_jobs(q, [job], timeout=20)
    for o in orchs:
        await o.stop(0)
    assert runner.started == [job], f"executions: {runner.started}"
    assert final.state == "succeeded" and final.get("attempt") == "1", final.get("error")
    assert int(final.get("stalls") or 0) == 0, "the lease expired while the job ran"


async def test_clock_skew_between_replicas_cannot_break_the_limit(redis_factory):
    """Lease math uses Redis TIME; replicas' local clocks 60 s apart change nothing."""
    limit = 3
    settings = make_settings(**{"bot_types.python.limit": limit})
    runner = CountingRunner()
    loop_time = asyncio.get_running_loop().time
    orchs = [
        Orchestrator(
            queue_for(redis_factory(), settings, f"skew{i}"),
            runner,
            settings,
            bot_types=["python"],
            clock=lambda off=off: loop_time() + off,
        )
        for i, off in enumerate((0.0, 60.0, -60.0))
    ]
    for o in orchs:
        await o.start()
    q = orchs[0].queue
    ids = [(await submit(q, orchs[0], "python", "simulate", {})).job_id for _ in range(40)]
    jobs = await wait_jobs(q, ids)
    for o in orchs:
        await o.stop(0)
    assert all(j.state == "succeeded" for j in jobs)
    assert runner.peak == limit, f"peak {runner.peak} with clocks 60 s apart, limit {limit}"
    assert len(runner.started) == 40, "no premature lease expiry caused a re-run"


async def test_lost_lease_stops_the_bot_and_writes_nothing(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 1})
    runner = CountingRunner()
    runner.gate = asyncio.Event()
    q = queue_for(redis_factory(), settings, "r")
    # A clock that stands still: the renewal's answer stops the bot, never self-fencing.
    orch = Orchestrator(q, runner, settings, bot_types=["python"], clock=lambda: 0.0)
    await orch.start()
    job = (await submit(q, orch, "python", "simulate", {})).job_id
    await runner.wait_started(1)
    await q.redis.zrem(q.keys.active("python"), job)  # the lease is gone (e.g. reclaimed)
    await orch.renew_leases()
    await asyncio.wait_for(orch.wait_attempts(), 5)  # its attempt ends: the bot was stopped
    assert not orch.inflight
    assert runner.running == 0 and runner.finished == [job], "the bot was stopped"
    stored = await q.get(job)
    assert stored.state == "running" and stored.get("result") is None, "nothing written"
    await orch.stop(0)


async def test_cancel_from_another_replica_kills_the_running_attempt(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 1})
    runner = CountingRunner()
    runner.gate = asyncio.Event()
    owner = Orchestrator(
        queue_for(redis_factory(), settings, "a"), runner, settings, bot_types=["python"]
    )
    other = queue_for(redis_factory(), settings, "b")
    await owner.start()
    job = (
        await other.enqueue("python", "simulate", {}, webhook_url="http://localhost:5000/")
    ).job_id
    await runner.wait_started(1)
    assert await other.cancel(job) == (2, "running")
    [final] = await wait_jobs(other, [job], timeout=5)
    await owner.stop(0)
    assert final.state == "cancelled" and runner.running == 0
    assert final.get("deliveryId"), "a cancelled job's webhook is scheduled too"


async def test_drain_requeues_unfinished_attempts_without_charging(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 2})
    runner = CountingRunner()
    runner.gate = asyncio.Event()
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    ids = [(await submit(q, orch, "python", "simulate", {})).job_id for _ in range(2)]
    await runner.wait_started(2)
    await orch.stop(drain_timeout_s=0.05)
    for job_id in ids:
        stored = await q.get(job_id)
        assert stored.state == "queued" and stored.get("attempt") == "0"


async def test_progress_and_logs_are_recorded(redis_factory):
    settings = make_settings()
    runner = CountingRunner(durations=(0.01, 0.02))
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    job = (await submit(q, orch, "python", "simulate", {})).job_id
    [final] = await wait_jobs(q, [job])
    await orch.stop(0)
    assert final.view()["result"] == {"job": job, "attempt": 1}
    assert await q.logs(job) == [f"hello from {job}"]


@pytest.mark.parametrize("local_cap", [1, 2])
async def test_local_in_flight_cap(redis_factory, local_cap):
    settings = make_settings(**{"bot_types.python.limit": 10, "engine.max_in_flight": local_cap})
    runner = CountingRunner()
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    ids = [(await submit(q, orch, "python", "simulate", {})).job_id for _ in range(8)]
    await wait_jobs(q, ids)
    await orch.stop(0)
    assert runner.peak == local_cap


async def test_a_draining_replica_hands_its_freed_slot_to_another(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 1, "engine.idle_wait_s": 30})
    runner = CountingRunner(durations=(0.001, 0.002))
    runner.gate = asyncio.Event()
    a, b = replicas(redis_factory, settings, runner, n=2, bot_types=["python"])
    await a.start()
    first = (await submit(a.queue, a, "python", "simulate", {})).job_id
    await runner.wait_started(1)
    await b.start()  # b sleeps: the semaphore is full and its idle wait is 30 s
    second = (await submit(b.queue, b, "python", "simulate", {})).job_id
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stopping = asyncio.create_task(a.stop(drain_timeout_s=10))
    runner.gate.set()
    runner.gate = None
    await stopping
    [done] = await wait_jobs(b.queue, [second], timeout=5)
    took = loop.time() - t0
    await b.stop(0)
    assert (await a.queue.get(first)).state == "succeeded"
    assert done.get("owner") == "replica-1", done.fields
    assert took < 2 * MARGIN_S, (  # handed on, long before its 30 s idle wait would end
        f"the other replica took the slot {took:.2f}s after the drain (idle wait 30 s)"
    )


async def test_a_claim_in_flight_when_stop_begins_is_handed_back(redis_factory):
    class HeldClaims(JobQueue):
        """Claims succeed in Redis, then the answer is held until ``release`` is set."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.claimed = asyncio.Event()
            self.release = asyncio.Event()

        async def claim(self, bot_type, count, now=None):
            wait_ms, claims = await super().claim(bot_type, count, now)
            if claims:
                self.claimed.set()
                await self.release.wait()
            return wait_ms, claims

    settings = make_settings(**{"bot_types.python.limit": 1})
    runner = CountingRunner()
    q = HeldClaims(store_for(redis_factory(), settings), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    api = queue_for(redis_factory(), settings, "api")  # enqueued elsewhere: claimed, not adopted
    job = (await api.enqueue("python", "simulate", {})).job_id
    await q.claimed.wait()
    stopping = asyncio.create_task(orch.stop(drain_timeout_s=5))
    await asyncio.sleep(0)  # stop() has begun: no new attempt may start now
    q.release.set()
    await stopping
    stored = await q.get(job)
    assert runner.started == [], "nothing started after stop()"
    assert stored.state == "queued" and stored.get("attempt") == "0", stored.fields
    assert await q.redis.zcard(q.keys.active("python")) == 0, "no lease left behind"


async def test_a_job_enqueued_with_room_here_starts_without_a_claim_round_trip(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 2})
    runner = CountingRunner(durations=(0.001, 0.002))
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    claimed_by_dispatcher: list[str] = []
    claim = q.claim

    async def recorded(bot_type, count, now=None):
        wait_ms, claims = await claim(bot_type, count, now)
        claimed_by_dispatcher.extend(c.job_id for c in claims)
        return wait_ms, claims

    q.claim = recorded
    await orch.start()
    first = (await submit(q, orch, "python", "simulate", {"i": 0})).job_id
    # The attempt took its first step (the spawn) before the enqueue returned, so the bot
    # starts before the HTTP handler builds its response.
    assert runner.started == [first]
    ids = [first] + [(await submit(q, orch, "python", "simulate", {"i": i})).job_id for i in (1, 2)]
    jobs = await wait_jobs(q, ids)
    await orch.stop(0)
    assert all(j.state == "succeeded" and j.get("owner") == "r" for j in jobs)
    assert ids[0] not in claimed_by_dispatcher, "the enqueue script claimed it for us"
    assert sorted(runner.started) == sorted(ids) and runner.peak <= 2


async def test_at_saturation_each_completion_starts_the_next_job_without_a_claim(
    redis_factory,
):
    settings = make_settings(**{"bot_types.python.limit": 2})
    runner = CountingRunner(durations=(0.002, 0.006))
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    claim, claims = q.claim, []

    async def counted(bot_type, count, now=None):
        claims.append(count)
        return await claim(bot_type, count, now)

    q.claim = counted
    await q.seed_limits()
    ids = [(await submit(q, orch, "python", "simulate", {"i": i})).job_id for i in range(40)]
    await orch.start()
    jobs = await wait_jobs(q, ids)
    await orch.stop(0)
    assert all(j.state == "succeeded" for j in jobs) and runner.peak == 2
    assert sorted(runner.started) == sorted(ids), "every job ran exactly once"
    # complete.lua leased each next job to us with the freed slot: no wake-up, no claim.
    assert len(claims) <= 5, f"{len(claims)} claims for 40 jobs"


async def test_a_job_claimed_by_an_enqueue_that_ends_after_stop_began_is_handed_back(
    redis_factory,
):
    settings = make_settings(**{"bot_types.python.limit": 1})
    runner = CountingRunner()
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    await orch.start()
    entered, release = asyncio.Event(), asyncio.Event()
    run_script = q.run_script

    async def held_enqueue(name, *args, **kw):
        reply = await run_script(name, *args, **kw)
        if name == "enqueue":
            entered.set()
            await release.wait()
        return reply

    q.run_script = held_enqueue
    enqueue = asyncio.create_task(submit(q, orch, "python", "simulate", {}))
    await entered.wait()  # claimed for us in Redis; the answer is not back yet
    stopping = asyncio.create_task(orch.stop(drain_timeout_s=5))
    await asyncio.sleep(0)
    release.set()
    job = (await enqueue).job_id
    await stopping
    stored = await q.get(job)
    assert runner.started == [], "nothing started after stop()"
    assert stored.state == "queued" and stored.get("attempt") == "0", stored.fields
    assert await q.redis.zcard(q.keys.active("python")) == 0, "no lease left behind"


class WatchedEvent(asyncio.Event):
    """An event that tells when someone waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = asyncio.Event()

    async def wait(self) -> bool:
        self.waited.set()
        return await super().wait()


async def test_a_burst_of_enqueues_beyond_the_local_cap_cannot_stall_the_dispatcher(
    redis_factory,
):
    # Enqueues in flight hold local room (reserve/hand_over); when they give it back, a
    # dispatcher that found no room must wake up, or the queue sits still forever.
    settings = make_settings(**{"bot_types.python.limit": 2, "engine.max_in_flight": 2})
    runner = CountingRunner(durations=(0.001, 0.003))
    q = queue_for(redis_factory(), settings, "r")
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    orch._room = room = WatchedEvent()  # (before start: the dispatcher reads it each turn)
    await orch.start()
    await q.set_queue("python", paused=True)
    held_one, answers, run_script = asyncio.Event(), asyncio.Event(), q.run_script

    async def held(name, *args, **kw):
        reply = await run_script(name, *args, **kw)
        if name == "enqueue":
            held_one.set()
            await answers.wait()
        return reply

    q.run_script = held
    burst = [asyncio.create_task(submit(q, orch, "python", "simulate", {})) for _ in range(20)]
    await held_one.wait()  # every submit has taken its first step: reserved, or not
    assert orch._reserved == 2, "two enqueues in flight hold all the local room"
    orch.wake("python")  # the dispatcher looks now, finds no room, waits for some
    await asyncio.wait_for(room.waited.wait(), 5)
    answers.set()
    enqueued = await asyncio.gather(*burst)
    await q.set_queue("python", paused=False)
    jobs = await wait_jobs(q, [e.job_id for e in enqueued], timeout=10)
    await orch.stop(0)
    assert all(j.state == "succeeded" for j in jobs) and runner.peak <= 2


class ExecutionsSeen:
    """The metrics the orchestrator reports, as far as this test needs them."""

    def __init__(self) -> None:
        self.executions: list[tuple[str, float]] = []

    def observe_wait(self, bot_type, seconds) -> None:
        pass

    def observe_execution(self, bot_type, status, seconds) -> None:
        self.executions.append((status, seconds))

    def observe_reseed(self, bot_type) -> None:
        pass


async def test_attempt_durations_are_read_from_the_injected_clock(redis_factory):
    settings = make_settings(**{"bot_types.python.limit": 1})
    q = queue_for(redis_factory(), settings, "r")
    now = [1000.0]

    class SlowOnTheClock:
        async def run(self, spec, sink):
            now[0] += 7.5  # the attempt takes 7.5 s of the orchestrator's clock
            return AttemptOutcome("succeeded", result=1)

    metrics = ExecutionsSeen()
    orch = Orchestrator(
        q, SlowOnTheClock(), settings, bot_types=["python"], metrics=metrics, clock=lambda: now[0]
    )
    job = (await submit(q, orch, "python", "simulate", {})).job_id
    await orch.start()
    await wait_jobs(q, [job])
    await orch.stop(0)
    assert metrics.executions == [("succeeded", 7.5)]


async def test_run_once_steps_the_dispatcher_and_wait_attempts_lets_them_finish(redis_factory):
    """No dispatcher task and no sleeps: the test decides when the orchestrator claims."""
    settings = make_settings(**{"bot_types.python.limit": 2})
    q = queue_for(redis_factory(), settings, "r")
    await q.seed_limits()
    ids = [(await q.enqueue("python", "simulate", {})).job_id for _ in range(3)]
    gate = asyncio.Event()

    class GatedRunner(CountingRunner):
        async def run(self, spec, sink):
            await gate.wait()
            if spec.job_id == ids[2]:  # the last attempt is still running when the first
                await wait_jobs(q, ids[:2])  # two are recorded
            return await super().run(spec, sink)

    runner = GatedRunner(durations=(0, 0))
    orch = Orchestrator(q, runner, settings, bot_types=["python"])
    try:
        first = await orch.run_once("python")
        assert (first.started, first.wait_s) == (2, settings.engine.idle_wait_s)
        assert list(orch.inflight) == ids[:2]
        assert (await orch.run_once("python")).started == 0, "the semaphore is full"
        gate.set()
        await orch.wait_attempts()  # a completion leases the third job here: it runs too
        assert runner.started == ids and runner.peak == 2
        assert [j.state for j in await asyncio.gather(*map(q.get, ids))] == ["succeeded"] * 3
    finally:
        await orch.stop(0)
