"""Request parsing from the schemas a handler declares with aiohttp-apispec's decorators.

``@request_schema(S)`` / ``@querystring_schema(S)`` record schemas on the handler
(``__schemas__``); this middleware loads them and puts the results in ``request[BODY]`` and
``request[QUERY]``. We parse ourselves rather than with webargs so that every failure is our
problem document: 415 wrong content type, 400 malformed JSON, 422 naming each bad field.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError

from .. import jsonsafe
from ..appkeys import SETTINGS
from .problems import Problem

BODY = web.RequestKey("body", dict)
QUERY = web.RequestKey("query", dict)


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


class SlowBody(Problem):
    """The body did not arrive in time: answered, then the connection is closed."""


@web.middleware
async def validation_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        for spec in getattr(request.match_info.handler, "__schemas__", ()):
            if spec["location"] == "json":
                request[BODY] = load(spec["schema"], await read_json(request), RAISE)
            elif spec["location"] == "querystring":
                request[QUERY] = load(spec["schema"], dict(request.query), EXCLUDE)
    except SlowBody as problem:
        response = problem.response()
        response.force_close()  # the rest of the body may still trickle in: not a new request
        return response
    return await handler(request)


async def read_json(request: web.Request) -> Any:
    if not request.body_exists:
        raise Problem(422, "a JSON request body is required", errors={"body": ["required"]})
    if not is_json(request.content_type):
        raise Problem(
            415,
            f"Content-Type {request.content_type!r} is not supported: send application/json",
            errors={"Content-Type": ["must be application/json"]},
        )
    raw = await read_body(request)
    try:
        value = json.loads(raw)  # reads NaN/Infinity too: problem_in names where they are
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Problem(400, f"malformed JSON: {exc}", errors={"body": ["malformed JSON"]}) from None
    # What we accept we must be able to store and serve back as valid UTF-8 JSON: no NaN or
    # Infinity (nor 1e400, which Python reads as inf), no lone surrogates, bounded nesting.
    found = jsonsafe.problem_in(value, "")
    if found is not None:
        path, reason = found
        raise Problem(400, f"{path}: {reason}", errors={path: [reason]})
    return value


async def read_body(request: web.Request) -> bytes:
    """The body, bounded in size (client_max_size: 413) and in time: a client that trickles
    its body in would otherwise hold a connection and a handler until shutdown."""
    if request.content.is_eof():  # it all came with the headers: no wait, so no timer
        return await request.read()
    limit = request.app[SETTINGS].server.body_timeout_s
    try:
        async with asyncio.timeout(limit):
            return await request.read()
    except TimeoutError:
        raise SlowBody(
            408,
            f"request body not received within {limit:g} s (server.body_timeout_s)",
            errors={"body": ["sent too slowly"]},
        ) from None


def load(schema: Schema, data: Any, unknown: str) -> dict:
    try:
        return schema.load(data, unknown=unknown)
    except ValidationError as exc:
        errors = flatten(exc.messages)
        unknown_fields = sorted(k for k, v in errors.items() if v == ["Unknown field."])
        if unknown_fields:
            detail = "unknown field(s): " + ", ".join(unknown_fields)
        else:
            detail = _missing_or_invalid(errors)
        raise Problem(422, detail, errors=errors) from None


def _missing_or_invalid(errors: dict[str, list[str]]) -> str:
    """ "botType is required", "invalid priority", or both: a missing field is not invalid."""
    missing = sorted(k for k, v in errors.items() if v == ["Missing data for required field."])
    invalid = sorted(k for k in errors if k not in missing)
    parts = [f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required"] * bool(
        missing
    )
    return "; ".join(parts + ["invalid " + ", ".join(invalid)] * bool(invalid))


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages → {"payload.key": ["..."]}; '_schema' names the body."""
    if isinstance(messages, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = "body" if key == "_schema" and not prefix else str(key)
            out.update(flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "body": list(messages)}
    return {prefix or "body": [str(messages)]}
