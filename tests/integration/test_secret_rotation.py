"""Secret rotation on a real redis-server: during the overlap every delivery carries one
signature per live secret, and receivers holding the old or the new secret both verify every
one with the official Standard Webhooks library; a second replica learns the rotation through
pub/sub; after the overlap only the new secret signs."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from botsys.signing_secrets import SecretRing
from botsys.store.notify import Notifier
from botsys.webhooks.dispatcher import WebhookDispatcher
from tests.integration.test_deliveries import SECRET, receiver, settings_for
from tests.support.requires import require_module
from tests.support.store import outbox_for, queue_for, store_for, store_of
from tests.support.waits import run_dispatcher_until as run_until
from tests.support.waits import signalled, until

__all__ = ["receiver"]  # the fixture


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def verifier(secret: str):
    sw = require_module("standardwebhooks", "pip install -e '.[test]'")
    return sw.Webhook(secret)


async def send_all(store, dispatcher, url, n):
    ids = [(await store.create_adhoc(url, b'{"n":%d}' % i)).delivery_id for i in range(n)]

    async def all_delivered():
        return [(await store.get(i)).fields["state"] for i in ids] == ["delivered"] * n

    await run_until(dispatcher, all_delivered)
    return ids


async def test_both_secrets_verify_every_delivery_during_the_overlap(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    store = outbox_for(q)
    ring = SecretRing(store_of(q), s.webhooks)
    new = whsec()
    secret, live = await ring.rotate(new)
    assert secret == new and [x.expires_at_ms is None for x in live] == [False, True]
    dispatcher = WebhookDispatcher(store, s.webhooks, keyring=ring.keyring)
    await send_all(store, dispatcher, receiver.url, 20)
    old_v, new_v = verifier(SECRET), verifier(new)
    assert len(receiver.hits) == 20
    for hit in receiver.hits:
        assert len(hit.headers["webhook-signature"].split(" ")) == 2
        old_v.verify(hit.body, hit.headers)  # raises unless a signature matches
        new_v.verify(hit.body, hit.headers)

    # A rotation with no overlap: the previous secrets stop signing at once.
    newest, live = await ring.rotate(overlap_s=0)
    assert [x.secret for x in live] == [newest]
    receiver.hits.clear()
    await send_all(
        store, WebhookDispatcher(store, s.webhooks, keyring=ring.keyring), receiver.url, 5
    )
    newest_v = verifier(newest)
    sw = require_module("standardwebhooks", "")
    for hit in receiver.hits:
        newest_v.verify(hit.body, hit.headers)
        for stale in (old_v, new_v):
            with pytest.raises(sw.webhooks.WebhookVerificationError):
                stale.verify(hit.body, hit.headers)


async def test_another_replica_signs_with_the_rotated_secret(redis_factory, receiver):
    s = settings_for(receiver)
    a_redis, b_redis = redis_factory(), redis_factory()
    a, b = (
        SecretRing(store_for(a_redis, s), s.webhooks),
        SecretRing(store_for(b_redis, s), s.webhooks),
    )
    notifier = Notifier(b_redis)
    b.subscribe(notifier)
    task = asyncio.create_task(notifier.run())
    try:
        await asyncio.wait_for(notifier.connected.wait(), 5)
        with signalled(b, "reload") as reloaded:  # the message makes b reload its ring
            new, _ = await a.rotate(whsec())
            await until(lambda: len(b.keyring.ring) == 2, reloaded, 5)
        assert [x.secret for x in b.keyring.ring] == [SECRET, new]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_before_any_rotation_the_configured_secret_alone_signs(redis_client, receiver):
    s = settings_for(receiver)
    q = queue_for(redis_client, s, "r1")
    ring = SecretRing(store_of(q), s.webhooks)
    assert [x.secret for x in await ring.load()] == [SECRET]
    unsigned = settings_for(receiver, **{"webhooks.secret": ""})
    assert await SecretRing(store_of(q), unsigned.webhooks).load() == []
