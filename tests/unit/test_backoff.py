"""The one retry schedule (job retries and webhook deliveries): a table of exact delays."""

from __future__ import annotations

import random

import pytest

from botsys.backoff import backoff_ms


class Fixed:
    """A random source that always draws ``value``, and checks the range it is asked for."""

    def __init__(self, value: float, jitter: float) -> None:
        self.value, self.jitter = value, jitter

    def uniform(self, a: float, b: float) -> float:
        assert (a, b) == (-self.jitter, self.jitter)
        return self.value


@pytest.mark.parametrize(
    "attempt, base, cap, jitter, draw, expected",
    [
        (1, 1000, 60_000, 0.2, 0, 1000),
        (2, 1000, 60_000, 0.2, 0, 2000),
        (6, 1000, 60_000, 0.2, 0, 32_000),
        (7, 1000, 60_000, 0.2, 0, 60_000),  # 64 s: capped
        (3, 1000, 60_000, 0.2, 0.2, 4800),
        (3, 1000, 60_000, 0.2, -0.2, 3200),
        (7, 1000, 60_000, 0.2, -0.2, 48_000),  # spread below the cap too
        (7, 1000, 60_000, 0.2, 0.2, 60_000),  # never above the cap
        (0, 1000, 60_000, 0.2, 0, 1000),  # attempt < 1 counts as the first
        (10_000, 1000, 60_000, 0.2, 0, 60_000),  # a huge attempt: no overflow
        (3, 1000, 60_000, 0, 0, 4000),  # no jitter
        (3, 0, 60_000, 0.2, 0.2, 0),  # base 0: retry at once
        (3, 1000, 0, 0.2, 0.2, 0),  # cap 0: retry at once
        (2, 150, 60_000, 0.5, 0.25, 375),
    ],
)
def test_schedule(attempt, base, cap, jitter, draw, expected):
    assert backoff_ms(attempt, base, cap, jitter, Fixed(draw, jitter)) == expected


def test_a_real_random_source_spreads_within_the_jitter():
    rng = random.Random(1)
    for attempt in range(1, 6):
        nominal = 1000 * 2 ** (attempt - 1)
        values = [backoff_ms(attempt, 1000, 60_000, 0.2, rng) for _ in range(200)]
        assert all(nominal * 0.8 <= v <= nominal * 1.2 for v in values)
        assert max(values) - min(values) > nominal * 0.2  # the jitter really spreads
