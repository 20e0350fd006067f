"""POST /deliveries/redeliver (admin): the dry run counts, the replay moves, bad input is a 422."""

from __future__ import annotations

from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_deliveries import deliver
from tests.api.test_invoke import problem

HOOK = "http://localhost:5000/hook"
SINCE = "2020-01-01T00:00:00Z"


async def test_dry_run_then_replay(client):
    for _ in range(3):
        await client.post("/deliver", json={"url": HOOK, "payload": 1})
        await deliver(client, outcome="failed", status=410)
    body = {"state": "dead", "since": SINCE}
    r = await client.post("/deliveries/redeliver?dryRun=true", json=body)
    assert await r.json() == {"matched": 3, "redelivered": 0, "dryRun": True}
    assert len((await (await client.get("/deliveries?state=dead")).json())["deliveries"]) == 3
    r = await client.post("/deliveries/redeliver", json={**body, "limit": 2})
    assert await r.json() == {"matched": 2, "redelivered": 2, "dryRun": False}
    pending = (await (await client.get("/deliveries?state=pending")).json())["deliveries"]
    assert len(pending) == 2
    future = {"state": "dead", "since": "2999-01-01T00:00:00+02:00"}
    r = await client.post("/deliveries/redeliver?dryRun=false", json=future)
    assert (await r.json())["matched"] == 0


async def test_bad_input_names_the_field(client):
    good = {"state": "dead", "since": SINCE}
    for body, field in [
        ({"since": SINCE}, "state"),
        ({**good, "state": "pending"}, "state"),
        ({"state": "dead"}, "since"),
        ({**good, "since": "2020-01-01T00:00:00"}, "since"),  # no zone
        ({**good, "since": "yesterday"}, "since"),
        ({**good, "jobId": "nope"}, "jobId"),
        ({**good, "limit": 0}, "limit"),
        ({**good, "endpoint": ""}, "endpoint"),
    ]:
        out = await problem(await client.post("/deliveries/redeliver", json=body), 422)
        assert field in out["errors"], (body, out)
    out = await problem(await client.post("/deliveries/redeliver?dryRun=yes", json=good), 422)
    assert "dryRun" in out["errors"]


async def test_replay_is_for_admins(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    body = {"state": "dead", "since": SINCE}
    await problem(
        await client.post("/deliveries/redeliver", json=body, headers=auth(USER_KEY)), 403
    )
    r = await client.post("/deliveries/redeliver", json=body, headers=auth(ADMIN_KEY))
    assert r.status == 200
