"""/admin/config/bot-groups and POST /invoke with target/params, on both backends."""

from __future__ import annotations

import asyncio
import json

import pytest

from botsys.api.targets import ROUTING_CLOCK
from botsys.app import create_app
from botsys.appkeys import MEMBER_CHECK
from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_invoke import problem

GROUPS = "/admin/config/bot-groups"
RR = {
    "groupId": "rr",
    "members": ["python/simulate", "node/process_api", "java"],
    "rule": {"type": "ROUND_ROBIN"},
}


async def create(client, body=RR, **kw):
    r = await client.post(GROUPS, json=body, **kw)
    assert r.status == 201, await r.text()
    return r


async def test_create_read_replace_delete(client):
    r = await create(client)
    view = await r.json()
    assert r.headers["Location"] == f"{GROUPS}/rr"
    assert r.headers["ETag"] == f'"{view["version"]}"'
    assert view["name"] == "rr" and view["rule"] == {"type": "ROUND_ROBIN"}
    assert (await problem(await client.post(GROUPS, json=RR), 409))["errors"] == {
        "groupId": ["exists already"]
    }
    listed = await (await client.get(GROUPS)).json()
    assert [g["groupId"] for g in listed["botGroups"]] == ["rr"]
    assert listed["version"] == view["version"]

    etag = (await client.get(f"{GROUPS}/rr")).headers["ETag"]
    changed = {**RR, "members": ["java"], "description": "java only"}
    r = await client.put(f"{GROUPS}/rr", json=changed, headers={"If-Match": etag})
    assert r.status == 200 and (await r.json())["members"] == ["java"]
    stale = await client.put(f"{GROUPS}/rr", json=RR, headers={"If-Match": etag})
    assert (await problem(stale, 412))["errors"]["If-Match"]
    assert stale.headers["ETag"] == r.headers["ETag"]
    assert (await client.delete(f"{GROUPS}/rr", headers={"If-Match": etag})).status == 412
    assert (await client.delete(f"{GROUPS}/rr")).status == 204
    await problem(await client.get(f"{GROUPS}/rr"), 404)
    await problem(await client.delete(f"{GROUPS}/rr"), 404)
    # PUT creates a group that does not exist (201); the id comes from the path
    r = await client.put(f"{GROUPS}/made", json={"members": ["java"], "rule": RR["rule"]})
    assert r.status == 201 and (await r.json())["groupId"] == "made"
    body = await problem(await client.put(f"{GROUPS}/made", json=RR), 422)
    assert "groupId" in body["errors"]


async def test_groups_need_an_admin_key(make_client):
    client = await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})
    await problem(await client.get(GROUPS, headers=auth(USER_KEY)), 403)
    await problem(await client.post(GROUPS, json=RR, headers=auth(USER_KEY)), 403)
    await create(client, headers=auth(ADMIN_KEY))
    # invoking through a group needs only a user key
    r = await client.post("/invoke", json={"target": "groupId:rr"}, headers=auth(USER_KEY))
    assert r.status == 202


def with_rule(rule, members=("python/simulate", "node/process_api", "java")):
    return {"groupId": "g", "members": list(members), "rule": rule}


BAD = [
    ({"groupId": "g", "members": [], "rule": {"type": "ROUND_ROBIN"}}, "members"),
    (with_rule({"type": "ROUND_ROBIN"}, ["python/no_such_bot"]), "members[0]"),
    (with_rule({"type": "ROUND_ROBIN"}, ["ruby"]), "members[0]"),
    (
        with_rule({"type": "PERCENTAGE_BASED", "weights": [{"member": "java", "weight": 0}]}),
        "rule.weights",
    ),
    (
        with_rule(
            {
                "type": "PARAMETER_BASED",
                "branches": [
                    {
                        "member": "java",
                        "conditions": [{"field": "x", "operator": "REGEX_MATCH", "value": "(a+)+"}],
                    }
                ],
                "default": "java",
            }
        ),
        "rule.branches[0].conditions[0].value",
    ),
    (
        with_rule(
            {
                "type": "TIME_BASED",
                "slots": [
                    {"member": "java", "start": "08:00", "end": "12:00"},
                    {"member": "java", "start": "11:00", "end": "13:00"},
                ],
                "default": "java",
            }
        ),
        "rule.slots[1].start",
    ),
    ({**RR, "owner": "me"}, "owner"),
    ({"groupId": "bad id!", **{k: RR[k] for k in ("members", "rule")}}, "groupId"),
    ({k: RR[k] for k in ("members", "rule")}, "groupId"),
]


async def test_bad_groups_are_422_naming_the_field(client):
    for body, field in BAD:
        found = await problem(await client.post(GROUPS, json=body), 422)
        assert field in found["errors"], (field, found)
    assert (await (await client.get(GROUPS)).json())["botGroups"] == []


async def invoke(client, body, status=202, **kw):
    r = await client.post("/invoke", json=body, **kw)
    assert r.status == status, await r.text()
    return await r.json()


