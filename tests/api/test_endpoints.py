"""Endpoints through the API (admin): create with its secret shown once, list, read, patch,
rotate its secret, delete; bad input is a 4xx naming the field."""

from __future__ import annotations

from botsys.appkeys import ENDPOINTS, QUEUE, STORE
from tests.api.conftest import ADMIN_KEY, USER_KEY, FakeRunner, auth
from tests.api.test_invoke import problem
from tests.api.test_observability import samples
from tests.integration.test_fan_out import start_receiver
from tests.support.waits import until_published

HOOK = "http://localhost:5000/hook"
SECRET = "whsec_" + "Qk" * 16


async def test_endpoint_lifecycle(client):
    r = await client.post(
        "/endpoints",
        json={"url": HOOK, "eventTypes": ["job.failed"], "botTypes": ["node"], "secret": SECRET},
    )
    assert r.status == 201, await r.text()
    ep = await r.json()
    eid = ep["endpointId"]
    assert r.headers["Location"] == f"/endpoints/{eid}" and ep["secret"] == SECRET
    assert ep["eventTypes"] == ["job.failed"] and ep["botTypes"] == ["node"]
    assert not ep["disabled"] and [s["expiresAt"] for s in ep["secrets"]] == [None]
    assert ep["breaker"] is None  # no dispatcher on this app
    # the completion scripts of this replica fan node's events out to it at once
    assert eid in fanned_out(client, "node") and eid not in fanned_out(client, "python")

    view = await (await client.get(f"/endpoints/{eid}")).json()
    assert "secret" not in view and SECRET not in str(view)
    assert [
        e["endpointId"] for e in (await (await client.get("/endpoints")).json())["endpoints"]
    ] == [eid]

    r = await client.patch(
        f"/endpoints/{eid}", json={"botTypes": [], "disabled": True, "rateLimit": 2.5}
    )
    patched = await r.json()
    assert r.status == 200 and patched["botTypes"] == [] and patched["disabled"] is True
    assert patched["rateLimit"] == 2.5 and client.app[ENDPOINTS].rate_for(eid) == 2.5
    assert eid not in fanned_out(client, "python")  # disabled: no fan-out
    assert patched["disabledAt"] and patched["disabledReason"] == "disabled through the API"
    await client.patch(f"/endpoints/{eid}", json={"disabled": False})
    assert eid in fanned_out(client, "python")

    r = await client.post(f"/endpoints/{eid}/secret/rotate", json={"overlapS": 60})
    rotated = await r.json()
    assert r.status == 200 and rotated["secret"] != SECRET and len(rotated["secrets"]) == 2

    assert (await client.delete(f"/endpoints/{eid}")).status == 204
    await problem(await client.get(f"/endpoints/{eid}"), 404)
    await problem(await client.delete(f"/endpoints/{eid}"), 404)
    await problem(await client.patch(f"/endpoints/{eid}", json={}), 404)
    await problem(await client.post(f"/endpoints/{eid}/secret/rotate", json={}), 404)
    assert eid not in fanned_out(client, "python")


async def test_bad_input_names_the_field(client):
    for body, field in [
        ({}, "url"),
        ({"url": "http://127.0.0.1:9/"}, "url"),
        ({"url": "http://10.0.0.1/"}, "url"),
        ({"url": HOOK, "eventTypes": ["job.exploded"]}, "eventTypes.0"),
        ({"url": HOOK, "eventTypes": []}, "eventTypes"),
        ({"url": HOOK, "botTypes": ["cobol"]}, "botTypes"),
        ({"url": HOOK, "secret": "whsec_x"}, "secret"),
        ({"url": HOOK, "disabled": "yes"}, "disabled"),
        ({"url": HOOK, "rateLimit": -1}, "rateLimit"),
        ({"url": HOOK, "rateLimit": "10"}, "rateLimit"),
        ({"url": HOOK, "other": 1}, "other"),
    ]:
        out = await problem(await client.post("/endpoints", json=body), 422)
        assert field in out["errors"], (body, out)
    eid = (await (await client.post("/endpoints", json={"url": HOOK})).json())["endpointId"]
    out = await problem(await client.patch(f"/endpoints/{eid}", json={"secret": SECRET}), 422)
    assert "secret" in out["errors"]  # rotate instead
    out = await problem(await client.patch(f"/endpoints/{eid}", json={"url": "ftp://x.y/"}), 422)
    assert "url" in out["errors"]


async def test_endpoints_are_for_admins(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    user, admin = auth(USER_KEY), auth(ADMIN_KEY)
    await problem(await client.get("/endpoints", headers=user), 403)
    await problem(await client.post("/endpoints", json={"url": HOOK}, headers=user), 403)
    r = await client.post("/endpoints", json={"url": HOOK}, headers=admin)
    assert r.status == 201


async def test_a_failing_endpoint_is_disabled_counted_and_re_enabled(make_client, aiohttp_server):
    """Through the app's wiring: the dispatcher disables it, /metrics counts it, the view
    shows when and why; PATCH {"disabled": false} clears both."""
    bad = await start_receiver(aiohttp_server)
    bad.default = 500
    client = await make_client(
        workers=True,
        runner=FakeRunner(),
        **{
            "webhooks.allow": ["127.0.0.1"],
            "webhooks.retry_delay_ms": 50,
            "webhooks.max_delay_ms": 100,
            "webhooks.max_retries": 100,
            "webhooks.breaker_open_s": 0.1,
            "webhooks.endpoint_disable_after_s": 0.5,
        },
    )
    eid = (await (await client.post("/endpoints", json={"url": bad.url})).json())["endpointId"]
    assert (await client.post("/invoke", json={"botType": "python"})).status == 202

    views = []

    async def disabled():
        views.append(await (await client.get(f"/endpoints/{eid}")).json())
        return views[-1]["disabled"]

    store = client.app[STORE]  # disabling it publishes on the endpoints channel
    await until_published(store.redis, store.keys.endpoints_channel(), disabled, 20)
    view = views[-1]
    assert view["disabledAt"] and view["disabledReason"].startswith("no successful delivery")
    assert view["breaker"] in ("closed", "open", "half_open")  # it has sent to it
    m = samples(await (await client.get("/metrics")).text())
    assert m[("botsys_webhook_endpoints_disabled_total", ())] == 1
    [pending] = (await (await client.get("/deliveries?state=pending")).json())["deliveries"]
    assert pending["endpointId"] == eid  # held, not dead-lettered

    view = await (await client.patch(f"/endpoints/{eid}", json={"disabled": False})).json()
    assert not view["disabled"] and view["disabledAt"] is None and view["disabledReason"] is None


def fanned_out(client, bot_type: str) -> str:
    """The endpoints argument the completion scripts of ``bot_type`` get (JSON)."""
    return client.app[QUEUE]._settings(bot_type)["endpoints"]
