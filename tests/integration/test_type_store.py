"""Bot type records in Redis (control/type_store.py, type_write.lua) and two replicas'
catalogs following them. Real redis-server and fakeredis."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from botsys.control.catalog import TypeCatalog
from botsys.control.type_store import TypeStore, VersionConflict
from botsys.control.types import Cadence, TypeDef
from botsys.control.watch import TypeWatcher
from botsys.queue import JobQueue, TypeDeleted
from botsys.store.notify import Notifier
from tests.conftest import make_settings
from tests.support.store import store_for

REPORTS = TypeDef("reports", "python", limit=2, cadence=Cadence(5, 2.0))


@pytest.fixture
async def replicas(redis_factory):
    """Two replicas' (queue, store, catalog) on one Redis, as app.py wires them."""
    settings = make_settings()
    out = []
    for name in ("a", "b"):
        catalog = TypeCatalog(settings.bot_types)
        live = dataclasses.replace(settings, bot_types=catalog.live)
        store = store_for(redis_factory(), live)
        queue = JobQueue(store, live, name)
        out.append((queue, TypeStore(store, queue), catalog))
    return out


async def test_a_write_is_seen_by_the_other_replica(replicas):
    (qa, sa, ca), (qb, sb, cb) = replicas
    version = await sa.write("reports", REPORTS.body(), expect=0, limit=REPORTS.limit)
    change = await cb.refresh(sb)
    assert change.added == ["reports"]
    entry = cb.get("reports")
    assert (entry.source, entry.version, entry.definition) == ("runtime", version, REPORTS)
    live = cb.live["reports"]
    assert (live.runtime, live.limit, live.cadence_max, live.command) == (
        "python",
        2,
        5,
        cb.runtimes["python"].command,
    )
    assert (await qb.stats())["reports"].limit == 2, "its limit is in force in {T}:meta"


async def test_names_keep_the_files_order_then_runtime_types_by_name(replicas):
    (_, sa, ca), _ = replicas
    configured = list(ca.runtimes)
    for name in ("zeta", "alpha"):
        await sa.write(name, dataclasses.replace(REPORTS, name=name).body(), expect=0, limit=1)
    await ca.refresh(sa)
    assert ca.names() == [*configured, "alpha", "zeta"]
    assert list(ca.live) == ca.names(), "the index, /stats and /bots list types in this order"


async def test_compare_and_set_refuses_a_stale_version(replicas):
    (_, sa, _), (_, sb, _) = replicas
    v1 = await sa.write("reports", REPORTS.body(), expect=0)
    with pytest.raises(VersionConflict) as stale:
        await sb.write("reports", REPORTS.body(), expect=0)
    assert stale.value.current == v1
    v2 = await sb.write("reports", REPORTS.body(), expect=v1)
    assert v2 > v1
    assert (await sa.read("reports")).version == v2


async def test_tombstone_hides_a_configured_type_and_removal_restores_it(replicas):
    (_, sa, ca), _ = replicas
    v = await sa.write("java", None, expect=0)
    assert (await ca.refresh(sa)).removed == ["java"] and "java" not in ca.live
    await sa.write("java", None, expect=v, remove=True)
    assert (await ca.refresh(sa)).added == ["java"]
    assert ca.get("java").source == "config" and ca.live["java"] is ca.runtimes["java"]


async def test_refresh_costs_one_get_when_nothing_changed(replicas):
    (_, sa, ca), _ = replicas
    await sa.write("reports", REPORTS.body(), expect=0)
    await ca.refresh(sa)
    calls = []
    original = sa.read_all

    async def counting(names):
        calls.append(names)
        return await original(names)

    sa.read_all = counting
    assert not await ca.refresh(sa)
    assert calls == []


async def test_an_override_of_a_configured_type(replicas):
    (_, sa, ca), _ = replicas
    python = TypeDef("python", "python", limit=1, description="slow")
    await sa.write("python", python.body(), expect=0, limit=1)
    await ca.refresh(sa)
    assert ca.get("python").source == "override" and ca.live["python"].limit == 1
    assert ca.live["python"].runtime == "", "a configured type is its own runtime"


@pytest.mark.parametrize("redis_factory", ["redis"], indirect=True)
async def test_the_watcher_applies_a_write_within_a_second_by_pub_sub(replicas):
    (_, sa, _), (qb, sb, cb) = replicas
    notifier = Notifier(qb.redis)
    watcher = TypeWatcher(cb, sb, poll_s=30)  # the poll would come too late: pub/sub it is
    notifier.on(qb.keys.types_channel(), watcher.poke)
    changed = asyncio.Event()
    cb.on_change(lambda change: changed.set())
    tasks = [asyncio.create_task(notifier.run()), asyncio.create_task(watcher.run())]
    try:
        await asyncio.wait_for(notifier.connected.wait(), 5)
        await _subscribed(sa.redis, qb.keys.types_channel())
        await sa.write("reports", REPORTS.body(), expect=0)
        # 10 s bounds a hang on a loaded machine; still well before the 30 s poll: pub/sub woke it.
        await asyncio.wait_for(changed.wait(), 10)
        assert "reports" in cb.live
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_watcher_polls_when_no_message_comes(replicas):
    (_, sa, _), (_, sb, cb) = replicas
    watcher = TypeWatcher(cb, sb, poll_s=0.05)
    changed = asyncio.Event()
    cb.on_change(lambda change: changed.set())
    task = asyncio.create_task(watcher.run())
    try:
        await sa.write("reports", REPORTS.body(), expect=0)
        await asyncio.wait_for(changed.wait(), 10)  # bounds a hang; the poll is every 50 ms
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _subscribed(redis, channel: str) -> None:
    """Until Redis has processed the subscription (the client sends it without waiting).
    Polled: the notifier sets ``connected`` once SUBSCRIBE is sent, and nothing tells a
    client when another connection's subscription is in place."""
    async with asyncio.timeout(5):
        while dict(await redis.pubsub_numsub(channel)).get(channel, 0) < 1:
            await asyncio.sleep(0.01)


async def test_a_replica_that_missed_the_deletion_cannot_queue_a_job(replicas):
    """B has not re-read the catalog: its enqueue is refused by the script, so no job waits in
    a queue that no dispatcher serves; a reset brings the type back."""
    (qa, sa, ca), (qb, sb, cb) = replicas
    v = await sa.write("reports", REPORTS.body(), expect=0, limit=2)
    await cb.refresh(sb)
    await sa.write("reports", None, expect=v, remove=True, deleted=True)
    assert "reports" in cb.live, "B has not heard yet"
    with pytest.raises(TypeDeleted):
        await qb.enqueue("reports", "simulate", {})
    assert await qb.redis.zcard(qb.keys.queue("reports")) == 0
    await sa.write("reports", REPORTS.body(), expect=0, limit=2)
    assert (await qb.enqueue("reports", "simulate", {})).created


async def test_a_read_between_the_version_bump_and_the_record_is_not_the_last_word(replicas):
    """B reads the catalog while A's write is half done (version bumped, record not yet
    written): B's next version check still sees a change and re-reads."""
    (qa, sa, ca), (qb, sb, cb) = replicas
    real_run = qa.run_script

    async def read_in_between(*args, **kw):
        await cb.refresh(sb)  # B polls now
        return await real_run(*args, **kw)

    qa.run_script = read_in_between
    await sa.write("reports", REPORTS.body(), expect=0)
    assert "reports" not in cb.live
    assert (await cb.refresh(sb)).added == ["reports"]
