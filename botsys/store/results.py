"""What each Lua script replies, decoded once, by name.

A script's reply codes are an IntEnum here; store/scripts.py generates each script's enum into
its prologue as ``R`` (``return {R.lost}``), so a code has one name in Lua and in Python. A reply
is decoded by the function named after its script into a NamedTuple; no caller reads a reply by
position. A claimed job or delivery stays its field map (``fields``): jobs.py makes it a Claim.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple


class EnqueueCode(IntEnum):
    EXISTING = 0  # an earlier job with the same idempotency key
    CREATED = 1
    MAX_QUEUED = -1  # refused: the type's waiting + delayed jobs are at the cap
    MAX_QUEUED_BYTES = -2  # refused: their payload bytes are at the cap
    DELETED = -3  # refused: the type was deleted
    CADENCE = -4  # refused: a cadence in reject mode accepted its max in the interval


class ClaimCode(IntEnum):
    CLAIMED = 1  # (possibly none: see wait_ms)
    RECORD_MISSING = -2  # the type's record is gone (Redis lost it): nothing was done


class CompleteCode(IntEnum):
    LOST = 0  # not the lease holder: nothing written
    FINISHED = 1
    RETRYING = 2


class LeaseCode(IntEnum):
    """heartbeat.lua's answer for each lease."""

    LOST = 0  # reclaimed, expired or gone
    RENEWED = 1
    CANCEL_REQUESTED = 2  # renewed, but the owner should stop the bot


class RequeueCode(IntEnum):
    LOST = 0  # not the owner: nothing written
    REQUEUED = 1


class CancelCode(IntEnum):
    UNKNOWN = -1
    FINISHED = 0  # already finished: nothing to cancel
    CANCELLED = 1
    FLAGGED = 2  # running: its owner was told to stop it


class RetryCode(IntEnum):
    UNKNOWN = -1
    NOT_RETRYABLE = 0
    QUEUED = 1


class WriteCode(IntEnum):
    """type_write.lua: written, or the stored version moved since the caller read it."""

    CONFLICT = 0
    WRITTEN = 1


class HeldCode(IntEnum):
    """finish_delivery.lua, release_delivery.lua: done only while the caller holds the lease."""

    LOST = 0  # another replica owns it now
    DONE = 1


class RedeliverCode(IntEnum):
    UNKNOWN = -1
    PENDING = 0  # still pending: nothing to do
    REDELIVERED = 1


class DeliverCode(IntEnum):
    EXISTING = 0  # an earlier delivery with the same idempotency key
    CREATED = 1


class GroupCode(IntEnum):
    DONE = 1
    MISSING = -1  # no such group
    EXISTS = -2  # create: it exists already
    VERSION_MISMATCH = -3  # If-Match failed


class DrawCode(IntEnum):
    """group_draw.lua: a keyed request's route through a bot group."""

    DRAWN = 1  # a new selection number
    REMEMBERED = 2  # a repeat: the member its first request went to
    MISSING = -1  # no such group


class CircuitCode(IntEnum):
    """endpoint_record.lua: an endpoint's circuit as the cluster has it."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2  # open time over: one probe decides


class ProbeCode(IntEnum):
    """endpoint_probe.lua: may this replica send to an endpoint it last saw open?"""

    SEND = 0  # closed again
    OPEN = 1  # still open: ask again after ms
    PROBE = 2  # half-open and the probe is this replica's: send it
    PROBING = 3  # another replica's probe is out: ask again after ms (its lease)


class EnqueueReply(NamedTuple):
    code: EnqueueCode
    job_id: str = ""  # created or existing
    position: int = 0  # jobs waiting ahead when created
    claim: dict[str, str] | None = None  # created and leased to the caller at once
    limit: int = 0  # refused: the cap (CADENCE: ms until one more would be accepted)


class ClaimReply(NamedTuple):
    code: ClaimCode
    wait_ms: int = -1  # until delayed work is due, a lease expires or the cadence opens
    claims: list[dict[str, str]] = []


class CompleteReply(NamedTuple):
    code: CompleteCode
    state: str = ""  # FINISHED: the terminal state
    delivery_id: str = ""
    retry_at_ms: int = 0  # RETRYING
    next: dict[str, str] | None = None  # the next job, leased along with the freed slot


class HeartbeatReply(NamedTuple):
    lease_until: int
    leases: list[LeaseCode]  # one per (job id, token) pair sent


class CodeState(NamedTuple):
    """cancel.lua, retry.lua: a code and the job's state (unpacks as the pair it replaces)."""

    code: int
    state: str = ""


class SeedReply(NamedTuple):
    limit: int
    created: bool  # the record was (re-)created


class WriteReply(NamedTuple):
    code: WriteCode
    version: int = 0  # CONFLICT: the stored version


class DeliveriesClaimed(NamedTuple):
    wait_ms: int  # until the next one is due (-1: none)
    deliveries: list[dict[str, str]]


class Delivered(NamedTuple):
    """deliver.lua's reply."""

    code: DeliverCode
    delivery_id: str
    same_request: bool = True  # EXISTING: the key was used for the same request


class GroupWritten(NamedTuple):
    code: GroupCode
    version: int  # DONE: the new one (delete: the one deleted); else the current one
    created: bool = False


class GroupDrawn(NamedTuple):
    code: DrawCode
    body: str = ""  # the group's JSON
    seq: int = 0  # DRAWN: the group's next selection number
    member: str = ""  # REMEMBERED: where the first request with this key went


