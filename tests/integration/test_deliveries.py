"""Webhook deliveries end to end in-process: the completion script schedules a delivery in
Redis, the real dispatcher sends it to a loopback receiver, every attempt is recorded."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from botsys.api.delivery_views import delivery_view
from botsys.queue import JobQueue
from botsys.store.outbox import delivery_type
from botsys.webhooks import verify
from botsys.webhooks.dispatcher import WebhookDispatcher
from tests.conftest import make_settings
from tests.support.store import outbox_for, queue_for
from tests.support.timing import MARGIN_S
from tests.support.waits import run_dispatcher_until as run_until
from tests.webhooks.fakes import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def receiver(aiohttp_server):
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    rec.port = (await aiohttp_server(app, host="127.0.0.1")).port
    return rec


def settings_for(receiver, **kw):
    return make_settings(
        **{
            "webhooks.allow": [f"127.0.0.1:{receiver.port}"],
            "webhooks.retry_delay_ms": 50,
            "webhooks.max_retries": 3,
            "webhooks.secret": SECRET,
            "webhooks.lease_ms": 1000,
            **kw,
        }
    )


async def finish_job(q: JobQueue, url: str, status="succeeded") -> str:
    await q.seed_limits()
    job = await q.enqueue("python", "simulate", {"x": 1}, webhook_url=url)
    _, [claim] = await q.claim("python", 1)
    done = await q.complete(
        claim, status, result_json='{"answer":42}', error="" if status == "succeeded" else "boom"
    )
    assert done.delivery_id
    return job.job_id


async def test_delivery_is_signed_recorded_and_reflected_on_the_job(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    job_id = await finish_job(q, receiver.url)
    did = f"msg_{job_id}"
    assert delivery_type(did) == "python"

    async def delivered():
        d = await store.get(did)
        return d.fields["state"] == "delivered"

    await run_until(WebhookDispatcher(store, s.webhooks), delivered)
    [hit] = receiver.hits
    body = json.loads(hit.body)
    assert body["jobId"] == job_id and body["result"] == {"answer": 42} and body["success"] is True
    assert hit.headers["webhook-id"] == did and hit.headers["X-Delivery-Attempt"] == "1"
    verify(SECRET, hit.headers, hit.body)  # raises if the signature is wrong
    view = (await q.get(job_id)).view()["webhook"]
    assert view["state"] == "delivered" and view["attempts"] == 1 and view["lastStatus"] == 200
    d = delivery_view(await store.get(did))
    assert [a["statusCode"] for a in d["history"]] == [200]


async def test_retries_keep_the_webhook_id_then_succeed(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    receiver.script.extend([500, 503])
    job_id = await finish_job(q, receiver.url, status="failed")

    async def delivered():
        return (await store.get(f"msg_{job_id}")).fields["state"] == "delivered"

    await run_until(WebhookDispatcher(store, s.webhooks), delivered)
    assert [h.headers["X-Delivery-Attempt"] for h in receiver.hits] == ["1", "2", "3"]
    assert {h.headers["webhook-id"] for h in receiver.hits} == {f"msg_{job_id}"}
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    assert gaps[1] > gaps[0], f"backoff grows: gaps {gaps}"
    assert json.loads(receiver.hits[0].body)["success"] is False


async def test_permanent_failure_dead_letters_and_redeliver_sends_again(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    receiver.script.append(400)
    job_id = await finish_job(q, receiver.url)
    did = f"msg_{job_id}"

    async def dead():
        return (await store.get(did)).fields["state"] == "dead"

    await run_until(WebhookDispatcher(store, s.webhooks), dead)
    assert len(receiver.hits) == 1
    assert (await q.get(job_id)).view()["webhook"]["state"] == "dead"
    assert [d["id"] for d in await store.list(state="dead")] == [did]
    assert await store.redeliver(did) == (1, "pending")
    assert await store.redeliver(did) == (0, "pending")

    async def delivered():
        return (await store.get(did)).fields["state"] == "delivered"

    await run_until(WebhookDispatcher(store, s.webhooks), delivered)
    assert [h.headers["X-Delivery-Attempt"] for h in receiver.hits] == ["1", "2"]


async def test_a_replica_dying_mid_send_means_a_retry_not_a_loss(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    job_id = await finish_job(q, receiver.url)
    [claimed] = await store.claim_due(10)  # a replica claims, then dies before recording
    assert await store.claim_due(10) == []  # leased: nobody else sends it meanwhile
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def delivered():
        return (await store.get(f"msg_{job_id}")).fields["state"] == "delivered"

    await run_until(WebhookDispatcher(store, s.webhooks), delivered)
    took = loop.time() - t0
    # Not before the lease expires; soon after it.
    assert 0.9 < took < 1.0 + MARGIN_S, f"re-sent {took:.2f}s after the claim (lease 1 s)"
    assert [h.headers["X-Delivery-Attempt"] for h in receiver.hits] == ["2"]
    stale = await store.finish_attempt(claimed, _record(), None)
    assert stale is False, "the dead replica's late result is refused"


def _record():
    from botsys.webhooks.types import AttemptRecord

    return AttemptRecord(
        at_ms=0,
        duration_ms=1,
        status_code=200,
        error=None,
        response_excerpt="",
        outcome="delivered",
    )
