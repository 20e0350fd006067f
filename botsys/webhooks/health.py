"""Endpoint health: pure policy, and the per-replica gates the dispatcher asks before each
endpoint delivery. The cluster-wide gates (one throttle and one breaker per endpoint shared by
every replica, in Redis) are store/endpoint_health.py's; they follow the same contract.

A circuit breaker stops sending to an endpoint that fails: after ``window`` attempts with at
least ``failure_ratio`` of them failed it opens, and its deliveries go back to the store unsent
(no attempt counted) until ``open_s`` has passed; then one probe at a time is let through
(half-open): a success closes it, a failure opens it again. A throttle spaces an endpoint's
sends to at most ``per_s`` a second.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable
from typing import Protocol

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
LOCAL_WAIT_S = 1.0  # a throttled delivery waits in the replica up to this long, else in the store
log = logging.getLogger("botsys.webhooks.dispatcher")

# What a gate answers: (0, True) send now; (s, True) wait s here, then send; (s, False) back
# to the store for s (circuit open, or the throttle's next free slot is far ahead).
Verdict = tuple[float, bool]


class Gate(Protocol):
    """One endpoint's health as this replica applies it."""

    state: str  # its circuit, as this replica last knew it
    trips: int  # times this replica saw it open
    failing_since_ms: int | None  # wall clock of this replica's first failure since a success

    def admit(self, now: float, per_s: float) -> Verdict | None:
        """The verdict, or None: ``await ask(now, per_s)`` for it (one round trip)."""

    async def ask(self, now: float, per_s: float) -> Verdict: ...

    def record(self, ok: bool, now: float) -> Awaitable[object] | None:
        """Count an attempt's outcome; an awaitable when it went to the cluster (the
        dispatcher awaits it after the delivery's own finish call, in the same pipeline)."""

    def forgo(self) -> None:
        """An admitted send did not happen (handed back, stopping): let another probe go."""


class Health(Protocol):
    def gate(self, endpoint: str) -> Gate: ...

    def get(self, endpoint: str) -> Gate | None: ...

    def forget(self, endpoint: str) -> None:
        """A re-enabled endpoint starts afresh on this replica."""


def log_transition(endpoint: str, was: str, now: str) -> None:
    if now != was and now != HALF_OPEN:
        log.warning(
            "endpoint %s: circuit %s",
            endpoint,
            "open: its deliveries wait unsent" if now == OPEN else "closed",
            extra={"endpoint": endpoint},
        )


class Breaker:
    def __init__(self, window: int = 20, failure_ratio: float = 0.5, open_s: float = 5.0) -> None:
        self.window = window
        self.failure_ratio = failure_ratio
        self.open_s = open_s
        self.state = CLOSED
        self.trips = 0  # times it opened
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._failed = 0  # failures among _outcomes (counted, not recounted per attempt)
        self._opened_at = 0.0
        self._probing = False

    def admit(self, now: float) -> float:
        """0: send now; else the seconds after which to ask again."""
        if self.state == CLOSED:
            return 0.0
        if self.state == OPEN:
            remaining = self._opened_at + self.open_s - now
            if remaining > 0:
                return remaining
            self.state = HALF_OPEN
        if self._probing:  # one probe at a time
            return self.open_s
        self._probing = True
        return 0.0

    def record(self, ok: bool, now: float) -> None:
        if self.state == HALF_OPEN:
            self._probing = False
            if ok:
                self.state = CLOSED
                self._outcomes.clear()
                self._failed = 0
            else:
                self._open(now)
            return
        if self.state == OPEN:  # a send admitted before it opened: already judged
            return
        outcomes = self._outcomes
        if len(outcomes) == self.window and not outcomes[0]:
            self._failed -= 1  # the oldest failure leaves the window
        outcomes.append(ok)
        if not ok:
            self._failed += 1
        if len(outcomes) == self.window and self._failed >= self.failure_ratio * self.window:
            self._open(now)

    def forgo(self) -> None:
        """An admitted send did not happen (handed back, stopping): let another probe go."""
        self._probing = False

    def _open(self, now: float) -> None:
        self.state = OPEN
        self._opened_at = now
        self.trips += 1
        self._outcomes.clear()
        self._failed = 0


class Throttle:
    """At most ``per_s`` sends a second: each send reserves the next free slot."""

    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s
        self._next = 0.0

    def wait(self, now: float) -> float:
        """Seconds until the next free slot (0: free now)."""
        return max(0.0, self._next - now)

    def take(self, now: float) -> float:
        """Reserve the next free slot; the seconds to wait for it."""
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now


class LocalGate:
    """An endpoint's breaker and throttle held by this replica alone (N replicas: N × the rate)."""

    def __init__(self, endpoint: str, breaker: Breaker) -> None:
        self.endpoint = endpoint
        self.breaker = breaker
        self.throttle: Throttle | None = None
        self.per_s = 0.0
        self.failing_since_ms: int | None = None

    @property
    def state(self) -> str:
        return self.breaker.state

    @property
    def trips(self) -> int:
        return self.breaker.trips

    def admit(self, now: float, per_s: float) -> Verdict:
        if per_s != self.per_s:  # set, changed or lifted through the API
            self.per_s = per_s
            self.throttle = Throttle(per_s) if per_s > 0 else None
        if self.throttle is not None and self.throttle.wait(now) > LOCAL_WAIT_S:
            # Back while the ones waiting here still hold the slots before it: no gap.
            return self.throttle.wait(now) - LOCAL_WAIT_S / 2, False
        wait = self.breaker.admit(now)
        if wait > 0:
            return wait, False
        return (self.throttle.take(now) if self.throttle is not None else 0.0), True

    async def ask(self, now: float, per_s: float) -> Verdict:
        return self.admit(now, per_s)

    def record(self, ok: bool, now: float) -> None:
        was = self.breaker.state
        self.breaker.record(ok, now)
        if self.breaker.state != was:
            log_transition(self.endpoint, was, self.breaker.state)

    def forgo(self) -> None:
        self.breaker.forgo()


class LocalHealth:
    """Per-replica gates (no shared store: tests, tools, the in-memory bench)."""

    def __init__(self, window: int = 20, failure_ratio: float = 0.5, open_s: float = 5.0) -> None:
        self._breaker = (window, failure_ratio, open_s)
        self._gates: dict[str, LocalGate] = {}

    def gate(self, endpoint: str) -> LocalGate:
        gate = self._gates.get(endpoint)
        if gate is None:
            gate = self._gates[endpoint] = LocalGate(endpoint, Breaker(*self._breaker))
        return gate

    def get(self, endpoint: str) -> LocalGate | None:
        return self._gates.get(endpoint)

    def forget(self, endpoint: str) -> None:
        self._gates.pop(endpoint, None)
