"""The retry schedule of job retries and webhook deliveries: one pure function, no clock."""

from __future__ import annotations

from typing import Protocol

MAX_EXPONENT = 62  # 2**62 already dwarfs any cap; keeps a huge attempt number cheap


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