async def test_round_robin_through_invoke_records_the_selection(client):
    await create(client)
    picks = [await invoke(client, {"target": "groupId:rr", "params": {"i": i}}) for i in range(6)]
    members = [p["group"]["member"] for p in picks]
    assert members == RR["members"] * 2
    assert [(p["botType"], p["bot"]) for p in picks[:3]] == [
        ("python", "simulate"),
        ("node", "process_api"),
        ("java", "simulate"),
    ]
    job = await (await client.get(picks[1]["statusUrl"])).json()
    assert job["group"] == {"groupId": "rr", "rule": "ROUND_ROBIN", "member": "node/process_api"}
    assert job["payload"] == {"i": 1}
    listed = await (await client.get("/jobs", params={"botType": "java"})).json()
    assert {j["group"]["member"] for j in listed["jobs"]} == {"java"}
    plain = await invoke(client, {"botType": "python"})
    assert plain["group"] is None
    assert (await (await client.get(plain["statusUrl"])).json())["group"] is None
    text = await (await client.get("/metrics")).text()
    assert 'botsys_group_selections_total{group="rr",member="java"} 2.0' in text


async def test_target_bot_type_and_params(client):
    job = await invoke(client, {"target": "botType:node", "params": {"a": 1}})
    assert job["botType"] == "node" and job["bot"] == "simulate"
    assert (await (await client.get(job["statusUrl"])).json())["payload"] == {"a": 1}
    same = {"botType": "python", "params": {"a": 1}, "payload": {"a": 1}}
    await invoke(client, same)
    body = await problem(await client.post("/invoke", json={**same, "payload": {"a": 2}}), 422)
    assert "params" in body["errors"]
    for bad, field in [
        ({"target": "botType:python", "botType": "python"}, "target"),
        ({"target": "python"}, "target"),
        ({"target": "botType:ruby"}, "target"),
        ({"target": "groupId:rr", "bot": "hello"}, "bot"),
    ]:
        found = await problem(await client.post("/invoke", json=bad), 422)
        assert field in found["errors"], (bad, found)
    missing = await problem(await client.post("/invoke", json={"target": "groupId:nope"}), 404)
    assert "target" in missing["errors"] and "nope" in missing["detail"]


async def test_a_group_whose_members_are_all_gone_is_409(aiohttp_client, api_settings):
    gone: set[str] = set()  # members deleted since the group was made
    app = create_app(api_settings(), with_workers=False)
    registry_check = app[MEMBER_CHECK]
    app[MEMBER_CHECK] = lambda m: (
        f"bot type {m.split('/')[0]} was deleted" if m in gone else (registry_check(m))
    )
    client = await aiohttp_client(app)
    await create(client)
    gone.update(RR["members"])
    body = await problem(await client.post("/invoke", json={"target": "groupId:rr"}), 409)
    assert (
        "none of its members" in body["detail"]
        and "java: bot type java was deleted" in (body["detail"])
    )
    # one member back: the rule uses the members that exist
    gone.remove("java")
    picks = [await invoke(client, {"target": "groupId:rr"}) for _ in range(3)]
    assert {p["group"]["member"] for p in picks} == {"java"}


async def test_a_repeated_idempotency_key_goes_to_the_first_member(client):
    await create(client)
    key = {"Idempotency-Key": "order-17"}
    first = await invoke(client, {"target": "groupId:rr"}, headers=key)
    again = await invoke(client, {"target": "groupId:rr"}, 200, headers=key)
    assert again["jobId"] == first["jobId"] and not again["created"]
    assert again["group"] == first["group"]


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        ('{"target": "groupId:rr\\u0000"}', 422, "target"),
        ('{"target": "groupId:' + "r" * 65 + '"}', 422, "target"),
        ('{"target": "groupId:"}', 422, "target"),
        ('{"target": "groupId:\\ud800"}', 400, "target"),
        ('{"target": "groupId:rr", "params": {"n": NaN}}', 400, "params.n"),
    ],
    ids=["nul", "too-long", "empty", "lone-surrogate", "nan-param"],
)
async def test_odd_group_targets_are_refused_naming_the_field(client, raw, status, field):
    await create(client)
    r = await client.post("/invoke", data=raw, headers={"Content-Type": "application/json"})
    body = await problem(r, status)
    assert field in json.dumps(body), body
    assert (await (await client.get("/jobs")).json())["jobs"] == [], "nothing was queued"


