"""Automatic disabling of an endpoint on a real redis-server with loopback receivers: one that
fails every request for `webhooks.endpoint_disable_after_s` (1 s here) is disabled, its
deliveries are held (not attempted, not dead-lettered), an `endpoint.disabled` event goes to the
endpoint subscribed to it (signed with that endpoint's secret), and re-enabling sends what was
held at once (long before the hold would have ended)."""

from __future__ import annotations

import json
import logging
import time

from botsys.endpoints import EndpointStore
from botsys.webhooks.dispatcher import HELD_MS, WebhookDispatcher
from tests.conftest import make_settings
from tests.integration.test_fan_out import endpoint_with_deliveries, finish_jobs, start_receiver
from tests.support.requires import require_module
from tests.support.store import outbox_for, queue_for, store_of
from tests.support.waits import run_dispatcher_until as run_until


async def test_a_failing_endpoint_is_disabled_held_announced_and_replayed(
    redis_factory, aiohttp_server, caplog
):
    bad, watcher = await start_receiver(aiohttp_server), await start_receiver(aiohttp_server)
    bad.default = 500
    s = make_settings(
        **{
            "webhooks.allow": ["127.0.0.1"],
            "webhooks.retry_delay_ms": 50,
            "webhooks.max_delay_ms": 200,
            "webhooks.max_retries": 100,
            "webhooks.breaker_window": 4,
            "webhooks.breaker_open_s": 0.2,
            "webhooks.endpoint_disable_after_s": 1.0,
        }
    )
    q = queue_for(redis_factory(), s, "r1")
    await q.seed_limits()
    store = outbox_for(q)
    eps = EndpointStore(store_of(q), q, 3600, store)
    failing, _ = await eps.create({"url": bad.url, "description": "billing"}, None)
    told, told_secret = await eps.create(
        {"url": watcher.url, "eventTypes": ["endpoint.disabled"]}, None
    )
    jobs = await finish_jobs(q, [("python", "succeeded")] * 5)

    def dispatcher() -> WebhookDispatcher:
        d = WebhookDispatcher(
            store,
            s.webhooks,
            endpoint_keyring=eps.keyring_for,
            endpoint_disabled=eps.is_disabled,
            endpoint_failing=eps.disable_failing,
        )
        eps.on_enabled(d.forget_endpoint)
        return d

    async def disabled_and_announced():
        return (await eps.get(failing.id)).disabled and len(watcher.hits) >= 1

    caplog.set_level(logging.WARNING, logger="botsys.webhooks")
    started = time.monotonic()
    await run_until(dispatcher(), disabled_and_announced, timeout=20)
    took = time.monotonic() - started
    assert 1.0 <= took < 10, took

    ep = await eps.get(failing.id)
    assert ep.disabled_at_ms > 0 and ep.disabled_reason.startswith("no successful delivery since")
    assert eps.is_disabled(failing.id) and not eps.is_disabled(told.id)
    # no job event went to the watcher, no endpoint.disabled to the disabled one
    assert {h.headers["X-Event-Type"] for h in bad.hits} == {"job.succeeded"}
    [hit] = watcher.hits
    assert hit.headers["X-Event-Type"] == "endpoint.disabled"
    event = json.loads(hit.body)
    assert event["type"] == "endpoint.disabled"
    assert event["data"]["endpointId"] == failing.id and event["data"]["description"] == "billing"
    sw = require_module("standardwebhooks", "pip install -e '.[test]'")
    sw.Webhook(told_secret).verify(hit.body, hit.headers)
    [line] = [r for r in caplog.records if "disabled" in r.getMessage()]
    assert line.levelno == logging.WARNING and failing.id in line.getMessage()
    assert bad.url not in line.getMessage() and "whsec_" not in line.getMessage()

    # held: every delivery still pending, none dead, the next look a hold away
    views = await store.list(job_id=jobs[0]) + await store.list(state="dead")
    assert [v["state"] for v in views] == ["pending"]
    pending = await store.list(state="pending")
    assert len(pending) == 5 and {p["endpoint"] for p in pending} == {failing.id}
    hits_when_disabled = len(bad.hits)
    held = dispatcher()
    await held.run_once()  # nothing is due: the held ones wait
    assert len(bad.hits) == hits_when_disabled

    # re-enabled and healthy: what was held goes at once, not after the hold
    bad.default = 200
    await eps.update(failing.id, {"disabled": False})
    ep = await eps.get(failing.id)
    assert not ep.disabled and ep.disabled_at_ms == 0 and not ep.disabled_reason

    async def all_delivered():
        return len(await store.list(state="delivered")) == 6  # 5 held + the event

    started = time.monotonic()
    await run_until(dispatcher(), all_delivered, timeout=HELD_MS / 1000 / 2)
    assert time.monotonic() - started < 20  # far below the hold (HELD_MS, 60 s) it rules out
    assert sorted(h.headers["X-Bot-Job-Id"] for h in bad.hits[hits_when_disabled:]) == sorted(jobs)
    assert len(watcher.hits) == 1  # announced once


async def test_a_replica_that_held_back_after_the_re_enable_wakes_them_on_its_reload(
    redis_factory, aiohttp_server
):
    """Replica B still thinks the endpoint disabled when A re-enables it: B hands the deliveries
    A just woke back for a whole hold. B's own reload (the endpoints channel) wakes them again,
    so they go at once instead of after HELD_MS."""
    e = await endpoint_with_deliveries(redis_factory(), aiohttp_server, 3)
    receiver, s, outbox, eps_a, ep = e.receiver, e.settings, e.outbox, e.endpoints, e.endpoint
    await eps_a.update(ep.id, {"disabled": True})
    q_b = queue_for(redis_factory(), s, "r2")
    eps_b = EndpointStore(store_of(q_b), q_b, 3600, outbox_for(q_b))
    await eps_b.reload()
    assert eps_b.is_disabled(ep.id)

    await eps_a.update(ep.id, {"disabled": False})  # A wakes them: due now
    stale = WebhookDispatcher(
        outbox_for(q_b),
        s.webhooks,
        endpoint_keyring=eps_b.keyring_for,
        endpoint_disabled=eps_b.is_disabled,
    )
    await stale.run_once()  # B, not reloaded yet, hands them back for the hold
    held = await outbox.list(state="pending")
    assert len(held) == 3 and not receiver.hits

    await eps_b.reload()  # B hears of the re-enable
    assert not eps_b.is_disabled(ep.id)

    async def all_delivered():
        return len(await outbox.list(state="delivered")) == 3

    started = time.monotonic()
    await run_until(
        WebhookDispatcher(outbox, s.webhooks, endpoint_keyring=eps_a.keyring_for),
        all_delivered,
        timeout=HELD_MS / 1000 / 2,
    )
    # < 20 s: far below the hold (HELD_MS, 60 s) it rules out, with room for a loaded machine.
    assert time.monotonic() - started < 20 and len(receiver.hits) == 3
