"""A job in: enqueue it, then hand what the enqueue got to this replica's orchestrator.

The data flows one way (caller → queue, caller → orchestrator): the queue knows nothing of
who runs jobs. With room here the enqueue script leases the job to this replica at once, so it
starts without a wake-up or a claim round trip.
"""

from __future__ import annotations

from typing import Any

from .orchestrator import Orchestrator
from .queue import Enqueued, JobQueue


async def submit(
    queue: JobQueue,
    orchestrator: Orchestrator | None,
    bot_type: str,
    bot: str,
    payload: Any = None,
    **job: Any,
) -> Enqueued:
    """``queue.enqueue`` (same arguments); ``orchestrator`` None: nothing runs jobs here."""
    if orchestrator is None:
        return await queue.enqueue(bot_type, bot, payload, **job)
    take = not job.get("delay_ms") and orchestrator.reserve(bot_type)
    enqueued = None
    try:
        enqueued = await queue.enqueue(bot_type, bot, payload, **job, take=take)
    finally:
        await orchestrator.hand_over(bot_type, enqueued, reserved=take)
    return enqueued
