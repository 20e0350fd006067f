"""Pure delivery policy: what an attempt's result means and when the next attempt is due.

Functions of (attempt, now, rng) only — no I/O, no clock reads — so tests pin every number.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Literal

from botsys.backoff import Random, backoff_ms
from botsys.webhooks.types import Outcome

Verdict = Literal["delivered", "retry", "permanent"]

# Standard Webhooks / Svix: these say "later", not "never".
RETRYABLE_STATUS = frozenset({408, 425, 429})
JITTER = 0.2  # ±20 %


@dataclass(frozen=True)
class Schedule:
    """Backoff parameters (from WebhookSettings)."""

    retry_delay_ms: int
    max_delay_ms: int


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    next_attempt_at_ms: int | None  # None: final


def classify_status(status: int) -> Verdict:
    """2xx delivered; 3xx (never followed), 408/425/429 and 5xx retry; other 4xx permanent."""
    if 200 <= status < 300:
        return "delivered"
    if status in RETRYABLE_STATUS or 300 <= status < 400 or status >= 500:
        return "retry"
    if 400 <= status < 500:
        return "permanent"
    return "retry"  # 1xx final status or garbage: the receiver misbehaved; try again later


def parse_retry_after(value: str | None, now_ms: int) -> int | None:
    """``Retry-After`` as a delay in ms: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0, int(when.timestamp() * 1000) - now_ms)


def decide(
    verdict: Verdict,
    attempt: int,
    max_attempts: int,
    now_ms: int,
    schedule: Schedule,
    rng: Random,
    retry_after_ms: int | None = None,
) -> Decision:
    """Final outcome, or the time of the next attempt."""
    if verdict == "delivered":
        return Decision("delivered", None)
    if verdict == "permanent" or attempt >= max_attempts:
        return Decision("failed", None)  # dead letter: redelivery is a manual API action
    delay = backoff_ms(attempt, schedule.retry_delay_ms, schedule.max_delay_ms, JITTER, rng)
    if retry_after_ms is not None:
        # Never sooner than our schedule; later if the receiver asks, but capped so a
        # receiver cannot park a delivery for a year.
        delay = max(delay, min(retry_after_ms, schedule.max_delay_ms))
    return Decision("retry", now_ms + delay)


# -- per-host admission ---------------------------------------------------------------------

HOST_MAX_WAIT_MS = 1000  # a claimed delivery may queue locally this long for a busy host
HOST_MIN_RELEASE_MS = 100
HOST_MAX_RELEASE_MS = 5000


def busy_host_release_ms(
    waiting: int, per_host: int, estimate_ms: float, sampled: bool
) -> int | None:
    """None: let a delivery for a host whose ``per_host`` slots are all busy wait locally;
    otherwise hand it back to the store, due again after the returned delay.

    ``estimate_ms`` is how long a slot at that host takes: recent attempt durations or the
    age of the oldest send still in flight, whichever is larger; ``sampled`` is False until
    one attempt there finished. One wave of waiters is always allowed; more only if the host
    is known to be fast enough that they would start within HOST_MAX_WAIT_MS. A black-holed
    host therefore holds at most 2 × per_host of the replica's slots, while a busy but
    healthy host keeps its whole pipeline without round trips to the store.
    """
    expected_ms = estimate_ms * (waiting + 1) / per_host
    if waiting < per_host or (sampled and expected_ms <= HOST_MAX_WAIT_MS):
        return None
    return int(min(max(expected_ms, HOST_MIN_RELEASE_MS), HOST_MAX_RELEASE_MS))
