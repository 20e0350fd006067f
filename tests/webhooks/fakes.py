"""Fakes for the webhook tests: an in-memory DeliveryStore, a manual clock, a DNS resolver
that answers from a table, a socket spy, and scriptable loopback receivers.

NETWORK RULE: nothing here ever connects anywhere but 127.0.0.1 / ::1. The socket spy
refuses (without connecting) any other address the guard lets through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
from collections import deque
from dataclasses import dataclass, field, replace

from aiohttp import web
from aiohttp.abc import AbstractResolver

from botsys.config import WebhookSettings
from botsys.webhooks.types import AttemptRecord, Delivery


class ManualClock:
    """Epoch seconds that only move when told."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class StoredDelivery:
    delivery: Delivery
    due_ms: int
    state: str = "pending"  # pending | delivered | failed
    token: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    schedule: list[int | None] = field(default_factory=list)  # next_attempt_at_ms per attempt


class FakeStore:
    """In-memory DeliveryStore with the Redis store's semantics (leases, due times)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.items: dict[str, StoredDelivery] = {}
        self.released: list[tuple[str, int]] = []
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._wake = asyncio.Event()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def add(self, url: str, body: bytes = b'{"ok": true}', max_attempts: int = 5, **kw) -> str:
        n = next(self._ids)
        delivery = Delivery(
            id=kw.get("id", f"msg_{n:06d}"),
            job_id=kw.get("job_id", f"python-{n}"),
            bot_type=kw.get("bot_type", "python"),
            url=url,
            body=body,
            attempt=0,
            max_attempts=max_attempts,
            token="",
            endpoint=kw.get("endpoint", ""),
        )
        self.items[delivery.id] = StoredDelivery(delivery, kw.get("due_ms", self.now_ms()))
        self._wake.set()
        return delivery.id

    def add_many(self, url: str, n: int, **kw) -> list[str]:
        """``n`` deliveries to ``url`` (``endpoint=`` for a subscribed endpoint's)."""
        return [self.add(url, **kw) for _ in range(n)]

    async def claim_due(self, limit: int) -> list[Delivery]:
        now = self.now_ms()
        due = sorted(
            (s for s in self.items.values() if s.state == "pending" and not s.token),
            key=lambda s: s.due_ms,
        )
        claimed = []
        for stored in [s for s in due if s.due_ms <= now][:limit]:
            stored.token = f"t{next(self._tokens)}"
            attempt = len(stored.attempts) + 1
            claimed.append(replace(stored.delivery, attempt=attempt, token=stored.token))
        return claimed

    async def finish_attempt(self, delivery, record, next_attempt_at_ms) -> bool:
        stored = self.items[delivery.id]
        if stored.token != delivery.token:
            return False
        stored.attempts.append(record)
        stored.schedule.append(next_attempt_at_ms)
        stored.token = None
        if next_attempt_at_ms is None:
            stored.state = "delivered" if record.outcome == "delivered" else "failed"
        else:
            stored.due_ms = next_attempt_at_ms
        return True

    async def release(self, delivery, delay_ms: int) -> bool:
        stored = self.items[delivery.id]
        if stored.token != delivery.token:
            return False
        stored.token = None
        stored.due_ms = self.now_ms() + delay_ms
        self.released.append((delivery.id, delay_ms))
        return True

    async def wait_for_work(self, timeout_s: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout_s)
        except TimeoutError:
            pass

    def steal(self, delivery_id: str) -> None:
        """Simulate lease expiry + another replica's claim."""
        self.items[delivery_id].token = "someone-else"

    def pending(self) -> int:
        return sum(1 for s in self.items.values() if s.state == "pending")


class FakeResolver(AbstractResolver):
    """Answers from a table; a list of answer lists is served one per lookup (rebinding)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = {k: deque(v) if v and isinstance(v[0], list) else v for k, v in table.items()}
        self.lookups: list[str] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.lookups.append(host)
        answers = self.table.get(host)
        if answers is None:
            raise OSError(f"fake DNS: no such host {host}")
        if isinstance(answers, deque):
            answers = answers.popleft() if len(answers) > 1 else answers[0]
        return [_result(host, ip, port) for ip in answers]

    async def close(self) -> None:
        pass


def _result(host: str, ip: str, port: int) -> dict:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return {"hostname": host, "host": ip, "port": port, "family": family, "proto": 0, "flags": 0}


class SocketSpy:
    """Inner socket factory behind the guard: records every address the guard let through.
    Loopback gets a real socket; anything else is refused here, never connected."""

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def __call__(self, addr_info) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        self.addresses.append(sockaddr[0])
        if not ipaddress.ip_address(sockaddr[0]).is_loopback:
            raise ConnectionRefusedError(f"test spy: refusing non-loopback {sockaddr[0]}")
        return socket.socket(family, type_, proto)


@dataclass
class Hit:
    path: str
    headers: dict
    body: bytes
    at: float


class Receiver:
    """A loopback webhook receiver whose answers are scripted per request."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.script: deque = deque()  # each item: int status, or (status, headers), or coroutine fn
        self.default: object = 200
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(Hit(request.path, dict(request.headers), await request.read(), _now()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            action = self.script.popleft() if self.script else self.default
            if callable(action):
                return await action(request)
            status, headers = action if isinstance(action, tuple) else (action, {})
            return web.Response(status=status, text="ok", headers=headers)
        finally:
            self.in_flight -= 1


def _now() -> float:
    return asyncio.get_running_loop().time()


def webhook_settings(**overrides) -> WebhookSettings:
    base = dict(
        max_retries=5,
        retry_delay_ms=1000,
        max_delay_ms=3_600_000,
        timeout_s=2.0,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        allow=["127.0.0.1"],
        concurrency=16,
        per_host=8,
        lease_ms=60000,
    )
    return WebhookSettings(**{**base, **overrides})
