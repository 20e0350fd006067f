"""Request checks that need the configuration (bot types, bots, limits, the SSRF allow list)
and the small views the handlers answer with. Pure functions of (app, parsed request)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import jsonsafe
from ..appkeys import REGISTRY, SETTINGS
from ..jobs import bot_type_of, iso_ms
from ..queue import Enqueued, JobQueue, QueueFull, TypeStats
from ..runners.registry import UnknownBot
from ..states import JobState
from ..store.outbox import MAX_ADHOC_BODY, AdhocCreated
from ..webhooks.endpoints import Endpoint
from ..webhooks.guard import check_url
from ..webhooks.rotation import RingSecret
from ..webhooks.signing import secret_key
from .problems import Problem, invalid, not_found
from .targets import Route, payload_of

MAX_IDEMPOTENCY_KEY = 200
_IDEMPOTENCY_KEY_OK = re.compile(r"^[\x20-\x7e]*$")
QUEUE_FULL_RETRY_S = 5  # Retry-After when admission control refuses a job


def idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return ""
    if not _IDEMPOTENCY_KEY_OK.match(key):
        # aiohttp hands non-ASCII header bytes over as surrogate escapes, which Redis cannot store
        raise invalid("Idempotency-Key", "printable ASCII characters only", status=400)
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise invalid("Idempotency-Key", f"1 to {MAX_IDEMPOTENCY_KEY} characters")
    return key


def invoke_args(
    app: web.Application, body: Mapping[str, Any], key: str, route: Route
) -> dict[str, Any]:
    """The validated POST /invoke body, routed → JobQueue.enqueue keyword arguments."""
    try:
        ref = app[REGISTRY].resolve(route.bot_type, route.bot)
    except UnknownBot as exc:
        field = exc.field if route.field == "botType" else route.field
        raise Problem(422, str(exc), errors={field: [str(exc)]}) from None
    bt = app[SETTINGS].bot_types[ref.bot_type]
    timeout = body.get("timeout")
    if timeout is not None and timeout > bt.max_timeout_s:
        raise invalid("timeout", f"at most {bt.max_timeout_s:g} s for bot type {bt.name}")
    url = body.get("webhookUrl") or ""
    problem = check_url(url, app[SETTINGS].webhooks.allow) if url else None
    if problem:
        raise invalid("webhookUrl", problem)
    args = {
        "bot_type": ref.bot_type,
        "bot": ref.name,
        "payload": payload_of(body),
        "priority": body.get("priority", bt.default_priority),
        "webhook_url": url,
        "timeout_s": timeout,
        "max_attempts": body.get("attempts"),
        "delay_ms": body.get("delay") or 0,
        "group": jsonsafe.compact(route.group) if route.group else "",
    }
    # Only a keyed request needs its fingerprint: a repeat must be the same request.
    return {**args, "idempotency_key": key, "fingerprint": fingerprint(args) if key else ""}


def deliver_args(app: web.Application, body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The validated POST /deliver body → Outbox.create_adhoc keyword arguments."""
    url = body["url"]
    problem = check_url(url, app[SETTINGS].webhooks.allow)
    if problem:
        raise invalid("url", problem)
    raw = jsonsafe.compact(body["payload"]).encode()
    if len(raw) > MAX_ADHOC_BODY:
        raise invalid("payload", f"at most {MAX_ADHOC_BODY} bytes serialised", status=413)
    return {
        "url": url,
        "body": raw,
        "event_type": body.get("eventType") or "",
        "idempotency_key": body.get("idempotencyKey") or key,
    }


def delivered_response(request: web.Request, done: AdhocCreated) -> web.Response:
    """202 for a new delivery, 200 for a repeat (the first one's id), 422 for a key reused
    with a different request (as POST /invoke)."""
    if not done.same_request:
        raise invalid(
            "idempotencyKey",
            "already used for a different delivery in the last 24 h; use a new key",
        )
    url = str(request.app.router["delivery"].url_for(deliveryId=done.delivery_id))
    body = {"deliveryId": done.delivery_id, "created": done.created, "statusUrl": url}
    return web.json_response(body, status=202 if done.created else 200, headers={"Location": url})


