"""Job routes: read, cancel, retry, logs and listing."""

from __future__ import annotations

import pytest

from botsys.appkeys import QUEUE
from tests.api.test_invoke import problem


async def invoke(client, **body) -> str:
    r = await client.post("/invoke", json={"botType": "python", **body})
    assert r.status == 202, await r.text()
    return (await r.json())["jobId"]


@pytest.mark.parametrize(
    "job_id",
    ["python-01J00000000000000000000000", "nope", "ruby-01J00000000000000000000000", "%00"],
)
async def test_unknown_ids_are_404_everywhere(client, job_id):
    for method, suffix in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/retry"),
        ("GET", "/logs"),
        ("GET", "/events"),
    ]:
        r = await client.request(method, f"/job/{job_id}{suffix}")
        await problem(r, 404)


async def test_cancel_a_queued_job_then_409(client):
    job_id = await invoke(client)
    r = await client.delete(f"/job/{job_id}")
    assert r.status == 200 and await r.json() == {"jobId": job_id, "state": "cancelled"}
    assert (await (await client.get(f"/job/{job_id}")).json())["state"] == "cancelled"
    await problem(await client.delete(f"/job/{job_id}"), 409)


async def test_cancel_a_running_job_is_202(client):
    job_id = await invoke(client)
    queue = client.app[QUEUE]
    _, claims = await queue.claim("python", 1)
    assert claims and claims[0].job_id == job_id
    r = await client.delete(f"/job/{job_id}")
    assert r.status == 202 and (await r.json())["state"] == "cancelling"


async def test_retry_only_failed_or_timed_out_jobs(client):
    job_id = await invoke(client, attempts=1)
    await problem(await client.post(f"/job/{job_id}/retry"), 409)
    queue = client.app[QUEUE]
    _, claims = await queue.claim("python", 1)
    assert (await queue.complete(claims[0], "failed", error="boom")).state == "failed"
    r = await client.post(f"/job/{job_id}/retry")
    assert r.status == 202
    assert await r.json() == {"jobId": job_id, "status": "queued", "statusUrl": f"/job/{job_id}"}
    assert (await (await client.get(f"/job/{job_id}")).json())["state"] == "queued"


async def test_cancel_frees_the_payload_so_a_cancelled_job_cannot_be_retried(client):
    job_id = await invoke(client, payload={"big": "x" * 1000})
    await client.delete(f"/job/{job_id}")
    queue = client.app[QUEUE]
    stored = await queue.redis.hgetall(queue.keys.job("python", job_id))
    assert stored["state"] == "cancelled" and "payload" not in stored
    body = await problem(await client.post(f"/job/{job_id}/retry"), 409)
    assert "payload is freed at cancel" in body["detail"]


async def test_logs_are_bounded_by_tail(client):
    job_id = await invoke(client)
    queue = client.app[QUEUE]
    await queue.record_events("python", job_id, None, [f"line {i}" for i in range(10)])
    body = await (await client.get(f"/job/{job_id}/logs?tail=3")).json()
    assert body == {"jobId": job_id, "lines": ["line 7", "line 8", "line 9"]}
    assert len((await (await client.get(f"/job/{job_id}/logs")).json())["lines"]) == 10
    await problem(await client.get(f"/job/{job_id}/logs?tail=0"), 422)
    await problem(await client.get(f"/job/{job_id}/logs?tail=x"), 422)


async def test_list_pages_newest_first_with_a_cursor(client):
    queue = client.app[QUEUE]
    ids = []
    for i in range(5):
        done = await queue.enqueue("python", "hello", {}, now=1_700_000_000_000 + i)
        ids.append(done.job_id)
    await queue.enqueue("node", "hello", {}, now=1_700_000_000_010)
    page = await (await client.get("/jobs?botType=python&limit=2")).json()
    assert [j["jobId"] for j in page["jobs"]] == ids[::-1][:2]
    seen = [j["jobId"] for j in page["jobs"]]
    while page["nextCursor"]:
        page = await (
            await client.get(f"/jobs?botType=python&limit=2&cursor={page['nextCursor']}")
        ).json()
        seen += [j["jobId"] for j in page["jobs"]]
    assert seen == ids[::-1]
    everything = await (await client.get("/jobs")).json()
    assert len(everything["jobs"]) == 6 and everything["jobs"][0]["botType"] == "node"
    assert everything["nextCursor"] is None


async def test_list_filters_by_state(client):
    a = await invoke(client)
    b = await invoke(client)
    await client.delete(f"/job/{a}")
    cancelled = await (await client.get("/jobs?state=cancelled")).json()
    assert [j["jobId"] for j in cancelled["jobs"]] == [a]
    queued = await (await client.get("/jobs?botType=python&state=queued")).json()
    assert [j["jobId"] for j in queued["jobs"]] == [b]


@pytest.mark.parametrize(
    "query, field",
    [
        ("botType=ruby", "botType"),
        ("state=done", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=abc", "cursor"),
    ],
)
async def test_list_rejects_bad_filters(client, query, field):
    assert field in (await problem(await client.get(f"/jobs?{query}"), 422))["errors"]


MIB = 1 << 20


async def test_lists_carry_no_payloads_or_results_so_their_size_stays_small(client):
    """60 jobs of 1 MiB payloads made a 66 MB GET /jobs; a list now has no bodies at all."""
    queue = client.app[QUEUE]
    blob = {"blob": "x" * (MIB - 100), "city": "lisbon"}
    ids = [(await queue.enqueue("python", "hello", blob)).job_id for _ in range(60)]
    webhook = "http://localhost:5000/hook"
    done = await queue.enqueue("python", "hello", blob, webhook_url=webhook, priority=1)
    _, (claim,) = await queue.claim("python", 1)
    assert claim.job_id == done.job_id
    big_result = '{"out": "' + "y" * (MIB - 100) + '"}'
    await queue.complete(claim, "failed", result_json=big_result, error="e" * 5000)
    for query in ({}, {"state": "queued"}, {"state": "failed"}, {"q": "LISBON"}):
        r = await client.get("/jobs", params={**query, "limit": 200})
        assert r.status == 200
        raw = await r.read()
        page = await r.json()
        assert len(raw) < 64 * 1024, (query, len(raw))
        for job in page["jobs"]:
            assert "payload" not in job and "result" not in job
            assert job["error"] is None or len(job["error"]) <= 300
    everything = await (await client.get("/jobs?limit=200")).json()
    assert len(everything["jobs"]) == 61
    searched = await (await client.get("/jobs?q=lisbon&limit=200")).json()
    assert len(searched["jobs"]) == 61  # a search still looks inside payloads
    full = await (await client.get(f"/job/{ids[0]}")).json()
    assert full["payload"] == blob  # the job itself has it all
    failed = await (await client.get(f"/job/{done.job_id}")).json()
    assert len(failed["result"]["out"]) == MIB - 100 and failed["error"] == "e" * 5000
    r = await client.get("/deliveries?limit=200")
    raw = await r.read()
    assert r.status == 200 and len(raw) < 4096, len(raw)
    (listed,) = (await r.json())["deliveries"]
    assert "body" not in listed and listed["jobId"] == done.job_id
