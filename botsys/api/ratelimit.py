"""Rate limiting per API key (or client IP on an open API), exact across replicas.

One call of the shared ``ratelimit.lua`` per request: a fixed window counted in Redis with
Redis's own clock, so every replica sees the same count and window. Answers carry
``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` (seconds); a refusal is a 429
with ``Retry-After``. ``/health`` and ``/metrics`` are exempt (probes and scrapers must work).
When Redis refuses the counter's write (full, read-only, …) the request goes through unchecked
(fail open, counted in ``botsys_ratelimit_fail_open_total``): reads and cancels — how a user
frees a full Redis — must keep working.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable

from aiohttp import web

from ..appkeys import METRICS, STORE
from ..store import results
from ..store.errors import refusal_of
from ..store.results import RateCounted
from .auth import CLIENT
from .headers import RATE_HEADERS
from .problems import STORE_DEADLINE_S, Problem

WINDOW_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000}
EXEMPT = frozenset({"/health", "/metrics"})

# Tests pin the limiter's clock (epoch ms) so a window boundary cannot split a run.
RATE_CLOCK = web.AppKey("rate_clock", Callable[[], int])


def parse_rate(text: str) -> tuple[int, int] | None:
    """'600/minute' → (600, 60000); '0' → None (off). config.py has validated the shape."""
    m = re.fullmatch(r"(\d+)/(second|minute|hour)", text.strip())
    if not m or int(m.group(1)) == 0:
        return None
    return int(m.group(1)), WINDOW_MS[m.group(2)]


def make_ratelimit_middleware(rate: str):
    """The middleware; its ``charge`` attribute counts one request against the current
    client's window (the auth middleware charges failed keys to the client's IP with it).
    The check may take STORE_DEADLINE_S on Redis."""
    policy = parse_rate(rate)

    async def charge(request: web.Request) -> None:
        if policy is None:
            return
        limit, window_ms = policy
        try:
            async with asyncio.timeout(STORE_DEADLINE_S):
                allowed, remaining, reset_ms = await _count(request, limit, window_ms)
        except Exception as exc:
            refusal = refusal_of(exc)
            if refusal is None:
                raise  # an outage: the request could not be served anyway (503)
            request.app[METRICS].observe_ratelimit_fail_open(refusal.code)
            return
        reset_s = max(1, math.ceil(reset_ms / 1000))
        request[RATE_HEADERS] = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset_s),
        }
        if not allowed:
            raise Problem(
                429,
                f"rate limit of {limit} requests per {window_ms // 1000} s exceeded; "
                f"retry in {reset_s} s",
                headers={"Retry-After": str(reset_s)},
                kind="rate-limited",
            )

    @web.middleware
    async def ratelimit_middleware(request: web.Request, handler) -> web.StreamResponse:
        if request.path not in EXEMPT and request.method != "OPTIONS":
            await charge(request)
        return await handler(request)

    ratelimit_middleware.charge = charge  # type: ignore[attr-defined]
    return ratelimit_middleware


async def _count(request: web.Request, limit: int, window_ms: int) -> RateCounted:
    store = request.app[STORE]
    clock = request.app.get(RATE_CLOCK)
    keys = {"client": store.keys.ratelimit(request[CLIENT])}
    args = {"limit": limit, "window_ms": window_ms, "now": clock() if clock else ""}
    return results.ratelimit(await store.scripts.run("ratelimit", keys, args))
