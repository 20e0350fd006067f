"""The Redis client: from REDIS_URL, or an embedded in-memory server when none is configured."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backoff import Backoff
from .cancel_safe import use_cancel_safe_sends
from .errors import REDIS_DOWN
from .event_hub import JobEventHub
from .keys import Keys
from .packing import use_hiredis_packing
from .scripts import Scripts

log = logging.getLogger("botsys.store")


@dataclass
class Store:
    """The storage boundary: the client, the key names and the Lua scripts, plus what a caller
    needs to know about them. JobQueue, the delivery store and the rate limiter use it; nobody
    reaches through them to Redis."""

    redis: Redis
    embedded: bool
    description: str  # safe to log: never contains a password
    keys: Keys = field(default_factory=Keys)
    # Job event streams (SSE): one pub/sub connection for all of them, from its own pool (a
    # pub/sub connection is closed when it is given up: in the shared pool, the next script to
    # take it would have to reconnect first).
    events: JobEventHub = field(init=False)
    scripts: Scripts = field(init=False)

    def __post_init__(self) -> None:
        self.scripts = Scripts(self.redis)
        pool = self.redis.connection_pool
        own = ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs)
        self.events = JobEventHub(Redis(connection_pool=own), self.keys.event_hub_channel())

    async def close(self) -> None:
        await self.events.close()
        await self.redis.aclose()
        await self.events.redis.aclose()
        await self.events.redis.connection_pool.disconnect()


def redact_url(url: str) -> str:
    """redis://:secret@host:6379/0 → redis://***@host:6379/0"""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


class WaitingConnectionPool(ConnectionPool):
    """At most ``max_connections`` connections; a caller finding them all busy waits for one
    (up to ``timeout`` s) instead of failing. redis-py's own pool raises MaxConnectionsError
    at once (a burst of 1000 requests gets ~900 × 503), and its BlockingConnectionPool waits on
    an asyncio.Condition, which on Python 3.11 loses the wake-up of a waiter cancelled just
    after it is notified (the API's deadline cancels waiters): a free connection then sits
    idle while others wait. A semaphore hands a cancelled waiter's turn on."""

    def __init__(self, *, timeout: float, max_connections: int, **connection_kwargs) -> None:
        super().__init__(max_connections=max_connections, **connection_kwargs)
        self.timeout = timeout
        self._free = asyncio.Semaphore(max_connections)

    async def get_connection(self, *args, **kwargs) -> AbstractConnection:
        try:
            async with asyncio.timeout(self.timeout):
                await self._free.acquire()
        except TimeoutError:
            raise MaxConnectionsError(
                f"no Redis connection free within {self.timeout:g} s "
                f"({self.max_connections} in use)"
            ) from None
        try:
            return await super().get_connection(*args, **kwargs)
        except BaseException:
            self._free.release()
            raise

    async def release(self, connection: AbstractConnection) -> None:
        held = connection in self._in_use_connections
        try:
            await super().release(connection)
        finally:
            if held:
                self._free.release()


def make_client(
    url: str,
    connect_timeout_s: float = 5.0,
    max_connections: int = 100,
    pool_timeout_s: float = 5.0,
    *,
    prefix: str = Keys.prefix,
) -> Store:
    keys = Keys(prefix)
    if not url:
        import fakeredis  # only needed for the embedded mode

        server = fakeredis.FakeServer()
        client = fakeredis.FakeAsyncRedis(
            server=server,
            decode_responses=True,
            max_connections=max_connections,  # the same waiting pool as for a real Redis
            connection_pool_class=functools.partial(WaitingConnectionPool, timeout=pool_timeout_s),
        )
        return Store(client, True, "embedded, in-memory, single replica, nothing persists", keys)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"REDIS_URL {redact_url(url)!r}: expected redis://, rediss:// or unix://")
    pool = WaitingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        decode_responses=True,
        socket_connect_timeout=connect_timeout_s,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    use_hiredis_packing(pool)
    use_cancel_safe_sends(pool)
    return Store(Redis.from_pool(pool), False, redact_url(url), keys)


async def wait_until_ready(store: Store, max_backoff_s: float = 10.0, attempts: int = 0) -> None:
    """PING until Redis answers, backing off; logs each failure once. attempts=0: forever."""
    retry, tries = Backoff(0.2, max_backoff_s), 0
    while True:
        tries += 1
        try:
            await store.redis.ping()
        except REDIS_DOWN as exc:
            if attempts and tries >= attempts:
                raise
            delay = retry.next_s()
            log.warning(
                "redis at %s unreachable (%s); retrying in %.1fs",
                store.description,
                type(exc).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            continue
        if tries > 1 or store.embedded:
            log.info("redis ready: %s", store.description)
        return


async def warn_on_risky_settings(store: Store) -> list[str]:
    """Jobs are lost on restart without persistence, or evicted under memory pressure."""
    if store.embedded:
        return []
    warnings = []
    try:
        conf = await store.redis.config_get("maxmemory-policy")
        aof = await store.redis.config_get("appendonly")
    except Exception:  # managed Redis often forbids CONFIG; not fatal
        return []
    policy = _text(conf.get("maxmemory-policy"))
    if policy and policy != "noeviction":
        warnings.append(f"maxmemory-policy is {policy}: Redis may evict jobs; use noeviction")
    if _text(aof.get("appendonly")) != "yes":
        warnings.append("appendonly is off: queued jobs are lost if Redis restarts; enable AOF")
    for w in warnings:
        log.warning("redis settings put jobs at risk: %s", w)
    return warnings


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else (v or "")
