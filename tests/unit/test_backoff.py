"""The one retry schedule (job retries and webhook deliveries): a table of exact delays."""

from __future__ import annotations

import random

import pytest

from botsys.backoff import Backoff, backoff_ms


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


def test_a_loop_backs_off_from_the_base_to_the_cap_and_starts_over_once_it_works():
    retry = Backoff(0.1, 2.0, jitter=0.2, rng=Fixed(0, 0.2))
    assert [retry.next_s() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    retry.reset()
    assert retry.next_s() == 0.1


def test_a_loops_delays_spread_within_the_jitter_and_never_above_the_cap():
    delays = [Backoff(0.1, 2.0, rng=random.Random(seed)).next_s() for seed in range(200)]
    assert all(0.08 <= d <= 0.12 for d in delays) and len(set(delays)) > 10
    at_cap = Backoff(0.1, 2.0, rng=random.Random(3))
    capped = [at_cap.next_s() for _ in range(30)][10:]
    assert all(1.6 <= d <= 2.0 for d in capped) and len(set(capped)) > 1
