"""Endpoints and subscriptions on a real redis-server: 1,000 job events completed by two
replicas fan out to 3 endpoints with different subscriptions, and the real dispatcher delivers
to 3 loopback receivers: each gets exactly its events, each once, signed with its own secret."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass

import pytest
from aiohttp import web

from botsys.config import Settings
from botsys.endpoints import EndpointStore
from botsys.queue import JobQueue
from botsys.store.outbox import Outbox, delivery_type
from botsys.webhooks.dispatcher import WebhookDispatcher
from botsys.webhooks.endpoints import Endpoint
from tests.conftest import make_settings
from tests.support.requires import require_module
from tests.support.store import outbox_for, queue_for, store_of
from tests.support.waits import run_dispatcher_until as run_until
from tests.webhooks.fakes import Receiver

STATES = ("succeeded", "failed", "timed_out")


async def start_receiver(aiohttp_server) -> Receiver:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    rec.port = (await aiohttp_server(app, host="127.0.0.1")).port
    return rec


async def finish_jobs(q: JobQueue, jobs: list[tuple[str, str]]) -> list[str]:
    """Enqueue, claim and complete each (bot type, final state); returns the job ids."""
    ids = []
    for bot_type, _ in jobs:
        job = await q.enqueue(bot_type, "simulate", {}, max_attempts=1)
        ids.append(job.job_id)
    by_id = dict(zip(ids, (s for _, s in jobs), strict=True))
    for bot_type in {t for t, _ in jobs}:
        while True:
            _, claims = await q.claim(bot_type, 100)
            if not claims:
                break
            await asyncio.gather(*(q.complete(c, by_id[c.job_id]) for c in claims))
    return ids


async def test_each_endpoint_gets_exactly_its_events_once(redis_factory, aiohttp_server):
    if redis_factory.backend != "redis":
        pytest.skip("1,000 jobs: the real redis-server's case (fakeredis takes 18 s for it)")
    a, b, c = [await start_receiver(aiohttp_server) for _ in range(3)]
    s = make_settings(
        **{
            "webhooks.allow": ["127.0.0.1"],
            "webhooks.concurrency": 64,
            "webhooks.per_host": 32,
            "webhooks.lease_ms": 5000,
            "bot_types.python.limit": 100,
            "bot_types.node.limit": 100,
        }
    )
    q1, q2 = queue_for(redis_factory(), s, "r1"), queue_for(redis_factory(), s, "r2")
    await q1.seed_limits()
    eps1 = EndpointStore(store_of(q1), q1, 3600)
    everything, _ = await eps1.create({"url": a.url}, None)
    failures, _ = await eps1.create({"url": b.url, "eventTypes": ["job.failed"]}, None)
    node, _ = await eps1.create(
        {"url": c.url, "eventTypes": ["job.succeeded", "job.failed"], "botTypes": ["node"]}, None
    )
    eps2 = EndpointStore(store_of(q2), q2, 3600)
    await eps2.reload()  # replica 2 (its notifier would do this on the change message)

    plan = list(
        itertools.islice(itertools.cycle(itertools.product(("python", "node"), STATES)), 1000)
    )
    ids = await finish_jobs(q1, plan[:500]) + await finish_jobs(q2, plan[500:])
    state_of = dict(zip(ids, (st for _, st in plan), strict=True))
    type_of = dict(zip(ids, (t for t, _ in plan), strict=True))
    want = {
        a: set(ids),
        b: {i for i in ids if state_of[i] == "failed"},
        c: {i for i in ids if type_of[i] == "node" and state_of[i] != "timed_out"},
    }
    total = sum(len(v) for v in want.values())
    assert total == 1000 + 333 + 333, total

    store = outbox_for(q1)

    async def all_arrived():
        return sum(len(r.hits) for r in (a, b, c)) >= total

    dispatcher = WebhookDispatcher(store, s.webhooks, endpoint_keyring=eps1.keyring_for)
    await run_until(dispatcher, all_arrived, timeout=60)
    sw = require_module("standardwebhooks", "pip install -e '.[test]'")
    for rec, endpoint in ((a, everything), (b, failures), (c, node)):
        got = Counter(h.headers["X-Bot-Job-Id"] for h in rec.hits)
        assert set(got) == want[rec] and set(got.values()) == {1}, endpoint.url
        verifier = sw.Webhook(endpoint.secrets[0].secret)
        for hit in rec.hits[:50]:
            verifier.verify(hit.body, hit.headers)
            job_id = hit.headers["X-Bot-Job-Id"]
            assert hit.headers["X-Event-Type"] == f"job.{state_of[job_id]}"
            assert hit.headers["webhook-id"] == f"msg_{job_id}_{endpoint.id}"
            assert delivery_type(hit.headers["webhook-id"]) == type_of[job_id]
    # the job's deliveries list shows its endpoint deliveries
    some = next(i for i in ids if type_of[i] == "node" and state_of[i] == "failed")
    listed = await store.list(job_id=some)
    assert sorted(d["endpoint"] for d in listed) == sorted([everything.id, failures.id, node.id])


async def test_a_disabled_or_deleted_endpoint_gets_nothing_new(redis_client, aiohttp_server):
    rec = await start_receiver(aiohttp_server)
    s = make_settings(**{"webhooks.allow": ["127.0.0.1"]})
    q = queue_for(redis_client, s, "r1")
    await q.seed_limits()
    eps = EndpointStore(store_of(q), q, 3600)
    ep, _ = await eps.create({"url": rec.url}, None)
    [first] = await finish_jobs(q, [("python", "succeeded")])
    await eps.update(ep.id, {"disabled": True})
    await finish_jobs(q, [("python", "succeeded")])
    await eps.update(ep.id, {"disabled": False, "eventTypes": ["job.failed"]})
    await finish_jobs(q, [("python", "succeeded")])
    [failed] = await finish_jobs(q, [("python", "failed")])
    await eps.delete(ep.id)
    await finish_jobs(q, [("python", "failed")])
    store = outbox_for(q)
    pending = [d["jobId"] for d in await store.list(state="pending")]
    assert sorted(pending) == sorted([first, failed])


@dataclass
class EndpointWithDeliveries:
    receiver: Receiver
    settings: Settings
    queue: JobQueue
    outbox: Outbox
    endpoints: EndpointStore
    endpoint: Endpoint
    jobs: list[str]


async def endpoint_with_deliveries(redis, aiohttp_server, n: int) -> EndpointWithDeliveries:
    """A loopback receiver, one endpoint for it (every job event) and ``n`` finished python
    jobs: ``n`` pending deliveries to the endpoint."""
    receiver = await start_receiver(aiohttp_server)
    s = make_settings(**{"webhooks.allow": ["127.0.0.1"]})
    q = queue_for(redis, s, "r1")
    await q.seed_limits()
    outbox = outbox_for(q)
    eps = EndpointStore(store_of(q), q, 3600, outbox)
    ep, _ = await eps.create({"url": receiver.url}, None)
    jobs = await finish_jobs(q, [("python", "succeeded")] * n)
    return EndpointWithDeliveries(receiver, s, q, outbox, eps, ep, jobs)


async def test_a_deleted_endpoints_pending_deliveries_are_dead_lettered_unsent(
    redis_factory, aiohttp_server
):
    e = await endpoint_with_deliveries(redis_factory(), aiohttp_server, 3)
    await e.endpoints.delete(e.endpoint.id)
    d = WebhookDispatcher(
        e.outbox,
        e.settings.webhooks,
        endpoint_keyring=e.endpoints.keyring_for,
        endpoint_exists=e.endpoints.exists,
    )

    async def all_dead():
        return len(await e.outbox.list(state="dead")) == 3

    await run_until(d, all_dead, timeout=20)
    assert not e.receiver.hits  # nothing went out, signed or not
    for view in await e.outbox.list(state="dead"):
        assert view["jobId"] in e.jobs and view["endpoint"] == e.endpoint.id
        [attempt] = (await e.outbox.get(view["id"])).attempts
        assert attempt["statusCode"] is None and attempt["error"].startswith("endpoint_deleted")


async def test_a_cancelled_job_fans_out_job_cancelled(redis_client, aiohttp_server):
    rec = await start_receiver(aiohttp_server)
    s = make_settings(**{"webhooks.allow": ["127.0.0.1"]})
    q = queue_for(redis_client, s, "r1")
    await q.seed_limits()
    eps = EndpointStore(store_of(q), q, 3600)
    ep, _ = await eps.create({"url": rec.url, "eventTypes": ["job.cancelled"]}, None)
    waiting = (await q.enqueue("python", "simulate", {})).job_id
    await q.cancel(waiting)  # cancelled while waiting: cancel.lua
    await finish_jobs(q, [("python", "succeeded")])  # not subscribed
    store = outbox_for(q)
    [d] = await store.list(state="pending")
    assert d["id"] == f"msg_{waiting}_{ep.id}" and d["eventType"] == "job.cancelled"
