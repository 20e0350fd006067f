"""The delivery loop: claim due deliveries, send them, record every attempt.

Concurrency: at most ``concurrency`` deliveries held by this replica and at most ``per_host``
in flight per destination (host:port). A claimed delivery whose destination is full may wait
for one more wave (``per_host`` waiters); beyond that it is released back to the store with a
short delay, so one black-holed receiver can never occupy the replica's slots (and waiters
never sit so long that their lease expires under them).

Durability lives in the store: a crash mid-send leaves the lease to expire and another replica
retries. ``stop()`` releases waiters, lets sends finish for a grace period, then abandons the
rest to lease expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import aiohttp
from yarl import URL

from botsys.config import WebhookSettings
from botsys.waiting import cancel_and_wait
from botsys.webhooks.guard import AllowList, Guard
from botsys.webhooks.health import Gate, Health, LocalHealth, Verdict
from botsys.webhooks.policy import (
    Schedule,
    busy_host_release_ms,
    classify_status,
    decide,
    parse_retry_after,
)
from botsys.webhooks.rotation import Keyring
from botsys.webhooks.sender import Sender, SendResult, build_session
from botsys.webhooks.types import AttemptRecord, Delivery, DeliveryStore

log = logging.getLogger(__name__)

OnAttempt = Callable[[AttemptRecord, Delivery], None]
UNKNOWN_ENDPOINT_WAIT_MS = 1000  # far above a pub/sub round trip
HELD_MS = (
    60_000  # a disabled endpoint's delivery is looked at again after this (re-enabling wakes it)
)
SessionFactory = Callable[[], aiohttp.ClientSession]
_ASK = -1  # _hold_ms: the endpoint may have to be disabled (an await decides)
_GONE = -2  # _hold_ms: still unknown after a reload: deleted? (an await decides)
ENDPOINT_DELETED = "endpoint_deleted: the endpoint no longer exists; not sent"


class _Undecided(NamedTuple):
    """What admission knows without awaiting: hold it for hold_ms, or the gate's verdict
    (None: ask the gate) at per_s."""

    hold_ms: int | None
    verdict: Verdict | None = None
    per_s: float = 0.0


@dataclass
class _Host:
    """In-flight bookkeeping for one destination (host:port).

    A counter and a queue of waiters rather than an ``asyncio.Semaphore``: the uncontended
    path is an integer compare, and a waiter's future resolves to False when the dispatcher
    stops, so waiting needs no helper tasks."""

    limit: int
    busy: int = 0  # slots taken: sending, or granted to a waiter about to send
    waiters: deque[asyncio.Future[bool]] = field(default_factory=deque)
    ewma_ms: float | None = None  # recent attempt durations
    # Monotonic start of each send, by id(delivery): O(1) to add and drop (a list's remove
    # scanned up to per_host entries per delivery); the minimum is read only when full.
    sending: dict[int, float] = field(default_factory=dict)

    def full(self) -> bool:
        return self.busy >= self.limit

    def take(self) -> bool:
        """Take a slot if one is free, jumping no queue."""
        if self.busy < self.limit and not self.waiters:
            self.busy += 1
            return True
        return False

    async def wait(self) -> bool:
        """Wait for a slot: True when granted, False when the dispatcher stops."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.give_back()  # granted just as we were cancelled: pass it on
            raise

    def give_back(self) -> None:
        while self.waiters:  # hand the slot straight to the next live waiter
            future = self.waiters.popleft()
            if not future.done():
                future.set_result(True)
                return
        self.busy -= 1

    def wake_all(self) -> None:
        """Stopping: every waiter gets False and hands its delivery back."""
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_result(False)

    def estimate_ms(self, now: float) -> float:
        oldest = (now - min(self.sending.values())) * 1000 if self.sending else 0.0
        return max(self.ewma_ms or 0.0, oldest)

    def observe(self, duration_ms: int) -> None:
        self.ewma_ms = (
            duration_ms if self.ewma_ms is None else 0.7 * self.ewma_ms + 0.3 * duration_ms
        )