async def test_two_hundred_concurrent_repeats_of_one_key_make_one_job(make_client):
    """Many clients retrying one keyed request at once: the racing first draws settle on one
    member (the remembered one), so every answer names the same job, created once."""
    client = await make_client(**{"api.rate_limit": "100000/minute"})
    await create(client)
    key = {"Idempotency-Key": "order-race"}

    async def post():
        return await client.post("/invoke", json={"target": "groupId:rr"}, headers=key)

    answers = await asyncio.gather(*(post() for _ in range(200)))
    # A loaded machine misses the store's 1 s deadline now and then (503, nothing stored): such
    # a client retries with the same key, as the API tells it to.
    retried = False
    for i, r in enumerate(answers):
        while r.status == 503:
            retried, r = True, await post()
            answers[i] = r
    statuses = sorted(r.status for r in answers)
    # Exactly one creation; if the creating request's answer was a 503 (its write landed after
    # the deadline), its retry is a repeat like the others.
    expected = [[200] * 199 + [202]] + ([[200] * 200] if retried else [])
    assert statuses in expected, statuses
    bodies = [await r.json() for r in answers]
    assert len({b["jobId"] for b in bodies}) == 1
    assert len({b["group"]["member"] for b in bodies}) == 1


async def test_repeats_of_a_keyed_request_do_not_advance_the_round_robin(client):
    """Only the first request with a key draws a member: after it and two repeats the next
    request gets the next member, not the one three draws on."""
    await create(client)
    key = {"Idempotency-Key": "order-18"}
    first = await invoke(client, {"target": "groupId:rr"}, headers=key)
    for _ in range(2):
        await invoke(client, {"target": "groupId:rr"}, 200, headers=key)
    following = await invoke(client, {"target": "groupId:rr"})
    members = RR["members"]
    after_first = members[(members.index(first["group"]["member"]) + 1) % len(members)]
    assert following["group"]["member"] == after_first


async def test_parameter_and_sticky_rules_through_invoke(client):
    await create(
        client,
        {
            "groupId": "p",
            "members": ["python/data_analysis", "node/process_api"],
            "rule": {
                "type": "PARAMETER_BASED",
                "branches": [
                    {
                        "member": "python/data_analysis",
                        "conditions": [{"field": "kind", "operator": "EQUALS", "value": "report"}],
                    }
                ],
                "default": "node/process_api",
            },
        },
    )
    report = await invoke(client, {"target": "groupId:p", "params": {"kind": "report"}})
    other = await invoke(client, {"target": "groupId:p", "params": {"kind": "api"}})
    assert (report["bot"], other["bot"]) == ("data_analysis", "process_api")
    await create(
        client,
        {
            "groupId": "ab",
            "members": ["python/simulate", "node/simulate"],
            "rule": {
                "type": "A_B_TEST",
                "variants": [
                    {"member": "python/simulate", "weight": 50},
                    {"member": "node/simulate", "weight": 50},
                ],
                "stickyKey": "user",
            },
        },
    )
    for user in ("ann", "bob", "cy"):
        picks = {
            (await invoke(client, {"target": "groupId:ab", "params": {"user": user}}))["botType"]
            for _ in range(4)
        }
        assert len(picks) == 1, user


async def test_openapi_describes_the_group_routes(client):
    doc = await (await client.get("/api-docs/swagger.json")).json()
    assert set(doc["paths"][GROUPS]) == {"get", "post"}
    assert set(doc["paths"][GROUPS + "/{groupId}"]) == {"get", "put", "delete"}
    assert "412" in doc["paths"][GROUPS + "/{groupId}"]["put"]["responses"]
    target = doc["components"]["schemas"]["InvokeRequest_target"]
    assert target["required"] == ["target"] and "params" in target["properties"]
    assert "409" in doc["paths"]["/invoke"]["post"]["responses"]


async def test_the_types_and_groups_page_is_served_under_the_dashboard_policy(client):
    r = await client.get("/admin/queues/config")
    assert r.status == 200 and r.content_type == "text/html"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    page = await r.text()
    assert page.index("static/common.js") < page.index("static/config.js")
    for name in ("common.js", "config.js"):
        asset = await client.get(f"/admin/queues/static/{name}")
        assert asset.status == 200 and asset.content_type == "text/javascript"


async def test_time_based_routing_follows_the_utc_clock(aiohttp_client, api_settings):
    now = {"s": 0.0}
    app = create_app(api_settings(), with_workers=False)
    app[ROUTING_CLOCK] = lambda: now["s"]
    client = await aiohttp_client(app)
    await create(
        client,
        {
            "groupId": "shift",
            "members": ["python/hello", "node/hello"],
            "rule": {
                "type": "TIME_BASED",
                "slots": [{"member": "node/hello", "start": "22:00", "end": "06:00"}],
                "default": "python/hello",
            },
        },
    )
    day = 86400 * 20_000  # some day, 00:00 UTC
    for hh_mm, member in [
        ("21:59", "python/hello"),
        ("22:00", "node/hello"),
        ("02:30", "node/hello"),
        ("06:00", "python/hello"),
    ]:
        h, m = map(int, hh_mm.split(":"))
        now["s"] = day + h * 3600 + m * 60 + 30
        picked = await invoke(client, {"target": "groupId:shift"})
        assert picked["group"]["member"] == member, hh_mm
