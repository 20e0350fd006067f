"""Endpoint health, per replica (pure policy; the dispatcher applies it to endpoint deliveries).

A circuit breaker stops sending to an endpoint that fails: after ``window`` attempts with at
least ``failure_ratio`` of them failed it opens, and its deliveries go back to the store unsent
(no attempt counted) until ``open_s`` has passed; then one probe at a time is let through
(half-open): a success closes it, a failure opens it again. A throttle spaces an endpoint's
sends to at most ``per_s`` a second.
"""

from __future__ import annotations

from collections import deque

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Breaker:
    def __init__(self, window: int = 20, failure_ratio: float = 0.5, open_s: float = 5.0) -> None:
        self.window = window
        self.failure_ratio = failure_ratio
        self.open_s = open_s
        self.state = CLOSED
        self.trips = 0  # times it opened
        self._outcomes: deque[bool] = deque(maxlen=window)
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
            else:
                self._open(now)
            return
        if self.state == OPEN:  # a send admitted before it opened: already judged
            return
        self._outcomes.append(ok)
        failed = self._outcomes.count(False)
        if len(self._outcomes) == self.window and failed >= self.failure_ratio * self.window:
            self._open(now)

    def forgo(self) -> None:
        """An admitted send did not happen (handed back, stopping): let another probe go."""
        self._probing = False

    def _open(self, now: float) -> None:
        self.state = OPEN
        self._opened_at = now
        self.trips += 1
        self._outcomes.clear()


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
