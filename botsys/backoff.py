"""The retry schedule of job retries, webhook deliveries and reconnect loops: one pure
function, no clock (``Backoff`` counts a loop's failures for it)."""

from __future__ import annotations

import random
from typing import Protocol

MAX_EXPONENT = 62  # 2**62 already dwarfs any cap; keeps a huge attempt number cheap
# A loop's delays spread ± this much, so replicas that lost Redis together come back apart.
LOOP_JITTER = 0.2


class Random(Protocol):
    """What the schedule needs of a random source (``random`` or a ``random.Random``)."""

    def uniform(self, a: float, b: float) -> float: ...


def backoff_ms(attempt: int, base_ms: int, cap_ms: int, jitter: float, rng: Random) -> int:
    """Delay after failed attempt ``attempt`` (1-based): ``base × 2^(attempt-1)``, capped at
    ``cap_ms``, then spread by ± ``jitter`` (a fraction) and never above the cap. The spread
    also applies at the cap, so retries that all reached it (after an outage) stay apart."""
    exponent = min(max(attempt, 1) - 1, MAX_EXPONENT)
    capped = min(base_ms * 2**exponent, cap_ms)
    return int(min(capped * (1 + rng.uniform(-jitter, jitter)), cap_ms))


class Backoff:
    """The delays of a loop that retries until something works again (a reconnect, a claim):
    ``next_s()`` after each failure (base, 2 × base, … up to the cap, with jitter), ``reset()``
    once it works."""

    def __init__(
        self, base_s: float, cap_s: float, jitter: float = LOOP_JITTER, rng: Random = random
    ) -> None:
        self.base_ms, self.cap_ms = round(base_s * 1000), round(cap_s * 1000)
        self.jitter, self.rng = jitter, rng
        self.failures = 0

    def next_s(self) -> float:
        self.failures += 1
        return backoff_ms(self.failures, self.base_ms, self.cap_ms, self.jitter, self.rng) / 1000

    def reset(self) -> None:
        self.failures = 0
