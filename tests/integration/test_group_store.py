"""The bot group store on a real redis-server and on fakeredis: versions, If-Match, the shared
counter that makes round robin exact across replicas."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from botsys.control.group_store import GroupExists, GroupMissing, GroupStore, VersionMismatch
from botsys.control.routing import Group, select
from botsys.store.connection import Store
from botsys.store.keys import Keys
from tests.conftest import make_settings

MEMBERS = ("python/simulate", "node/simulate", "java")


def store_for(redis, prefix):
    return GroupStore(Store(redis, False, "test client", Keys(prefix)))


@pytest.fixture
def prefix():
    return make_settings().redis.prefix


def rr(gid="g", members=MEMBERS):
    return Group(gid, gid, "", members, {"type": "ROUND_ROBIN"})


async def test_create_get_list_put_delete_with_versions(redis_factory, prefix):
    store = store_for(redis_factory(), prefix)
    v1 = await store.create(rr("a"))
    with pytest.raises(GroupExists):
        await store.create(rr("a"))
    v2 = await store.create(rr("b"))
    assert v2 > v1
    groups, latest = await store.list()
    assert [g.group.group_id for g in groups] == ["a", "b"] and latest == v2
    with pytest.raises(VersionMismatch) as stale:
        await store.put(rr("a", ("java",)), expected=v1 + 100)
    assert stale.value.current == v1
    v3, created = await store.put(rr("a", ("java",)), expected=v1)
    assert not created and v3 > v2
    assert (await store.get("a")).group.members == ("java",)
    assert (await store.get("a")).version == v3
    _, created = await store.put(rr("c"))
    assert created
    with pytest.raises(GroupMissing):
        await store.put(rr("d"), expected=1)
    await store.delete("a", expected=v3)
    assert await store.get("a") is None
    with pytest.raises(GroupMissing):
        await store.delete("a")
    _, latest_after = await store.list()
    assert latest_after > v3  # a delete changes the list's version too


async def test_a_write_through_one_replica_is_read_by_another_at_once(redis_factory, prefix):
    one, two = store_for(redis_factory(), prefix), store_for(redis_factory(), prefix)
    await one.create(rr())
    assert (await two.draw("g")).group == rr()
    await one.put(rr(members=("java",)))
    assert (await two.draw("g")).group.members == ("java",)
    await one.delete("g")
    assert await two.draw("g") is None


async def test_round_robin_through_three_replicas_is_exact(redis_factory, prefix):
    """Three stores on three connections draw concurrently: each member gets N/k."""
    replicas = [store_for(redis_factory(), prefix) for _ in range(3)]
    await replicas[0].create(rr())
    n = 300

    async def draws(store, count):
        out = []
        for _ in range(count):
            d = await store.draw("g")
            out.append(select(d.group, seq=d.seq, payload={}, minute=0, available=MEMBERS))
        return out

    results = await asyncio.gather(*(draws(s, n // 3) for s in replicas))
    counts = Counter(m for r in results for m in r)
    assert counts == {m: n // 3 for m in MEMBERS}


async def test_deleting_a_group_resets_its_counter(redis_factory, prefix):
    store = store_for(redis_factory(), prefix)
    await store.create(rr())
    assert [(await store.draw("g")).seq for _ in range(3)] == [1, 2, 3]
    await store.delete("g")
    await store.create(rr())
    assert (await store.draw("g")).seq == 1


async def test_an_idempotency_key_remembers_the_first_member(redis_factory, prefix):
    store = store_for(redis_factory(), prefix)
    assert await store.remembered("g", "k1", "java") == "java"
    assert await store.remembered("g", "k1", "node/simulate") == "java"
    assert await store.remembered("g", "k2", "node/simulate") == "node/simulate"
