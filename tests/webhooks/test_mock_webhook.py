"""The mock webhook over HTTP, and the dispatcher delivering to it end to end."""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiohttp
import pytest

from botsys.config import MockWebhookSettings
from botsys.mock_webhook import create_mock_app
from botsys.webhooks import sign
from botsys.webhooks.dispatcher import WebhookDispatcher
from tests.webhooks.fakes import FakeStore, ManualClock, webhook_settings

SECRET = webhook_settings().secret


def signed(body: bytes, msg_id: str = "msg_1", ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(SECRET, msg_id, ts, body),
        "X-Delivery-Attempt": "2",
    }


@pytest.fixture
def make_mock(aiohttp_client):
    async def make(secret: str = SECRET, clock=time.time, **settings):
        app = create_mock_app(
            MockWebhookSettings(**settings),
            secret=secret,
            delivery_timeout_s=0.1,
            rng=random.Random(1),
            clock=clock,
        )
        return await aiohttp_client(app)

    return make


async def post(client, body: dict, path: str = "/", headers=None):
    raw = json.dumps(body).encode()
    return await client.post(path, data=raw, headers=headers or signed(raw))


async def test_records_and_lists_newest_first(make_mock):
    client = await make_mock()
    for i in range(5):
        resp = await post(client, {"jobId": f"python-{i}", "botType": "python", "success": True})
        assert resp.status == 200 and (await resp.json())["processed"] is True
    page = await (await client.get("/webhooks?limit=2&offset=1")).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [w["jobId"] for w in page["webhooks"]] == ["python-3", "python-2"]
    first = page["webhooks"][0]
    assert first["signature"] == {"checked": True, "valid": True, "error": None}
    assert first["webhookId"] == "msg_1" and first["attempt"] == 2
    one = await client.get(f"/webhooks/{first['id']}")
    assert (await one.json())["body"]["jobId"] == "python-3"
    assert (await client.get("/webhooks/wh_999")).status == 404
    assert (await client.get("/webhooks?limit=abc")).status == 400
    assert (await client.get("/webhooks?limit=0")).status == 400


async def test_any_path_and_non_json_bodies_are_recorded(make_mock):
    client = await make_mock(secret="")
    resp = await client.post("/hooks/a?x=1", data=b"plain text")
    assert resp.status == 200
    (hook,) = (await (await client.get("/webhooks")).json())["webhooks"]
    assert hook["path"] == "/hooks/a" and hook["query"] == "x=1"
    assert hook["body"] is None and hook["rawBody"] == "plain text"
    assert hook["signature"]["checked"] is False


async def test_signature_failures_are_recorded(make_mock):
    client = await make_mock()
    raw = b'{"jobId": "python-1"}'
    await client.post("/", data=raw + b" ", headers=signed(raw))  # tampered
    await client.post("/", data=raw, headers=signed(raw, ts=int(time.time()) - 400))  # stale
    await client.post("/", data=raw)  # unsigned
    hooks = (await (await client.get("/webhooks")).json())["webhooks"]
    errors = [h["signature"]["error"] for h in hooks]
    assert all(h["signature"]["valid"] is False for h in hooks)
    assert "missing header" in errors[0] and "too old" in errors[1] and "no matching" in errors[2]


async def test_failure_rate_and_fail_next(make_mock):
    client = await make_mock(failure_rate=1.0)
    assert (await post(client, {})).status == 500
    resp = await client.post("/control/failure-rate", json={"rate": 0})
    assert resp.status == 200
    resp = await client.post("/control/fail-next", json={"count": 2, "status": 503})
    assert (await resp.json()) == {"failNext": 2, "status": 503}
    statuses = [(await post(client, {})).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert (await client.post("/control/fail-next", json={"count": -1})).status == 400
    assert (await client.post("/control/fail-next", data=b"[1]")).status == 400
    assert (await client.post("/control/failure-rate", json={"rate": 2})).status == 400


async def test_probabilistic_failures_follow_the_rate(make_mock):
    client = await make_mock(failure_rate=0.3)
    statuses = [(await post(client, {})).status for _ in range(200)]
    assert 40 <= statuses.count(500) <= 80


async def test_stats_and_history_bound(make_mock):
    clock = ManualClock()
    client = await make_mock(clock=clock, history=3)
    await post(client, {"botType": "java", "success": False})
    clock.advance(2 * 3600)
    for bot_type, ok in [("python", True), ("python", True), ("node", False), (None, True)]:
        await post(client, {"botType": bot_type, "success": ok} if bot_type else {"success": ok})
    stats = await (await client.get("/stats")).json()
    assert stats["total"] == 5 and stats["successful"] == 3 and stats["failed"] == 2
    assert stats["botTypeStats"] == {"java": 1, "python": 2, "node": 1, "unknown": 1}
    assert stats["lastHour"] == 3 and stats["lastDay"] == 3  # the ring buffer holds 3
    assert (await (await client.get("/webhooks")).json())["total"] == 3
    cleared = await (await client.delete("/webhooks")).json()
    assert cleared["message"] == "Cleared 3 webhooks"
    stats = await (await client.get("/stats")).json()
    assert stats["total"] == 0 and stats["botTypeStats"] == {}


async def test_test_endpoints_health_and_metrics(make_mock):
    client = await make_mock()
    assert (await client.post("/test/success")).status == 200
    assert (await client.post("/test/error")).status == 500
    assert (await client.post("/test/not-found")).status == 404
    assert (await client.post("/test/bogus")).status == 400
    with pytest.raises(asyncio.TimeoutError):  # sleeps longer than the delivery timeout
        await client.post("/test/timeout", timeout=aiohttp.ClientTimeout(total=0.5))
    assert (await (await client.get("/webhooks")).json())["total"] == 0  # /test/* not recorded
    await post(client, {})
    health = await (await client.get("/health")).json()
    assert health["status"] == "healthy" and health["totalWebhooksReceived"] == 1
    text = await (await client.get("/metrics")).text()
    assert 'mock_webhook_requests_total{status="200"} 1.0' in text
    assert 'mock_webhook_signature_checks_total{result="valid"} 1.0' in text


async def test_dispatcher_delivers_to_the_mock_end_to_end(make_mock):
    client = await make_mock()
    await client.post("/control/fail-next", json={"count": 2, "status": 500})
    clock = ManualClock(time.time())
    store = FakeStore(clock)
    url = str(client.make_url("/hook"))
    store.add(url, body=b'{"jobId": "python-7", "botType": "python", "success": true}')
    d = WebhookDispatcher(store, webhook_settings(), clock=clock, rng=random.Random(2))
    for _ in range(3):
        item = next(iter(store.items.values()))
        clock.now = max(clock.now, item.due_ms / 1000)
        await d.run_once()
    await d.aclose()
    assert item.state == "delivered"
    hooks = (await (await client.get("/webhooks")).json())["webhooks"]
    assert [h["attempt"] for h in hooks] == [3, 2, 1]
    assert [h["responseStatus"] for h in hooks] == [200, 500, 500]
    assert {h["webhookId"] for h in hooks} == {item.delivery.id}
    assert all(h["signature"]["valid"] for h in hooks)
