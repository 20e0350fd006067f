"""Where POST /invoke sends a job: ``botType`` (+ ``bot``), ``target: "botType:<type>"``, or
``target: "groupId:<id>"``, whose rule chooses a member (control/routing.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..appkeys import GROUPS, MEMBER_CHECK
from ..control.members import split_member
from ..control.routing import select
from .problems import Problem

# The wall clock TIME_BASED rules read (seconds, UTC); tests pin it.
ROUTING_CLOCK = web.AppKey("routing_clock", Callable[[], float])


@dataclass(frozen=True)
class Route:
    bot_type: str
    bot: str | None
    field: str  # the request field to blame when the type or bot is unknown
    group: dict[str, str] | None = None  # {groupId, rule, member}


def payload_of(body: Mapping[str, Any]) -> dict:
    """``params`` is the original system's name for ``payload`` (the schema refuses both)."""
    return body.get("payload", body.get("params", {}))


def utc_minute(now_s: float) -> int:
    return int(now_s // 60) % (24 * 60)


async def route_of(app: web.Application, body: Mapping[str, Any], key: str) -> Route:
    target = body.get("target")
    if target is None:
        return Route(body["botType"], body.get("bot"), "botType")
    kind, _, name = target.partition(":")
    if kind == "botType":
        return Route(name, None, "target")
    return await group_route(app, name, payload_of(body), key)


def request_clock(app: web.Application) -> Callable[[], float]:
    return app.get(ROUTING_CLOCK) or time.time


async def group_route(app: web.Application, group_id: str, payload: Any, key: str) -> Route:
    store = app[GROUPS]
    draw = await store.draw(group_id, key)
    if draw is None:
        detail = f"no bot group {group_id!r} (GET /admin/config/bot-groups lists them)"
        raise Problem(404, detail, errors={"target": [detail]})
    group, check = draw.group, app[MEMBER_CHECK]
    if draw.remembered is not None:  # a repeat: where the first request went, no new draw
        return _route(group_id, group, draw.remembered)
    problems = {m: check(m) for m in group.members}
    available = [m for m, problem in problems.items() if problem is None]
    now = request_clock(app)()
    member = select(
        group, seq=draw.seq, payload=payload, minute=utc_minute(now), available=available
    )
    if member is None:
        reasons = "; ".join(f"{m}: {p}" for m, p in problems.items())
        raise Problem(
            409,
            f"bot group {group_id}: none of its members can run ({reasons}); "
            f"update the group (PUT /admin/config/bot-groups/{group_id})",
            errors={"target": [f"bot group {group_id} has no member that exists"]},
            kind="group-without-members",
        )
    if key:  # a repeat of a keyed request goes where the first went: its job is found there
        member = await store.remembered(group_id, key, member)
    return _route(group_id, group, member)


def _route(group_id: str, group, member: str) -> Route:
    bot_type, bot = split_member(member)
    selection = {"groupId": group_id, "rule": group.rule_type, "member": member}
    return Route(bot_type, bot, "target", selection)
