"""Hostile input gets a clear 4xx naming the problem, and what we answer is always valid JSON:
numbers JSON cannot hold, lone surrogates, odd header bytes, IDNA errors, slow bodies."""

from __future__ import annotations

import asyncio
import json

import pytest

from botsys.app import create_app
from botsys.runners.types import AttemptOutcome
from tests.api.test_invoke import problem
from tests.conftest import make_settings
from tests.support.redis_server import free_port


def strict_json(text: str):
    """What JSON.parse accepts: no NaN/Infinity literals."""

    def refuse(name):
        raise AssertionError(f"{name} in a response: not JSON")

    return json.loads(text, parse_constant=refuse)


async def raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes to the test server and read the answer until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def post_invoke(body: bytes, extra_headers: bytes = b"") -> bytes:
    return (
        b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n" + extra_headers + b"Content-Length: %d\r\n\r\n"
        b"%s" % (len(body), body)
    )


def status_and_body(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, strict_json(body.decode()) if body else {}, head


@pytest.mark.parametrize(
    "raw, path",
    [
        (b'{"botType": "python", "payload": {"x": 1e400}}', "payload.x"),
        (b'{"botType": "python", "payload": {"x": [1, -1e400]}}', "payload.x[1]"),
        (b'{"botType": "python", "payload": {"x": NaN}}', "payload.x"),
        (b'{"botType": "python", "payload": {"a": {"b": Infinity}}}', "payload.a.b"),
        (b'{"botType": "python", "payload": {"x": -Infinity}}', "payload.x"),
        (b'{"botType": "python", "priority": 1e400}', "priority"),
        (b'{"botType": "python", "timeout": NaN}', "timeout"),
    ],
)
async def test_non_finite_numbers_are_400_naming_the_path(client, raw, path):
    r = await client.post("/invoke", data=raw, headers={"Content-Type": "application/json"})
    body = await problem(r, 400)
    assert path in body["errors"] and "number out of range" in body["detail"], body
    assert (await (await client.get("/jobs")).json())["jobs"] == []  # nothing was queued


@pytest.mark.parametrize(
    "raw, path",
    [
        (b'{"botType": "python", "payload": {"x": "\\ud800"}}', "payload.x"),
        (b'{"botType": "python", "payload": {"x": ["ok", "a\\udfffb"]}}', "payload.x[1]"),
        (b'{"botType": "python", "payload": {"\\udc00": 1}}', "payload"),
        (b'{"botType": "python\\ud800"}', "botType"),
        (b'{"botType": "python", "bot": "\\udbff"}', "bot"),
    ],
)
async def test_lone_surrogates_are_400_naming_the_path(client, raw, path):
    r = await client.post("/invoke", data=raw, headers={"Content-Type": "application/json"})
    body = await problem(r, 400)
    assert path in body["errors"] and "lone surrogate" in body["detail"], body


async def test_valid_surrogate_pairs_and_big_numbers_are_fine(client):
    raw = b'{"botType": "python", "payload": {"emoji": "\\ud83d\\ude00", "big": 1e300, "n": -0.0}}'
    r = await client.post("/invoke", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 202, await r.text()
    job = strict_json(await (await client.get((await r.json())["statusUrl"])).text())
    assert job["payload"] == {"emoji": "😀", "big": 1e300, "n": -0.0}


async def test_nesting_deeper_than_100_levels_is_400(client):
    deep = b'{"botType": "python", "payload": ' + b'{"a": ' * 100 + b"1" + b"}" * 101
    r = await client.post("/invoke", data=deep, headers={"Content-Type": "application/json"})
    assert "nested deeper than 100 levels" in (await problem(r, 400))["detail"]
    fits = b'{"botType": "python", "payload": ' + b'{"a": ' * 98 + b"1" + b"}" * 99
    r = await client.post("/invoke", data=fits, headers={"Content-Type": "application/json"})
    assert r.status == 202, await r.text()


@pytest.mark.parametrize("key", [b"\xff\xfe", b"caf\xc3\xa9", b"\x80abc"])
async def test_a_non_ascii_idempotency_key_is_400(client, key):
    answer = await raw_exchange(
        client.server.port,
        post_invoke(b'{"botType": "python"}', b"Idempotency-Key: " + key + b"\r\n"),
    )
    status, body, _ = status_and_body(answer)
    assert status == 400 and "Idempotency-Key" in body["errors"], answer


@pytest.mark.parametrize(
    "url", ["http://xn--a:5000/", "http://xn--a.example.com/hook", "https://a.xn--zz/"]
)
async def test_an_invalid_idna_webhook_host_is_422_naming_webhook_url(client, url):
    r = await client.post("/invoke", json={"botType": "python", "webhookUrl": url})
    assert "webhookUrl" in (await problem(r, 422))["errors"]


async def test_odd_bytes_in_forwarded_for_from_a_trusted_proxy_are_not_a_500(make_client):
    client = await make_client(
        **{"api.keys": ["k-0123456789"], "api.trusted_proxies": ["127.0.0.0/8"]}
    )
    for extra in (b"X-Forwarded-For: \xff\xfe\r\n", b"X-Forwarded-For: 1.2.3.4, caf\xc3\xa9\r\n"):
        answer = await raw_exchange(client.server.port, post_invoke(b"{}", extra))
        status, body, _ = status_and_body(answer)
        assert status == 401 and body["status"] == 401, answer  # no key: refused, not a crash


async def test_odd_bytes_in_other_headers_are_never_a_500(make_client):
    client = await make_client(**{"api.keys": ["k-0123456789"], "api.cors_origins": ["*"]})
    key = b"Authorization: Bearer k-0123456789\r\n"
    for extra in (
        b"Authorization: Bearer \xff\xfe\r\n",
        b"X-API-Key: caf\xc3\xa9\r\n",
        key + b"X-Request-Id: \xff\r\n",
        key + b"Origin: http://\xff\r\n",
        key + b"X-Long: " + b"v" * 8000 + b"\r\n",
    ):
        answer = await raw_exchange(
            client.server.port, post_invoke(b'{"botType": "python"}', extra)
        )
        status, _, head = status_and_body(answer)
        assert status in (202, 401), answer[:300]
        assert b"\xff" not in head  # no raw bytes echoed back


async def test_stored_nan_from_an_older_version_is_served_as_valid_json(client):
    """A result stored before bot results were checked: GET /job serves it as text, and GET
    /jobs (which lists no results) stays valid JSON."""
    from botsys.appkeys import QUEUE

    r = await client.post("/invoke", json={"botType": "python", "payload": {"n": 1}})
    job_id = (await r.json())["jobId"]
    queue = client.app[QUEUE]
    await queue.redis.hset(queue.keys.job("python", job_id), "result", '{"mean":NaN}')
    job = strict_json(await (await client.get(f"/job/{job_id}")).text())
    assert job["result"] == '{"mean":NaN}'  # as text: the response stays JSON
    listed = strict_json(await (await client.get("/jobs")).text())
    assert listed["jobs"][0]["jobId"] == job_id and "result" not in listed["jobs"][0]


async def test_a_body_that_trickles_in_is_cut_off_with_408(aiohttp_client):
    settings = make_settings(**{"server.body_timeout_s": 0.5})
    client = await aiohttp_client(create_app(settings, with_workers=False))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    loop = asyncio.get_running_loop()
    try:
        writer.write(
            b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"botType": "py'  # and then nothing more
        )
        await writer.drain()
        started = loop.time()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        answered = loop.time() - started
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        status, body, _ = status_and_body(head + await reader.readexactly(length))
        # aiohttp reads what is left of the body for at most 10 s (lingering), then closes
        assert await asyncio.wait_for(reader.read(), 15) == b""
    finally:
        writer.close()
    assert status == 408 and "server.body_timeout_s" in body["detail"], body
    assert b"application/problem+json" in head and b"Connection: close" in head
    assert 0.4 < answered < 3, answered
    assert (await (await client.get("/jobs")).json())["jobs"] == []


async def test_a_slow_but_steady_body_within_the_timeout_is_accepted(make_client):
    client = await make_client(**{"server.body_timeout_s": 5})

    async def chunks():
        for part in (b'{"botType": ', b'"python", ', b'"payload": {}}'):
            await asyncio.sleep(0.05)  # a slow body: the slowness under test
            yield part

    r = await client.post("/invoke", data=chunks(), headers={"Content-Type": "application/json"})
    assert r.status == 202, await r.text()


class NonFiniteRunner:
    """A runner (not the process runner, which refuses them earlier) whose result holds NaN."""

    async def run(self, spec, sink):
        sink.started(1)
        return AttemptOutcome("succeeded", result={"mean": float("nan"), "max": float("inf")})


async def test_a_non_finite_result_fails_the_job_and_nothing_serves_it(make_client):
    from tests.api.test_observability import wait_state

    client = await make_client(
        workers=True, runner=NonFiniteRunner(), **{"webhooks.allow": ["127.0.0.1"]}
    )
    body = {"botType": "python", "attempts": 1, "webhookUrl": f"http://127.0.0.1:{free_port()}/h"}
    job_id = (await (await client.post("/invoke", json=body)).json())["jobId"]
    job = await wait_state(client, job_id, ("succeeded", "failed"))
    assert job["state"] == "failed" and "not valid JSON" in job["error"], job
    listed = (await (await client.get("/deliveries")).json())["deliveries"][0]
    paths = (f"/job/{job_id}", "/jobs", "/deliveries", f"/deliveries/{listed['deliveryId']}")
    for path in (*paths, f"/job/{job_id}/events"):
        text = await (await client.get(path)).text()
        assert "NaN" not in text and "Infinity" not in text, (path, text)
        if path in paths:
            strict_json(text)
    delivery = await (await client.get(f"/deliveries/{listed['deliveryId']}")).json()
    assert delivery["body"]["result"] is None and "not valid JSON" in delivery["body"]["error"]


# The routes the control plane and the webhook manager added parse bodies the same strict way.
NEW_WRITES = [
    ("/deliver", b'{"url": "http://localhost:5000/hook", "payload": %s}'),
    ("/endpoints", b'{"url": "http://localhost:5000/hook", "description": %s}'),
    ("/admin/config/bot-types", b'{"name": "reports", "runtime": "python", "limit": %s}'),
    ("/admin/config/bot-groups", b'{"groupId": "g", "members": ["python"], "x": %s}'),
    ("/deliveries/redeliver", b'{"state": "dead", "since": %s}'),
]


@pytest.mark.parametrize("path, template", NEW_WRITES)
@pytest.mark.parametrize("odd", [b"1e400", b"NaN", b'"\\ud800"', b'"\xff\xfe"'])
async def test_new_write_routes_answer_odd_bytes_and_non_finite_numbers_with_400(
    client, path, template, odd
):
    raw = template % odd
    r = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
    await problem(r, 400)
    for listing, key in (("/deliveries", "deliveries"), ("/endpoints", "endpoints")):
        assert (await (await client.get(listing)).json())[key] == [], "nothing was stored"
