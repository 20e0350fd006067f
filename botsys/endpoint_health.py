"""Endpoint health shared by every replica (policy and the per-replica variant:
webhooks/health.py): one throttle and one circuit breaker per endpoint, in Redis, by Redis time.

- Throttle: a GCRA per endpoint (endpoint_throttle.lua). A replica reserves up to a tenth of a
  second's worth of send slots at a time, so at a high rate most sends need no round trip; an
  unused slot is lost, never lent to another second, so the cluster stays at or under the rate.
- Breaker: the failure window is a pair of decayed counts per endpoint (endpoint_record.lua).
  A replica reports a failure at once and its successes at most every ``flush_s`` (in the
  pipeline of the delivery's own finish call), and learns the cluster's state from each reply.
  Once the open time has passed, one half-open probe at a time cluster-wide
  (endpoint_probe.lua, SET NX with a lease); its outcome closes or re-opens the circuit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque

from .config import WebhookSettings
from .store import results
from .store.connection import Store
from .store.results import CircuitCode, ProbeCode
from .webhooks.health import CLOSED, HALF_OPEN, LOCAL_WAIT_S, OPEN, Verdict, log_transition

log = logging.getLogger("botsys.webhooks.health")

STATE_OF = {CircuitCode.CLOSED: CLOSED, CircuitCode.OPEN: OPEN, CircuitCode.HALF_OPEN: HALF_OPEN}
FLUSH_S = 0.1  # a replica's successes reach the shared window at least this often
STALE_SLOT_S = 0.05  # a reserved throttle slot unused this long after its time is dropped
PROBE_POLL_S = 1.0  # another replica's probe is out: ask again this often (it may close it)


class SharedGate:
    """One endpoint's cluster-wide throttle and breaker, as this replica applies them."""

    def __init__(self, health: SharedHealth, endpoint: str) -> None:
        self.endpoint = endpoint
        self.state = CLOSED  # the cluster's, as last heard
        self.trips = 0  # times this replica heard it open
        self.failing_since_ms: int | None = None  # disabling stays per replica
        self._h = health
        keys = health.keys
        self._keys = {
            "breaker": keys.endpoint_breaker(endpoint),
            "probe": keys.endpoint_probe(endpoint),
        }
        self._tat_key = {"tat": keys.endpoint_throttle(endpoint)}
        self._retry_at = 0.0  # monotonic: open (or another's probe out) until then
        self._probe = ""  # token of the probe this replica holds
        self._ok = self._failed = 0  # outcomes not reported yet
        self._reported_at = 0.0
        self._slots: deque[float] = deque()  # reserved throttle slots, monotonic
        self._throttled_until = 0.0  # the shared throttle is full up to then (monotonic)
        self._reserving: asyncio.Future | None = None
        self._asking = 0  # deliveries waiting here for throttle slots

    # -- admission -------------------------------------------------------------------------

    def admit(self, now: float, per_s: float) -> Verdict | None:
        if self.state != CLOSED:
            if now < self._retry_at:
                return self._retry_at - now, False
            if self._probe:  # this replica's probe is out: one at a time
                return self._h.settings.breaker_open_s, False
            return None  # closed again, or probe it: ask
        return self._throttle(now, per_s)

    def _throttle(self, now: float, per_s: float) -> Verdict | None:
        if per_s <= 0:
            return 0.0, True
        if self._throttled_until > now:
            return self._throttled_until - now + LOCAL_WAIT_S / 2, False
        slots = self._slots
        while slots and slots[0] < now - STALE_SLOT_S:
            slots.popleft()
        if slots:
            return max(0.0, slots.popleft() - now), True
        return None  # reserve more

    async def ask(self, now: float, per_s: float) -> Verdict:
        probing = False
        if self.state != CLOSED:
            verdict = self.admit(now, per_s)
            if verdict is None:
                verdict = await self._ask_probe()
            if verdict is not None:
                return verdict
            probing = bool(self._probe)
        verdict = None
        self._asking += 1
        try:
            for _ in range(10):  # other coroutines may take the slots just reserved
                verdict = self._throttle(time.monotonic(), per_s)
                if verdict is not None:
                    break
                await self._reserve(per_s)
        finally:
            self._asking -= 1
        verdict = verdict or (1 / per_s, False)
        if probing and not verdict[1]:
            self.forgo()  # throttled: the probe goes back too
        return verdict

    async def _ask_probe(self) -> Verdict | None:
        token = self._h.token()
        args = {"token": token, "lease_ms": self._h.lease_ms}
        reply = results.endpoint_probe(
            await self._h.scripts.run("endpoint_probe", self._keys, args)
        )
        now = time.monotonic()
        if reply.code == ProbeCode.SEND:
            self._heard(CircuitCode.CLOSED, 0)
            return None
        if reply.code == ProbeCode.PROBE:
            self._probe = token
            self.state = HALF_OPEN
            return None
        wait = reply.ms / 1000
        if reply.code == ProbeCode.PROBING:
            wait = min(wait, self._h.settings.breaker_open_s, PROBE_POLL_S)
        self._heard(CircuitCode.OPEN if reply.code == ProbeCode.OPEN else CircuitCode.HALF_OPEN, 0)
        self._retry_at = now + wait
        return wait, False

    async def _reserve(self, per_s: float) -> None:
        """Reserve throttle slots: one call at a time per endpoint on this replica."""
        if self._reserving is not None:
            await asyncio.shield(self._reserving)
            return
        self._reserving = asyncio.get_running_loop().create_future()
        try:
            interval_us = max(1, int(1_000_000 / per_s))
            want = max(1, int(per_s / 10), self._asking)  # the script caps it at 1 s ahead
            args = {"interval_us": interval_us, "want": want, "horizon_us": int(LOCAL_WAIT_S * 1e6)}
            reply = results.endpoint_throttle(
                await self._h.scripts.run("endpoint_throttle", self._tat_key, args)
            )
            now = time.monotonic()
            if reply.slots == 0:
                self._throttled_until = now + reply.delay_us / 1e6
            else:
                first = now + reply.delay_us / 1e6
                self._slots.extend(first + i * interval_us / 1e6 for i in range(reply.slots))
        finally:
            self._reserving.set_result(None)
            self._reserving = None

    # -- outcomes --------------------------------------------------------------------------

    def record(self, ok: bool, now: float) -> asyncio.Future | None:
        if self._probe:
            probe, self._probe = self._probe, ""
            return self._report(int(ok), int(not ok), probe)
        if self.state != CLOSED:
            return None  # admitted before it opened: judged already
        if ok:
            self._ok += 1
        else:
            self._failed += 1
        if ok and now - self._reported_at < FLUSH_S:
            return None
        self._reported_at = now
        ok_n, failed_n, self._ok, self._failed = self._ok, self._failed, 0, 0
        return self._report(ok_n, failed_n, "")

    def forgo(self) -> None:
        if self._probe:  # not sent: let another probe go at once
            probe, self._probe = self._probe, ""
            self._report(0, 0, probe)

    def _report(self, ok: int, failed: int, probe: str) -> asyncio.Future:
        s = self._h.settings
        args = {"ok": ok, "failed": failed, "probe": probe, "window": s.breaker_window}
        args |= {"failure_ratio": s.breaker_failure_ratio, "open_ms": int(s.breaker_open_s * 1000)}
        # Queued now: it shares the pipeline of the delivery's finish call in this tick.
        fut = self._h.scripts.submit("endpoint_record", self._keys, args)
        fut.add_done_callback(self._on_reply)
        return fut

    def _on_reply(self, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:  # Redis unreachable: those outcomes are lost
            log.warning("endpoint %s: outcomes not recorded: %s", self.endpoint, fut.exception())
            return
        reply = results.endpoint_record(fut.result())
        self._heard(reply.code, reply.open_ms)

    def _heard(self, state: CircuitCode, open_ms: int) -> None:
        was = self.state
        self.state = STATE_OF[state]
        if self.state == OPEN:
            self._retry_at = time.monotonic() + open_ms / 1000
            if was != OPEN:
                self.trips += 1
        elif self.state == CLOSED:
            self._retry_at = 0.0
        log_transition(self.endpoint, was, self.state)


class SharedHealth:
    """The endpoints' gates of this replica over the shared state (Health for the dispatcher)."""

    def __init__(self, store: Store, settings: WebhookSettings) -> None:
        self.redis = store.redis
        self.scripts = store.scripts
        self.keys = store.keys
        self._resets: set[asyncio.Task] = set()
        self.settings = settings
        # A probe's lease: the attempt's timeout and a margin (a crashed prober's runs out).
        self.lease_ms = int(settings.timeout_s * 1000) + 2000
        self._gates: dict[str, SharedGate] = {}

    @staticmethod
    def token() -> str:
        return os.urandom(8).hex()

    def gate(self, endpoint: str) -> SharedGate:
        gate = self._gates.get(endpoint)
        if gate is None:
            gate = self._gates[endpoint] = SharedGate(self, endpoint)
        return gate

    def get(self, endpoint: str) -> SharedGate | None:
        return self._gates.get(endpoint)

    def forget(self, endpoint: str) -> None:
        """Re-enabled: a closed circuit with no failure on record, here and in Redis (every
        replica hears of it and resets it: the same reset, whoever is first)."""
        self._gates.pop(endpoint, None)
        keys = (self.keys.endpoint_breaker(endpoint), self.keys.endpoint_probe(endpoint))
        task = asyncio.ensure_future(self.redis.delete(*keys))
        self._resets.add(task)
        task.add_done_callback(self._reset_done)

    def _reset_done(self, task: asyncio.Task) -> None:
        self._resets.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("resetting an endpoint's circuit failed: %s", task.exception())


async def circuit_states(store: Store, endpoint_ids: list[str]) -> dict[str, str | None]:
    """Each endpoint's circuit as the cluster has it (None: no attempt recorded yet)."""
    if not endpoint_ids:
        return {}
    keys = store.keys
    pipe = store.redis.pipeline(transaction=False)
    pipe.time()
    for e in endpoint_ids:
        pipe.hmget(keys.endpoint_breaker(e), ["openUntil", "oks", "fails"])
    now_s, *rows = await pipe.execute()
    now_ms = int(now_s[0]) * 1000 + int(now_s[1]) // 1000
    out: dict[str, str | None] = {}
    for e, (until, ok, failed) in zip(endpoint_ids, rows, strict=True):
        if until is None and ok is None and failed is None:
            out[e] = None
        elif not until or float(until) == 0:
            out[e] = CLOSED
        else:
            out[e] = OPEN if float(until) > now_ms else HALF_OPEN
    return out
