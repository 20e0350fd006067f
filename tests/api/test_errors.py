"""Failures that are not the caller's fault: Redis away (fast 503), bugs (500 without internals)."""

from __future__ import annotations

import time

import redis as sync_redis

from botsys.api.problems import STORE_DEADLINE_S
from botsys.app import create_app
from botsys.appkeys import QUEUE, STORE
from tests.api.test_invoke import problem
from tests.conftest import make_settings
from tests.support.redis_server import free_port
from tests.support.timing import MARGIN_S


async def test_redis_refusing_connections_is_a_fast_503(aiohttp_client, redis_server):
    client = await aiohttp_client(
        create_app(make_settings(**{"redis.url": redis_server.url}), with_workers=False)
    )
    pool = client.app[STORE].redis.connection_pool
    pool.connection_kwargs["port"] = free_port()  # nothing listens there
    await pool.disconnect()
    pool.reset()  # new connections use the dead port
    started = time.monotonic()
    r = await client.post("/invoke", json={"botType": "python"})
    await problem(r, 503)
    assert r.headers["Retry-After"] == "1"
    health = await client.get("/health")
    assert health.status == 503 and (await health.json())["status"] == "degraded"
    # Two requests, each refused by its store deadline at the latest (a refused connect is
    # immediate); a wait for Redis would last the 5 s connect timeout and its retries.
    assert time.monotonic() - started < 2 * STORE_DEADLINE_S + MARGIN_S


async def test_paused_redis_is_a_503_within_the_deadline(aiohttp_client, redis_server):
    settings = make_settings(**{"redis.url": redis_server.url, "api.rate_limit": "0"})
    client = await aiohttp_client(create_app(settings, with_workers=False))
    admin = sync_redis.Redis(port=redis_server.port)
    pause_s = STORE_DEADLINE_S + MARGIN_S + 2  # outlasts the deadline and any scheduling delay
    admin.execute_command("CLIENT", "PAUSE", str(int(pause_s * 1000)), "ALL")
    try:
        started = time.monotonic()
        r = await client.post(
            "/invoke", json={"botType": "python"}, headers={"Idempotency-Key": "p1"}
        )
        await problem(r, 503)
        assert time.monotonic() - started < STORE_DEADLINE_S + MARGIN_S  # not the whole pause
        health = await client.get("/health")
        assert health.status == 503
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
    # the client retries with the same key: one job, whether or not the first write landed
    r = await client.post("/invoke", json={"botType": "python"}, headers={"Idempotency-Key": "p1"})
    assert r.status in (200, 202)
    assert len((await (await client.get("/jobs")).json())["jobs"]) == 1


async def test_unexpected_errors_are_500_without_internals(client, monkeypatch, caplog):
    async def boom():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(client.app[QUEUE], "stats", boom)
    body = await problem(await client.get("/stats"), 500)
    assert "secret" not in body["detail"]
    assert "secret internals" in caplog.text  # logged for the operator
