"""Endpoint health policy: the breaker's states and the throttle's spacing."""

from __future__ import annotations

from botsys.webhooks.health import CLOSED, HALF_OPEN, OPEN, Breaker, Throttle


def test_breaker_opens_on_the_failure_ratio_then_probes_one_at_a_time():
    b = Breaker(window=10, failure_ratio=0.5, open_s=5.0)
    for i in range(9):
        b.record(i % 2 == 0, now=0)  # 4 failures of 9: the window is not full yet
    assert b.state == CLOSED and b.admit(0) == 0
    b.record(False, now=1)  # 5 of 10
    assert b.state == OPEN and b.trips == 1
    assert b.admit(now=2) == 4.0  # still open: ask again in 4 s
    assert b.admit(now=6) == 0 and b.state == HALF_OPEN  # the probe
    assert b.admit(now=6) == 5.0  # one probe at a time
    b.record(False, now=6.5)
    assert b.state == OPEN and b.trips == 2 and b.admit(now=7) == 4.5
    assert b.admit(now=11.5) == 0
    b.record(True, now=11.6)
    assert b.state == CLOSED and b.admit(now=11.6) == 0


def test_a_mostly_healthy_endpoint_stays_closed():
    b = Breaker(window=20, failure_ratio=0.5)
    for i in range(1000):
        b.record(i % 3 != 0, now=i)  # a third fail
    assert b.state == CLOSED and b.trips == 0


def test_throttle_spaces_sends():
    t = Throttle(10)
    assert [round(t.take(0.0), 3) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    assert round(t.wait(0.05), 3) == 0.35
    assert t.take(5.0) == 0.0  # idle time does not bank a burst
    assert round(t.take(5.0), 3) == 0.1


def test_the_breakers_running_count_matches_its_window():
    """The failure count is kept as outcomes enter and leave the window, not recounted."""
    import random

    rng = random.Random(7)
    b = Breaker(window=20, failure_ratio=0.9, open_s=5.0)
    for i in range(2000):
        b.record(rng.random() < 0.6, now=i)
        assert b._failed == list(b._outcomes).count(False)
