"""The orchestrator: per bot type, claim jobs under the distributed semaphore and run them.

One dispatcher task per bot type claims (Lua, atomic) while this replica has local room, hands
each job to the runner, renews its lease, and records the outcome with the lease's fencing
token. Wake-ups come from Redis pub/sub (enqueue, release, limit change, cancel), never from
busy polling; a short timeout covers delayed jobs and expired leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import jsonsafe
from .backoff import Backoff, Random, backoff_ms
from .config import Settings
from .jobs import Claim
from .logs import bind
from .queue import Enqueued, JobQueue
from .runners.types import AttemptOutcome, AttemptSpec, Runner
from .states import JobState
from .store.errors import STORE_FAILED
from .store.notify import Notifier
from .waiting import cancel_and_wait, wait_event

log = logging.getLogger("botsys.orchestrator")

LEASE_LOST, CANCEL, DRAIN = "lease_lost", "cancel", "drain"
RETRY_JITTER = 0.2  # ±20 % on a failed job's retry delay, as for webhook retries


class _Sink:
    """Buffers a running bot's events; the orchestrator flushes them to Redis in batches."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._progress: int | None = None
        self._lines: list[str] = []
        self.dirty = False

    def started(self, pid: int) -> None:
        self.pid = pid

    def progress(self, percent: int) -> None:
        self._progress = percent
        self.dirty = True

    def log(self, text: str) -> None:
        self._lines.append(text)
        self.dirty = True

    def take(self) -> tuple[int | None, list[str]]:
        progress, lines = self._progress, self._lines
        self._progress, self._lines, self.dirty = None, [], False
        return progress, lines


@dataclass(frozen=True)
class Step:
    """What one ``run_once`` did."""

    started: int  # attempts it started
    wait_s: float | None  # how long to wait for a wake-up before the next step; None: at once


@dataclass
class RunningAttempt:
    claim: Claim
    task: asyncio.Task
    sink: _Sink
    lease_deadline: float  # orchestrator clock time by which the lease must have been renewed
    started: float  # orchestrator clock time the attempt started
    stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.task.cancel()


