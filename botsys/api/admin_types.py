"""/admin/config/bot-types: bot types managed at runtime (admin key).

Every write is a compare-and-set on the type's version (``ETag: "<version>"``; PUT, PATCH and
DELETE honour ``If-Match``: 412 when it moved), then this replica re-reads the catalog, so the
answer shows the type as every replica will within a second (control/watch.py).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_apispec import docs, querystring_schema, request_schema, response_schema
from marshmallow import Schema, fields, validate

from ..appkeys import QUEUE, TYPE_CATALOG
from ..appkeys import TYPE_STORE as STORE
from ..control.catalog import Entry
from ..control.type_store import VersionConflict
from ..control.types import (
    CADENCE_MAX,
    DESCRIPTION_MAX,
    INTERVAL_S,
    LIMIT_MAX,
    MODES,
    PRIORITY,
    RETRIES_MAX,
    SOURCES,
    TIMEOUT_MS_MIN,
    TypeDef,
    TypeInvalid,
    check_name,
)
from ..control.types import validate as validate_type
from .auth import admin_only
from .docs_text import errors
from .problems import Problem, not_found
from .schemas import StrictNumber
from .validation import BODY, QUERY

BASE = "/admin/config/bot-types"


# -- schemas (the shapes; control/types.py checks the values and names the field) ----------


class CadenceSchema(Schema):
    max = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(1, CADENCE_MAX),
        metadata={"description": "at most this many starts per intervalS, across all replicas"},
    )
    intervalS = StrictNumber(required=True, validate=validate.Range(*INTERVAL_S))
    mode = fields.String(
        validate=validate.OneOf(MODES),
        metadata={
            "description": "queue (default): jobs wait, queued with waitingFor 'cadence'; "
            "reject: /invoke answers 429 with Retry-After when the window is full"
        },
    )


def _fields(required: bool) -> dict[str, fields.Field]:
    """The writable fields; ``required`` marks runtime required (POST, PUT)."""
    return {
        "name": fields.String(metadata={"description": "POST: required; PUT/PATCH: the URL's"}),
        "runtime": fields.String(
            required=required,
            metadata={"description": "a configured type whose command it runs (python, ...)"},
        ),
        "bots": fields.List(
            fields.String(),
            allow_none=True,
            metadata={"description": "allow-list of bot names; null: every bot in its folder"},
        ),
        "botsDir": fields.String(
            allow_none=True,
            metadata={"description": "absolute folder of its bots; null: the runtime's folder"},
        ),
        "limit": fields.Integer(strict=True, validate=validate.Range(0, LIMIT_MAX)),
        "cadence": fields.Nested(CadenceSchema, allow_none=True),
        "defaultPriority": fields.Integer(strict=True, validate=validate.Range(*PRIORITY)),
        "retryAttempts": fields.Integer(strict=True, validate=validate.Range(0, RETRIES_MAX)),
        "timeoutMs": fields.Integer(strict=True, validate=validate.Range(TIMEOUT_MS_MIN, None)),
        "description": fields.String(validate=validate.Length(0, DESCRIPTION_MAX)),
        "source": fields.String(metadata={"description": "read-only: ignored"}),
        "version": fields.Integer(metadata={"description": "read-only: ignored"}),
    }


TypeCreate = Schema.from_dict(_fields(True), name="TypeCreate")
TypePatch = Schema.from_dict(_fields(False), name="TypePatch")


class TypeView(Schema):
    name = fields.String(required=True)
    runtime = fields.String(required=True)
    bots = fields.List(fields.String(), required=True, allow_none=True)
    botsDir = fields.String(required=True, allow_none=True)
    limit = fields.Integer(required=True)
    cadence = fields.Nested(CadenceSchema, required=True, allow_none=True)
    defaultPriority = fields.Integer(required=True)
    retryAttempts = fields.Integer(required=True)
    timeoutMs = fields.Integer(required=True)
    description = fields.String(required=True)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    version = fields.Integer(required=True)


class TypeList(Schema):
    botTypes = fields.List(fields.Nested(TypeView), required=True)
    version = fields.Integer(required=True)


class TypeDeleted(Schema):
    name = fields.String(required=True)
    cancelled = fields.Integer(
        required=True, metadata={"description": "jobs cancelled with it (?force=true)"}
    )


class DeleteQuery(Schema):
    force = fields.Boolean(
        load_default=False,
        truthy={"true", "1"},
        falsy={"false", "0"},
        metadata={"description": "cancel its waiting and running jobs (with webhooks)"},
    )


# -- handlers ------------------------------------------------------------------------------


@docs(
    tags=["admin"],
    summary="Every bot type, with the catalog's version (admin)",
    responses=errors(401, 403, 429, 503),
)
@response_schema(TypeList, 200)
@admin_only
async def list_types(request: web.Request) -> web.Response:
    catalog = await _fresh(request)
    views = [catalog.get(n).view() for n in catalog.names()]  # type: ignore[union-attr]
    return web.json_response({"botTypes": views, "version": catalog.version})


@docs(
    tags=["admin"],
    summary="Create a bot type on a configured runtime (admin)",
    responses=errors(400, 401, 403, 409, 415, 422, 429, 503),
)
@request_schema(TypeCreate)
@response_schema(TypeView, 201, description="created (Location: its URL; ETag: its version)")
@admin_only
async def create_type(request: web.Request) -> web.Response:
    body = request[BODY]
    catalog = await _fresh(request)
    name = _checked(lambda: check_name(body.get("name")))
    if catalog.get(name) is not None:
        raise Problem(409, f"bot type {name} exists: PUT or PATCH {BASE}/{name} changes it")
    typedef = _checked(lambda: validate_type(body, name, catalog.runtimes))
    record = await request.app[STORE].read(name)  # a deleted configured type: its tombstone
    entry = await _write(request, typedef, expect=record.version if record else 0)
    return _view(request, entry, 201)


@docs(tags=["admin"], summary="One bot type (admin)", responses=errors(401, 403, 404, 429, 503))
@response_schema(TypeView, 200, description="ETag: its version")
@admin_only
async def get_type(request: web.Request) -> web.Response:
    return _view(request, await _existing(request))


@docs(
    tags=["admin"],
    summary="Replace a bot type's definition (admin; If-Match)",
    responses=errors(400, 401, 403, 404, 412, 415, 422, 429, 503),
)
@request_schema(TypeCreate)
@response_schema(TypeView, 200)
@admin_only
async def put_type(request: web.Request) -> web.Response:
    return await _rewrite(request, patch=False)


@docs(
    tags=["admin"],
    summary="Change some of a bot type's fields (admin; If-Match)",
    responses=errors(400, 401, 403, 404, 412, 415, 422, 429, 503),
)
@request_schema(TypePatch)
@response_schema(TypeView, 200)
@admin_only
async def patch_type(request: web.Request) -> web.Response:
    return await _rewrite(request, patch=True)


async def _rewrite(request: web.Request, *, patch: bool) -> web.Response:
    """PUT (the body is the whole definition) or PATCH (the body's fields over the stored one),
    guarded by the version read."""
    entry = await _existing(request)
    runtimes = request.app[TYPE_CATALOG].runtimes
    base = entry.definition if patch else None
    typedef = _checked(
        lambda: validate_type(request[BODY], entry.definition.name, runtimes, base=base)
    )
    return _view(request, await _write(request, typedef, expect=entry.version))


@docs(
    tags=["admin"],
    summary="Delete a bot type (admin; If-Match)",
    description="409 while it has waiting, delayed or running jobs, unless force=true: they are "
    "then cancelled (each with its webhook) and the type goes. A configured type stays deleted "
    "until reset.",
    responses=errors(401, 403, 404, 409, 412, 422, 429, 503),
)
@querystring_schema(DeleteQuery)
@response_schema(TypeDeleted, 200)
@admin_only
async def delete_type(request: web.Request) -> web.Response:
    entry = await _existing(request)
    name, store = entry.definition.name, request.app[STORE]
    _check_if_match(request, entry.version)
    waiting, running = await store.backlog(name)
    if (waiting or running) and not request[QUERY]["force"]:
        raise Problem(
            409,
            f"bot type {name} has {len(waiting)} waiting or delayed and {running} running jobs; "
            "wait for them, or delete with ?force=true to cancel them",
            kind="type-in-use",
        )
    cancelled = 0
    for job_id in [*waiting, *await store.running(name)]:
        code, _ = await request.app[QUEUE].cancel(job_id)
        cancelled += code in (1, 2)
    configured = name in request.app[TYPE_CATALOG].runtimes
    await _store_write(
        request, name, None, expect=entry.version, remove=not configured, deleted=True
    )
    return web.json_response({"name": name, "cancelled": cancelled})


@docs(
    tags=["admin"],
    summary="Return a configured bot type to its config file values (admin)",
    responses=errors(401, 403, 404, 409, 429, 503),
)
@response_schema(TypeView, 200)
@admin_only
async def reset_type(request: web.Request) -> web.Response:
    name = request.match_info["botType"]
    catalog = await _fresh(request)
    seed = catalog.seed(name)
    if seed is None:
        if catalog.get(name) is None:
            raise not_found(f"bot type {name[:64]!r}")
        raise Problem(409, f"bot type {name} was created at runtime: it has no file values")
    record = await request.app[STORE].read(name)
    await _store_write(
        request, name, None, expect=record.version if record else 0, remove=True, limit=seed.limit
    )
    return _view(request, catalog.get(name))  # type: ignore[arg-type]


TYPE_ROUTES = [
    ("GET", BASE, list_types, "bot-types"),
    ("POST", BASE, create_type, None),
    ("GET", BASE + "/{botType}", get_type, "bot-type"),
    ("PUT", BASE + "/{botType}", put_type, None),
    ("PATCH", BASE + "/{botType}", patch_type, None),
    ("DELETE", BASE + "/{botType}", delete_type, None),
    ("POST", BASE + "/{botType}/reset", reset_type, None),
]


# -- helpers -------------------------------------------------------------------------------


async def _fresh(request: web.Request):
    catalog = request.app[TYPE_CATALOG]
    await catalog.refresh(request.app[STORE])
    return catalog


async def _existing(request: web.Request) -> Entry:
    name = request.match_info["botType"]
    entry = (await _fresh(request)).get(name)
    if entry is None:
        raise not_found(f"bot type {name[:64]!r}")
    return entry


def _checked(call):
    try:
        return call()
    except TypeInvalid as exc:
        raise Problem(422, str(exc), errors={exc.field: [exc.message]}) from None


def _check_if_match(request: web.Request, version: int) -> None:
    wanted = request.headers.get("If-Match")
    if wanted is None:
        return
    tags = [t.strip().removeprefix("W/").strip('"') for t in wanted.split(",")]
    if "*" not in tags and str(version) not in tags:
        raise Problem(
            412,
            f'If-Match {wanted[:80]!r} does not match the type\'s version "{version}": '
            "GET it again and re-apply your change",
            kind="precondition-failed",
        )


async def _write(request: web.Request, typedef: TypeDef, *, expect: int) -> Entry:
    _check_if_match(request, expect)
    await _store_write(request, typedef.name, typedef.body(), expect=expect, limit=typedef.limit)
    entry = request.app[TYPE_CATALOG].get(typedef.name)
    assert entry is not None
    return entry


async def _store_write(request: web.Request, name: str, definition, **kw) -> None:
    store = request.app[STORE]
    try:
        await store.write(name, definition, **kw)
    except VersionConflict as exc:
        raise Problem(
            412 if request.headers.get("If-Match") else 409,
            f"bot type {name} changed meanwhile (now version {exc.current}); GET it and retry",
            kind="precondition-failed" if request.headers.get("If-Match") else "conflict",
        ) from None
    await request.app[TYPE_CATALOG].refresh(store, force=True)


def _view(request: web.Request, entry: Entry, status: int = 200) -> web.Response:
    headers = {"ETag": f'"{entry.version}"'}
    if status == 201:
        url = request.app.router["bot-type"].url_for(botType=entry.definition.name)
        headers["Location"] = str(url)
    return web.json_response(entry.view(), status=status, headers=headers)
