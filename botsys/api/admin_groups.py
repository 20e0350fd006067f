"""/admin/config/bot-groups: bot groups and their routing rules, managed at runtime (admin key).

Each group carries a version: GET answers it as the ETag, PUT and DELETE honour If-Match (412
when the group changed since it was read). Definitions are validated by control/routing.py,
which names the offending field (422)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apispec import docs, request_schema, response_schema

from ..appkeys import GROUPS, MEMBER_CHECK
from ..control.group_store import GroupExists, GroupMissing, StoredGroup, VersionMismatch
from ..control.routing import Group, GroupInvalid, validate_group
from . import schemas as s
from .auth import admin_only
from .docs_text import errors
from .problems import Problem, invalid, not_found
from .validation import BODY

IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": 'the ETag of the group as read ("<version>"): 412 if it changed since',
}


def _group(request: web.Request, group_id: str, body: dict[str, Any]) -> Group:
    try:
        return validate_group(group_id, body, request.app[MEMBER_CHECK])
    except GroupInvalid as exc:
        raise invalid(exc.field, exc.message) from None


def _expected(request: web.Request) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise invalid("If-Match", 'the ETag of the group: "<version>"', status=400)
    return int(value)


def _answer(stored: StoredGroup, status: int = 200) -> web.Response:
    return web.json_response(stored.view(), status=status, headers={"ETag": f'"{stored.version}"'})


def _stale(exc: VersionMismatch) -> Problem:
    return Problem(
        412,
        f"the group changed since it was read: it is at version {exc.current}; read it again",
        headers={"ETag": f'"{exc.current}"'},
        errors={"If-Match": [f"current version: {exc.current}"]},
    )


@docs(tags=["admin"], summary="Every bot group (admin)", responses=errors(401, 403, 429, 503))
@response_schema(s.GroupList, 200)
@admin_only
async def list_groups(request: web.Request) -> web.Response:
    groups, version = await request.app[GROUPS].list()
    body = {"botGroups": [g.view() for g in groups], "version": version}
    return web.json_response(body, headers={"ETag": f'"{version}"'})


@docs(
    tags=["admin"],
    summary="Create a bot group (admin)",
    description="Members are targets (`type` or `type/bot`) that must exist; the rule is one of "
    "ROUND_ROBIN, PERCENTAGE_BASED, TIME_BASED, PARAMETER_BASED, A_B_TEST "
    "(docs/CONFIGURATION.md). In force on every replica at once.",
    responses=errors(400, 401, 403, 409, 413, 415, 422, 429, 503),
)
@request_schema(s.GroupBody)
@response_schema(s.GroupView, 201, description="created (ETag: its version)")
@admin_only
async def create_group(request: web.Request) -> web.Response:
    body = request[BODY]
    if "groupId" not in body:
        raise invalid("groupId", "required")
    group = _group(request, body["groupId"], body)
    try:
        version = await request.app[GROUPS].create(group)
    except GroupExists:
        raise Problem(
            409,
            f"bot group {group.group_id} exists already: PUT replaces it",
            errors={"groupId": ["exists already"]},
        ) from None
    location = str(request.app.router["bot-group"].url_for(groupId=group.group_id))
    response = _answer(StoredGroup(group, version), 201)
    response.headers["Location"] = location
    return response


@docs(tags=["admin"], summary="A bot group (admin)", responses=errors(401, 403, 404, 429, 503))
@response_schema(s.GroupView, 200, description="ETag: its version")
@admin_only
async def get_group(request: web.Request) -> web.Response:
    stored = await request.app[GROUPS].get(request.match_info["groupId"])
    if stored is None:
        raise not_found("bot group")
    return _answer(stored)


@docs(
    tags=["admin"],
    summary="Create or replace a bot group (admin)",
    parameters=[IF_MATCH],
    responses=errors(400, 401, 403, 404, 412, 413, 415, 422, 429, 503),
)
@request_schema(s.GroupBody)
@response_schema(s.GroupView, 200, description="replaced")
@response_schema(s.GroupView, 201, description="created")
@admin_only
async def put_group(request: web.Request) -> web.Response:
    group_id = request.match_info["groupId"]
    body = request[BODY]
    if body.get("groupId", group_id) != group_id:
        raise invalid("groupId", "must be the id in the path (a group cannot be renamed)")
    group = _group(request, group_id, body)
    try:
        version, created = await request.app[GROUPS].put(group, _expected(request))
    except GroupMissing:
        raise not_found("bot group") from None
    except VersionMismatch as exc:
        raise _stale(exc) from None
    return _answer(StoredGroup(group, version), 201 if created else 200)


@docs(
    tags=["admin"],
    summary="Delete a bot group (admin)",
    description="Jobs already routed through it are not affected.",
    parameters=[IF_MATCH],
    responses=errors(400, 401, 403, 404, 412, 429, 503),
)
@response_schema(None, 204, description="deleted")
@admin_only
async def delete_group(request: web.Request) -> web.Response:
    try:
        await request.app[GROUPS].delete(request.match_info["groupId"], _expected(request))
    except GroupMissing:
        raise not_found("bot group") from None
    except VersionMismatch as exc:
        raise _stale(exc) from None
    return web.Response(status=204)


ROUTES = [
    ("GET", "/admin/config/bot-groups", list_groups, None),
    ("POST", "/admin/config/bot-groups", create_group, None),
    ("GET", "/admin/config/bot-groups/{groupId}", get_group, "bot-group"),
    ("PUT", "/admin/config/bot-groups/{groupId}", put_group, None),
    ("DELETE", "/admin/config/bot-groups/{groupId}", delete_group, None),
]
