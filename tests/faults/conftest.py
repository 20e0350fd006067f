"""Fixtures of the fault suite: a fresh environment per test (Redis with AOF, replicas and
probe bots), always torn down, with the replicas' logs printed when a test fails."""

from __future__ import annotations

import pytest

from .harness import FaultEnv


@pytest.fixture(scope="session")
def java_cache(tmp_path_factory):
    """Compiled probe bots, shared by every test (javac runs once per session)."""
    return tmp_path_factory.mktemp("java-cache")


@pytest.fixture
def env(tmp_path, java_cache):
    e = FaultEnv(tmp_path, java_cache)
    try:
        yield e
    finally:
        print(e.report())
        e.close()
