"""What a Redis outage or refusal looks like to callers (re-exported by connection.py).

Two kinds of trouble, both temporary and both answered 503 by the API:
- ``REDIS_DOWN``: Redis cannot be reached (connection refused or dropped, timeout);
- a *refusal*: Redis answers but will not do the work — out of memory (``maxmemory`` with
  ``noeviction``), a read-only replica (a failover), writes stopped because it cannot persist
  (``MISCONF``), busy running a script, or still loading its dataset. ``refusal_of`` names it.
Background loops survive both (``STORE_FAILED``) and retry; only a refusal's reason differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError as WatchError  # a WATCHed key changed: read again

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
# What a background loop must survive (log, back off, retry) rather than die of: an outage,
# a refusal, or any other error reply (a loop that dies silently leaves work stuck).
STORE_FAILED = (*REDIS_DOWN, ResponseError)


@dataclass(frozen=True)
class Refusal:
    code: str  # Redis's error prefix: OOM, READONLY, MISCONF, BUSY, LOADING
    kind: str  # the problem type (…/problems/<kind>) and the /health reason
    detail: str  # what the client is told
    retry_after_s: int


REFUSALS = {
    r.code: r
    for r in (
        Refusal(
            "OOM",
            "store-out-of-memory",
            "the job store (Redis) is full (maxmemory reached) and refuses new writes; "
            "cancel jobs or wait for finished ones to expire, then retry",
            5,
        ),
        Refusal(
            "READONLY",
            "store-read-only",
            "the job store (Redis) is a read-only replica (a failover in progress?) and "
            "refuses writes; retry shortly",
            2,
        ),
        Refusal(
            "MISCONF",
            "store-cannot-persist",
            "the job store (Redis) cannot save to disk and refuses writes until it can "
            "(MISCONF); retry later",
            5,
        ),
        Refusal(
            "BUSY",
            "store-busy",
            "the job store (Redis) is busy running a long script and answers nothing else; "
            "retry shortly",
            2,
        ),
        Refusal(
            "LOADING",
            "store-loading",
            "the job store (Redis) is loading its dataset into memory after a restart; "
            "retry shortly",
            2,
        ),
    )
}


def refusal_of(exc: BaseException) -> Refusal | None:
    """The refusal an error reply stands for, or None (an outage, or another error).

    redis-py names some prefixes with a class (OutOfMemoryError, ReadOnlyError,
    BusyLoadingError) and strips the prefix from the message; it keeps it as ``status_code``.
    Errors raised inside a Lua script arrive the same way.
    """
    code = getattr(exc, "status_code", None)
    if code is None and isinstance(exc, ResponseError | RedisConnectionError) and exc.args:
        code = str(exc.args[0]).split(" ", 1)[0]
    if code == "EXECABORT":  # a MULTI discarded because one of its commands was refused
        return _refusal_in(str(exc))
    return REFUSALS.get(code or "")


def _refusal_in(message: str) -> Refusal | None:
    for code, refusal in REFUSALS.items():
        if f"{code} " in message:
            return refusal
    return None
