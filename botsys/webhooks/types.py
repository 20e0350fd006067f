"""The delivery model and the store contract the dispatcher is written against.

The Redis implementation lives with the store (Lua scripts); tests use an in-memory fake.
Nothing here imports aiohttp or redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

Outcome = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True)
class Delivery:
    """One claimed attempt of one webhook message to one URL."""

    id: str  # stable across retries; sent as the `webhook-id` header ("msg_..." style)
    job_id: str  # '' for an ad-hoc delivery (POST /deliver)
    bot_type: str  # '' for an ad-hoc delivery
    url: str
    body: bytes  # exact JSON body built once at job completion; sent byte-for-byte every attempt
    attempt: int  # number of THIS attempt, 1-based (X-Delivery-Attempt)
    max_attempts: int
    token: str  # lease token of this claim; a stale token makes finish/release return False
    event_type: str = ""  # sent as X-Event-Type: an ad-hoc one's, an endpoint's job.<state>
    endpoint: str = ""  # the subscribed endpoint it goes to (signed with its secrets); '' none


class AttemptRecord(NamedTuple):
    """What one attempt did; stored with the delivery and shown by the API. (A NamedTuple:
    one per attempt, a third of a frozen dataclass's cost to build.)"""

    at_ms: int  # epoch ms when the attempt started
    duration_ms: int
    status_code: int | None  # None: no HTTP response (timeout, refused, blocked, ...)
    error: str | None
    response_excerpt: str  # at most 1 KiB of the response body
    outcome: Outcome


class DeliveryStore(Protocol):
    # What the store (and the endpoint health beside it) raises while it is unreachable or
    # refusing: a delivery caught by one is logged without a traceback and retried when its
    # lease expires. A store without this attribute has none.
    unavailable: tuple[type[BaseException], ...]

    async def claim_due(self, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` deliveries whose next attempt is due."""

    async def finish_attempt(
        self, delivery: Delivery, record: AttemptRecord, next_attempt_at_ms: int | None
    ) -> bool:
        """Record an attempt. ``next_attempt_at_ms`` None = final (per ``record.outcome``:
        delivered, or failed = dead-lettered); otherwise reschedule. False = lease lost."""

    async def release(self, delivery: Delivery, delay_ms: int) -> bool:
        """Hand a claimed delivery back unsent, due again in ``delay_ms``, attempt not counted.

        Used when its destination host is saturated and on shutdown. False = lease lost."""

    async def wait_for_work(self, timeout_s: float) -> None:
        """Return when a delivery is scheduled (pub/sub wake-up) or after ``timeout_s``."""
