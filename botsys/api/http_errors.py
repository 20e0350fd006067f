"""Malformed HTTP — a bad Content-Length, Content-Length with Transfer-Encoding, an oversized
header line, a bad chunk — answered as problem+json and logged at INFO without a traceback.

aiohttp's parser errors never reach the app's middlewares: its ``RequestHandler`` answers them
itself in ``handle_error``, as text/plain, and logs each at ERROR with a traceback. aiohttp has
no hook for that (aio-libs/aiohttp#3287, #6463), so ``install()`` makes this process's servers
use ``ProblemRequestHandler``, a subclass that only replaces ``handle_error``. ``serve`` calls
it before starting; the app itself does not depend on it.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from aiohttp import web, web_server
from aiohttp.http_exceptions import BadHttpMessage, DecompressSizeError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from .problems import PROBLEM_JSON, TYPE_BASE

log = logging.getLogger("botsys.http")


def install() -> None:
    """Every aiohttp server started afterwards in this process answers parser errors as
    problems. (``web.Server`` builds its handlers from this module-level name.)"""
    web_server.RequestHandler = ProblemRequestHandler  # type: ignore[misc]


def status_for(exc: BaseException | None, status: int) -> int:
    if isinstance(exc, LineTooLong) or (
        isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc.message)
    ):
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    if isinstance(exc, DecompressSizeError):
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    return status


def detail_for(exc: BaseException | None, status: int, message: str | None) -> str:
    """The parser's first line ("Invalid character in Content-Length"), never its echo of the
    offending bytes."""
    if isinstance(exc, LineTooLong):
        return "a request line or header field is too long (the limit is 8190 bytes)"
    text = getattr(exc, "message", None) or message or HTTPStatus(status).phrase
    first = str(text).strip().splitlines()[0].rstrip(":").strip() if str(text).strip() else ""
    return f"malformed HTTP request: {first or HTTPStatus(status).phrase}"[:300]


def problem_response(status: int, detail: str) -> web.Response:
    body = {
        "type": TYPE_BASE + HTTPStatus(status).phrase.lower().replace(" ", "-"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "errors": {},
    }
    response = web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_JSON,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )
    response.force_close()  # the stream is out of step: never read another request from it
    return response


class ProblemRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # Not the client's fault (the app's own errors are answered by error_middleware;
            # this is what escapes it): keep aiohttp's logging, answer in our shape.
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            return problem_response(status, "internal error; see the server log")
        status = status_for(exc, status)
        detail = detail_for(exc, status, message)
        log.info(
            "malformed HTTP from %s: %s",
            request.remote,
            detail,
            extra={"status": status, "error": type(exc).__name__ if exc else None},
        )
        if request.writer.output_size > 0:
            raise ConnectionError("response already started: cannot answer the error")
        return problem_response(status, detail)
