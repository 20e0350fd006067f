"""A full or read-only Redis is a 503 naming the reason, never a 500; reads and cancels keep
working (the rate limiter fails open); /health says why it is degraded. Each test owns its
redis-server (it reconfigures it)."""

from __future__ import annotations

import pytest
import redis as sync_redis

from botsys.app import create_app
from botsys.appkeys import QUEUE
from tests.api.test_invoke import problem
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.parametrize("backend", ["redis"])


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server, sync_redis.Redis(port=server.port, decode_responses=True)
    server.kill()


async def _client(aiohttp_client, url):
    settings = make_settings(**{"redis.url": url, "api.rate_limit": "1000/minute"})
    return await aiohttp_client(create_app(settings, with_workers=False))


async def _invoke(client) -> str:
    r = await client.post("/invoke", json={"botType": "python", "payload": {"n": 1}})
    assert r.status == 202, await r.text()
    return (await r.json())["jobId"]


async def test_a_full_redis_refuses_writes_with_503_but_reads_and_cancels_work(
    aiohttp_client, own_redis, backend
):
    server, admin = own_redis
    client = await _client(aiohttp_client, server.url)
    running, kept, cancelled = await _invoke(client), await _invoke(client), await _invoke(client)
    _, claims = await client.app[QUEUE].claim("python", 1)
    assert [c.job_id for c in claims] == [running]
    admin.config_set("maxmemory", "1")  # every write that may grow memory is refused (OOM)

    r = await client.post("/invoke", json={"botType": "python"})
    body = await problem(r, 503)
    assert body["type"].endswith("/store-out-of-memory") and "full" in body["detail"]
    assert r.headers["Retry-After"] == "5"
    await problem(await client.patch("/queues/python", json={"limit": 2}), 503)
    for path in (f"/job/{kept}", "/jobs", "/stats", "/queues/python", "/bots", "/deliveries"):
        assert (await client.get(path)).status == 200, path
    health = await client.get("/health")
    assert health.status == 503
    got = await health.json()
    assert got["status"] == "degraded" and got["redis"] == "store-out-of-memory"
    assert "full" in got["reasons"][0]

    r = await client.delete(f"/job/{cancelled}")
    assert r.status == 200 and (await r.json())["state"] == "cancelled"
    r = await client.delete(f"/job/{running}")  # its owner is told to kill the bot
    assert r.status == 202 and (await r.json())["state"] == "cancelling"
    queue = client.app[QUEUE]
    assert "payload" not in await queue.redis.hgetall(queue.keys.job("python", cancelled))
    metrics = await (await client.get("/metrics")).text()
    assert 'botsys_ratelimit_fail_open_total{reason="OOM"}' in metrics

    admin.config_set("maxmemory", "0")
    await _invoke(client)
    assert (await client.get("/health")).status == 200


async def test_a_read_only_redis_is_a_503_naming_it(aiohttp_client, own_redis, backend):
    server, admin = own_redis
    client = await _client(aiohttp_client, server.url)
    job_id = await _invoke(client)
    admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # a master that is gone
    try:
        body = await problem(await client.post("/invoke", json={"botType": "python"}), 503)
        assert body["type"].endswith("/store-read-only")
        assert (await client.get(f"/job/{job_id}")).status == 200
        health = await client.get("/health")
        assert health.status == 503 and (await health.json())["redis"] == "store-read-only"
    finally:
        admin.execute_command("REPLICAOF", "NO", "ONE")
    assert (await client.get("/health")).status == 200


async def test_health_is_degraded_while_a_type_record_is_missing_or_held(
    aiohttp_client, own_redis, backend
):
    server, admin = own_redis
    client = await _client(aiohttp_client, server.url)
    queue = client.app[QUEUE]
    assert (await client.get("/health")).status == 200
    admin.delete(queue.keys.meta("node"))  # what FLUSHALL or an empty restart leaves

    health = await client.get("/health")
    got = await health.json()
    assert health.status == 503 and got["redis"] == "ok"
    assert len(got["reasons"]) == 1 and "node: its record is missing" in got["reasons"][0]

    assert await queue.reseed("node") is True
    assert await queue.reseed("node") is False, "re-created once"
    got = await (await client.get("/health")).json()
    assert "jobs start again in" in got["reasons"][0]
    await client.patch("/queues/node", json={"paused": True})  # an operator's pause: not a reason
    admin.hdel(queue.keys.meta("node"), "heldUntil")
    health = await client.get("/health")
    assert health.status == 200 and (await health.json())["reasons"] == []


async def test_invoking_through_a_group_on_a_full_redis_is_a_503_then_works(
    aiohttp_client, own_redis, backend
):
    """Drawing a member writes (the group's counter): refused as a 503, keyed or not, and
    nothing is stored; once memory is back the same requests route as before."""
    server, admin = own_redis
    client = await _client(aiohttp_client, server.url)
    group = {"groupId": "g", "members": ["python"], "rule": {"type": "ROUND_ROBIN"}}
    assert (await client.post("/admin/config/bot-groups", json=group)).status == 201
    keyed = {"Idempotency-Key": "order-oom"}
    admin.config_set("maxmemory", "1")
    for headers in ({}, keyed):
        r = await client.post("/invoke", json={"target": "groupId:g"}, headers=headers)
        got = await problem(r, 503)
        assert got["type"].endswith("/store-out-of-memory"), got
    admin.config_set("maxmemory", "0")
    for headers in ({}, keyed):
        r = await client.post("/invoke", json={"target": "groupId:g"}, headers=headers)
        assert r.status == 202, await r.text()
        assert (await r.json())["group"]["member"] == "python"


async def test_a_full_redis_is_a_503_on_the_control_plane_and_webhook_manager_writes(
    aiohttp_client, own_redis, backend
):
    server, admin = own_redis
    client = await _client(aiohttp_client, server.url)
    hook = "http://localhost:5000/hook"
    admin.config_set("maxmemory", "1")
    writes = [
        ("/admin/config/bot-types", {"name": "reports", "runtime": "python", "limit": 1}),
        (
            "/admin/config/bot-groups",
            {"groupId": "g", "members": ["python"], "rule": {"type": "ROUND_ROBIN"}},
        ),
        ("/deliver", {"url": hook, "payload": {"n": 1}}),
        ("/endpoints", {"url": hook}),
        ("/webhooks/secret/rotate", {}),
    ]
    for path, body in writes:
        got = await problem(await client.post(path, json=body), 503)
        assert got["type"].endswith("/store-out-of-memory"), (path, got)
    for path in ("/admin/config/bot-types", "/admin/config/bot-groups", "/endpoints"):
        assert (await client.get(path)).status == 200, path
    admin.config_set("maxmemory", "0")
    r = await client.post("/deliver", json={"url": hook, "payload": {"n": 1}})
    assert r.status == 202, await r.text()
