"""A real redis-server and a Cluster of real `serve` replicas on it, for e2e and browser tests
(a test module that needs other settings defines its own)."""

from __future__ import annotations

import pytest

from tests.support.procs import Cluster, write_config
from tests.support.redis_server import RedisServer


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
