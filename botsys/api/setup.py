"""Installs the HTTP layer on the app: middlewares (outermost first), routes, the dashboard,
OpenAPI + UI."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import SETTINGS
from ..dashboard import setup_dashboard
from .auth import KeyRing, make_auth_middleware
from .headers import add_response_headers, cors_preflight_middleware, observe_middleware
from .openapi import setup_openapi
from .problems import deadline_middleware, error_middleware
from .ratelimit import make_ratelimit_middleware, parse_rate
from .routes import add_routes
from .validation import validation_middleware


def setup_api(app: web.Application) -> None:
    api = app[SETTINGS].api
    limiter = make_ratelimit_middleware(api.rate_limit)
    # What is off has no middleware: each one is an await level on every request.
    cors = [cors_preflight_middleware] if api.cors_origins else []
    rate_limited = [limiter] if parse_rate(api.rate_limit) else []
    app.middlewares.extend(
        [
            observe_middleware,  # request id, access log, metrics: sees the final status
            error_middleware,  # every failure below becomes problem+json
            *cors,
            make_auth_middleware(
                KeyRing.from_keys(api.keys, api.admin_keys),
                limiter.charge,
                api.trusted_proxies,
                local_only=not app[SETTINGS].server.insecure,
            ),
            *rate_limited,
            validation_middleware,  # parse body/query before the clock starts
            deadline_middleware,  # handlers get STORE_DEADLINE_S on Redis, then 503
        ]
    )
    app.on_response_prepare.append(add_response_headers)
    add_routes(app)
    setup_dashboard(app)  # /admin/queues and the index at /: static pages over this API
    setup_openapi(app)
