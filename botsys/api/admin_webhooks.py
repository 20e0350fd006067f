"""The admin side of webhooks: redeliver one delivery or replay many, the global signing
secrets, and the subscribed endpoints (every handler needs the admin key). The delivery reads
and POST /deliver stay in routes.py beside the other user routes."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp_apispec import docs, querystring_schema, request_schema, response_schema

from ..appkeys import BREAKER_STATE, DELIVERIES, ENDPOINTS, SECRETS
from ..states import DeliveryState
from . import requests as rq
from . import schemas as s
from .auth import admin_only
from .docs_text import errors
from .problems import Problem, not_found
from .validation import BODY, QUERY


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
