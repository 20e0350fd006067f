"""Fixtures shared by every suite: a private redis-server and a store on both backends."""

from __future__ import annotations

import itertools
import uuid

import fakeredis
import pytest
from redis.asyncio import Redis

from botsys.config import build_settings, load_settings
from tests.support.redis_server import RedisServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["redis", "fakeredis"])
async def redis_client(request, redis_server):
    """The same tests on a real redis-server and on fakeredis (the embedded mode)."""
    if request.param == "redis":
        client = Redis.from_url(redis_server.url, decode_responses=True)
    else:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
    yield client
    await client.aclose()


def make_settings(**overrides):
    """Default settings with a fresh key prefix (tests never see each other's keys)."""
    base = load_settings(environ={})
    raw = {
        "redis": {"prefix": f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"},
        "engine": {"lease_ms": 2000, "heartbeat_ms": 500, "retry_delay_ms": 50},
        "bot_types": {name: _bt_dict(bt) for name, bt in base.bot_types.items()},
    }
    for key, value in overrides.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return build_settings(raw)


def _bt_dict(bt):
    from dataclasses import asdict

    d = asdict(bt)
    d.pop("name")
    return d


@pytest.fixture
def settings():
    return make_settings()
