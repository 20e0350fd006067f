"""Concurrency must queue, not fail: one real `serve` replica on a real redis-server, driven by
an aiohttp client that really keeps a thousand requests (or event streams) in flight."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.support.procs import Cluster, http, write_config
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

IN_FLIGHT = 1000


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def cluster(tmp_path, redis):
    c = Cluster(tmp_path, redis.url, write_config(tmp_path / "botsys.toml"))
    yield c
    c.stop()


def session() -> aiohttp.ClientSession:
    # aiohttp's default connector holds 100 connections; the point is 1000 at once.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


async def many_gets(url: str, n: int) -> dict[int, int]:
    """n concurrent GETs; status code → how many."""
    started = asyncio.Event()
    waiting = 0

    async def one(client: aiohttp.ClientSession) -> int:
        nonlocal waiting
        waiting += 1
        if waiting == n:
            started.set()
        await started.wait()  # every request is sent together
        async with client.get(url) as resp:
            await resp.read()
            return resp.status

    async with session() as client:
        statuses = await asyncio.gather(*(one(client) for _ in range(n)))
    counts: dict[int, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return counts


def test_a_thousand_concurrent_reads_all_answer_200(cluster):
    a = cluster.add_replica("a")
    status, reply, _ = http(
        "POST", a.url + "/invoke", {"botType": "python", "bot": "hello", "payload": {}}
    )
    assert status == 202, reply
    job_url = f"{a.url}/job/{reply['jobId']}"
    for url in (job_url, a.url + "/stats"):
        counts = asyncio.run(asyncio.wait_for(many_gets(url, IN_FLIGHT), 90))
        assert counts == {200: IN_FLIGHT}, (url, counts, a.log(20))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


__all__ = ["json", "rss_kb"]
