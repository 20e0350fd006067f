"""One attempt against real loopback receivers: headers, redirects, caps and timeouts."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from aiohttp import web

import botsys
from botsys.webhooks import verify
from botsys.webhooks.guard import AllowList, Guard
from botsys.webhooks.sender import EXCERPT_BYTES, Sender, build_session
from botsys.webhooks.types import Delivery
from tests.support.requires import require_module
from tests.support.timing import MARGIN_S
from tests.webhooks.fakes import SocketSpy

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps({"jobId": "python-1", "result": {"x": "ünï"}}, ensure_ascii=False).encode()


def delivery(url: str, attempt: int = 1) -> Delivery:
    return Delivery("msg_abc", "python-1", "python", url, BODY, attempt, 5, "t1")


@pytest.fixture
async def sender_factory():
    sessions = []

    def make(timeout_s: float = 2.0, secret: str = SECRET, spy=None) -> Sender:
        allow = AllowList.parse(["127.0.0.1"])
        guard = Guard(allow, inner_socket_factory=spy) if spy else Guard(allow)
        session = build_session(timeout_s, guard)
        sessions.append(session)
        return Sender(session, secret=secret, timeout_s=timeout_s, allow=allow)

    yield make
    for session in sessions:
        await session.close()


async def test_request_headers_and_body(receiver, sender_factory):
    result = await sender_factory().send(delivery(receiver.url, attempt=3))
    assert result.status == 200 and result.error is None and result.excerpt == "ok"
    hit = receiver.hits[0]
    assert hit.body == BODY  # byte for byte
    h = hit.headers
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == f"botsys/{botsys.__version__}"
    assert h["X-Bot-Job-Id"] == "python-1"
    assert h["X-Delivery-Attempt"] == "3"
    assert h["webhook-id"] == "msg_abc"
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 5
    verify(SECRET, h, hit.body)
    standardwebhooks = require_module("standardwebhooks", "pip install -e '.[test]'")
    assert standardwebhooks.Webhook(SECRET).verify(hit.body.decode(), h) == json.loads(BODY)


async def test_unsigned_without_secret(receiver, sender_factory):
    await sender_factory(secret="").send(delivery(receiver.url))
    assert "webhook-signature" not in receiver.hits[0].headers
    assert receiver.hits[0].headers["webhook-id"] == "msg_abc"


async def test_redirect_is_not_followed(receiver, make_receiver, sender_factory):
    target = await make_receiver()
    receiver.default = (302, {"Location": target.url})
    result = await sender_factory().send(delivery(receiver.url))
    assert result.status == 302
    assert target.hits == []


async def test_huge_body_is_cut_at_the_cap(receiver, sender_factory):
    written = {"bytes": 0, "done": asyncio.Event()}

    async def firehose(request):
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        chunk = b"x" * 65536
        try:
            while written["bytes"] < 1 << 30:  # 1 GiB if nobody hangs up
                await resp.write(chunk)
                written["bytes"] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            written["done"].set()
        return resp

    receiver.default = firehose
    started = time.monotonic()
    result = await sender_factory(timeout_s=10).send(delivery(receiver.url))
    elapsed = time.monotonic() - started
    assert result.status == 200 and len(result.excerpt) == EXCERPT_BYTES
    assert elapsed < 10, f"{elapsed:.2f} s: cut by the timeout, not by hanging up at the excerpt"
    await asyncio.wait_for(written["done"].wait(), 5)  # the server saw us hang up
    assert written["bytes"] < 64 * 1024 * 1024  # socket buffers only, not the gigabyte


async def test_trickling_receiver_is_cut_by_the_timeout(receiver, sender_factory):
    async def trickle(request):
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        for _ in range(300):
            await resp.write(b".")
            await asyncio.sleep(0.1)  # a byte every 0.1 s: the slowness under test
        return resp

    receiver.default = trickle
    started = time.monotonic()
    result = await sender_factory(timeout_s=1.0).send(delivery(receiver.url))
    elapsed = time.monotonic() - started
    assert result.status is None and result.error.startswith("timeout")
    # One deadline for the whole attempt: never early, and long before the 30 s trickle ends
    # (a per-read timeout would never fire).
    assert 0.95 <= elapsed < 1.0 + MARGIN_S, elapsed


async def test_slow_headers_timeout(receiver, sender_factory):
    receiver.delay_s = 5
    started = time.monotonic()
    result = await sender_factory(timeout_s=0.5).send(delivery(receiver.url))
    elapsed = time.monotonic() - started
    assert result.error.startswith("timeout") and elapsed < 0.5 + MARGIN_S < receiver.delay_s


async def test_connection_refused_is_a_connection_error(sender_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        result = await sender_factory().send(delivery(f"http://127.0.0.1:{port}/"))
    assert result.status is None and result.error.startswith("connection") and not result.blocked


async def test_reset_keepalive_connection_gets_one_immediate_retry(receiver, sender_factory):
    async def hang_up(request):
        request.transport.close()
        await asyncio.sleep(1)

    receiver.script.extend([hang_up])
    result = await sender_factory().send(delivery(receiver.url))
    assert result.status == 200 and len(receiver.hits) == 2


async def test_not_allow_listed_loopback_is_blocked(receiver):
    spy = SocketSpy()
    async with build_session(2.0, Guard(AllowList(), inner_socket_factory=spy)) as session:
        result = await Sender(session).send(delivery(receiver.url))
    assert result.blocked and receiver.hits == [] and spy.addresses == []
