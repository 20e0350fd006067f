"""POST /invoke: the happy path, idempotency and every way a request can be wrong."""

from __future__ import annotations

import asyncio

import pytest

PROBLEM = "application/problem+json"


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status
    return body


async def test_invoke_queues_a_job_and_points_to_it(client):
    r = await client.post(
        "/invoke", json={"botType": "python", "bot": "hello", "payload": {"a": 1}, "priority": 7}
    )
    assert r.status == 202
    body = await r.json()
    assert body["status"] == "queued" and body["created"] is True
    assert body["botType"] == "python" and body["bot"] == "hello" and body["priority"] == 7
    assert r.headers["Location"] == body["statusUrl"] == f"/job/{body['jobId']}"
    job = await (await client.get(body["statusUrl"])).json()
    assert job["state"] == "queued" and job["payload"] == {"a": 1} and job["priority"] == 7


async def test_defaults_bot_payload_priority(client):
    body = await (await client.post("/invoke", json={"botType": "node"})).json()
    assert body["bot"] == "simulate" and body["priority"] == 3
    job = await (await client.get(body["statusUrl"])).json()
    assert job["payload"] == {}


async def test_delay_makes_a_delayed_job(client):
    r = await client.post("/invoke", json={"botType": "java", "delay": 60000})
    assert r.status == 202 and (await r.json())["status"] == "delayed"


async def test_options_reach_the_job(client):
    r = await client.post("/invoke", json={"botType": "python", "timeout": 12.5, "attempts": 3})
    job = await (await client.get((await r.json())["statusUrl"])).json()
    assert job["maxAttempts"] == 3


async def test_idempotency_key_returns_the_same_job(client):
    h = {"Idempotency-Key": "order-42"}
    first = await client.post("/invoke", json={"botType": "python"}, headers=h)
    again = await client.post("/invoke", json={"botType": "python"}, headers=h)
    assert first.status == 202 and again.status == 200
    assert (await first.json())["jobId"] == (await again.json())["jobId"]
    assert (await again.json())["created"] is False


async def test_concurrent_repeats_create_one_job(client):
    h = {"Idempotency-Key": "burst"}
    replies = await asyncio.gather(
        *(client.post("/invoke", json={"botType": "python"}, headers=h) for _ in range(20))
    )
    bodies = [await r.json() for r in replies]
    assert len({b["jobId"] for b in bodies}) == 1
    assert sorted(r.status for r in replies) == [200] * 19 + [202]
    listed = await (await client.get("/jobs?botType=python")).json()
    assert len(listed["jobs"]) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {"order": 43}},
        {"priority": 1},
        {"bot": "hello"},
        {"delay": 1000},
        {"webhookUrl": "http://localhost:5000/other"},
    ],
)
async def test_a_key_reused_for_a_different_request_is_422(client, change):
    h = {"Idempotency-Key": "order-42"}
    first = {"botType": "python", "payload": {"order": 42}}
    assert (await client.post("/invoke", json=first, headers=h)).status == 202
    r = await client.post("/invoke", json={**first, **change}, headers=h)
    body = await problem(r, 422)
    assert "Idempotency-Key" in body["errors"] and "different request" in body["detail"]
    assert len((await (await client.get("/jobs")).json())["jobs"]) == 1


async def test_a_repeat_is_the_same_request_whatever_the_key_order(client):
    h = {"Idempotency-Key": "order-7"}
    first = await client.post(
        "/invoke", json={"botType": "python", "payload": {"a": 1, "b": [1, 2]}}, headers=h
    )
    again = await client.post(
        "/invoke",
        json={"payload": {"b": [1, 2], "a": 1}, "bot": "simulate", "botType": "python"},
        headers=h,
    )
    assert (first.status, again.status) == (202, 200), await again.text()
    assert (await first.json())["jobId"] == (await again.json())["jobId"]


async def test_idempotency_keys_are_scoped_per_bot_type(client):
    h = {"Idempotency-Key": "shared"}
    py = await client.post("/invoke", json={"botType": "python"}, headers=h)
    node = await client.post("/invoke", json={"botType": "node"}, headers=h)
    assert (py.status, node.status) == (202, 202)
    assert (await py.json())["jobId"] != (await node.json())["jobId"]


async def test_concurrent_different_requests_with_one_key_create_one_job(client):
    h = {"Idempotency-Key": "race"}
    replies = await asyncio.gather(
        *(
            client.post("/invoke", json={"botType": "python", "payload": {"n": n}}, headers=h)
            for n in range(10)
        )
    )
    assert sorted(r.status for r in replies) == [202] + [422] * 9


@pytest.mark.parametrize("key", ["", "x" * 201])
async def test_bad_idempotency_key(client, key):
    r = await client.post("/invoke", json={"botType": "python"}, headers={"Idempotency-Key": key})
    assert "Idempotency-Key" in (await problem(r, 422))["errors"]


