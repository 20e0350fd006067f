"""delivery.dead on a real redis-server with loopback receivers: a dead-lettered delivery (a job
event to an endpoint, or an ad-hoc one) makes one event for each endpoint subscribed to
delivery.dead, signed with that endpoint's secret and fetchable by its id; a delivery.dead event
that dies itself makes none (no loops)."""

from __future__ import annotations

import json
from collections import Counter

from botsys.endpoints import EndpointStore
from botsys.webhooks.dispatcher import WebhookDispatcher
from tests.conftest import make_settings
from tests.integration.test_fan_out import finish_jobs, start_receiver
from tests.support.requires import require_module
from tests.support.store import outbox_for, queue_for, store_of
from tests.support.waits import run_dispatcher_until as run_until


async def test_dead_deliveries_are_announced_once_and_never_loop(redis_factory, aiohttp_server):
    bad, watcher, broken = [await start_receiver(aiohttp_server) for _ in range(3)]
    bad.default = broken.default = 500
    s = make_settings(
        **{
            "webhooks.allow": ["127.0.0.1"],
            "webhooks.retry_delay_ms": 10,
            "webhooks.max_retries": 2,
        }
    )
    q = queue_for(redis_factory(), s, "r1")
    await q.seed_limits()
    store = outbox_for(q)
    eps = EndpointStore(store_of(q), q, 3600, store)
    failing, _ = await eps.create({"url": bad.url, "eventTypes": ["job.failed"]}, None)
    told, told_secret = await eps.create(
        {"url": watcher.url, "eventTypes": ["delivery.dead"]}, None
    )
    # also told, but fails: its delivery.dead events die without making more
    loud, _ = await eps.create({"url": broken.url, "eventTypes": ["delivery.dead"]}, None)
    [job] = await finish_jobs(q, [("python", "failed")])
    await finish_jobs(q, [("python", "succeeded")])  # not subscribed: nothing to die
    adhoc = (await store.create_adhoc(bad.url, b'{"n": 1}', "invoice.paid")).delivery_id
    dead_job_delivery = f"msg_{job}_{failing.id}"

    async def settled():
        return not await store.list(state="pending")

    d = WebhookDispatcher(store, s.webhooks, endpoint_keyring=eps.keyring_for)
    await run_until(d, settled, timeout=30)

    # two dead deliveries, each announced to the two subscribers; the two events to the
    # broken subscriber died too, and made nothing
    dead = {v["id"] for v in await store.list(state="dead")}
    assert dead == {
        dead_job_delivery,
        adhoc,
        f"{dead_job_delivery}_dead_{loud.id}",
        f"{adhoc}_dead_{loud.id}",
    }
    # the events about the job's dead delivery are listed with the job's deliveries
    by_job = {v["id"] for v in await store.list(job_id=job)}
    assert by_job == {
        dead_job_delivery,
        f"{dead_job_delivery}_dead_{told.id}",
        f"{dead_job_delivery}_dead_{loud.id}",
    }
    delivered = {v["id"] for v in await store.list(state="delivered")}
    assert delivered == {f"{dead_job_delivery}_dead_{told.id}", f"{adhoc}_dead_{told.id}"}
    assert Counter(h.headers["X-Event-Type"] for h in watcher.hits) == {"delivery.dead": 2}
    assert Counter(h.headers["X-Event-Type"] for h in broken.hits) == {"delivery.dead": 4}

    events = {json.loads(h.body)["data"]["deliveryId"]: json.loads(h.body) for h in watcher.hits}
    about_job = events[dead_job_delivery]
    assert about_job["type"] == "delivery.dead"
    assert about_job["data"] == {
        "deliveryId": dead_job_delivery,
        "jobId": job,
        "endpointId": failing.id,
        "eventType": "job.failed",
        "attempts": 2,
        "lastStatus": 500,
    }
    assert events[adhoc]["data"]["endpointId"] is None
    sw = require_module("standardwebhooks", "pip install -e '.[test]'")
    for hit in watcher.hits:
        sw.Webhook(told_secret).verify(hit.body, hit.headers)
    event = (await store.get(f"{adhoc}_dead_{told.id}")).fields
    assert event["state"] == "delivered" and event["endpoint"] == told.id
