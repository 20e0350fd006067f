"""Stats, bots and the live queue controls (admin)."""

from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_invoke import problem


async def test_stats_per_type_and_webhooks(client):
    await client.post("/invoke", json={"botType": "node"})
    body = await (await client.get("/stats")).json()
    assert set(body["botTypes"]) == {"python", "node", "java"}
    node = body["botTypes"]["node"]
    assert node == {
        "waiting": 1,
        "delayed": 0,
        "running": 0,
        "limit": 10,
        "paused": False,
        "succeeded": 0,
        "failed": 0,
        "timed_out": 0,
        "cancelled": 0,
    }
    assert body["webhooks"] == {"pending": 0, "delivered": 0, "failed": 0}


async def test_bots_describes_types(client):
    body = await (await client.get("/bots")).json()
    by_type = {t["botType"]: t for t in body["botTypes"]}
    assert "data_analysis" in by_type["python"]["bots"]
    assert by_type["java"]["limit"] == 3 and by_type["python"]["maxTimeoutS"] == 3600


async def test_get_queue_and_unknown_type(client):
    body = await (await client.get("/queues/python")).json()
    assert body == {
        "botType": "python",
        "limit": 5,
        "paused": False,
        "waiting": 0,
        "delayed": 0,
        "running": 0,
    }
    await problem(await client.get("/queues/ruby"), 404)


async def test_patch_queue_on_an_open_api(client):
    r = await client.patch("/queues/node", json={"limit": 2, "paused": True})
    assert r.status == 200
    body = await r.json()
    assert body["limit"] == 2 and body["paused"] is True
    r = await client.patch("/queues/node", json={"paused": False})
    assert (await r.json())["paused"] is False and (await r.json())["limit"] == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"limit": -1}, "limit"),
        ({"limit": 100001}, "limit"),
        ({"limit": "2"}, "limit"),
        ({"paused": "yes"}, "paused"),
        ({"paused": 1}, "paused"),
        ({"speed": 1}, "speed"),
    ],
)
async def test_patch_queue_validation(client, body, field):
    assert field in (await problem(await client.patch("/queues/node", json=body), 422))["errors"]


async def test_patch_queue_needs_an_admin_key(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    await problem(await client.patch("/queues/node", json={"limit": 1}), 401)
    await problem(
        await client.patch("/queues/node", json={"limit": 1}, headers=auth(USER_KEY)), 403
    )
    r = await client.patch("/queues/node", json={"limit": 1}, headers=auth(ADMIN_KEY))
    assert r.status == 200 and (await r.json())["limit"] == 1
    # an admin key is also a user key
    assert (await client.get("/stats", headers=auth(ADMIN_KEY))).status == 200
    await problem(
        await client.patch("/queues/ruby", json={"limit": 1}, headers=auth(ADMIN_KEY)), 404
    )
