"""Errors as RFC 9457 problem documents, and the middleware that turns every failure into one.

Handlers raise ``Problem`` (or let aiohttp raise its ``HTTPException``s: 404, 405, 413);
``error_middleware`` renders them as ``application/problem+json``. Anything unexpected becomes a
500 problem without internals (logged with a traceback), and a Redis outage, a Redis call that
overruns the deadline, or a Redis that refuses the work (full, read-only, loading…) becomes a
fast 503 naming the reason — never a hang, never a 202 for an unwritten job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus

from aiohttp import web

from ..appkeys import SETTINGS
from ..store.connection import REDIS_DOWN
from ..store.errors import Refusal, refusal_of

log = logging.getLogger("botsys.api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://botsys.dev/problems/"
# Longest a request may wait on Redis before it is answered 503: a paused or partitioned
# Redis must not hold clients (or pile up coroutines) — callers retry, with Idempotency-Key.
STORE_DEADLINE_S = 1.0


class Problem(Exception):
    """An HTTP error with a problem+json body. ``errors`` maps request fields to messages."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Mapping[str, Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        self.headers = dict(headers or {})
        self.kind = kind or HTTPStatus(status).phrase.lower().replace(" ", "-")

    def body(self) -> dict:
        return {
            "type": TYPE_BASE + self.kind,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "errors": self.errors,
        }

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            body=json.dumps(self.body()).encode(),
            content_type=PROBLEM_JSON,
            headers=self.headers,
        )


def invalid(field: str, message: str, status: int = 422) -> Problem:
    """A request field with a bad value (the caller learns which one)."""
    return Problem(status, f"{field}: {message}", errors={field: [message]})


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} not found")


def unavailable(detail: str = "the job store (Redis) is unreachable; retry shortly") -> Problem:
    return Problem(503, detail, headers={"Retry-After": "1"}, kind="store-unavailable")


def refused(refusal: Refusal) -> Problem:
    """Redis answered but refused the work (full, read-only, …): temporary, so 503."""
    return Problem(
        503,
        refusal.detail,
        headers={"Retry-After": str(refusal.retry_after_s)},
        kind=refusal.kind,
    )


def store_problem(exc: BaseException) -> Problem | None:
    """The 503 for a Redis failure, or None if ``exc`` is not one (a bug: 500)."""
    refusal = refusal_of(exc)
    if refusal is not None:
        return refused(refusal)
    if isinstance(exc, (*REDIS_DOWN, TimeoutError)):
        return unavailable()
    return None


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> Problem:
    """aiohttp's own errors (routing, body size) in our shape, keeping their headers."""
    status = exc.status
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    if status == 404:
        detail = f"no route {request.path}"
    elif status == 405:
        detail = (
            f"{request.method} is not allowed on {request.path}; allowed: {headers.get('Allow')}"
        )
    elif status == 413:
        limit = request.app[SETTINGS].server.max_body_bytes  # app.py sets client_max_size to it
        detail = f"request body larger than {limit} bytes"
    else:
        detail = exc.text or HTTPStatus(status).phrase
        if detail.startswith(f"{status}: "):
            detail = detail[len(f"{status}: ") :]
    return Problem(status, detail, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects are not errors
        return _from_http_exception(exc, request).response()
    except Exception as exc:
        problem = store_problem(exc)
        if problem is not None:
            log.warning(
                "store unavailable for %s %s: %s %s",
                request.method,
                request.path,
                type(exc).__name__,
                problem.kind,
            )
            return problem.response()
        log.exception("unhandled error in %s %s", request.method, request.path)
        return Problem(500, "internal error; see the server log for this request id").response()


@web.middleware
async def deadline_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Bounds a handler's time on Redis (STORE_DEADLINE_S); streams opt out."""
    if getattr(request.match_info.handler, "no_deadline", False):
        return await handler(request)
    async with asyncio.timeout(STORE_DEADLINE_S):
        return await handler(request)
