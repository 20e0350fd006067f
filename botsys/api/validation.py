"""Request parsing from the schemas a handler declares with aiohttp-apispec's decorators.

``@request_schema(S)`` / ``@querystring_schema(S)`` record schemas on the handler
(``__schemas__``); this middleware loads them and puts the results in ``request[BODY]`` and
``request[QUERY]``. We parse ourselves rather than with webargs so that every failure is our
problem document: 415 wrong content type, 400 malformed JSON, 422 naming each bad field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError

from .problems import Problem

BODY = web.RequestKey("body", dict)
QUERY = web.RequestKey("query", dict)


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


@web.middleware
async def validation_middleware(request: web.Request, handler) -> web.StreamResponse:
    for spec in getattr(request.match_info.handler, "__schemas__", ()):
        if spec["location"] == "json":
            request[BODY] = load(spec["schema"], await read_json(request), RAISE)
        elif spec["location"] == "querystring":
            request[QUERY] = load(spec["schema"], dict(request.query), EXCLUDE)
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
    raw = await request.read()  # bounded by client_max_size (413 beyond it)
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Problem(400, f"malformed JSON: {exc}", errors={"body": ["malformed JSON"]}) from None


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; accepting them would make our own answers invalid JSON.
    raise ValueError(f"{name} is not valid JSON")


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
