"""/admin/config/bot-types: every route, its errors (404, 409, 412, 422) and its effect on
/invoke, on both backends."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from botsys.appkeys import QUEUE
from tests.api.conftest import ADMIN_KEY, USER_KEY, FakeRunner, auth
from tests.api.test_invoke import problem
from tests.support.job_events import wait_jobs

BASE = "/admin/config/bot-types"


async def create(client, **body):
    body.setdefault("name", "reports")
    body.setdefault("runtime", "python")
    return await client.post(BASE, json=body)


async def test_list_shows_the_configured_types_as_seeds(client):
    r = await client.get(BASE)
    assert r.status == 200
    body = await r.json()
    assert body["version"] == 0
    by_name = {t["name"]: t for t in body["botTypes"]}
    assert set(by_name) == {"python", "node", "java"}
    assert by_name["python"] == {
        "name": "python",
        "runtime": "python",
        "bots": None,
        "botsDir": None,
        "limit": 5,
        "cadence": None,
        "defaultPriority": 3,
        "retryAttempts": 0,
        "timeoutMs": 300000,
        "description": "",
        "source": "config",
        "version": 0,
    }


async def test_create_then_invoke_it_at_once(client):
    r = await create(
        client,
        bots=["data_analysis", "simulate"],
        limit=2,
        cadence={"max": 5, "intervalS": 2},
        defaultPriority=7,
        retryAttempts=2,
        timeoutMs=60000,
        description="nightly reports",
    )
    assert r.status == 201, await r.text()
    assert r.headers["Location"] == f"{BASE}/reports"
    view = await r.json()
    assert r.headers["ETag"] == f'"{view["version"]}"' and view["version"] >= 1
    assert view["source"] == "runtime" and view["runtime"] == "python"
    assert view["cadence"] == {"max": 5, "intervalS": 2.0, "mode": "queue"}
    assert view["limit"] == 2 and view["bots"] == ["data_analysis", "simulate"]

    r = await client.post("/invoke", json={"botType": "reports", "bot": "data_analysis"})
    assert r.status == 202, await r.text()
    job = await r.json()
    assert job["jobId"].startswith("reports-") and job["priority"] == 7
    got = await (await client.get(f"/job/{job['jobId']}")).json()
    assert got["botType"] == "reports" and got["maxAttempts"] == 3
    assert (await (await client.get("/queues/reports")).json())["limit"] == 2
    # Outside the allow-list: refused naming the bot field, with what is allowed.
    r = await client.post("/invoke", json={"botType": "reports", "bot": "hello"})
    body = await problem(r, 422)
    assert "bot" in body["errors"] and "data_analysis" in body["detail"]


async def test_a_new_type_on_a_runtime_takes_its_defaults(client):
    view = await (await create(client, name="quick", runtime="node")).json()
    assert (view["limit"], view["timeoutMs"], view["bots"], view["cadence"]) == (
        10,
        300000,
        None,
        None,
    )
    r = await client.post("/invoke", json={"botType": "quick"})
    assert r.status == 202 and (await r.json())["bot"] == "simulate"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"runtime": "ruby"}, "runtime"),
        ({"runtime": None}, "runtime"),
        ({"name": "Bad-Name"}, "name"),
        ({"name": "x" * 33}, "name"),
        ({"limit": -1}, "limit"),
        ({"limit": True}, "limit"),
        ({"cadence": {"max": 0, "intervalS": 1}}, "cadence.max"),
        ({"cadence": {"max": 5}}, "cadence.intervalS"),
        ({"cadence": {"max": 5, "intervalS": 0}}, "cadence.intervalS"),
        ({"cadence": {"max": 5, "intervalS": 1, "mode": "drop"}}, "cadence.mode"),
        ({"bots": []}, "bots"),
        ({"bots": ["../etc"]}, "bots"),
        ({"bots": ["a", "a"]}, "bots"),
        ({"botsDir": "relative/path"}, "botsDir"),
        ({"botsDir": "/no/such/folder/here"}, "botsDir"),
        ({"timeoutMs": 3600001}, "timeoutMs"),
        ({"defaultPriority": 0}, "defaultPriority"),
        ({"retryAttempts": 10}, "retryAttempts"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_definitions_are_422_naming_the_field(client, body, field):
    r = await create(client, **body)
    found = await problem(r, 422)
    assert field in found["errors"], found
    assert (await client.get(f"{BASE}/reports")).status == 404


async def test_create_twice_is_409_and_a_configured_name_too(client):
    assert (await create(client)).status == 201
    await problem(await create(client), 409)
    await problem(await create(client, name="python"), 409)


async def test_put_patch_with_if_match(client):
    first = await create(client, limit=2)
    etag = first.headers["ETag"]
    r = await client.patch(f"{BASE}/reports", json={"limit": 4}, headers={"If-Match": etag})
    assert r.status == 200, await r.text()
    patched = await r.json()
    assert patched["limit"] == 4 and patched["runtime"] == "python"
    assert r.headers["ETag"] != etag
    # The old ETag no longer matches: 412, nothing changed.
    r = await client.patch(f"{BASE}/reports", json={"limit": 9}, headers={"If-Match": etag})
    await problem(r, 412)
    r = await client.put(
        f"{BASE}/reports", json={"runtime": "node"}, headers={"If-Match": '"12345"'}
    )
    await problem(r, 412)
    r = await client.put(f"{BASE}/reports", json={"runtime": "node", "description": "moved"})
    assert r.status == 200
    put = await r.json()
    # PUT replaces: unspecified fields take the runtime's values again.
    assert (put["runtime"], put["limit"], put["description"]) == ("node", 10, "moved")
    got = await client.get(f"{BASE}/reports")
    assert got.headers["ETag"] == r.headers["ETag"] and (await got.json()) == put
    await problem(await client.patch(f"{BASE}/reports", json={"cadence": {"max": 0}}), 422)
    await problem(await client.patch(f"{BASE}/nothing", json={"limit": 1}), 404)
    await problem(await client.put(f"{BASE}/nothing", json={"runtime": "node"}), 404)


async def test_override_and_reset_a_configured_type(client):
    r = await client.patch(
        f"{BASE}/python", json={"limit": 1, "cadence": {"max": 2, "intervalS": 1}}
    )
    view = await r.json()
    assert r.status == 200 and view["source"] == "override" and view["limit"] == 1
    assert (await (await client.get("/queues/python")).json())["limit"] == 1
    r = await client.post(f"{BASE}/python/reset")
    assert r.status == 200
    view = await r.json()
    assert (view["source"], view["limit"], view["cadence"]) == ("config", 5, None)
    assert (await (await client.get("/queues/python")).json())["limit"] == 5
    await create(client)
    await problem(await client.post(f"{BASE}/reports/reset"), 409)
    await problem(await client.post(f"{BASE}/nothing/reset"), 404)


async def test_delete_refuses_while_jobs_wait_unless_forced(client):
    await create(client)
    job = await (await client.post("/invoke", json={"botType": "reports"})).json()
    body = await problem(await client.delete(f"{BASE}/reports"), 409)
    assert "1 waiting" in body["detail"]
    r = await client.delete(f"{BASE}/reports?force=true")
    assert r.status == 200 and await r.json() == {"name": "reports", "cancelled": 1}
    assert (await client.get(f"{BASE}/reports")).status == 404
    await problem(await client.post("/invoke", json={"botType": "reports"}), 422)
    # Its jobs are still readable until retention ends them.
    got = await (await client.get(f"/job/{job['jobId']}")).json()
    assert got["state"] == "cancelled"
    await problem(await client.delete(f"{BASE}/reports"), 404)


async def test_delete_a_configured_type_until_reset(client):
    assert (await client.delete(f"{BASE}/java")).status == 200
    names = [t["name"] for t in (await (await client.get(BASE)).json())["botTypes"]]
    assert names == ["python", "node"], "the file's order"
    await problem(await client.post("/invoke", json={"botType": "java"}), 422)
    r = await client.post(f"{BASE}/java/reset")
    assert r.status == 200 and (await r.json())["source"] == "config"
    names = [t["name"] for t in (await (await client.get(BASE)).json())["botTypes"]]
    assert names == ["python", "node", "java"], "back in its place"
    assert (await client.post("/invoke", json={"botType": "java"})).status == 202


async def test_delete_with_a_stale_if_match_is_412(client):
    etag = (await create(client)).headers["ETag"]
    await client.patch(f"{BASE}/reports", json={"limit": 3})
    await problem(await client.delete(f"{BASE}/reports", headers={"If-Match": etag}), 412)


async def test_every_write_bumps_the_catalog_version(client):
    v0 = (await (await client.get(BASE)).json())["version"]
    await create(client)
    v1 = (await (await client.get(BASE)).json())["version"]
    await client.patch(f"{BASE}/reports", json={"limit": 3})
    v2 = (await (await client.get(BASE)).json())["version"]
    assert v0 < v1 < v2


async def test_admin_key_needed(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    assert (await client.get(BASE, headers=auth(USER_KEY))).status == 403
    r = await client.post(BASE, json={"name": "x", "runtime": "python"}, headers=auth(USER_KEY))
    assert r.status == 403
    assert (await client.get(BASE, headers=auth(ADMIN_KEY))).status == 200
    assert (await client.get(BASE)).status == 401


async def test_reject_mode_answers_429_with_retry_after(client):
    await create(client, cadence={"max": 2, "intervalS": 60, "mode": "reject"})
    for _ in range(2):
        assert (await client.post("/invoke", json={"botType": "reports"})).status == 202
    r = await client.post("/invoke", json={"botType": "reports"})
    body = await problem(r, 429)
    assert body["type"].endswith("/cadence")
    assert 55 <= int(r.headers["Retry-After"]) <= 60


async def test_a_type_created_here_gets_a_dispatcher_and_runs(make_client):
    runner = FakeRunner()
    client = await make_client(workers=True, runner=runner)
    await create(client)
    r = await client.post("/invoke", json={"botType": "reports", "payload": {"n": 1}})
    job_id = (await r.json())["jobId"]
    [job] = await wait_jobs(client.app[QUEUE], [job_id], timeout=10)
    assert job.state == "succeeded" and runner.started == [job_id]


async def test_a_job_held_by_the_cadence_says_so_and_until_when(client):
    await create(client, cadence={"max": 1, "intervalS": 60})
    ids = [
        (await (await client.post("/invoke", json={"botType": "reports"})).json())["jobId"]
        for _ in range(2)
    ]
    queued = await (await client.get(f"/job/{ids[1]}")).json()
    assert "waitingFor" not in queued, "the window is empty: nothing holds it but its turn"
    _, [claim] = await client.app[QUEUE].claim("reports", 5)  # a dispatcher's claim
    assert claim.job_id == ids[0]
    held = await (await client.get(f"/job/{ids[1]}")).json()
    assert held["state"] == "queued" and held["waitingFor"] == "cadence"
    after = datetime.fromisoformat(held["startsAfter"].replace("Z", "+00:00"))
    assert round(after.timestamp() * 1000) == int(claim.job.fields["startedAt"]) + 60_000


async def test_the_openapi_document_follows_the_types(client):
    doc = await (await client.get("/api-docs/swagger.json")).json()
    assert "/admin/config/bot-types/{botType}" in doc["paths"]
    assert "InvokeRequest_reports" not in doc["components"]["schemas"]
    await create(client)
    doc = await (await client.get("/api-docs/swagger.json")).json()
    variant = doc["components"]["schemas"]["InvokeRequest_reports"]
    assert variant["properties"]["botType"]["enum"] == ["reports"]


async def test_metrics_and_stats_include_a_runtime_type(client):
    await create(client)
    await client.post("/invoke", json={"botType": "reports"})
    stats = await (await client.get("/stats")).json()
    assert stats["botTypes"]["reports"]["waiting"] == 1
    text = await (await client.get("/metrics")).text()
    assert 'bot_type="reports"' in text
    bots = await (await client.get("/bots")).json()
    assert "reports" in [t["botType"] for t in bots["botTypes"]]


async def test_two_creates_at_once_make_one_type(make_client, api_settings, backend):
    """Two replicas (two apps on one store) create the same name at the same moment: the
    compare-and-set lets exactly one in."""
    if backend == "fakeredis":
        pytest.skip("each embedded app has a store of its own: one replica only")
    settings = api_settings()
    a = await make_client(settings=settings)
    b = await make_client(settings=settings)
    replies = await asyncio.gather(create(a, limit=1), create(b, limit=2))
    assert sorted(r.status for r in replies) == [201, 409]


@pytest.mark.parametrize(
    "raw, status",
    [
        (b'{"name": "r", "runtime": "python", "cadence": {"max": 5, "intervalS": 1e400}}', 400),
        (b'{"name": "r\\u00e9", "runtime": "python"}', 422),
        (b'{"name": "r", "runtime": "python", "bots": ["\\ud800"]}', 400),
        (b'{"name": "r", "runtime": "python", "description": "' + b"x" * 501 + b'"}', 422),
        (b"[1, 2]", 422),
        (b'{"name": "r", "runtime": "python"', 400),
    ],
)
async def test_hostile_bodies_get_a_clear_4xx(client, raw, status):
    r = await client.post(BASE, data=raw, headers={"Content-Type": "application/json"})
    await problem(r, status)
    assert (await client.get(f"{BASE}/r")).status == 404


@pytest.mark.parametrize("name", ["%00", "a" * 300, "..", "%F0%9F%92%A9", "PYTHON"])
async def test_odd_names_in_the_path_are_404(client, name):
    await problem(await client.get(f"{BASE}/{name}"), 404)
    await problem(await client.patch(f"{BASE}/{name}", json={"limit": 1}), 404)
    await problem(await client.delete(f"{BASE}/{name}?force=true"), 404)
