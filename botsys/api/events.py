"""GET /job/{jobId}/events — Server-Sent Events for one job, from any replica.

The replica running the bot publishes on the job's events channel (scripts publish state
changes, the orchestrator progress and log lines), so it does not matter which replica serves
the stream. Every stream of a replica shares its one pub/sub connection (``Store.events``, a
``JobEventHub``). We subscribe *before* reading the current state, so no change can slip between
the two (an event the first state already includes may follow it). The stream starts with the
current state, forwards ``state`` / ``progress`` / ``log`` events, sends a comment every
``HEARTBEAT_S`` to keep proxies from timing out, and ends after a terminal state. After the
pub/sub connection was lost and re-established it sends the current state again; a client
too slow to keep up is disconnected (EventSource clients reconnect and start afresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from itertools import count
from typing import Any

from aiohttp import web
from aiohttp_apispec import docs

from .. import jsonsafe
from ..appkeys import QUEUE, STORE
from ..states import TERMINAL
from ..store.event_hub import OVERFLOW, RESYNC
from .docs_text import EVENTS_DESCRIPTION, errors
from .problems import STORE_DEADLINE_S, not_found
from .requests import known_job_id

log = logging.getLogger("botsys.api.events")

HEARTBEAT_S = 15.0
EVENT_TYPES = ("state", "progress", "log")


@docs(
    tags=["jobs"],
    summary="Live job events (Server-Sent Events)",
    description=EVENTS_DESCRIPTION,
    responses={
        "200": {
            "description": "an event stream; ends after a terminal state",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors(401, 404, 429, 503),
    },
)
async def job_events(request: web.Request) -> web.StreamResponse:
    job_id = known_job_id(request.app, request.match_info["jobId"])
    queue = request.app[QUEUE]
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(STORE_DEADLINE_S):
            channel = request.app[STORE].keys.events_channel(job_id)
            events = await stack.enter_async_context(request.app[STORE].events.watch(channel))
            job = await queue.get(job_id)
        if job is None:
            raise not_found("job")
        response = await _open_stream(request)
        ids = count(1)
        await _send_state(response, ids, job)
        if job.state not in TERMINAL:
            with contextlib.suppress(ConnectionResetError):  # the client went away
                await _forward(request, response, events, job_id, ids)
        return response


job_events.no_deadline = True  # a stream lives as long as the job; it has its own timeouts


async def _open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass events through unbuffered
        }
    )
    await response.prepare(request)
    return response


async def _forward(request, response, events: asyncio.Queue, job_id: str, ids) -> None:
    while True:
        try:
            data = await asyncio.wait_for(events.get(), HEARTBEAT_S)
        except TimeoutError:
            await response.write(b": heartbeat\n\n")
            continue
        if data == OVERFLOW:
            log.warning("event stream of %s dropped: the client is not reading", job_id)
            return
        if data == RESYNC:  # events may have been missed: send the current state again
            job = await request.app[QUEUE].get(job_id)
            if job is None:
                return
            await _send_state(response, ids, job)
            if job.state in TERMINAL:
                return
            continue
        event = _decode(data)
        if event is None:
            continue
        if event["type"] == "state" and event.get("state") in TERMINAL:
            job = await request.app[QUEUE].get(job_id)
            event["job"] = job.view() if job else None
            await _send(response, next(ids), "state", event)
            return
        await _send(response, next(ids), event["type"], event)


async def _send_state(response: web.StreamResponse, ids, job) -> None:
    first = {"type": "state", "state": job.state, "job": job.view()}
    await _send(response, next(ids), "state", first)


def _decode(data: Any) -> dict | None:
    try:
        event = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
        return None
    return event


async def _send(response: web.StreamResponse, event_id: int, kind: str, data: dict) -> None:
    payload = jsonsafe.compact(data)
    await response.write(f"id: {event_id}\nevent: {kind}\ndata: {payload}\n\n".encode())
