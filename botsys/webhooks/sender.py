"""One HTTP attempt of one delivery. No retry policy here (policy.py), no store (dispatcher.py).

The session is built once per dispatcher: ``trust_env=False`` so HTTP(S)_PROXY cannot reroute
deliveries around the guard, redirects never followed, the guard's resolver and socket
factory on the connector, and a bounded, streamed read of the response.

aiohttp-retry is not used: the durable schedule in the store is the retry mechanism. The one
in-attempt retry we do — a keep-alive connection the receiver closed just before we reused it
(``ServerDisconnectedError`` before any response) — is four lines here and needs no library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NamedTuple

import aiohttp

import botsys
from botsys.webhooks.guard import AllowList, BlockedDestination, Guard, check_url
from botsys.webhooks.rotation import Keyring
from botsys.webhooks.types import Delivery

MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of a response, then hang up
EXCERPT_BYTES = 1024  # kept with the attempt record
CONNECT_TIMEOUT_S = 5.0
USER_AGENT = f"botsys/{botsys.__version__}"


class SendResult(NamedTuple):
    """What happened on the wire; the policy turns it into an outcome. (A NamedTuple:
    built once per attempt, it costs a third of a frozen dataclass.)"""

    at_ms: int
    duration_ms: int
    status: int | None  # None: no HTTP response
    error: str | None  # "timeout", "connection: ...", "blocked_destination: ..."
    excerpt: str
    retry_after: str | None = None
    blocked: bool = False  # the SSRF guard refused: permanent, never retried


def build_session(
    timeout_s: float, guard: Guard, *, limit: int = 100, limit_per_host: int = 0
) -> aiohttp.ClientSession:
    """The one session a dispatcher uses. Call inside a running event loop."""
    connector = aiohttp.TCPConnector(
        resolver=guard.resolver(),
        socket_factory=guard.socket_factory,
        limit=limit,
        limit_per_host=limit_per_host,
        keepalive_timeout=4.0,  # below common server idle timeouts (Node: 5 s): fewer resets
    )
    # The whole-attempt deadline is the sender's own (it also spans the one reset retry);
    # the session only bounds connecting.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(CONNECT_TIMEOUT_S, timeout_s))
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=False,
        auto_decompress=False,  # we keep an excerpt only; no decompression bombs
        cookie_jar=aiohttp.DummyCookieJar(),  # receivers must not share state via cookies
    )


class Sender:
    """Sends one attempt of a delivery and reports what happened."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        secret: str = "",
        timeout_s: float = 15.0,
        allow: AllowList | None = None,
        clock: Callable[[], float] = time.time,
        keyring: Keyring | None = None,
        endpoint_keyring: Callable[[str], Keyring | None] | None = None,
    ) -> None:
        self._session = session
        # One secret, or a rotating ring of them (every unexpired one signs).
        self._keyring = keyring if keyring is not None else Keyring.single(secret)
        # A subscribed endpoint's deliveries are signed with that endpoint's own secrets.
        self._endpoint_keyring = endpoint_keyring or (lambda _id: None)
        self._timeout_s = timeout_s
        self._allow = allow or AllowList()
        self._clock = clock

    def headers(self, delivery: Delivery, timestamp: int) -> dict[str, str]:
        """Fresh timestamp and signature each attempt; the id never changes."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
            "X-Delivery-Attempt": str(delivery.attempt),
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
        }
        if delivery.job_id:
            headers["X-Bot-Job-Id"] = delivery.job_id
        if delivery.event_type:
            headers["X-Event-Type"] = delivery.event_type
        keyring = self._endpoint_keyring(delivery.endpoint) if delivery.endpoint else self._keyring
        if keyring:
            signature = keyring.sign(delivery.id, timestamp, delivery.body, timestamp * 1000)
            if signature:
                headers["webhook-signature"] = signature
        return headers

    async def send(self, delivery: Delivery) -> SendResult:
        at = self._clock()
        started = time.monotonic()
        problem = check_url(delivery.url, self._allow)  # clear error for literals, no socket
        if problem:
            return _failed(at, started, _blocked_error(problem), blocked=True)
        headers = self.headers(delivery, int(at))
        try:
            async with asyncio.timeout(self._timeout_s):
                # Inline, not a helper coroutine: each await level costs again on every
                # resumption. A pooled keep-alive connection the receiver closed just
                # before we reused it (ServerDisconnectedError before any response) gets
                # one immediate retry on a fresh connection, same attempt and headers.
                for retry in (False, True):
                    try:
                        async with self._session.post(
                            delivery.url,
                            data=delivery.body,
                            headers=headers,
                            allow_redirects=False,
                        ) as resp:
                            body, complete = await read_capped(resp.content, MAX_RESPONSE_BYTES)
                            if not complete:
                                resp.close()  # drop the connection: the rest is never read
                            status, retry_after = resp.status, resp.headers.get("Retry-After")
                        break
                    except aiohttp.ServerDisconnectedError:
                        if retry:
                            raise
        except TimeoutError:
            return _failed(at, started, f"timeout after {self._timeout_s:g} s")
        except aiohttp.ClientError as exc:
            blocked = _blocked_reason(exc)
            if blocked:
                return _failed(at, started, _blocked_error(blocked), blocked=True)
            return _failed(at, started, f"connection: {_describe(exc)}")
        excerpt = body[:EXCERPT_BYTES].decode("utf-8", "replace")
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return SendResult(int(at * 1000), elapsed_ms, status, None, excerpt, retry_after)


def _failed(at: float, started: float, error: str, blocked: bool = False) -> SendResult:
    """No HTTP answer (or a refused destination)."""
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return SendResult(int(at * 1000), elapsed_ms, None, error, "", None, blocked)


async def read_capped(stream: aiohttp.StreamReader, cap: int) -> tuple[bytes, bool]:
    """Read at most ``cap`` bytes; True if the body ended within the cap."""
    chunks, size = [], 0
    while size < cap:
        chunk = await stream.read(cap - size)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
        if stream.at_eof():  # the usual small body: done without another read
            return b"".join(chunks), True
    return b"".join(chunks), stream.at_eof()


def _blocked_reason(exc: BaseException) -> str | None:
    """The guard's refusal somewhere in the exception chain (aiohttp wraps it)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BlockedDestination):
            return str(seen)
        if "blocked destination" in str(seen):  # aiohappyeyeballs merges multiple failures
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _blocked_error(reason: str) -> str:
    """One machine-readable prefix for every refusal (API and metrics group on it)."""
    return "blocked_destination: " + reason.removeprefix("blocked destination: ")


def _describe(exc: aiohttp.ClientError) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