class Orchestrator:
    """``clock`` (seconds, monotonic) is the only time source read here: lease deadlines,
    self-fencing and attempt durations all use it, so a test can set the time."""

    def __init__(
        self,
        queue: JobQueue,
        runner: Runner,
        settings: Settings,
        *,
        metrics: Any = None,
        clock: Callable[[], float] = time.monotonic,
        bot_types: list[str] | None = None,
        notifier: Notifier | None = None,
        rng: Random | None = None,
    ):
        self.queue = queue
        self.runner = runner
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.bot_types = list(bot_types or queue.bot_types)
        e = settings.engine
        self.lease_s = e.lease_ms / 1000
        self.heartbeat_s = min(e.heartbeat_ms, e.lease_ms / 3) / 1000
        self.inflight: dict[str, RunningAttempt] = {}
        self._attempt_tasks: set[asyncio.Task] = set()
        self._wake = {t: asyncio.Event() for t in self.bot_types}
        self._room = asyncio.Event()
        self._stopping = False
        self._reserved = 0  # slots promised to enqueues in flight (see reserve/hand_over)
        self._context = contextvars.copy_context()  # attempts never inherit a request's
        self._tasks: list[asyncio.Task] = []
        self._dispatchers: list[asyncio.Task] = []
        self._subscribed = set(self.bot_types)  # types whose wake channel we listen to
        self.claimed_total = 0
        # Without a shared notifier (tests, tools) the orchestrator runs its own.
        self._own_notifier = None if notifier is not None else queue.notifier()
        self._notifier = notifier or self._own_notifier
        self.subscribe(self._notifier)
        queue.on_reseeded = self._on_reseeded

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.queue.seed_limits()
        if self._own_notifier is not None:
            self._tasks.append(asyncio.create_task(self._own_notifier.run(), name="notifier"))
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="orchestrator-heartbeat"))
        self._tasks.append(asyncio.create_task(self._flusher(), name="orchestrator-flush"))
        self._dispatchers = [
            asyncio.create_task(self._dispatch(t), name=f"dispatch-{t}") for t in self.bot_types
        ]

    async def stop(self, drain_timeout_s: float | None = None) -> None:
        """Stop claiming; let running attempts finish up to the drain timeout, requeue the rest."""
        self._stopping = True
        for ev in (*self._wake.values(), self._room):
            ev.set()
        timeout = (
            self.settings.server.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        )
        # Dispatchers finish the claim they may have in flight (handing it back) and exit;
        # cancelling one mid-claim would strand its lease until it expires.
        if self._dispatchers:
            _, stuck = await asyncio.wait(self._dispatchers, timeout=self.lease_s)
            await cancel_and_wait(stuck)
        if self._attempt_tasks:
            await asyncio.wait(set(self._attempt_tasks), timeout=timeout)
        for ra in list(self.inflight.values()):
            ra.stop(DRAIN)
        if self._attempt_tasks:
            await asyncio.wait(set(self._attempt_tasks))
        await cancel_and_wait(self._tasks)

    def wake(self, bot_type: str | None = None) -> None:
        for t, ev in self._wake.items():
            if bot_type in (None, t):
                ev.set()

    # -- dispatch --------------------------------------------------------------------------

    def _free_local(self) -> int:
        return self.settings.engine.max_in_flight - len(self.inflight) - self._reserved

    def reserve(self, bot_type: str) -> bool:
        """An enqueue on this replica asks for room to start its job here at once: True holds
        one slot until ``hand_over`` (call it exactly once after a True, whatever happens)."""
        if self._stopping or bot_type not in self._wake or self._free_local() <= 0:
            return False
        self._reserved += 1
        return True

    async def hand_over(self, bot_type: str, enqueued: Enqueued | None, *, reserved: bool) -> None:
        """After an enqueue on this replica (``enqueued`` None: it failed): give back the room
        ``reserve`` held, start the job the enqueue script leased to us, or else wake this
        type's dispatcher without waiting for the pub/sub round trip."""
        if reserved:
            self._reserved -= 1
            self._room.set()  # a dispatcher may be waiting for the room this reservation held
        if enqueued is None:
            return
        if enqueued.claim is not None:
            self._take(enqueued.claim)
            # One loop turn for the attempt, whose first step spawns the bot, so the spawn
            # does not wait for the caller's HTTP response (enqueue→spawn 0.2 ms, not 1.2).
            await asyncio.sleep(0)
        elif enqueued.created and enqueued.ready:
            self.wake(bot_type)

    def _take(self, claim: Claim) -> None:
        """Start a job a script leased to us outside ``claim`` (enqueue, complete)."""
        if self._stopping:  # stop() began while the script was in flight: hand it back
            task = asyncio.create_task(self._with_retries(lambda: self.queue.requeue(claim)))
            self._attempt_tasks.add(task)
            task.add_done_callback(self._attempt_tasks.discard)
            return
        self._context.run(self._start_attempt, claim)  # no request's or attempt's context

    async def _dispatch(self, bot_type: str) -> None:
        """The dispatcher of one bot type: ``run_once`` whenever there is local room, then
        sleep until a wake-up or until work falls due."""
        wake, retry = self._wake[bot_type], Backoff(0.1, 2.0, rng=self.rng)
        while not self._stopping and self._wake.get(bot_type) is wake:  # (removed at runtime)
            if self._free_local() <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            wake.clear()
            try:
                step = await self.run_once(bot_type)
                retry.reset()
            except STORE_FAILED as exc:  # down, or refusing (full, read-only, …): back off
                delay = retry.next_s()
                log.warning("claim failed for %s (%s); retrying in %.1fs", bot_type, exc, delay)
                await asyncio.sleep(delay)
                continue
            if step.wait_s is not None:
                await wait_event(wake, step.wait_s)

    async def run_once(self, bot_type: str) -> Step:
        """One dispatch step: claim as many waiting jobs of ``bot_type`` as this replica has
        room for and start them (tests step the orchestrator with it; ``wait_attempts`` then
        lets the attempts finish). Store failures propagate to the caller."""
        free = self._free_local()
        if free <= 0:
            return Step(0, None)
        wait_ms, claims = await self.queue.claim(bot_type, free)
        for claim in claims:
            if self._stopping:  # stop() came while the claim was in flight: hand it back
                await self._with_retries(lambda c=claim: self.queue.requeue(c))
            else:
                self._start_attempt(claim)
        started = 0 if self._stopping else len(claims)
        if claims and len(claims) == free:
            return Step(started, None)  # there may be more waiting
        wait_s = self.settings.engine.idle_wait_s
        if wait_ms >= 0:  # the claim script's answer: ms until a delayed job or lease is due
            wait_s = min(wait_s, wait_ms / 1000)
        return Step(started, wait_s)

    async def wait_attempts(self) -> None:
        """Until every attempt this replica runs has finished and its outcome is recorded
        (including jobs a completion leased to it meanwhile)."""
        while self._attempt_tasks:
            await asyncio.wait(set(self._attempt_tasks))

    def _start_attempt(self, claim: Claim) -> None:
        self.claimed_total += 1
        sink = _Sink()
        spec = AttemptSpec(
            job_id=claim.job_id,
            bot_type=claim.job.bot_type,
            bot=claim.job.get("bot", ""),
            payload=claim.payload,
            attempt=claim.attempt,
            timeout_s=claim.timeout_s,
        )
        # Every log record of this attempt (ours and the runner's) carries its job and type.
        ctx = contextvars.copy_context()
        ctx.run(bind, job_id=claim.job_id, bot_type=spec.bot_type)
        run = asyncio.create_task(
            self.runner.run(spec, sink), name=f"run-{claim.job_id}", context=ctx.copy()
        )
        now = self.clock()
        ra = RunningAttempt(claim, run, sink, now + self.lease_s, now)
        self.inflight[claim.job_id] = ra
        task = asyncio.create_task(self._attempt(ra), name=f"attempt-{claim.job_id}", context=ctx)
        self._attempt_tasks.add(task)
        task.add_done_callback(self._attempt_tasks.discard)
        if self.metrics is not None and claim.started_ms and claim.created_ms:
            self.metrics.observe_wait(
                spec.bot_type, max(0, claim.started_ms - claim.created_ms) / 1000
            )

    async def _attempt(self, ra: RunningAttempt) -> None:
        outcome: AttemptOutcome | None = None
        log.info("attempt %d of %s started", ra.claim.attempt, ra.claim.job.get("bot", ""))
        try:
            outcome = await ra.task
        except asyncio.CancelledError:
            if ra.stop_reason is None:
                raise  # we ourselves are being cancelled
        except Exception as exc:  # a runner bug must not lose the job
            log.exception("runner crashed on %s", ra.claim.job_id)
            outcome = AttemptOutcome(
                JobState.FAILED, error=f"runner error: {type(exc).__name__}: {exc}"
            )
        try:
            with contextlib.suppress(*STORE_FAILED):  # the outcome matters more than the logs
                await self._flush(ra)
            await self._record(ra, outcome)
            if self._stopping:  # we will not reuse the slot: let another replica take it
                with contextlib.suppress(*STORE_FAILED):
                    await self.queue.wake(ra.claim.job.bot_type)
        finally:
            self.inflight.pop(ra.claim.job_id, None)
            self._room.set()

    async def _record(self, ra: RunningAttempt, outcome: AttemptOutcome | None) -> None:
        claim, reason = ra.claim, ra.stop_reason
        if reason == LEASE_LOST:
            log.warning("lease lost for %s: bot stopped, outcome discarded", claim.job_id)
            return
        if reason == DRAIN:
            await self._with_retries(lambda: self.queue.requeue(claim))
            return
        if reason == CANCEL or outcome is None:
            outcome = AttemptOutcome(JobState.CANCELLED, error="cancelled")  # type: ignore[arg-type]
        engine = self.settings.engine
        delay = backoff_ms(
            claim.failures + 1,
            engine.retry_delay_ms,
            engine.retry_max_delay_ms,
            RETRY_JITTER,
            self.rng,
        )
        outcome, result = _stored_result(outcome)
        done = await self._with_retries(
            lambda: self.queue.complete(
                claim,
                outcome.status,
                result_json=result,
                error=outcome.error or "",
                retry_delay_ms=delay,
                take_next=0 if self._stopping else self._free_local() + 1,  # + this slot
            )
        )
        if done is not None and done.next is not None:
            self._take(done.next)
        if done is not None and done.recorded:
            log.info(
                "attempt %d %s after %.2fs%s",
                claim.attempt,
                outcome.status,
                self.clock() - ra.started,
                f"; retry at {done.retry_at_ms}" if done.state == JobState.DELAYED else "",
            )
        if done is not None and done.state == JobState.DELAYED:
            # Nobody publishes when a retry falls due: wake our own dispatcher then.
            wake = self._wake.get(claim.job.bot_type)  # (None: the type was deleted since)
            if wake is not None:
                asyncio.get_running_loop().call_later(delay / 1000, wake.set)
        if done is not None and not done.recorded:
            log.warning("completion of %s refused: lease lost to another replica", claim.job_id)
        elif done is not None and self.metrics is not None:
            # The attempt's own outcome: a failed attempt that will be retried counts as failed.
            status = done.state if done.state != JobState.DELAYED else outcome.status
            self.metrics.observe_execution(claim.job.bot_type, status, self.clock() - ra.started)

    async def _with_retries(self, call):
        """Redis may blip; keep trying for about one lease (after that the lease is gone anyway)."""
        deadline, retry = self.clock() + self.lease_s, Backoff(0.05, 1.0, rng=self.rng)
        while True:
            try:
                return await call()
            except STORE_FAILED as exc:
                if self.clock() > deadline:
                    log.error("giving up writing an outcome after %.0fs: %s", self.lease_s, exc)
                    return None
                await asyncio.sleep(retry.next_s())

    # -- leases ----------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        by_type: dict[str, list[RunningAttempt]] = {}
        for ra in list(self.inflight.values()):
            if ra.stop_reason is None:
                by_type.setdefault(ra.claim.job.bot_type, []).append(ra)
        for bot_type, attempts in by_type.items():
            sent = self.clock()
            try:
                async with asyncio.timeout(self.heartbeat_s):  # not wait_for: see waiting.py
                    status = await self.queue.heartbeat(
                        bot_type, [(a.claim.job_id, a.claim.token) for a in attempts]
                    )
            except (*STORE_FAILED, TimeoutError) as exc:  # self-fencing follows if it lasts
                log.warning("lease renewal failed for %s: %s", bot_type, type(exc).__name__)
                continue
            for a in attempts:
                s = status.get(a.claim.job_id, 0)
                if s == 0:
                    a.stop(LEASE_LOST)
                else:
                    a.lease_deadline = sent + self.lease_s
                    if s == 2:
                        a.stop(CANCEL)
        self._fence()

    def _fence(self) -> None:
        """Self-fencing: a bot whose lease could not be renewed in time is killed before the
        lease can expire, so the limit holds even when Redis or this event loop stalls."""
        margin = self.heartbeat_s / 2
        now = self.clock()
        for ra in list(self.inflight.values()):
            if ra.stop_reason is None and now > ra.lease_deadline - margin:
                log.warning(
                    "could not renew the lease of %s in time: stopping its bot", ra.claim.job_id
                )
                ra.stop(LEASE_LOST)

    # -- events ----------------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            for ra in list(self.inflight.values()):
                if ra.sink.dirty:
                    with contextlib.suppress(*STORE_FAILED):
                        await self._flush(ra)

    async def _flush(self, ra: RunningAttempt) -> None:
        if not ra.sink.dirty:
            return
        progress, lines = ra.sink.take()
        await self.queue.record_events(ra.claim.job.bot_type, ra.claim.job_id, progress, lines)

    def subscribe(self, notifier: Notifier) -> None:
        """Wake dispatchers on enqueue/release/limit changes; kill bots cancelled elsewhere."""
        mine = f"release:{self.queue.replica}"
        for t in self.bot_types:
            notifier.on(self.queue.wake_channel(t), self._wake_handler(t, mine))
        notifier.on(self.queue.cancel_channel(), self._on_cancel)
        notifier.on_connect(self._reseed_on_connect)

    def _wake_handler(self, t: str, mine: str):
        def on_wake(msg: str | None) -> None:
            # A freed slot is addressed to one replica (complete.lua); others stay asleep.
            ev = self._wake.get(t)
            if ev is not None and (msg is None or not msg.startswith("release:") or msg == mine):
                ev.set()

        return on_wake

    # -- bot types created and deleted at runtime (control/catalog.py) ------------------------

    def types_changed(self, change) -> None:
        """A catalog change (app.py has already dropped the queue's script contexts):
        dispatchers for new types, none for deleted ones (their leftover waiting jobs
        cancelled), a fresh look at changed ones (limit, cadence)."""
        for t in change.changed:
            self.wake(t)
        for t in change.added:
            self._add_type(t)
        for t in change.removed:
            self._remove_type(t)

    def _add_type(self, t: str) -> None:
        if t in self._wake or self._stopping:
            return
        self.bot_types.append(t)
        self._wake[t] = asyncio.Event()
        if t not in self._subscribed:
            self._subscribed.add(t)
            mine = f"release:{self.queue.replica}"
            self._notifier.add(self.queue.wake_channel(t), self._wake_handler(t, mine))
        if self._dispatchers or self._tasks:  # started: serve it now
            task = asyncio.create_task(self._dispatch(t), name=f"dispatch-{t}")
            self._dispatchers.append(task)

    def _remove_type(self, t: str) -> None:
        wake = self._wake.pop(t, None)
        if wake is None:
            return
        wake.set()  # its dispatcher sees it is gone and returns
        self.bot_types.remove(t)
        task = asyncio.create_task(self._cancel_leftovers(t), name=f"sweep-{t}")
        self._attempt_tasks.add(task)
        task.add_done_callback(self._attempt_tasks.discard)

    async def _cancel_leftovers(self, t: str) -> None:
        """A job enqueued while the deletion spread (< 1 s) would wait for no dispatcher:
        every replica cancels what is left, through the cancel path (webhooks included)."""
        try:
            for job_id in await self.queue.waiting_ids(t):
                await self.queue.cancel_in(t, job_id)
        except STORE_FAILED as exc:
            log.warning("cancelling the jobs left by deleted type %s failed: %s", t, exc)

    def _reseed_on_connect(self) -> None:
        """Redis may have come back empty: re-create lost records before anyone claims."""
        task = asyncio.create_task(self._reseed_all(), name="reseed")
        self._attempt_tasks.add(task)  # held until done; stop() waits for it
        task.add_done_callback(self._attempt_tasks.discard)

    async def _reseed_all(self) -> None:
        try:
            await self.queue.reseed_all()
        except STORE_FAILED as exc:  # gone again: the next reconnection, or a claim, retries
            log.warning("re-creating lost bot type records failed: %s", type(exc).__name__)

    def _on_reseeded(self, bot_type: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_reseed(bot_type)

    def _on_cancel(self, job_id: str | None) -> None:
        if job_id is None:
            return  # reconnected: heartbeats report any cancel we missed
        ra = self.inflight.get(job_id)
        if ra is not None:
            ra.stop(CANCEL)


def _stored_result(outcome: AttemptOutcome) -> tuple[AttemptOutcome, str]:
    """The result as stored JSON; one JSON cannot hold (NaN, Infinity) fails the attempt."""
    if outcome.result is None:
        return outcome, ""
    try:
        return outcome, jsonsafe.compact(outcome.result)
    except (ValueError, TypeError, RecursionError) as exc:
        error = f"the bot's result is not valid JSON: {exc}"
        return AttemptOutcome(
            JobState.FAILED, None, error, outcome.exit_code, outcome.log_truncated
        ), ""
