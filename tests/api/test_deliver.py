"""Ad-hoc deliveries through the API: POST /deliver, GET /delivery/{id} (the original's name),
listing, redelivery, idempotency and every refusal naming its field."""

from __future__ import annotations

import json

from botsys.appkeys import DELIVERIES
from botsys.store.outbox import delivery_type
from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_deliveries import deliver
from tests.api.test_invoke import problem

HOOK = "http://localhost:5000/hook"  # allowed by the default allow list


async def test_deliver_schedules_a_delivery_shown_like_a_jobs(client):
    payload = {"invoice": 7, "amount": 12.5, "tags": ["a", "é"]}
    r = await client.post("/deliver", json={"url": HOOK, "payload": payload, "eventType": "x.y"})
    assert r.status == 202, await r.text()
    out = await r.json()
    did = out["deliveryId"]
    assert out["created"] is True and r.headers["Location"] == out["statusUrl"]
    assert out["statusUrl"] == f"/deliveries/{did}" and delivery_type(did) == "_adhoc"
    view = await (await client.get(f"/delivery/{did}")).json()
    assert view == await (await client.get(f"/deliveries/{did}")).json()
    assert view["body"] == payload and view["state"] == "pending" and view["url"] == HOOK
    assert view["jobId"] is None and view["botType"] is None and view["eventType"] == "x.y"
    listed = (await (await client.get("/deliveries")).json())["deliveries"]
    assert [d["deliveryId"] for d in listed] == [did]
    (claimed,) = await client.app[DELIVERIES].claim_due(5)
    assert json.loads(claimed.body) == payload and b": " not in claimed.body  # compact JSON
    assert claimed.job_id == "" and claimed.event_type == "x.y"


async def test_an_adhoc_delivery_dead_letters_and_is_redelivered(client):
    did = (await (await client.post("/deliver", json={"url": HOOK, "payload": None})).json())[
        "deliveryId"
    ]
    assert await deliver(client, outcome="failed", status=410) == did
    stats = await (await client.get("/stats")).json()
    assert stats["webhooks"] == {"pending": 0, "delivered": 0, "failed": 1}
    dead = (await (await client.get("/deliveries?state=dead")).json())["deliveries"]
    assert [d["deliveryId"] for d in dead] == [did]
    r = await client.post(f"/deliveries/{did}/redeliver")
    assert r.status == 202
    assert (await (await client.get(f"/delivery/{did}")).json())["state"] == "pending"
    await deliver(client)
    view = await (await client.get(f"/delivery/{did}")).json()
    assert view["state"] == "delivered" and view["body"] is None
    stats = await (await client.get("/stats")).json()
    # counters, as for jobs' webhooks: the dead-lettering still counts after the redelivery
    assert stats["webhooks"] == {"pending": 0, "delivered": 1, "failed": 1}
    assert [a["statusCode"] for a in view["history"]] == [410, 200]


async def test_idempotency_key_in_body_or_header(client):
    first = await client.post("/deliver", json={"url": HOOK, "payload": 1, "idempotencyKey": "k"})
    again = await client.post("/deliver", json={"url": HOOK, "payload": 1, "idempotencyKey": "k"})
    assert (first.status, again.status) == (202, 200)
    assert (await first.json())["deliveryId"] == (await again.json())["deliveryId"]
    assert (await again.json())["created"] is False
    other = await client.post("/deliver", json={"url": HOOK, "payload": 2, "idempotencyKey": "k"})
    assert "idempotencyKey" in (await problem(other, 422))["errors"]
    h = {"Idempotency-Key": "h1"}
    a = await client.post("/deliver", json={"url": HOOK, "payload": 1}, headers=h)
    b = await client.post("/deliver", json={"url": HOOK, "payload": 1}, headers=h)
    assert (a.status, b.status) == (202, 200)
    assert len((await (await client.get("/deliveries")).json())["deliveries"]) == 2


async def test_bad_input_is_a_4xx_naming_the_field(make_client):
    client = await make_client(**{"server.max_body_bytes": 4 << 20})
    cases = [
        ({"payload": 1}, 422, "url"),
        ({"url": HOOK}, 422, "payload"),
        ({"url": "http://127.0.0.1:9/x", "payload": 1}, 422, "url"),  # SSRF guard
        ({"url": "http://169.254.169.254/", "payload": 1}, 422, "url"),
        ({"url": "ftp://example.com/", "payload": 1}, 422, "url"),
        ({"url": HOOK, "payload": 1, "eventType": "a b"}, 422, "eventType"),
        ({"url": HOOK, "payload": 1, "idempotencyKey": ""}, 422, "idempotencyKey"),
        ({"url": HOOK, "payload": 1, "extra": 1}, 422, "extra"),
        ({"url": HOOK, "payload": "x" * (1 << 20)}, 413, "payload"),
    ]
    for body, status, field in cases:
        out = await problem(await client.post("/deliver", json=body), status)
        assert field in out["errors"], (body if len(str(body)) < 200 else field, out)
    await problem(await client.post("/deliver", data=b"{", headers=JSON), 400)
    await problem(await client.post("/deliver", data=b"x" * (5 << 20), headers=JSON), 413)
    assert (await (await client.get("/deliveries")).json())["deliveries"] == []


async def test_deliver_needs_a_user_key_not_an_admin_one(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    body = {"url": HOOK, "payload": {}}
    await problem(await client.post("/deliver", json=body), 401)
    assert (await client.post("/deliver", json=body, headers=auth(USER_KEY))).status == 202


JSON = {"Content-Type": "application/json"}
