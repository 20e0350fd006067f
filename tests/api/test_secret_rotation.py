"""Signing-secret rotation through the API (admin): the new secret once, fingerprints after."""

from __future__ import annotations

from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_invoke import problem

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_" + "Qk" * 16


async def test_rotate_then_list(make_client):
    client = await make_client(**{"webhooks.secret": SECRET})
    listed = await (await client.get("/webhooks/secrets")).json()
    assert [s["expiresAt"] for s in listed["secrets"]] == [None]
    r = await client.post("/webhooks/secret/rotate", json={"secret": NEW, "overlapS": 3600})
    assert r.status == 200, await r.text()
    out = await r.json()
    assert out["secret"] == NEW
    current, old = out["secrets"]
    assert current["expiresAt"] is None and old["expiresAt"].endswith("Z")
    assert current["signing"] and old["signing"]
    r = await client.post("/webhooks/secret/rotate", json={})  # a random one
    fresh = (await r.json())["secret"]
    assert fresh.startswith("whsec_") and fresh != NEW
    text = await (await client.get("/webhooks/secrets")).text()
    assert NEW not in text and fresh not in text and SECRET not in text  # values never listed
    assert len((await (await client.get("/webhooks/secrets")).json())["secrets"]) == 3


async def test_bad_input_names_the_field(client):
    for body, field in [
        ({"secret": "whsec_short"}, "secret"),
        ({"secret": "nope_" + "Qk" * 16}, "secret"),
        ({"secret": "whsec_" + "Qk" * 15 + "Q="}, "secret"),  # 23 bytes
        ({"overlapS": -1}, "overlapS"),
        ({"overlapS": "60"}, "overlapS"),
        ({"other": 1}, "other"),
    ]:
        out = await problem(await client.post("/webhooks/secret/rotate", json=body), 422)
        assert field in out["errors"], (body, out)


async def test_rotation_is_for_admins(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    user, admin = auth(USER_KEY), auth(ADMIN_KEY)
    await problem(await client.post("/webhooks/secret/rotate", json={}, headers=user), 403)
    await problem(await client.get("/webhooks/secrets", headers=user), 403)
    assert (await client.post("/webhooks/secret/rotate", json={}, headers=admin)).status == 200
