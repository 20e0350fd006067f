"""The route table and its handlers: parse (schemas, via the validation middleware) → one call
into the domain → view. No business logic here; request checks that need configuration
(bot types, bots, timeouts, webhook URLs) live in ``requests.py``.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp_apispec import docs, querystring_schema, request_schema, response_schema

from .. import jsonsafe
from ..appkeys import (
    BREAKER_STATE,
    DELIVERIES,
    ENDPOINTS,
    METRICS,
    ORCHESTRATOR,
    QUEUE,
    REGISTRY,
    SECRETS,
    SETTINGS,
    STORE,
)
from ..control.cadence import cadence_hold
from ..intake import submit
from ..queue import QueueFull, TypeDeleted
from ..states import RETRYABLE, DeliveryState, JobState
from . import admin_groups
from . import requests as rq
from . import schemas as s
from .admin_types import TYPE_ROUTES
from .auth import admin_only
from .delivery_views import delivery_summary, delivery_view
from .docs_text import IDEMPOTENCY_HEADER, INVOKE_DESCRIPTION, INVOKE_EXAMPLES, errors
from .events import job_events
from .health import health, metrics_handler
from .problems import Problem, invalid, not_found
from .targets import route_of
from .validation import BODY, QUERY


@docs(
    tags=["jobs"],
    summary="Queue a job: run a bot with a payload",
    description=INVOKE_DESCRIPTION,
    parameters=[IDEMPOTENCY_HEADER],
    request_examples=INVOKE_EXAMPLES,
    responses=errors(400, 401, 404, 408, 409, 413, 415, 422, 429, 503),
)
@request_schema(s.InvokeRequest)
@response_schema(s.Invoked, 202, description="queued (Location: the job's URL)")
@response_schema(s.Invoked, 200, description="a repeat: the job first created with this key")
async def invoke(request: web.Request) -> web.Response:
    key = rq.idempotency_key(request)
    route = await route_of(request.app, request[BODY], key)
    job = rq.invoke_args(request.app, request[BODY], key, route)
    try:
        enqueued = await submit(request.app[QUEUE], request.app.get(ORCHESTRATOR), **job)
    except QueueFull as full:
        raise rq.queue_full(full) from None
    except TypeDeleted:
        raise invalid("botType", f"bot type {job['bot_type']} was just deleted") from None
    if route.group and enqueued.created:
        request.app[METRICS].observe_group_selection(route.group["groupId"], route.group["member"])
    return rq.invoked_response(request, job, enqueued)


@docs(
    tags=["jobs"], summary="A job's state, result and webhook", responses=errors(401, 404, 429, 503)
)
@response_schema(s.JobView, 200)
async def get_job(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    job = await queue.get(request.match_info["jobId"])
    if job is None:
        raise not_found("job")
    view = job.view()
    bt = request.app[SETTINGS].bot_types.get(job.bot_type)
    if job.state == JobState.QUEUED and bt is not None:
        store = request.app[STORE]
        view.update(await cadence_hold(store, bt))
    return web.json_response(view, dumps=jsonsafe.dumps)


@docs(
    tags=["jobs"],
    summary="Cancel a job",
    description="A waiting job is cancelled at once (200). A running one is killed wherever it "
    "runs (202 'cancelling'; its state becomes 'cancelled' shortly). 409 if it already ended.",
    responses=errors(401, 404, 409, 429, 503),
)
@response_schema(s.Cancelled, 200, description="cancelled")
@response_schema(s.Cancelled, 202, description="running: the bot is being killed")
async def cancel_job(request: web.Request) -> web.Response:
    job_id = request.match_info["jobId"]
    code, state = await request.app[QUEUE].cancel(rq.known_job_id(request.app, job_id))
    return rq.cancel_response(job_id, code, state)


@docs(
    tags=["jobs"],
    summary="Run a failed or timed-out job again",
    description="A cancelled job cannot be retried: its payload is freed when it is cancelled.",
    responses=errors(401, 404, 409, 429, 503),
)
@response_schema(s.Retried, 202)
async def retry_job(request: web.Request) -> web.Response:
    job_id = request.match_info["jobId"]
    code, state = await request.app[QUEUE].retry(rq.known_job_id(request.app, job_id))
    if code == -1:
        raise not_found("job")
    if code == 0:
        freed = "; a cancelled job's payload is freed at cancel: invoke it again" * (
            state == JobState.CANCELLED
        )
        retryable = " or ".join(RETRYABLE)
        raise Problem(409, f"job is {state}; only {retryable} jobs can be retried{freed}")
    url = str(request.app.router["job"].url_for(jobId=job_id))
    return web.json_response(
        {"jobId": job_id, "status": JobState.QUEUED, "statusUrl": url}, status=202
    )


@docs(
    tags=["jobs"],
    summary="The bot's captured output (the last lines)",
    responses=errors(401, 404, 422, 429, 503),
)
@querystring_schema(s.LogsQuery)
@response_schema(s.Logs, 200)
async def job_logs(request: web.Request) -> web.Response:
    job_id = request.match_info["jobId"]
    queue = request.app[QUEUE]
    if await queue.get(job_id) is None:
        raise not_found("job")
    lines = await queue.logs(job_id, request[QUERY]["tail"])
    return web.json_response({"jobId": job_id, "lines": lines})


@docs(
    tags=["jobs"],
    summary="List jobs, newest first; filter by type and state, search with q",
    responses=errors(401, 422, 429, 503),
)
@querystring_schema(s.JobsQuery)
@response_schema(s.JobsPage, 200)
async def list_jobs(request: web.Request) -> web.Response:
    q = rq.jobs_query(request.app, request[QUERY])
    text = request[QUERY].get("q")
    queue = request.app[QUEUE]
    pages = await asyncio.gather(
        *(queue.list_jobs(t, q.state, q.limit, q.before, query=text) for t in q.bot_types)
    )
    return web.json_response(await rq.jobs_page(queue, pages, q), dumps=jsonsafe.dumps)


@docs(
    tags=["queues"], summary="Counts per bot type and for webhooks", responses=errors(401, 429, 503)
)
@response_schema(s.Stats, 200)
async def stats(request: web.Request) -> web.Response:
    stats, adhoc = await asyncio.gather(
        request.app[QUEUE].stats(), request.app[DELIVERIES].adhoc_counts()
    )
    return web.json_response(rq.stats_view(stats, adhoc))


@docs(
    tags=["queues"],
    summary="Bot types, their bots, limits and timeouts",
    responses=errors(401, 429, 503),
)
@response_schema(s.Bots, 200)
async def bots(request: web.Request) -> web.Response:
    return web.json_response({"botTypes": request.app[REGISTRY].describe()})


@docs(tags=["queues"], summary="A bot type's live queue", responses=errors(401, 404, 429, 503))
@response_schema(s.QueueView, 200)
async def get_queue(request: web.Request) -> web.Response:
    bot_type = rq.known_bot_type(request.app, request.match_info["botType"])
    return web.json_response(rq.queue_view(bot_type, await request.app[QUEUE].stats()))


@docs(
    tags=["queues"],
    summary="Change the live concurrency limit, pause or resume (admin)",
    responses=errors(400, 401, 403, 404, 408, 413, 415, 422, 429, 503),
)
@request_schema(s.QueuePatch)
@response_schema(s.QueueView, 200)
@admin_only
async def patch_queue(request: web.Request) -> web.Response:
    bot_type = rq.known_bot_type(request.app, request.match_info["botType"])
    queue = request.app[QUEUE]
    await queue.set_queue(bot_type, **request[BODY])
    return web.json_response(rq.queue_view(bot_type, await queue.stats()))


@docs(
    tags=["webhooks"],
    summary="Webhook deliveries, newest first",
    responses=errors(401, 422, 429, 503),
)
@querystring_schema(s.DeliveriesQuery)
@response_schema(s.Deliveries, 200)
async def list_deliveries(request: web.Request) -> web.Response:
    q = request[QUERY]
    rows = await request.app[DELIVERIES].list(q.get("state"), q.get("jobId"), q["limit"])
    views = [delivery_summary(f) for f in rows]
    return web.json_response({"deliveries": views}, dumps=jsonsafe.dumps)


@docs(
    tags=["webhooks"],
    summary="One delivery with every attempt",
    responses=errors(401, 404, 429, 503),
)
@response_schema(s.Delivery, 200)
async def get_delivery(request: web.Request) -> web.Response:
    stored = await request.app[DELIVERIES].get(request.match_info["deliveryId"])
    if stored is None:
        raise not_found("delivery")
    return web.json_response(delivery_view(stored), dumps=jsonsafe.dumps)


@docs(
    tags=["webhooks"],
    summary="Send any JSON payload to a URL: signed, retried, dead-lettered like a job's webhook",
    description="The body receivers get is the payload as JSON. Ad-hoc deliveries show in "
    "GET /deliveries (with jobId null) and can be redelivered.",
    parameters=[IDEMPOTENCY_HEADER],
    responses=errors(400, 401, 408, 413, 415, 422, 429, 503),
)
@request_schema(s.DeliverRequest)
@response_schema(s.DeliverAccepted, 202, description="scheduled (Location: the delivery's URL)")
@response_schema(s.DeliverAccepted, 200, description="a repeat: the first delivery with this key")
async def deliver(request: web.Request) -> web.Response:
    args = rq.deliver_args(request.app, request[BODY], rq.idempotency_key(request))
    done = await request.app[DELIVERIES].create_adhoc(**args)
    return rq.delivered_response(request, done)


@docs(
    tags=["webhooks"],
    summary="Send a delivered or dead-lettered delivery again (admin)",
    responses=errors(401, 403, 404, 409, 429, 503),
)
@response_schema(s.Redelivered, 202)
@admin_only
async def redeliver(request: web.Request) -> web.Response:
    delivery_id = request.match_info["deliveryId"]
    code, _ = await request.app[DELIVERIES].redeliver(delivery_id)
    if code == -1:
        raise not_found("delivery")
    if code == 0:
        raise Problem(409, "the delivery is still pending; it will be attempted again anyway")
    return web.json_response(
        {"deliveryId": delivery_id, "state": DeliveryState.PENDING}, status=202
    )


@docs(
    tags=["webhooks"],
    summary="Redeliver in bulk: every dead (or delivered) delivery since a time (admin)",
    description="Run it with ?dryRun=true first for the count. At most `limit` per call, oldest "
    "first; a replayed delivery leaves its state's index, so calling again goes on with the next.",
    responses=errors(400, 401, 403, 408, 413, 415, 422, 429, 503),
)
@request_schema(s.ReplayRequest)
@querystring_schema(s.ReplayQuery)
@response_schema(s.Replayed, 200)
@admin_only
async def replay(request: web.Request) -> web.Response:
    body, dry_run = request[BODY], request[QUERY]["dryRun"]
    matched, redelivered = await request.app[DELIVERIES].redeliver_matching(
        body["state"],
        int(body["since"].timestamp() * 1000),
        url=body.get("endpoint", ""),
        job_id=rq.replay_job_id(request.app, body.get("jobId", "")),
        limit=body["limit"],
        dry_run=dry_run,
    )
    return web.json_response({"matched": matched, "redelivered": redelivered, "dryRun": dry_run})


@docs(
    tags=["webhooks"],
    summary="The signing secrets (fingerprints, not values) and when each stops signing (admin)",
    responses=errors(401, 403, 429, 503),
)
@response_schema(s.SecretRing, 200)
@admin_only
async def list_secrets(request: web.Request) -> web.Response:
    ring = await request.app[SECRETS].load()
    return web.json_response({"secrets": rq.ring_view(ring, int(time.time() * 1000))})


@docs(
    tags=["webhooks"],
    summary="Rotate the signing secret: a new one signs at once, older ones for the overlap (admin)",
    description="Every unexpired secret signs (webhook-signature: v1,<sig1> v1,<sig2>), so "
    "receivers holding the old or the new secret verify every delivery during the overlap "
    "(default webhooks.secret_overlap_s, 24 h). The new secret is shown only in this answer.",
    responses=errors(400, 401, 403, 408, 413, 415, 422, 429, 503),
)
@request_schema(s.SecretRotate)
@response_schema(s.SecretRotated, 200)
@admin_only
async def rotate_secret(request: web.Request) -> web.Response:
    body = request[BODY]
    secret, ring = await request.app[SECRETS].rotate(rq.new_secret(body), body.get("overlapS"))
    view = rq.ring_view(ring, int(time.time() * 1000))
    return web.json_response({"secret": secret, "secrets": view})


ENDPOINT_ERRORS = (400, 401, 403, 408, 413, 415, 422, 429, 503)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _endpoint_view(request: web.Request, endpoint, now_ms: int | None = None) -> dict:
    breaker = request.app.get(BREAKER_STATE)
    return rq.endpoint_view(
        endpoint, now_ms or _now_ms(), breaker(endpoint.id) if breaker else None
    )


@docs(
    tags=["endpoints"],
    summary="Subscribe an endpoint to job events (admin)",
    description="Every matching job event is delivered to it (as well as to the job's own "
    "webhookUrl), signed with the endpoint's own secret; one delivery per (event, endpoint).",
    responses=errors(*ENDPOINT_ERRORS),
)
@request_schema(s.EndpointCreate)
@response_schema(s.EndpointCreated, 201, description="created (Location: its URL)")
@admin_only
async def create_endpoint(request: web.Request) -> web.Response:
    body = request[BODY]
    fields = rq.endpoint_fields(request.app, body)
    secret = rq.new_secret(body)
    endpoint, secret = await request.app[ENDPOINTS].create(fields, secret)
    url = str(request.app.router["endpoint"].url_for(endpointId=endpoint.id))
    view = {**_endpoint_view(request, endpoint), "secret": secret}
    return web.json_response(view, status=201, headers={"Location": url})


@docs(tags=["endpoints"], summary="Every endpoint (admin)", responses=errors(401, 403, 429, 503))
@response_schema(s.Endpoints, 200)
@admin_only
async def list_endpoints(request: web.Request) -> web.Response:
    now = _now_ms()
    views = [_endpoint_view(request, e, now) for e in await request.app[ENDPOINTS].all()]
    return web.json_response({"endpoints": views})


@docs(tags=["endpoints"], summary="One endpoint (admin)", responses=errors(401, 403, 404, 429, 503))
@response_schema(s.EndpointView, 200)
@admin_only
async def get_endpoint(request: web.Request) -> web.Response:
    endpoint = await request.app[ENDPOINTS].get(request.match_info["endpointId"])
    if endpoint is None:
        raise not_found("endpoint")
    return web.json_response(_endpoint_view(request, endpoint))


@docs(
    tags=["endpoints"],
    summary="Change an endpoint's URL, subscriptions or filters, or disable it (admin)",
    responses=errors(404, *ENDPOINT_ERRORS),
)
@request_schema(s.EndpointPatch)
@response_schema(s.EndpointView, 200)
@admin_only
async def patch_endpoint(request: web.Request) -> web.Response:
    changes = rq.endpoint_fields(request.app, request[BODY])
    endpoint = await request.app[ENDPOINTS].update(request.match_info["endpointId"], changes)
    if endpoint is None:
        raise not_found("endpoint")
    return web.json_response(_endpoint_view(request, endpoint))


@docs(
    tags=["endpoints"],
    summary="Delete an endpoint: no new deliveries; those already made still go (admin)",
    responses=errors(401, 403, 404, 429, 503),
)
@admin_only
async def delete_endpoint(request: web.Request) -> web.Response:
    if not await request.app[ENDPOINTS].delete(request.match_info["endpointId"]):
        raise not_found("endpoint")
    return web.Response(status=204)


@docs(
    tags=["endpoints"],
    summary="Rotate an endpoint's signing secret, as the global one (admin)",
    responses=errors(404, *ENDPOINT_ERRORS),
)
@request_schema(s.SecretRotate)
@response_schema(s.EndpointCreated, 200)
@admin_only
async def rotate_endpoint_secret(request: web.Request) -> web.Response:
    body = request[BODY]
    done = await request.app[ENDPOINTS].rotate_secret(
        request.match_info["endpointId"], rq.new_secret(body), body.get("overlapS")
    )
    if done is None:
        raise not_found("endpoint")
    endpoint, secret = done
    return web.json_response({**_endpoint_view(request, endpoint), "secret": secret})


# method, path, handler, route name. Read top to bottom, this is the API (DESIGN §6).
ROUTES = [
    ("POST", "/invoke", invoke, "invoke"),
    ("GET", "/job/{jobId}", get_job, "job"),
    ("DELETE", "/job/{jobId}", cancel_job, None),
    ("POST", "/job/{jobId}/retry", retry_job, None),
    ("GET", "/job/{jobId}/logs", job_logs, None),
    ("GET", "/job/{jobId}/events", job_events, None),
    ("GET", "/jobs", list_jobs, None),
    ("GET", "/stats", stats, None),
    ("GET", "/bots", bots, None),
    ("GET", "/queues/{botType}", get_queue, None),
    ("PATCH", "/queues/{botType}", patch_queue, None),
    ("GET", "/deliveries", list_deliveries, None),
    # Not "redeliver": POST /deliveries/redeliver is the bulk replay, and the Allow header of
    # /deliveries/redeliver must not advertise this GET.
    ("GET", "/deliveries/{deliveryId:(?!redeliver$)[^/]+}", get_delivery, "delivery"),
    ("POST", "/deliver", deliver, None),
    ("GET", "/delivery/{deliveryId}", get_delivery, None),  # the original's name for it
    ("POST", "/deliveries/redeliver", replay, None),
    ("POST", "/deliveries/{deliveryId}/redeliver", redeliver, None),
    ("GET", "/webhooks/secrets", list_secrets, None),
    ("POST", "/webhooks/secret/rotate", rotate_secret, None),
    ("POST", "/endpoints", create_endpoint, None),
    ("GET", "/endpoints", list_endpoints, None),
    ("GET", "/endpoints/{endpointId}", get_endpoint, "endpoint"),
    ("PATCH", "/endpoints/{endpointId}", patch_endpoint, None),
    ("DELETE", "/endpoints/{endpointId}", delete_endpoint, None),
    ("POST", "/endpoints/{endpointId}/secret/rotate", rotate_endpoint_secret, None),
    ("GET", "/health", health, None),
    ("GET", "/metrics", metrics_handler, None),  # built per app (its registry)
    *TYPE_ROUTES,  # /admin/config/bot-types (api/admin_types.py)
    *admin_groups.ROUTES,
]


def add_routes(app: web.Application) -> None:
    for method, path, handler, name in ROUTES:
        if handler is metrics_handler:
            handler = metrics_handler(app)
        if method == "GET":  # no implicit HEAD: the Allow header lists exactly what we serve
            app.router.add_get(path, handler, name=name, allow_head=False)
        else:
            app.router.add_route(method, path, handler, name=name)
