"""Webhook deliveries: list, read with attempts, redeliver (admin)."""

from __future__ import annotations

from botsys.appkeys import DELIVERIES, QUEUE
from botsys.webhooks.types import AttemptRecord
from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_invoke import problem


async def finished_job_with_webhook(client) -> str:
    r = await client.post(
        "/invoke", json={"botType": "python", "webhookUrl": "http://localhost:5000/hook"}
    )
    job_id = (await r.json())["jobId"]
    queue = client.app[QUEUE]
    _, claims = await queue.claim("python", 1)
    done = await queue.complete(claims[0], "succeeded", result_json='{"ok": true}')
    assert done.delivery_id
    return job_id


async def deliver(client, outcome="delivered", status=200):
    store = client.app[DELIVERIES]
    (d,) = await store.claim_due(1)
    record = AttemptRecord(1_700_000_000_000, 12, status, None, "ok", outcome)
    await store.finish_attempt(d, record, None)
    return d.id


async def test_empty_and_unknown(client):
    assert await (await client.get("/deliveries")).json() == {"deliveries": []}
    await problem(await client.get("/deliveries/msg_nope"), 404)
    await problem(await client.post("/deliveries/msg_nope/redeliver"), 404)
    await problem(await client.get("/deliveries?state=lost"), 422)
    await problem(await client.get("/deliveries?limit=0"), 422)


async def test_delivery_lifecycle_through_the_api(client):
    job_id = await finished_job_with_webhook(client)
    listed = await (await client.get(f"/deliveries?jobId={job_id}")).json()
    (d,) = listed["deliveries"]
    assert d["state"] == "pending" and d["jobId"] == job_id
    assert "body" not in d and "history" not in d  # lists stay small: GET /deliveries/{id}
    view = await (await client.get(f"/deliveries/{d['deliveryId']}")).json()
    assert view["body"]["result"] == {"ok": True} and view["history"] == []
    await problem(await client.post(f"/deliveries/{d['deliveryId']}/redeliver"), 409)
    await deliver(client)
    view = await (await client.get(f"/deliveries/{d['deliveryId']}")).json()
    assert view["state"] == "delivered" and view["lastStatus"] == 200
    assert view["history"][0]["statusCode"] == 200 and view["history"][0]["at"].endswith("Z")
    delivered = await (await client.get("/deliveries?state=delivered")).json()
    assert [x["deliveryId"] for x in delivered["deliveries"]] == [d["deliveryId"]]
    r = await client.post(f"/deliveries/{d['deliveryId']}/redeliver")
    assert r.status == 202 and await r.json() == {"deliveryId": d["deliveryId"], "state": "pending"}
    job = await (await client.get(f"/job/{job_id}")).json()
    assert job["webhook"]["state"] == "pending"
    stats = await (await client.get("/stats")).json()
    assert stats["webhooks"]["pending"] == 1 and stats["webhooks"]["delivered"] == 1


async def test_redeliver_needs_an_admin_key(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    h = auth(USER_KEY)
    await problem(await client.post("/deliveries/msg_x/redeliver", headers=h), 403)
    await problem(await client.post("/deliveries/msg_x/redeliver", headers=auth(ADMIN_KEY)), 404)
    assert (await client.get("/deliveries", headers=h)).status == 200