def new_secret(body: Mapping[str, Any]) -> str | None:
    """POST /webhooks/secret/rotate's secret, if given: base64 of 24 to 64 bytes."""
    secret = body.get("secret")
    if secret is None:
        return None
    try:
        size = len(secret_key(secret))
    except ValueError as exc:
        raise invalid("secret", str(exc)) from None
    if not 24 <= size <= 64:
        raise invalid("secret", f"whsec_ + base64 of 24 to 64 bytes, not {size}")
    return secret


def ring_view(ring: list[RingSecret], now_ms: int) -> list[dict[str, Any]]:
    """The secrets without their values, newest first."""
    return [
        {
            "fingerprint": s.fingerprint,
            "createdAt": iso_ms(s.created_at_ms or None),
            "expiresAt": iso_ms(s.expires_at_ms),
            "signing": s.live(now_ms),
        }
        for s in reversed(ring)
    ]


def endpoint_fields(app: web.Application, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST/PATCH /endpoints: the URL through the SSRF guard, bot types that exist."""
    if "url" in body:
        problem = check_url(body["url"], app[SETTINGS].webhooks.allow)
        if problem:
            raise invalid("url", problem)
    unknown = [t for t in body.get("botTypes", ()) if t not in app[SETTINGS].bot_types]
    if unknown:
        raise invalid("botTypes", f"unknown bot type(s): {', '.join(unknown)}")
    return {k: v for k, v in body.items() if k != "secret"}


def endpoint_view(e: Endpoint, now_ms: int, breaker: str | None = None) -> dict[str, Any]:
    """``breaker``: this replica's circuit state for it (None: nothing sent to it here yet)."""
    return {
        "endpointId": e.id,
        "url": e.url,
        "eventTypes": list(e.event_types),
        "botTypes": list(e.bot_types),
        "description": e.description,
        "disabled": e.disabled,
        "disabledAt": iso_ms(e.disabled_at_ms or None),
        "disabledReason": e.disabled_reason or None,
        "rateLimit": e.rate_limit,
        "breaker": breaker,
        "createdAt": iso_ms(e.created_at_ms or None),
        "updatedAt": iso_ms(e.updated_at_ms or None),
        "secrets": ring_view(list(e.secrets), now_ms),
    }


def fingerprint(args: Mapping[str, Any]) -> str:
    """A digest of the request as resolved (defaults filled in, payload keys sorted)."""
    canonical = jsonsafe.dumps(args, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def invoked_response(request: web.Request, job: Mapping[str, Any], done: Enqueued) -> web.Response:
    """202 for a new job; 200 for a repeated Idempotency-Key (the first job's id); 422 for a
    key reused with a different request (as Stripe does): never the old job for a new request."""
    if not done.same_request:
        raise invalid(
            "Idempotency-Key",
            "already used for a different request to this bot type in the last 24 h; "
            "use a new key for a new request",
        )
    url = str(request.app.router["job"].url_for(jobId=done.job_id))
    body = {
        "jobId": done.job_id,
        "status": JobState.DELAYED if job["delay_ms"] else JobState.QUEUED,
        "botType": job["bot_type"],
        "bot": job["bot"],
        "priority": job["priority"],
        "statusUrl": url,
        "created": done.created,
        "estimatedPosition": done.position,
        "group": jsonsafe.loads(job["group"]) if job["group"] else None,
    }
    return web.json_response(body, status=202 if done.created else 200, headers={"Location": url})


def queue_full(full: QueueFull) -> Problem:
    """A job refused by admission control: too many waiting (429, this client should slow
    down) or too many payload bytes held (503, the store protects its memory)."""
    t = full.bot_type
    if full.cap == "cadence":
        seconds = max(1, math.ceil(full.limit / 1000))
        detail = (
            f"bot type {t} has accepted as many jobs as its cadence allows in one interval "
            f"(cadence mode reject); retry in {seconds} s"
        )
        return Problem(429, detail, headers={"Retry-After": str(seconds)}, kind="cadence")
    retry = {"Retry-After": str(QUEUE_FULL_RETRY_S)}
    if full.cap == "max_queued":
        detail = (
            f"bot type {t} already has {full.limit} jobs waiting or delayed "
            f"(engine.max_queued); retry in {QUEUE_FULL_RETRY_S} s"
        )
        return Problem(429, detail, headers=retry, kind="queue-full")
    detail = (
        f"the payloads of bot type {t}'s waiting and delayed jobs would exceed {full.limit} "
        f"bytes (engine.max_queued_bytes); retry in {QUEUE_FULL_RETRY_S} s"
    )
    return Problem(503, detail, headers=retry, kind="queue-bytes-full")


def known_job_id(app: web.Application, job_id: str) -> str:
    """404 for anything that is not an id of a configured bot type (no Redis call needed)."""
    if bot_type_of(job_id) not in app[SETTINGS].bot_types:
        raise not_found("job")
    return job_id


def replay_job_id(app: web.Application, job_id: str) -> str:
    """A replay's jobId filter: a job id of a configured bot type, or '' (none)."""
    if job_id and bot_type_of(job_id) not in app[SETTINGS].bot_types:
        raise invalid("jobId", "not a job id of a configured bot type")
    return job_id


def known_bot_type(app: web.Application, bot_type: str) -> str:
    if bot_type not in app[SETTINGS].bot_types:
        raise not_found(f"bot type {bot_type[:64]!r}")
    return bot_type


def cancel_response(job_id: str, code: int, state: str) -> web.Response:
    if code == -1:
        raise not_found("job")
    if code == 0:
        raise Problem(409, f"job already finished: {state}")
    if code == 2:
        return web.json_response({"jobId": job_id, "state": "cancelling"}, status=202)
    return web.json_response({"jobId": job_id, "state": JobState.CANCELLED})


@dataclass(frozen=True)
class JobsQuery:
    bot_types: list[str]
    state: str | None
    limit: int
    before: tuple[int, str] | None


def jobs_query(app: web.Application, q: Mapping[str, Any]) -> JobsQuery:
    types = list(app[SETTINGS].bot_types)
    if "botType" in q:
        if q["botType"] not in types:
            raise invalid("botType", f"unknown bot type; available: {', '.join(types)}")
        types = [q["botType"]]
    cursor = q.get("cursor")
    before = None
    if cursor:
        score, _, job_id = cursor.partition("_")
        before = (int(score), job_id)
    return JobsQuery(types, q.get("state"), q["limit"], before)


async def jobs_page(queue: JobQueue, pages: list[list], q: JobsQuery) -> dict[str, Any]:
    """Merge per-type pages newest first; the cursor is the last job's index score and id."""
    scored = [(await queue.index_score(j, q.state), j.id, j) for page in pages for j in page]
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    scored = scored[: q.limit]
    more = len(scored) == q.limit
    return {
        "jobs": [j.summary() for _, _, j in scored],
        "nextCursor": f"{scored[-1][0]}_{scored[-1][1]}" if more else None,
    }


def stats_view(
    stats: Mapping[str, TypeStats], adhoc: tuple[int, int, int] = (0, 0, 0)
) -> dict[str, Any]:
    """``adhoc``: (pending, delivered, dead) of POST /deliver's deliveries, counted in too."""
    return {
        "botTypes": {
            t: {
                "waiting": s.waiting,
                "delayed": s.delayed,
                "running": s.running,
                "limit": s.limit,
                "paused": s.paused,
                **{state: int(n) for state, n in s.counts.items()},
            }
            for t, s in stats.items()
        },
        "webhooks": {
            "pending": adhoc[0] + sum(s.webhook_pending for s in stats.values()),
            "delivered": adhoc[1] + sum(s.webhook_delivered for s in stats.values()),
            "failed": adhoc[2] + sum(s.webhook_dead for s in stats.values()),
        },
    }


def queue_view(bot_type: str, stats: Mapping[str, TypeStats]) -> dict[str, Any]:
    s = stats[bot_type]
    return {
        "botType": bot_type,
        "limit": s.limit,
        "paused": s.paused,
        "waiting": s.waiting,
        "delayed": s.delayed,
        "running": s.running,
    }
