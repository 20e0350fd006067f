"""POST /invoke over a queue cap: 429 (engine.max_queued) or 503 (engine.max_queued_bytes),
problem+json with Retry-After and a detail naming the cap; room again once jobs leave."""

from __future__ import annotations

from tests.api.test_invoke import problem


async def invoke(client, pad: int = 0):
    return await client.post("/invoke", json={"botType": "python", "payload": {"pad": "x" * pad}})


async def test_too_many_waiting_jobs_is_429_until_one_leaves(make_client):
    client = await make_client(**{"engine.max_queued": 2})
    first = await invoke(client)
    assert first.status == 202 and (await invoke(client)).status == 202
    r = await invoke(client)
    body = await problem(r, 429)
    assert r.headers["Retry-After"] == "5"
    assert "engine.max_queued" in body["detail"] and "python" in body["detail"]
    assert (await client.post("/invoke", json={"botType": "node"})).status == 202  # per type
    await client.delete(f"/job/{(await first.json())['jobId']}")
    assert (await invoke(client)).status == 202


async def test_too_many_queued_payload_bytes_is_503_until_some_leave(make_client):
    client = await make_client(**{"server.max_body_bytes": 1024, "engine.max_queued_bytes": 1024})
    first = await invoke(client, pad=900)
    assert first.status == 202
    r = await invoke(client, pad=200)
    body = await problem(r, 503)
    assert r.headers["Retry-After"] == "5"
    assert "engine.max_queued_bytes" in body["detail"] and "1024 bytes" in body["detail"]
    await client.delete(f"/job/{(await first.json())['jobId']}")  # frees its bytes at once
    assert (await invoke(client, pad=200)).status == 202