class RateCounted(NamedTuple):
    allowed: bool
    remaining: int
    reset_ms: int  # until the window resets


class ThrottleSlots(NamedTuple):
    """endpoint_throttle.lua's reply."""

    delay_us: int  # to the first slot reserved; with slots 0: until it is worth asking again
    slots: int


class Circuit(NamedTuple):
    """endpoint_record.lua's reply."""

    code: CircuitCode
    open_ms: int  # OPEN: how much longer


class Probe(NamedTuple):
    """endpoint_probe.lua's reply."""

    code: ProbeCode
    ms: int  # OPEN: until it may be probed; PROBING: until that probe's lease ends


def _member(codes: type[IntEnum], value: int) -> Any:
    """``codes(value)`` without Enum's call machinery (hot: every job's scripts)."""
    return codes._value2member_map_[value]


def fields(flat: list[str]) -> dict[str, str]:
    """An HGETALL reply as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def enqueue(r: list[Any]) -> EnqueueReply:
    code = _member(EnqueueCode, r[0])
    if code < 0:
        return EnqueueReply(code, limit=int(r[1]))
    if code == EnqueueCode.EXISTING:
        return EnqueueReply(code, r[1])
    if isinstance(r[2], list):
        return EnqueueReply(code, r[1], 0, fields(r[2]))
    return EnqueueReply(code, r[1], int(r[2]))


def claim(r: list[Any]) -> ClaimReply:
    code = _member(ClaimCode, r[0])
    if code == ClaimCode.RECORD_MISSING:
        return ClaimReply(code)
    return ClaimReply(code, int(r[1]), [fields(flat) for flat in r[2:]])


def complete(r: list[Any]) -> CompleteReply:
    code = _member(CompleteCode, r[0])
    if code == CompleteCode.LOST:
        return CompleteReply(code)
    if code == CompleteCode.RETRYING:
        nxt = fields(r[2]) if len(r) > 2 else None
        return CompleteReply(code, "delayed", retry_at_ms=int(r[1]), next=nxt)
    return CompleteReply(code, r[1], r[2], next=fields(r[3]) if len(r) > 3 else None)


def heartbeat(r: list[Any]) -> HeartbeatReply:
    return HeartbeatReply(int(r[0]), [_member(LeaseCode, s) for s in r[1:]])


def requeue(r: Any) -> RequeueCode:
    return _member(RequeueCode, r)


def code_state(r: list[Any]) -> CodeState:
    return CodeState(int(r[0]), r[1] if len(r) > 1 else "")


def seed_limit(r: list[Any]) -> SeedReply:
    return SeedReply(int(r[0]), bool(int(r[1])))


def type_write(r: list[Any]) -> WriteReply:
    code = _member(WriteCode, r[0])
    return WriteReply(code, int(r[1]) if len(r) > 1 else 0)


def claim_deliveries(r: list[Any]) -> DeliveriesClaimed:
    return DeliveriesClaimed(int(r[0]), [fields(flat) for flat in r[1:]])


def held(r: Any) -> HeldCode:
    return _member(HeldCode, r)


def redeliver(r: list[Any]) -> CodeState:
    return CodeState(_member(RedeliverCode, r[0]), r[1] if len(r) > 1 else "")


def deliver(r: list[Any]) -> Delivered:
    code = _member(DeliverCode, r[0])
    return Delivered(code, r[1], code == DeliverCode.CREATED or int(r[2]) == 1)


def wake_endpoint(r: Any) -> int:
    return int(r)


def group_write(r: list[Any]) -> GroupWritten:
    return GroupWritten(_member(GroupCode, r[0]), int(r[1]), len(r) > 2 and int(r[2]) == 1)


def group_draw(r: list[Any]) -> GroupDrawn:
    code = _member(DrawCode, r[0])
    if code == DrawCode.DRAWN:
        return GroupDrawn(code, r[1], seq=int(r[2]))
    if code == DrawCode.REMEMBERED:
        return GroupDrawn(code, r[1], member=r[2])
    return GroupDrawn(code)


def ratelimit(r: list[Any]) -> RateCounted:
    return RateCounted(int(r[0]) == 1, int(r[1]), int(r[2]))


def endpoint_throttle(r: list[Any]) -> ThrottleSlots:
    return ThrottleSlots(int(r[0]), int(r[1]))


def endpoint_record(r: list[Any]) -> Circuit:
    return Circuit(_member(CircuitCode, r[0]), int(r[1]))


def endpoint_probe(r: list[Any]) -> Probe:
    return Probe(_member(ProbeCode, r[0]), int(r[1]))


# Each script's reply codes (generated into its Lua prologue as R).
CODES: dict[str, type[IntEnum]] = {
    "enqueue": EnqueueCode,
    "claim": ClaimCode,
    "complete": CompleteCode,
    "heartbeat": LeaseCode,
    "requeue": RequeueCode,
    "cancel": CancelCode,
    "retry": RetryCode,
    "type_write": WriteCode,
    "finish_delivery": HeldCode,
    "release_delivery": HeldCode,
    "redeliver": RedeliverCode,
    "deliver": DeliverCode,
    "group_write": GroupCode,
    "group_draw": DrawCode,
    "endpoint_record": CircuitCode,
    "endpoint_probe": ProbeCode,
}
