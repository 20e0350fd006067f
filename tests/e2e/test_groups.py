"""End to end: a bot group written through one `serve` replica routes jobs invoked through all
three, round robin exact across them (one Redis counter), and a change is in force at once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.procs import http

pytestmark = pytest.mark.e2e

GROUPS = "/admin/config/bot-groups"
MEMBERS = ["python/hello", "node/hello", "python/simulate"]
DELAYED = 600_000  # ms: the jobs wait (selection is what is tested, not the bots)


def invoke_member(replica, group="rr") -> str:
    body = {"target": f"groupId:{group}", "params": {}, "delay": DELAYED}
    status, reply, _ = http("POST", replica.url + "/invoke", body)
    assert status == 202, reply
    return reply["group"]["member"]


def test_round_robin_over_three_replicas_is_exact_and_changes_apply_at_once(cluster):
    a, b, c = (cluster.add_replica(n) for n in "abc")
    status, reply, _ = http(
        "POST",
        a.url + GROUPS,
        {"groupId": "rr", "members": MEMBERS, "rule": {"type": "ROUND_ROBIN"}},
    )
    assert status == 201, reply
    n = 90  # 30 per replica, sent concurrently
    replicas = [a, b, c] * (n // 3)
    with ThreadPoolExecutor(max_workers=6) as pool:
        members = list(pool.map(invoke_member, replicas))
    assert Counter(members) == {m: n // 3 for m in MEMBERS}

    # the selections as /metrics counts them, summed over the replicas
    counted = Counter()
    for r in (a, b, c):
        _, text, _ = http("GET", r.url + "/metrics")
        for line in text.splitlines():
            if line.startswith('botsys_group_selections_total{group="rr"'):
                member = line.split('member="')[1].split('"')[0]
                counted[member] += int(float(line.rsplit(" ", 1)[1]))
    assert counted == {m: n // 3 for m in MEMBERS}

    # a change through b is what c routes with, on the very next invoke
    status, reply, _ = http(
        "PUT", b.url + GROUPS + "/rr", {"members": ["node/hello"], "rule": {"type": "ROUND_ROBIN"}}
    )
    assert status == 200, reply
    assert {invoke_member(c) for _ in range(3)} == {"node/hello"}
    assert http("DELETE", a.url + GROUPS + "/rr")[0] == 204
    status, reply, _ = http("POST", c.url + "/invoke", {"target": "groupId:rr"})
    assert status == 404 and "target" in reply["errors"]
