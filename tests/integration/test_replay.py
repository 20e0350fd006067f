"""Bulk replay (POST /deliveries/redeliver's store half) on a real redis-server: 500 dead
deliveries across slots are counted by a dry run without change, then replayed and each
delivered exactly once by the real dispatcher; the since, endpoint, jobId and limit filters."""

from __future__ import annotations

import asyncio
from collections import Counter

from botsys.queue import JobQueue
from botsys.store.outbox import Outbox
from botsys.webhooks.dispatcher import WebhookDispatcher
from botsys.webhooks.types import AttemptRecord
from tests.integration.test_deliveries import finish_job, receiver, settings_for
from tests.support.store import outbox_for, queue_for
from tests.support.waits import run_dispatcher_until as run_until

__all__ = ["receiver"]  # the fixture

DEAD = AttemptRecord(0, 1, 410, "HTTP 410", "", "failed")


async def dead_letter_all(store: Outbox) -> list[str]:
    ids = []
    while batch := await store.claim_due(200):
        await asyncio.gather(*(store.finish_attempt(d, DEAD, None) for d in batch))
        ids += [d.id for d in batch]
    return ids


async def test_dry_run_counts_then_500_dead_deliveries_are_delivered_once(redis_client, receiver):
    s = settings_for(receiver, **{"webhooks.concurrency": 64, "webhooks.per_host": 32})
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    job_ids = [await finish_job(q, receiver.url) for _ in range(50)]  # the python slot
    for i in range(450):  # the ad-hoc slot
        await store.create_adhoc(receiver.url, b'{"i":%d}' % i)
    dead = await dead_letter_all(store)
    assert len(dead) == 500 and receiver.hits == []

    assert await store.redeliver_matching("dead", 0, dry_run=True) == (500, 0)
    assert await store.redeliver_matching("delivered", 0, dry_run=True) == (0, 0)
    assert len(await store.list(state="dead", limit=200)) == 200  # nothing moved
    assert await store.redeliver_matching("dead", 0, job_id=job_ids[0], dry_run=True) == (1, 0)
    assert await store.redeliver_matching("dead", 0, url="http://x.test/", dry_run=True) == (0, 0)

    assert await store.redeliver_matching("dead", 0, limit=10_000) == (500, 500)
    assert await store.redeliver_matching("dead", 0, dry_run=True) == (0, 0)

    async def all_delivered():
        done = await store.redeliver_matching("delivered", 0, limit=10_000, dry_run=True)
        return done == (500, 0)

    await run_until(WebhookDispatcher(store, s.webhooks), all_delivered, timeout=60)
    per_id = Counter(h.headers["webhook-id"] for h in receiver.hits)
    assert set(per_id) == set(dead) and set(per_id.values()) == {1}
    assert {h.headers["X-Delivery-Attempt"] for h in receiver.hits} == {"2"}


async def test_since_endpoint_and_limit_filters(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    other = f"http://127.0.0.1:{receiver.port}/other"
    for url in (receiver.url, other):
        await store.create_adhoc(url, b"1")
    early = await dead_letter_all(store)
    boundary = max([await _finished_ms(q, i) for i in early])

    # The next ones end in a later millisecond (a passage of time: nothing signals it).
    while await _redis_ms(redis_client) <= boundary:
        await asyncio.sleep(0.001)
    for _ in range(3):
        await store.create_adhoc(receiver.url, b"2")
    await dead_letter_all(store)

    assert await store.redeliver_matching("dead", 0, dry_run=True) == (5, 0)
    assert await store.redeliver_matching("dead", boundary + 1, dry_run=True) == (3, 0)
    assert await store.redeliver_matching("dead", 0, url=other, dry_run=True) == (1, 0)
    assert await store.redeliver_matching("dead", 0, url=receiver.url, limit=2) == (2, 2)
    assert await store.redeliver_matching("dead", 0, dry_run=True) == (3, 0)
    assert await store.redeliver_matching("dead", 0, url=receiver.url) == (2, 2)
    assert await store.redeliver_matching("dead", 0) == (1, 1)  # the other URL's


async def _finished_ms(q: JobQueue, did: str) -> int:
    return int(await q.redis.hget(q.keys.delivery("_adhoc", did), "finishedAt"))


async def _redis_ms(redis) -> int:
    secs, micros = await redis.time()
    return secs * 1000 + micros // 1000
