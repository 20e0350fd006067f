"""Fixtures for the webhook tests (fakes live in fakes.py)."""

from __future__ import annotations

import pytest
from aiohttp import web

from tests.webhooks.fakes import FakeStore, ManualClock, Receiver


@pytest.fixture
def make_receiver(aiohttp_server):
    async def make() -> Receiver:
        rec = Receiver()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", rec.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        rec.port = server.port
        return rec

    return make


@pytest.fixture
async def receiver(make_receiver):
    return await make_receiver()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock) -> FakeStore:
    return FakeStore(clock)
