"""Concurrency must queue, not fail: one real `serve` replica on a real redis-server, driven by
an aiohttp client that really keeps a thousand requests (or event streams) in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter

import aiohttp
import pytest

from botsys.api.problems import STORE_DEADLINE_S
from tests.support.procs import Cluster, http, wait_for, write_config

pytestmark = pytest.mark.e2e

IN_FLIGHT = 1000
RUNNING_JOBS = 20  # the event streams watch these, 50 streams each


def session() -> aiohttp.ClientSession:
    # aiohttp's default connector holds 100 connections; the point is 1000 at once.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


async def many_gets(url: str, n: int) -> list[tuple[int, float]]:
    """n concurrent GETs: (status, seconds it took) of each."""
    started = asyncio.Event()
    waiting = 0

    async def one(client: aiohttp.ClientSession) -> tuple[int, float]:
        nonlocal waiting
        waiting += 1
        if waiting == n:
            started.set()
        await started.wait()  # every request is sent together
        t0 = time.monotonic()
        async with client.get(url) as resp:
            await resp.read()
            return resp.status, time.monotonic() - t0

    async with session() as client:
        return list(await asyncio.gather(*(one(client) for _ in range(n))))


def test_a_thousand_concurrent_reads_wait_for_a_connection_instead_of_failing(cluster):
    """A full pool makes a request wait for a connection, within its store deadline (1 s);
    before, 894 of 1000 failed at once with 503. On a quiet machine all 1000 answer 200; on one
    whose cores are taken by other work some cannot be served within the deadline, and those
    answer 503 after having waited it (seen: 305 of 1000 beside a 2-core CPU hog)."""
    a = cluster.add_replica("a")
    status, reply, _ = http(
        "POST", a.url + "/invoke", {"botType": "python", "bot": "hello", "payload": {}}
    )
    assert status == 202, reply
    job_url = f"{a.url}/job/{reply['jobId']}"
    for url in (job_url, a.url + "/stats"):
        answers = asyncio.run(asyncio.wait_for(many_gets(url, IN_FLIGHT), 90))
        counts = Counter(status for status, _ in answers)
        early = [round(t, 3) for status, t in answers if status != 200 and t < STORE_DEADLINE_S]
        assert set(counts) <= {200, 503} and not early, (url, counts, early[:5], a.log(20))
        # A fifth, not half: a CPU hog beside it took 305 of 1000 to 503; the instant-503
        # regression (894 of 1000 at once) is caught by the `not early` check above.
        assert counts[200] >= IN_FLIGHT // 5, (url, counts, a.log(20))
        print(f"{url}: {dict(counts)}")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def watch(client: aiohttp.ClientSession, url: str, opened: asyncio.Queue) -> list[dict]:
    """Follow one SSE stream to its end; report on ``opened`` once its first event came (or
    the status, if it did not open)."""
    events: list[dict] = []
    async with client.get(url) as resp:
        if resp.status != 200:
            opened.put_nowait({"status": resp.status, "body": await resp.text()})
            return events
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if len(events) == 1:
                    opened.put_nowait(events[0])
    return events


async def all_opened(opened: asyncio.Queue, timeout: float) -> list[dict]:
    firsts: list[dict] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while len(firsts) < IN_FLIGHT:
                firsts.append(await opened.get())
    return firsts


async def watch_and_cancel(base: str, job_ids: list[str], pid: int) -> tuple[list, list, int]:
    """IN_FLIGHT streams over the running jobs; once every one is open, cancel the jobs.
    Returns (each stream's first event, each stream's events or None if it did not end,
    the server's RSS growth in KB while they were open)."""
    before = rss_kb(pid)
    opened: asyncio.Queue = asyncio.Queue()
    async with session() as client:
        urls = [f"{base}/job/{job_ids[i % len(job_ids)]}/events" for i in range(IN_FLIGHT)]
        streams = [asyncio.create_task(watch(client, url, opened)) for url in urls]
        firsts = await all_opened(opened, 60)
        growth = rss_kb(pid) - before
        for job_id in job_ids:
            async with client.delete(f"{base}/job/{job_id}") as resp:
                assert resp.status == 202, await resp.text()
        await asyncio.wait(streams, timeout=30)
        ends = [s.result() if s.done() and not s.exception() else None for s in streams]
        for s in streams:
            s.cancel()
        return firsts, ends, growth


def test_a_thousand_event_streams_all_open_and_all_see_the_end(tmp_path, redis):
    extra = f"[bot_types.python]\nlimit = {RUNNING_JOBS}\n"
    cluster = Cluster(tmp_path, redis.url, write_config(tmp_path / "botsys.toml", extra))
    try:
        a = cluster.add_replica("a")
        job_ids = []
        for _ in range(RUNNING_JOBS):
            body = {"botType": "python", "payload": {"durationMs": 120000, "failureRate": 0}}
            status, reply, _ = http("POST", a.url + "/invoke", body)
            assert status == 202, reply
            job_ids.append(reply["jobId"])
        wait_for(
            lambda: all(http("GET", f"{a.url}/job/{j}")[1]["state"] == "running" for j in job_ids),
            60,
            what="every job running",
        )
        firsts, ends, growth = asyncio.run(watch_and_cancel(a.url, job_ids, a.pid))
        print(f"\n{IN_FLIGHT} open event streams grew the server's RSS by {growth / 1024:.1f} MiB")
        running = sum(1 for f in firsts if f.get("state") == "running")
        assert running == IN_FLIGHT, (
            running,
            [f for f in firsts if f.get("state") != "running"][:3],
        )
        ended = [e for e in ends if e and e[-1].get("state") == "cancelled" and e[-1]["job"]]
        assert len(ended) == IN_FLIGHT, f"{IN_FLIGHT - len(ended)} streams saw no end"
        assert growth < 200 * 1024, f"RSS grew {growth} KB for {IN_FLIGHT} streams"
    finally:
        cluster.stop()


def test_the_byte_cap_answers_503_before_a_small_redis_fills(tmp_path, redis):
    """Redis with maxmemory 50mb (noeviction) and 1 MB payloads: the admission cap refuses
    jobs long before Redis would refuse writes; a cancel makes room at once."""
    import redis as redis_py

    admin = redis_py.Redis.from_url(redis.url)
    admin.config_set("maxmemory", 50 * 1024 * 1024)
    extra = "[engine]\nmax_queued_bytes = 16777216\n"
    cluster = Cluster(tmp_path, redis.url, write_config(tmp_path / "botsys.toml", extra))
    try:
        a = cluster.add_replica("a")
        status, reply, _ = http("PATCH", a.url + "/queues/python", {"paused": True})
        assert status == 200, reply
        body = {"botType": "python", "payload": {"blob": "x" * 1_000_000}}
        answers, accepted = [], []
        while not answers or answers[-1] == 202:
            status, reply, headers = http("POST", a.url + "/invoke", body)
            answers.append(status)
            if status == 202:
                accepted.append(reply["jobId"])
            assert len(answers) <= 40, answers
        assert set(answers) == {202, 503} and len(accepted) == 16, answers
        assert "engine.max_queued_bytes" in reply["detail"] and headers["Retry-After"] == "5"
        assert admin.info("memory")["used_memory"] < 40 * 1024 * 1024
        assert http("GET", f"{a.url}/job/{accepted[0]}")[0] == 200
        assert http("DELETE", f"{a.url}/job/{accepted[0]}")[:2] == (
            200,
            {"jobId": accepted[0], "state": "cancelled"},
        )
        assert http("POST", a.url + "/invoke", body)[0] == 202  # room again, at once
    finally:
        cluster.stop()
        admin.close()
