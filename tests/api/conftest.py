"""API fixtures: the real app (create_app) on both backends, served by pytest-aiohttp."""

from __future__ import annotations

import asyncio

import pytest

from botsys.api.ratelimit import RATE_CLOCK
from botsys.app import create_app
from botsys.runners.types import AttemptOutcome
from tests.conftest import make_settings

USER_KEY = "user-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"


class FakeRunner:
    """Runs no process: reports progress and a log line, then succeeds (or waits on ``gate``)."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.started: list[str] = []

    async def run(self, spec, sink):
        self.started.append(spec.job_id)
        sink.started(1)
        sink.progress(50)
        sink.log(f"hello from {spec.job_id}")
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0.05)  # the bot's run time (not a wait): a job is running a while
        return AttemptOutcome("succeeded", result={"echo": spec.payload})


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request):
    return request.param


@pytest.fixture
def api_settings(backend, redis_server):
    """``api_settings(**overrides)`` → settings on this test's backend, fresh key prefix."""

    def make(**overrides):
        if backend == "redis":
            overrides.setdefault("redis.url", redis_server.url)
        return make_settings(**overrides)

    return make


@pytest.fixture
def make_client(aiohttp_client, api_settings):
    """``await make_client(workers=False, runner=None, **setting overrides)`` → test client."""

    async def make(*, workers=False, runner=None, settings=None, clock=None, **overrides):
        settings = settings or api_settings(**overrides)
        app = create_app(settings, runner=runner, with_workers=workers)
        if clock is not None:
            app[RATE_CLOCK] = clock  # pin the rate limiter's window
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def client(make_client):
    return await make_client()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