class WebhookDispatcher:
    """Durable webhook delivery over a ``DeliveryStore``; ``run()`` / ``run_once()`` / ``stop()``."""

    def __init__(
        self,
        store: DeliveryStore,
        settings: WebhookSettings,
        *,
        session_factory: SessionFactory | None = None,
        guard: Guard | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_attempt: OnAttempt | None = None,
        idle_wait_s: float = 1.0,
        keyring: Keyring | None = None,
        endpoint_keyring: Callable[[str], Keyring | None] | None = None,
        endpoint_rate: Callable[[str], float] | None = None,
        endpoint_disabled: Callable[[str], bool] | None = None,
        endpoint_failing: Callable[[str, int], Awaitable[object]] | None = None,
        endpoint_exists: Callable[[str], Awaitable[bool]] | None = None,
        health: Health | None = None,
    ) -> None:
        """``endpoint_disabled(id)``: its deliveries are held; ``endpoint_failing(id,
        since_ms)``: called (and awaited) when an endpoint has had no success for
        ``settings.endpoint_disable_after_s``, to disable it (None: it was not);
        ``endpoint_exists(id)``: asked of an endpoint still unknown here after a reload
        (False: deleted, its deliveries are dead-lettered unsent; None: they are sent);
        ``health``: the endpoints' breakers and throttles (default: this replica's own)."""
        self._store = store
        self._settings = settings
        self._allow = AllowList.parse(settings.allow)
        self._guard = guard or Guard(self._allow)
        self._session_factory = session_factory or self._default_session
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_attempt = on_attempt
        self._idle_wait_s = idle_wait_s
        self._keyring = keyring  # None: sign with settings.secret alone
        self._endpoint_keyring = endpoint_keyring
        # Endpoint deliveries held back once because this replica did not know the endpoint
        # yet (its pub/sub reload still on the way): sent signed on their next claim.
        self._held_for_endpoint: set[str] = set()
        self._endpoint_exists = endpoint_exists
        self._endpoint_rate = endpoint_rate  # an endpoint's throttle, deliveries/s (0: none)
        self._health = health or LocalHealth(
            settings.breaker_window, settings.breaker_failure_ratio, settings.breaker_open_s
        )
        self._endpoint_disabled = endpoint_disabled
        self._endpoint_failing = endpoint_failing
        self._wake_at: float | None = None  # monotonic: a released delivery is due again
        self._schedule = Schedule(settings.retry_delay_ms, settings.max_delay_ms)
        self._hosts: dict[str, _Host] = {}
        # id(delivery) -> its task: the finally of _handle finds its entry without
        # asyncio.current_task(), and the claimed object keeps the id unique while it runs.
        self._tasks: dict[int, asyncio.Task] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task | None = None  # run()'s, while it runs
        self._session: aiohttp.ClientSession | None = None
        self._sender: Sender | None = None
        self.lease_lost = 0  # attempts whose result another replica now owns
        self.released = 0  # claims handed back unsent (busy host, shutdown)

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until ``stop()``."""
        self._stopping.clear()
        self._loop_task = asyncio.current_task()
        while not self._stopping.is_set():
            try:
                claimed, asked = await self._fill()
            except Exception:  # store unreachable: keep the loop alive, retry after a pause
                log.exception("claiming webhook deliveries failed; retrying")
                await self._wait_for(asyncio.sleep(self._idle_wait_s))
                continue
            if self._free() == 0:
                await self._wait_for_slot()
            elif claimed < asked:
                await self._wait_for(self._store.wait_for_work(self._idle_timeout()))

    async def _wait_for_slot(self) -> None:
        """Full: wait until a delivery finishes (``stop()`` sets the event too), then let
        the other completions of this loop turn land so the next claim is a batch."""
        self._slot_freed.clear()
        await self._slot_freed.wait()
        await asyncio.sleep(0)

    def _idle_timeout(self) -> float:
        """The idle wait, shortened when a delivery we released is due again sooner (the
        store publishes a wake-up for new work, not for released work)."""
        if self._wake_at is None:
            return self._idle_wait_s
        remaining = self._wake_at - time.monotonic()
        if remaining <= 0:
            self._wake_at = None
            return 0.0
        return min(self._idle_wait_s, remaining)

    async def run_once(self) -> int:
        """Claim one batch, deliver it, wait for those attempts to be recorded. For tests
        and single-shot tools; returns how many deliveries were claimed."""
        before = set(self._tasks.values())
        claimed, _ = await self._fill()
        await asyncio.gather(*(set(self._tasks.values()) - before), return_exceptions=True)
        return claimed

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming; sends in flight get ``grace_s`` (default: the attempt timeout)
        to finish, the rest are cancelled and left to lease expiry."""
        self._stopping.set()
        self._slot_freed.set()
        for host in self._hosts.values():
            host.wake_all()
        grace = self._settings.timeout_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        # The loop lands the claim it may have in flight and exits: cancelled mid-claim it
        # would strand that batch's leases until they expire (a minute), the deliveries unsent.
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is not None and loop_task is not asyncio.current_task():
            await asyncio.wait({loop_task}, timeout=grace)
        if self._tasks:
            left = max(0.0, deadline - time.monotonic())
            _, pending = await asyncio.wait(set(self._tasks.values()), timeout=left)
            await cancel_and_wait(pending)
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = self._sender = None

    # -- claiming --------------------------------------------------------------------------

    def _free(self) -> int:
        return max(0, self._settings.concurrency - len(self._tasks))

    async def _fill(self) -> tuple[int, int]:
        asked = self._free()
        if asked == 0 or self._stopping.is_set():
            return 0, asked
        deliveries = await self._store.claim_due(asked)
        for delivery in deliveries:
            self._start(delivery)
        return len(deliveries), asked

    def _start(self, delivery: Delivery) -> None:
        self._tasks[id(delivery)] = asyncio.create_task(self._handle(delivery))

    async def _wait_for(self, awaitable) -> None:
        """Wait for ``awaitable`` or ``stop()``, whichever comes first."""
        self._slot_freed.clear()
        waiter = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when="FIRST_COMPLETED")
        finally:
            for fut in (waiter, stopper):
                fut.cancel()
            await asyncio.gather(waiter, stopper, return_exceptions=True)

    # -- one delivery ----------------------------------------------------------------------

    async def _handle(self, delivery: Delivery) -> None:
        # One flat coroutine (admission, send, record): every await level is paid again
        # on each resumption, several times per delivery.
        host = self._host(delivery.url)
        gate = None
        try:
            if delivery.endpoint:
                gate = self._health.gate(delivery.endpoint)
                wait = self._admit_now(delivery, gate)  # no coroutine in the usual case
                if isinstance(wait, _Undecided):
                    wait = await self._admit(delivery, gate, wait)
                if wait is None:  # handed back to the store: nothing to forgo
                    gate = None
                    return
                if wait > 0:  # its throttle slot is near: wait for it here
                    await self._wait_for(asyncio.sleep(wait))
            if not host.take() and not await self._wait_for_host(host, delivery):
                return
            if self._stopping.is_set():
                host.give_back()
                await self._release(delivery, 0)
                return
            host.sending[id(delivery)] = time.monotonic()
            try:
                result = await self._sender_for().send(delivery)
            finally:
                del host.sending[id(delivery)]
                host.give_back()
            host.observe(result.duration_ms)
            reported = None
            if gate is not None:  # before the store's call: both go in one pipeline
                reported, gate = self._judge_endpoint(gate, result.status), None
            await self._record(delivery, result, reported)
        except Exception as exc:  # the lease expires, another try follows
            self._log_failure(delivery, exc)
        finally:  # here rather than a done callback: one loop turn less per delivery
            if gate is not None:  # admitted, not sent
                gate.forgo()
            self._tasks.pop(id(delivery), None)
            self._slot_freed.set()

    def _log_failure(self, delivery: Delivery, exc: Exception) -> None:
        """A store outage (the store's ``unavailable`` errors) is a WARNING line; anything
        else is a crash, with its traceback."""
        extra = {"delivery_id": delivery.id}
        if not isinstance(exc, getattr(self._store, "unavailable", ())):
            log.error("webhook delivery task crashed", exc_info=exc, extra=extra)
            return
        log.warning(
            "webhook delivery put off: the store failed (%s: %s); it is tried again when its "
            "lease expires",
            type(exc).__name__,
            exc,
            extra=extra,
        )

    def _admit_now(self, delivery: Delivery, gate: Gate) -> float | _Undecided:
        """The seconds to wait before sending an endpoint's delivery when that is known
        here and now (the usual case); else what is known so far, for ``_admit``."""
        hold_ms = self._hold_ms(delivery, gate)
        if hold_ms is not None:
            return _Undecided(hold_ms)
        per_s = self._endpoint_rate(delivery.endpoint) if self._endpoint_rate else 0.0
        verdict = gate.admit(time.monotonic(), per_s)
        if verdict is not None and verdict[1]:
            return verdict[0]
        return _Undecided(None, verdict, per_s)

    async def _admit(self, delivery: Delivery, gate: Gate, known: _Undecided) -> float | None:
        """The seconds to wait before sending, or None when the delivery went back to the
        store (endpoint disabled or unknown here, circuit open, throttled far ahead) or was
        dead-lettered (endpoint deleted)."""
        hold_ms, verdict = known.hold_ms, known.verdict
        if hold_ms == _ASK:  # failed long enough to be disabled
            hold_ms = await self._disable_failing(delivery.endpoint, gate)
            if hold_ms is None:  # not disabled after all: on to the gate
                known = self._admit_now(delivery, gate)
                if not isinstance(known, _Undecided):
                    return known
                hold_ms, verdict = known.hold_ms, known.verdict
        if hold_ms == _GONE:
            if not await self._endpoint_exists(delivery.endpoint):
                await self._dead_letter(delivery, ENDPOINT_DELETED)
                return None
            hold_ms = UNKNOWN_ENDPOINT_WAIT_MS  # it exists: this replica's reload is late
        if hold_ms is not None:
            await self._release(delivery, hold_ms)
            return None
        if verdict is None:  # the cluster's answer is needed (probe, throttle slots)
            verdict = await gate.ask(time.monotonic(), known.per_s)
        wait, here = verdict
        if not here:
            await self._release(delivery, max(1, int(wait * 1000)))
            return None
        return wait

    def _judge_endpoint(self, gate: Gate, status: int | None) -> Awaitable[object] | None:
        ok = status is not None and 200 <= status < 300
        if ok:
            gate.failing_since_ms = None
        elif gate.failing_since_ms is None:
            gate.failing_since_ms = int(self._clock() * 1000)
        return gate.record(ok, time.monotonic())

    def _hold_ms(self, delivery: Delivery, gate: Gate) -> int | None:
        """For how long an endpoint's delivery goes back to the store unsent; None: on;
        _ASK: it has failed long enough to be disabled (``_disable_failing`` decides)."""
        if self._endpoint_disabled is not None and self._endpoint_disabled(delivery.endpoint):
            return HELD_MS  # disabled: not attempted, not dead-lettered
        since = gate.failing_since_ms
        if (
            since is not None
            and self._endpoint_failing is not None
            and self._clock() * 1000 - since >= self._settings.endpoint_disable_after_s * 1000
        ):
            return _ASK
        return self._unknown_endpoint(delivery)

    async def _disable_failing(self, endpoint: str, gate: Gate) -> int | None:
        """It has had no success on this replica for ``endpoint_disable_after_s``: disable
        it (``endpoint_failing``) and hold the delivery."""
        if await self._endpoint_failing(endpoint, gate.failing_since_ms) is None:
            gate.failing_since_ms = None  # gone, or disabled elsewhere: nothing to do here
            if self._endpoint_disabled is not None and self._endpoint_disabled(endpoint):
                return HELD_MS
            return None
        return HELD_MS

    def forget_endpoint(self, endpoint: str) -> None:
        """A re-enabled endpoint starts afresh: closed circuit, no failure on record."""
        self._health.forget(endpoint)

    def breaker(self, endpoint: str) -> Gate | None:
        """An endpoint's gate on this replica, with its circuit ``state`` and ``trips``
        (None: nothing sent to it yet)."""
        return self._health.get(endpoint)

    def _unknown_endpoint(self, delivery: Delivery) -> int | None:
        """A delivery whose endpoint has no keyring here: held the first time (a just-created
        endpoint this replica has not reloaded yet; looking it up started the reload), then
        _GONE: the store says whether it was deleted. None: known (or no endpoints here)."""
        if self._endpoint_keyring is None or self._endpoint_keyring(delivery.endpoint):
            return None
        if delivery.id in self._held_for_endpoint:
            self._held_for_endpoint.discard(delivery.id)
            return None if self._endpoint_exists is None else _GONE
        if len(self._held_for_endpoint) > 10_000:  # deleted endpoints' leftovers: forget
            self._held_for_endpoint.clear()
        self._held_for_endpoint.add(delivery.id)
        return UNKNOWN_ENDPOINT_WAIT_MS

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        """Finish a delivery as dead without sending it: one attempt record that says why."""
        record = AttemptRecord(int(self._clock() * 1000), 0, None, error, "", "failed")
        self._observe(record, delivery)
        await self._store.finish_attempt(delivery, record, None)

    def _observe(self, record: AttemptRecord, delivery: Delivery) -> None:
        if self._on_attempt is not None:
            try:
                self._on_attempt(record, delivery)
            except Exception:  # a metrics hook must never lose a delivery
                log.exception("on_attempt hook failed")

    async def _wait_for_host(self, host: _Host, delivery: Delivery) -> bool:
        """The host is full: wait locally for a slot (True), or hand the delivery back to
        the store, due again after the host's expected wait (False)."""
        estimate = host.estimate_ms(time.monotonic())
        delay = busy_host_release_ms(
            len(host.waiters), host.limit, estimate, host.ewma_ms is not None
        )
        if delay is None and not self._stopping.is_set():
            if await host.wait():
                return True
            delay = 0  # stopping: hand it back unsent
        await self._release(delivery, delay or 0)
        return False

    def _host(self, url: str) -> _Host:
        key = _host_key(url)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self._settings.per_host)
        return host

    async def _release(self, delivery: Delivery, delay_ms: int) -> None:
        due = time.monotonic() + delay_ms / 1000
        self._wake_at = due if self._wake_at is None else min(self._wake_at, due)
        self.released += 1
        if not await self._store.release(delivery, delay_ms):
            self.lease_lost += 1

    async def _record(
        self, delivery: Delivery, result: SendResult, reported: Awaitable[object] | None = None
    ) -> None:
        """Store the attempt; ``reported``: its endpoint's circuit outcome on the way, awaited
        after the store's call (one pipeline), so the circuit is known before the next send."""
        record, next_at = self.judge(delivery, result)
        self._observe(record, delivery)
        if not await self._store.finish_attempt(delivery, record, next_at):
            self.lease_lost += 1
            log.warning(
                "webhook lease lost; another replica owns the delivery now",
                extra={"delivery_id": delivery.id, "job_id": delivery.job_id},
            )
        if reported is not None:
            with contextlib.suppress(Exception):  # the gate logs a failed report
                await reported

    def judge(self, delivery: Delivery, result: SendResult) -> tuple[AttemptRecord, int | None]:
        """The attempt record and the next attempt time (None: final)."""
        status = result.status
        if status is not None and 200 <= status < 300 and not result.blocked:  # the usual case
            record = AttemptRecord(
                result.at_ms, result.duration_ms, status, None, result.excerpt, "delivered"
            )
            return record, None
        if result.blocked:
            verdict = "permanent"
        elif result.status is None:
            verdict = "retry"  # timeout or connection error
        else:
            verdict = classify_status(result.status)
        now_ms = int(self._clock() * 1000)
        retry_after = parse_retry_after(result.retry_after, now_ms)
        decision = decide(
            verdict,
            delivery.attempt,
            delivery.max_attempts,
            now_ms,
            self._schedule,
            self._rng,
            retry_after,
        )
        record = AttemptRecord(
            at_ms=result.at_ms,
            duration_ms=result.duration_ms,
            status_code=result.status,
            error=result.error or _status_error(result.status),
            response_excerpt=result.excerpt,
            outcome=decision.outcome,
        )
        return record, decision.next_attempt_at_ms

    # -- HTTP ------------------------------------------------------------------------------

    def _sender_for(self) -> Sender:
        if self._sender is None:
            self._session = self._session_factory()
            self._sender = Sender(
                self._session,
                secret=self._settings.secret,
                timeout_s=self._settings.timeout_s,
                allow=self._allow,
                clock=self._clock,
                keyring=self._keyring,
                endpoint_keyring=self._endpoint_keyring,
            )
        return self._sender

    def _default_session(self) -> aiohttp.ClientSession:
        # No connector limit per host: _Host admission enforces per_host, and aiohttp's own
        # per-host bookkeeping cost ~5 µs per delivery (bench/webhooks.py).
        return build_session(
            self._settings.timeout_s, self._guard, limit=self._settings.concurrency
        )


@lru_cache(maxsize=4096)
def _host_key(url: str) -> str:
    try:
        parsed = URL(url)
        return f"{parsed.host}:{parsed.port}"
    except (ValueError, TypeError):
        return "?"


def _status_error(status: int | None) -> str | None:
    if status is None or 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed; update the webhook URL"
    return f"HTTP {status}"


async def drain(dispatcher: WebhookDispatcher, rounds: int = 100) -> int:
    """Call ``run_once`` until nothing is due (tests, CLI tools). Returns deliveries sent."""
    total = 0
    for _ in range(rounds):
        claimed = await dispatcher.run_once()
        total += claimed
        if claimed == 0:
            break
    return total
