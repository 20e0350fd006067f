"""The pure retry policy: classification, backoff, Retry-After, dead letter."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from botsys.webhooks.policy import (
    Schedule,
    classify_status,
    decide,
    parse_retry_after,
)

SCHED = Schedule(retry_delay_ms=1000, max_delay_ms=60_000)
NOW = 1_700_000_000_000


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def uniform(self, a, b):
        return self.value


@pytest.mark.parametrize(
    "status, verdict",
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (301, "retry"),
        (302, "retry"),
        (307, "retry"),
        (308, "retry"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (410, "permanent"),
        (422, "permanent"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (599, "retry"),
        (101, "retry"),
    ],
)
def test_classify(status, verdict):
    assert classify_status(status) == verdict


def test_retry_after_forms():
    assert parse_retry_after("7", NOW) == 7000
    assert parse_retry_after(" 0 ", NOW) == 0
    when = datetime.fromtimestamp((NOW + 30_000) / 1000, UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == 30_000
    past = datetime.fromtimestamp((NOW - 30_000) / 1000, UTC)
    assert parse_retry_after(format_datetime(past, usegmt=True), NOW) == 0
    for bad in (None, "", "soon", "-5", "1.5", "Wed, 99 Foo 2024"):
        assert parse_retry_after(bad, NOW) is None


def test_decide_delivered_and_permanent():
    assert decide("delivered", 1, 5, NOW, SCHED, Fixed(0)).next_attempt_at_ms is None
    final = decide("permanent", 1, 5, NOW, SCHED, Fixed(0))
    assert (final.outcome, final.next_attempt_at_ms) == ("failed", None)


def test_decide_retries_until_max_attempts_then_dead_letters():
    outcomes = [decide("retry", n, 3, NOW, SCHED, Fixed(0)) for n in (1, 2, 3)]
    assert [d.outcome for d in outcomes] == ["retry", "retry", "failed"]
    assert [d.next_attempt_at_ms for d in outcomes] == [NOW + 1000, NOW + 2000, None]


def test_decide_honours_retry_after_but_never_sooner_and_capped():
    assert decide("retry", 1, 5, NOW, SCHED, Fixed(0), 7000).next_attempt_at_ms == NOW + 7000
    assert decide("retry", 3, 5, NOW, SCHED, Fixed(0), 1000).next_attempt_at_ms == NOW + 4000
    capped = decide("retry", 1, 5, NOW, SCHED, Fixed(0), 10**12)
    assert capped.next_attempt_at_ms == NOW + 60_000