async def test_unknown_fields_are_named(client):
    r = await client.post("/invoke", json={"botType": "python", "correlationId": 1, "tags": {}})
    body = await problem(r, 422)
    assert set(body["errors"]) == {"correlationId", "tags"}
    assert "correlationId" in body["detail"] and "tags" in body["detail"]


async def test_unknown_bot_type_lists_the_valid_ones(client):
    body = await problem(await client.post("/invoke", json={"botType": "ruby"}), 422)
    assert "botType" in body["errors"]
    assert all(t in body["detail"] for t in ("python", "node", "java"))


async def test_unknown_bot_lists_the_bots_of_the_type(client):
    r = await client.post("/invoke", json={"botType": "node", "bot": "data_analysis"})
    body = await problem(r, 422)
    assert "bot" in body["errors"] and "process_api" in body["detail"]


async def test_traversal_bot_name_is_refused(client):
    r = await client.post("/invoke", json={"botType": "python", "bot": "../../etc/passwd"})
    assert "bot" in (await problem(r, 422))["errors"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("botType", None),
        ("botType", 5),
        ("payload", [1, 2]),
        ("payload", "text"),
        ("priority", 0),
        ("priority", 1001),
        ("priority", "3"),
        ("priority", 2.5),
        ("priority", True),
        ("timeout", 0),
        ("timeout", "10"),
        ("timeout", 3601),
        ("attempts", 11),
        ("attempts", 0),
        ("delay", -1),
        ("webhookUrl", "ftp://example.com/"),
        ("webhookUrl", "http://127.0.0.1:8080/"),
        ("webhookUrl", "http://169.254.169.254/latest/meta-data"),
        ("webhookUrl", "http://localhost/hook"),
        ("webhookUrl", "http://user:pw@example.com/"),
        ("webhookUrl", "not a url"),
    ],
)
async def test_bad_values_are_422_naming_the_field(client, field, value):
    body = {"botType": "python", field: value}
    r = await client.post("/invoke", json=body)
    errors = (await problem(r, 422))["errors"]
    assert field in errors, errors


async def test_allowed_webhook_hosts_pass(client):
    r = await client.post(
        "/invoke", json={"botType": "python", "webhookUrl": "http://localhost:5000/hook"}
    )
    assert r.status == 202
    job = await (await client.get((await r.json())["statusUrl"])).json()
    assert job["webhook"]["url"] == "http://localhost:5000/hook"


async def test_missing_bot_type(client):
    body = await problem(await client.post("/invoke", json={}), 422)
    assert "botType" in body["errors"] and body["detail"] == "botType is required"


async def test_missing_and_invalid_fields_are_told_apart(client):
    body = await problem(await client.post("/invoke", json={"priority": 0}), 422)
    assert body["detail"] == "botType is required; invalid priority"


@pytest.mark.parametrize("raw", [b"{", b'{"botType": "python",}', b"\xff\xfe", b'{"a": NaN}'])
async def test_malformed_json_is_400(client, raw):
    r = await client.post("/invoke", data=raw, headers={"Content-Type": "application/json"})
    await problem(r, 400)


async def test_non_object_body_is_422(client):
    r = await client.post("/invoke", json=[{"botType": "python"}])
    await problem(r, 422)


async def test_wrong_content_type_is_415(client):
    r = await client.post("/invoke", data="botType=python", headers={"Content-Type": "text/plain"})
    await problem(r, 415)


async def test_missing_body_is_422(client):
    await problem(await client.post("/invoke"), 422)


async def test_oversize_body_is_413_and_writes_nothing(make_client):
    client = await make_client(**{"server.max_body_bytes": 4096})
    big = {"botType": "python", "payload": {"x": "a" * 5000}}
    await problem(await client.post("/invoke", json=big), 413)

    async def chunks():
        yield b'{"botType": "python", "payload": {"x": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}}'

    r = await client.post("/invoke", data=chunks(), headers={"Content-Type": "application/json"})
    await problem(r, 413)
    assert (await (await client.get("/jobs")).json())["jobs"] == []


async def test_estimated_position_counts_the_jobs_ahead(client):
    """The original system's `estimatedPosition`: jobs of the type waiting ahead (no workers
    here, so nothing starts), by priority; null for a repeated Idempotency-Key."""

    async def position(body, headers=None):
        r = await client.post("/invoke", json={"botType": "python", **body}, headers=headers)
        return (await r.json())["estimatedPosition"]

    assert [await position({}) for _ in range(3)] == [0, 1, 2]
    assert await position({"priority": 1}) == 0  # most urgent: goes to the front
    assert await position({"priority": 1000}) == 4
    assert await position({"delay": 60000}) == 5  # delayed: everyone waiting now is ahead
    assert await position({}, {"Idempotency-Key": "k"}) == 4  # ahead of the priority-1000 one
    assert await position({}, {"Idempotency-Key": "k"}) is None
