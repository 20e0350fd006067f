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
async def redis_factory(request, redis_server):
    """Makes clients of one backend: a real redis-server, or fakeredis (the embedded mode).
    Each call is a separate connection, as separate replicas would have."""
    server = fakeredis.FakeServer()
    clients = []

    def make():
        if request.param == "redis":
            client = Redis.from_url(redis_server.url, decode_responses=True)
        else:
            client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        clients.append(client)
        return client

    make.backend = request.param
    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_factory):
    return redis_factory()


def make_settings(**overrides):
    """Default settings with a fresh key prefix (tests never see each other's keys)."""
    base = load_settings(environ={})
    raw = {
        "redis": {"prefix": f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"},
        "engine": {"lease_ms": 2000, "heartbeat_ms": 500, "retry_delay_ms": 50},
        "runner": {"bot_user": ""},  # as the test's user: the checkout may be private to root
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


@pytest.fixture(autouse=True)
def one_slot_per_script_call(monkeypatch):
    """Every script call of every test: its KEYS, and its data-key prefix, share one hash tag
    (one Redis Cluster slot; see store/keys.py)."""
    from botsys.store.scripts import Scripts
    from tests.support.slots import assert_one_slot

    submit = Scripts._submit

    def checked(self, name, keys, args):
        prefix = args[0] if self.signatures[name].args[:1] == ("prefix",) else None
        assert_one_slot(name, keys, prefix)
        return submit(self, name, keys, args)

    monkeypatch.setattr(Scripts, "_submit", checked)
