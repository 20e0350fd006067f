"""The Redis client: from REDIS_URL, or an embedded in-memory server when none is configured."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import REDIS_DOWN
from .event_hub import JobEventHub
from .packing import use_hiredis_packing

log = logging.getLogger("botsys.store")


@dataclass
class Store:
    """The client plus what a caller needs to know about it."""

    redis: Redis
    embedded: bool
    description: str  # safe to log: never contains a password
    # Job event streams (SSE): one pub/sub connection for all of them, from its own pool (a
    # pub/sub connection is closed when it is given up; handed back to the shared pool, the
    # next script took it and had to reconnect first).
    events: JobEventHub = field(init=False)

    def __post_init__(self) -> None:
        pool = self.redis.connection_pool
        own = ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs)
        self.events = JobEventHub(Redis(connection_pool=own))

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


def make_client(url: str, connect_timeout_s: float = 5.0) -> Store:
    if not url:
        import fakeredis  # only needed for the embedded mode

        server = fakeredis.FakeServer()
        client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        return Store(client, True, "embedded, in-memory, single replica, nothing persists")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"REDIS_URL {redact_url(url)!r}: expected redis://, rediss:// or unix://")
    client = Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=connect_timeout_s,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    use_hiredis_packing(client.connection_pool)
    return Store(client, False, redact_url(url))


async def wait_until_ready(store: Store, max_backoff_s: float = 10.0, attempts: int = 0) -> None:
    """PING until Redis answers, backing off; logs each failure once. attempts=0: forever."""
    delay, tries = 0.2, 0
    while True:
        tries += 1
        try:
            await store.redis.ping()
        except REDIS_DOWN as exc:
            if attempts and tries >= attempts:
                raise
            log.warning(
                "redis at %s unreachable (%s); retrying in %.1fs",
                store.description,
                type(exc).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
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
