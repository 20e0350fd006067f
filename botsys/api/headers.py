"""Per-request plumbing: request ids, the access log, HTTP metrics, security and CORS headers.

``observe_middleware`` is the outermost middleware: it binds the request id into the log
context, times the request and writes one access-log line and one metrics sample. Response
headers are added in ``on_response_prepare`` so they land on *every* response — handlers,
problem documents, static files and streams alike.
"""

from __future__ import annotations

import logging
import os
import re
import time

from aiohttp import web

from ..appkeys import METRICS, PAGE_CSP, SETTINGS
from ..logs import log_context
from ..metrics import route_label

access_log = logging.getLogger("botsys.access")

REQUEST_ID = web.RequestKey("request_id", str)
RATE_HEADERS = web.RequestKey("rate_headers", dict)

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, X-API-Key, Content-Type, Idempotency-Key, X-Request-Id"


def request_id_of(request: web.Request) -> str:
    """The caller's X-Request-Id if it is a sane token (never echo arbitrary bytes), else new."""
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID_OK.fullmatch(given) else os.urandom(16).hex()


@web.middleware
async def observe_middleware(request: web.Request, handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    with log_context(request_id=request_id):
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(request)
            request.app[METRICS].observe_http(route, request.method, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):  # else the extra dict is built for nothing
                access_log.info(
                    "%s %s %s",
                    request.method,
                    route,
                    status,
                    extra={
                        "method": request.method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: security headers everywhere, plus request id, rate-limit, CORS."""
    h = response.headers
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h.setdefault("Cache-Control", "no-store")
    h["Content-Security-Policy"] = request.get(PAGE_CSP, API_CSP)
    h["Referrer-Policy"] = "no-referrer"
    h["X-Request-Id"] = request.get(REQUEST_ID) or request_id_of(request)
    for name, value in request.get(RATE_HEADERS, {}).items():
        h[name] = value
    _cors(request, h)


def _cors(request: web.Request, h) -> None:
    origins = request.app[SETTINGS].api.cors_origins
    origin = request.headers.get("Origin")
    if not origins or not origin:
        return
    if "*" in origins or origin in origins:
        h["Access-Control-Allow-Origin"] = origin
        h["Vary"] = "Origin"
        h["Access-Control-Expose-Headers"] = (
            "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
            "X-Request-Id"
        )


@web.middleware
async def cors_preflight_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Answers CORS preflights (only when cors_origins is configured)."""
    origins = request.app[SETTINGS].api.cors_origins
    is_preflight = (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )
    if not (origins and is_preflight):
        return await handler(request)
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )
