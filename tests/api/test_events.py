"""GET /job/{jobId}/events: Server-Sent Events from whichever replica runs the job."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis as sync_redis

from botsys.api import events
from botsys.app import create_app
from botsys.client import sse_events
from tests.api.conftest import FakeRunner
from tests.conftest import make_settings


async def collect(response, timeout=10.0):
    out = []

    async def read():
        async for kind, data in sse_events(response.content):
            out.append((kind, data))

    await asyncio.wait_for(read(), timeout)
    return out


async def first_event(response, timeout=5.0) -> dict:
    """The stream's first event, which must be the job's state; the rest stays unread."""
    raw = await asyncio.wait_for(response.content.readuntil(b"\n\n"), timeout)
    fields = dict(line.split(": ", 1) for line in raw.decode().strip().split("\n"))
    assert fields["event"] == "state", raw
    return json.loads(fields["data"])


async def test_stream_follows_a_job_to_its_end(make_client):
    runner = FakeRunner()
    runner.gate = asyncio.Event()
    client = await make_client(workers=True, runner=runner)
    job_id = (
        await (await client.post("/invoke", json={"botType": "python", "payload": {"n": 1}})).json()
    )["jobId"]
    r = await client.get(f"/job/{job_id}/events")
    assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-store"
    first = await first_event(r)  # sent once the stream is subscribed: nothing is missed now
    assert first["job"]["jobId"] == job_id
    runner.gate.set()
    got = await collect(r)
    kinds = [k for k, _ in got]
    assert "progress" in kinds and "log" in kinds
    last = got[-1][1]
    assert last["state"] == "succeeded" and last["job"]["result"] == {"echo": {"n": 1}}


async def test_stream_of_an_ended_job_is_one_event(client):
    job_id = (await (await client.post("/invoke", json={"botType": "python"})).json())["jobId"]
    await client.delete(f"/job/{job_id}")
    got = await collect(await client.get(f"/job/{job_id}/events"))
    assert [(k, d["state"]) for k, d in got] == [("state", "cancelled")]


async def test_heartbeats_and_cancel(client, monkeypatch):
    monkeypatch.setattr(events, "HEARTBEAT_S", 0.05)
    job_id = (await (await client.post("/invoke", json={"botType": "python"})).json())["jobId"]
    r = await client.get(f"/job/{job_id}/events")
    await asyncio.wait_for(r.content.readuntil(b": heartbeat"), 5)
    await client.delete(f"/job/{job_id}")
    raw = (await asyncio.wait_for(r.content.read(), 5)).decode()
    assert raw.rstrip().endswith("}") and '"state":"cancelled"' in raw


@pytest.mark.parametrize("backend", ["redis"])
async def test_stream_from_another_replica(aiohttp_client, redis_server, backend):
    settings = make_settings(**{"redis.url": redis_server.url})
    runner = FakeRunner()
    runner.gate = asyncio.Event()
    worker = await aiohttp_client(create_app(settings, runner=runner, with_workers=True))
    viewer = await aiohttp_client(create_app(settings, with_workers=False))
    job_id = (await (await worker.post("/invoke", json={"botType": "node"})).json())["jobId"]
    r = await viewer.get(f"/job/{job_id}/events")
    assert (await first_event(r))["job"]["jobId"] == job_id  # subscribed
    runner.gate.set()
    got = await collect(r)
    assert got[-1][1]["state"] == "succeeded"
    assert json.dumps(got).count('"progress"') >= 1


async def test_streams_of_a_replica_share_one_redis_connection(aiohttp_client, redis_server):
    settings = make_settings(**{"redis.url": redis_server.url, "api.rate_limit": "0"})
    client = await aiohttp_client(create_app(settings, with_workers=False))
    admin = sync_redis.Redis(port=redis_server.port)
    try:
        before = len(admin.client_list(_type="pubsub"))
        ids = [
            (await (await client.post("/invoke", json={"botType": "python"})).json())["jobId"]
            for _ in range(10)
        ]
        streams = [await client.get(f"/job/{job_id}/events") for job_id in ids]
        for r in streams:  # each has its first event: subscribed
            assert (await r.content.readuntil(b"\n\n")).startswith(b"id: 1\nevent: state")
        assert len(admin.client_list(_type="pubsub")) - before == 1
        admin.client_kill_filter(_type="pubsub")  # the hub reconnects: streams resend the state
        for r in streams:
            again = (await asyncio.wait_for(r.content.readuntil(b"\n\n"), 10)).decode()
            assert again.startswith("id: 2\nevent: state") and '"state":"queued"' in again
        for job_id in ids:
            await client.delete(f"/job/{job_id}")
        for r in streams:
            rest = (await asyncio.wait_for(r.content.read(), 10)).decode()
            assert '"state":"cancelled"' in rest
    finally:
        admin.close()
