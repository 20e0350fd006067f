"""The route table and its handlers: parse (schemas, via the validation middleware) → one call
into the domain → view. No business logic here; request checks that need configuration
(bot types, bots, timeouts, webhook URLs) live in ``requests.py``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp_apispec import docs, querystring_schema, request_schema, response_schema

from .. import jsonsafe
from ..appkeys import (
    DELIVERIES,
    METRICS,
    ORCHESTRATOR,
    QUEUE,
    REGISTRY,
    SETTINGS,
    STORE,
)
from ..control.cadence import cadence_hold
from ..intake import submit
from ..queue import QueueFull, TypeDeleted
from ..states import RETRYABLE, JobState
from . import admin_groups
from . import requests as rq
from . import schemas as s
from .admin_types import TYPE_ROUTES
from .admin_webhooks import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    list_secrets,
    patch_endpoint,
    redeliver,
    replay,
    rotate_endpoint_secret,
    rotate_secret,
)
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
