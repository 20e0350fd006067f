"""Ad-hoc deliveries (POST /deliver's store half) on a real redis-server, sent by the real
dispatcher to a loopback receiver: signed, retried with the same webhook-id, dead-lettered,
redelivered — as a job's webhook."""

from __future__ import annotations

import json

from botsys.api.delivery_views import delivery_view
from botsys.store.outbox import ADHOC, delivery_type
from botsys.webhooks import verify
from botsys.webhooks.dispatcher import WebhookDispatcher
from tests.integration.test_deliveries import SECRET, receiver, settings_for
from tests.support.store import outbox_for, queue_for
from tests.support.waits import run_dispatcher_until as run_until

__all__ = ["receiver"]  # the fixture


async def test_adhoc_delivery_is_signed_retried_and_listed(redis_client, receiver):
    s = settings_for(receiver)
    store = outbox_for(queue_for(redis_client, s, "r1"))
    receiver.script.extend([503])
    body = b'{"order":1,"total":9.99}'
    did = (await store.create_adhoc(receiver.url, body, "order.paid")).delivery_id
    assert delivery_type(did) == ADHOC

    async def delivered():
        return (await store.get(did)).fields["state"] == "delivered"

    await run_until(WebhookDispatcher(store, s.webhooks), delivered)
    assert [h.body for h in receiver.hits] == [body, body]  # byte for byte, every attempt
    assert [h.headers["X-Delivery-Attempt"] for h in receiver.hits] == ["1", "2"]
    for hit in receiver.hits:
        verify(SECRET, hit.headers, hit.body)
        assert hit.headers["webhook-id"] == did and hit.headers["X-Event-Type"] == "order.paid"
        assert "X-Bot-Job-Id" not in hit.headers
    view = delivery_view(await store.get(did))
    assert [a["statusCode"] for a in view["history"]] == [503, 200]
    assert view["jobId"] is None and view["body"] == json.loads(body)
    [listed] = await store.list(state="delivered")
    assert listed["id"] == did and listed["eventType"] == "order.paid"


async def test_adhoc_delivery_dead_letters_then_redelivers(redis_client, receiver):
    s = settings_for(receiver)
    store = outbox_for(queue_for(redis_client, s, "r1"))
    receiver.script.extend([500, 500, 500])  # max_retries 3: dead after the third
    did = (await store.create_adhoc(receiver.url, b"[]")).delivery_id

    async def state_is(want):
        return (await store.get(did)).fields["state"] == want

    await run_until(WebhookDispatcher(store, s.webhooks), lambda: state_is("dead"))
    assert len(receiver.hits) == 3
    assert [d["id"] for d in await store.list(state="dead")] == [did]
    assert await store.redeliver(did) == (1, "pending")
    await run_until(WebhookDispatcher(store, s.webhooks), lambda: state_is("delivered"))
    assert [h.headers["X-Delivery-Attempt"] for h in receiver.hits] == ["1", "2", "3", "4"]
    assert {h.headers["webhook-id"] for h in receiver.hits} == {did}


async def test_an_idempotency_key_creates_one_delivery(redis_client, receiver):
    s = settings_for(receiver)
    store = outbox_for(queue_for(redis_client, s, "r1"))
    first = await store.create_adhoc(receiver.url, b"1", idempotency_key="k")
    again = await store.create_adhoc(receiver.url, b"1", idempotency_key="k")
    other = await store.create_adhoc(receiver.url, b"2", idempotency_key="k")
    assert first.created and not again.created and again.same_request
    assert again.delivery_id == other.delivery_id == first.delivery_id
    assert not other.same_request
    assert len(await store.list()) == 1
