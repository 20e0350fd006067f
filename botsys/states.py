"""Where a job and a webhook delivery stand: one word for each state, named once.

StrEnums: a member *is* its string, so Redis hashes, Lua scripts, JSON and metric labels see
exactly the text they always did, and a plain string read back compares equal to its member.
The dashboard gets these lists from ``dashboard_states()`` (served as ``states.js``).
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """``queued → running → succeeded | failed | timed_out | cancelled``; ``delayed`` while a
    retry or a requested start time is due."""

    QUEUED = "queued"
    DELAYED = "delayed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


# Ordered, not a set: /stats, the metrics and the dashboard's columns list them in this order.
TERMINAL: tuple[JobState, ...] = (
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.TIMED_OUT,
    JobState.CANCELLED,
)
# What POST /job/{id}/retry accepts (retry.lua): a cancelled job's payload is freed at cancel.
RETRYABLE: tuple[JobState, ...] = (JobState.FAILED, JobState.TIMED_OUT)


class DeliveryState(StrEnum):
    """``pending → delivered | dead`` (dead-lettered: redelivery is a manual action)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


DELIVERY_FINISHED: tuple[DeliveryState, ...] = (DeliveryState.DELIVERED, DeliveryState.DEAD)


def dashboard_states() -> dict[str, list[str]]:
    """The lists the dashboard's script needs, as plain JSON."""
    return {
        "job": list(JobState),
        "terminal": list(TERMINAL),
        "retryable": list(RETRYABLE),
        "delivery": list(DeliveryState),
    }
