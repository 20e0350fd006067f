"""The outbox: webhook deliveries in Redis. The DeliveryStore the dispatcher runs on, plus the
reads and the redeliver action the API needs (api/delivery_views.py shapes the responses).
Deliveries live in their job's slot ({type}), so the job-completion script can schedule one
atomically; ad-hoc deliveries (POST /deliver, no job) live in a slot of their own, ADHOC, which
no bot type can be named (names start a-z)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from ..backoff import Backoff
from ..config import Settings
from ..jobs import bot_type_of, new_job_id
from ..states import DELIVERY_FINISHED, DeliveryState
from ..waiting import wait_event
from ..webhooks.types import AttemptRecord, Delivery
from . import results
from .connection import Store
from .errors import STORE_FAILED
from .results import DeliverCode, HeldCode, RedeliverCode

# A delivery's hash fields that lists read (not the body: it holds the job's result).
SUMMARY_FIELDS = ("id", "jobId", "botType", "url", "state", "attempt", "maxAttempts")
SUMMARY_FIELDS += ("createdAt", "nextAt", "finishedAt", "lastStatus", "eventType", "endpoint")
ADHOC = "_adhoc"  # the slot of ad-hoc deliveries
MAX_ADHOC_BODY = 1 << 20  # bytes of an ad-hoc payload, serialised
IDEMPOTENCY_TTL_S = 24 * 3600
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_JOB_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,31}-[0-9A-HJKMNP-TV-Z]{26}")
log = logging.getLogger("botsys.deliveries")


def delivery_type(delivery_id: str) -> str | None:
    """msg_<job id>[_<n>] → the job's bot type; msg_<ULID> (ad-hoc) → ADHOC; either followed
    by _dead_<endpoint id>[_<n>]: a delivery.dead event about it, in the same slot."""
    if not delivery_id.startswith("msg_"):
        return None
    if _ULID.match(delivery_id, 4) and (len(delivery_id) == 30 or delivery_id[30] == "_"):
        return ADHOC
    job = _JOB_PREFIX.match(delivery_id, 4)  # then _<run>, _<endpoint id>[_<run>] or nothing
    return bot_type_of(job.group(0)) if job else None


def new_adhoc_id() -> str:
    return "msg_" + new_job_id("x").split("-", 1)[1]


class AdhocCreated(NamedTuple):
    delivery_id: str
    created: bool  # False: an earlier delivery with the same idempotency key
    same_request: bool = True  # False: that key was used for a different request


class StoredDelivery(NamedTuple):
    fields: dict[str, str]  # the delivery's hash
    attempts: list[dict[str, Any]]  # each attempt's record, oldest first


# Runs a Lua script in a slot: (name, slot, **its own arguments) → reply. JobQueue.run_script:
# it adds the slot's keys and the settings the delivery scripts share with the job scripts.
RunScript = Callable[..., Awaitable[Any]]


class Outbox:
    unavailable = STORE_FAILED  # the DeliveryStore contract: outages and refusals

    def __init__(self, store: Store, settings: Settings, run_script: RunScript):
        self.redis, self.keys = store.redis, store.keys
        self.settings = settings
        self.run_script = run_script
        self.lease_ms = settings.webhooks.lease_ms
        self._wake = asyncio.Event()
        self._next_due: float | None = None  # loop time when the earliest known delivery is due
        self._turn = 0  # round-robin start, so no bot type's deliveries starve the others
        self._retry = Backoff(0.1, 2.0)  # while claiming fails

    @property
    def slots(self) -> list[str]:
        """Every slot deliveries live in: the bot types', then the ad-hoc one."""
        return [*self.settings.bot_types, ADHOC]

    def _known(self, slot: str | None) -> bool:
        return slot == ADHOC or slot in self.settings.bot_types

    def subscribe(self, notifier) -> None:
        notifier.on(self.keys.deliveries_channel(), lambda _msg: self._wake.set())

    # -- DeliveryStore ---------------------------------------------------------------------

    async def claim_due(self, limit: int) -> list[Delivery]:
        """Redis down or refusing is not the dispatcher's problem: back off, report no work."""
        try:
            out = await self._claim_due(limit)
            self._retry.reset()
            return out
        except STORE_FAILED as exc:  # down, or refusing (full, read-only, …)
            delay = self._retry.next_s()
            log.warning("claiming deliveries failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            return []

    async def _claim_due(self, limit: int) -> list[Delivery]:
        types = self.slots
        self._turn = (self._turn + 1) % max(1, len(types))
        out: list[Delivery] = []
        soonest = None
        for t in types[self._turn :] + types[: self._turn]:
            if len(out) >= limit:
                break
            reply = results.claim_deliveries(
                await self.run_script("claim_deliveries", t, max=limit - len(out))
            )
            if reply.wait_ms >= 0 and (soonest is None or reply.wait_ms < soonest):
                soonest = reply.wait_ms
            out.extend(_delivery(f) for f in reply.deliveries)
        loop = asyncio.get_running_loop()
        self._next_due = None if soonest is None else loop.time() + soonest / 1000
        return out

    async def finish_attempt(
        self, delivery: Delivery, record: AttemptRecord, next_attempt_at_ms: int | None
    ) -> bool:
        outcome = record.outcome if next_attempt_at_ms is None else "retry"
        if next_attempt_at_ms is None and outcome == "retry":
            outcome = "failed"
        reply = await self.run_script(
            "finish_delivery",
            delivery.bot_type or ADHOC,
            id=delivery.id,
            token=delivery.token,
            record=json.dumps(_record_json(record, delivery.attempt), separators=(",", ":")),
            outcome=outcome,
            next_at=next_attempt_at_ms or "",
            status="" if record.status_code is None else record.status_code,
        )
        if next_attempt_at_ms is not None:
            self._wake.set()  # recompute the next due time
        return results.held(reply) == HeldCode.DONE

    async def release(self, delivery: Delivery, delay_ms: int) -> bool:
        reply = await self.run_script(
            "release_delivery",
            delivery.bot_type or ADHOC,
            id=delivery.id,
            token=delivery.token,
            delay_ms=max(0, delay_ms),
        )
        return results.held(reply) == HeldCode.DONE

    async def wait_for_work(self, timeout_s: float) -> None:
        if self._next_due is not None:
            timeout_s = min(timeout_s, max(0.0, self._next_due - asyncio.get_running_loop().time()))
        await wait_event(self._wake, timeout_s)
        self._wake.clear()

    # -- API reads and actions -------------------------------------------------------------

    async def get(self, delivery_id: str) -> StoredDelivery | None:
        t = delivery_type(delivery_id)
        if not self._known(t):
            return None
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.delivery(t, delivery_id))
        pipe.lrange(k.attempts(t, delivery_id), 0, -1)
        fields, attempts = await pipe.execute()
        if not fields.get("state"):
            return None
        return StoredDelivery(fields, [json.loads(a) for a in attempts])

    async def list(
        self, state: str | None = None, job_id: str | None = None, limit: int = 50
    ) -> list[dict[str, str]]:
        """The deliveries' SUMMARY_FIELDS, newest first (a job's: its own, then its endpoints')."""
        if job_id:
            t = bot_type_of(job_id)
            if t is None or t not in self.settings.bot_types:
                return []
            rows = await self._summaries(t, await self._ids_for_job(t, job_id))
            return [f for f in rows if state in (None, f["state"])][:limit]
        rows = []
        for t in self.slots:
            rows.extend(await self._list_type(t, state, limit))
        rows.sort(key=lambda f: int(f.get("createdAt") or 0), reverse=True)
        return rows[:limit]

    async def _ids_for_job(self, bot_type: str, job_id: str) -> list[str]:
        """Its webhookUrl's deliveries, newest first, then its subscribed endpoints'."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(k.job(bot_type, job_id), "deliveryRuns")
        pipe.lrange(k.fanout(bot_type, job_id), 0, -1)
        runs, fanned = await pipe.execute()
        own = [f"msg_{job_id}" + (f"_{n}" if n > 1 else "") for n in range(int(runs or 0), 0, -1)]
        return own + fanned[::-1]

    async def _list_type(
        self, bot_type: str, state: str | None, limit: int
    ) -> list[dict[str, str]]:
        k, r = self.keys, self.redis
        if state == DeliveryState.PENDING:
            ids = await r.zrange(k.deliveries(bot_type), 0, limit - 1)
        elif state in DELIVERY_FINISHED:
            ids = await r.zrevrange(k.delivery_index(bot_type, state), 0, limit - 1)
        else:
            ids = await r.zrange(k.deliveries(bot_type), 0, limit - 1)
            for s in DELIVERY_FINISHED:
                ids += await r.zrevrange(k.delivery_index(bot_type, s), 0, limit - 1)
        return await self._summaries(bot_type, ids)

    async def _summaries(self, bot_type: str, ids: list[str]) -> list[dict[str, str]]:
        """Deliveries as lists show them: without body and attempts, in one round trip."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.hmget(k.delivery(bot_type, i), SUMMARY_FIELDS)
        rows = [
            {k: v for k, v in zip(SUMMARY_FIELDS, r, strict=True) if v is not None}
            for r in await pipe.execute()
        ]
        return [f for f in rows if f.get("state")]

    async def redeliver(self, delivery_id: str) -> results.CodeState:
        """(code, state): see RedeliverCode."""
        t = delivery_type(delivery_id)
        if not self._known(t):
            return results.CodeState(RedeliverCode.UNKNOWN)
        return results.redeliver(await self.run_script("redeliver", t, id=delivery_id))

    async def redeliver_matching(
        self,
        state: str,
        since_ms: int,
        *,
        url: str = "",
        job_id: str = "",
        limit: int = 1000,
        dry_run: bool = False,
    ) -> tuple[int, int]:
        """Bulk replay: (matched, redelivered) of the ``state`` deliveries (delivered or dead)
        that finished at or after ``since_ms``, to ``url`` / of ``job_id`` if given, at most
        ``limit``. Each is redelivered by redeliver.lua (atomic per delivery; one pipeline)."""
        matched: list[tuple[str, str]] = []
        slots = [bot_type_of(job_id)] if job_id else self.slots
        for t in slots:
            if not self._known(t) or len(matched) >= limit:
                continue
            room = limit - len(matched)
            # The index holds at most engine.max_index per state: a URL filter reads it all.
            ids = await self._finished_since(t, state, since_ms, job_id, None if url else room)
            if url and ids:
                urls = await self._urls(t, ids)
                ids = [i for i, u in zip(ids, urls, strict=True) if u == url]
            matched.extend((t, i) for i in ids[:room])
        if dry_run or not matched:
            return len(matched), 0
        replies = await asyncio.gather(*(self.run_script("redeliver", t, id=i) for t, i in matched))
        done = [results.redeliver(r).code == RedeliverCode.REDELIVERED for r in replies]
        return len(matched), sum(done)

    async def _finished_since(
        self, t: str, state: str, since_ms: int, job_id: str, limit: int | None
    ) -> list[str]:
        """Oldest first, so a limited replay goes on where the previous one stopped."""
        r, k = self.redis, self.keys
        if not job_id:
            page = {} if limit is None else {"start": 0, "num": limit}
            return await r.zrangebyscore(k.delivery_index(t, state), since_ms, "+inf", **page)
        ids = await self._ids_for_job(t, job_id)
        pipe = r.pipeline(transaction=False)
        for i in ids:
            pipe.zscore(k.delivery_index(t, state), i)
        scores = await pipe.execute()
        return [i for i, sc in zip(ids, scores, strict=True) if sc is not None and sc >= since_ms]

    async def _urls(self, t: str, ids: list[str]) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.hget(self.keys.delivery(t, i), "url")
        return await pipe.execute()

    async def wake_endpoint(self, endpoint_id: str) -> int:
        """A re-enabled endpoint: its held deliveries are due now. Returns how many."""
        replies = await asyncio.gather(
            *(self.run_script("wake_endpoint", t, endpoint=endpoint_id) for t in self.slots)
        )
        return sum(results.wake_endpoint(r) for r in replies)

    async def adhoc_counts(self) -> tuple[int, int, int]:
        """(pending, delivered, dead) of the ad-hoc slot, for /stats beside the bot types'."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(k.deliveries(ADHOC))
        pipe.hmget(k.meta(ADHOC), ["webhook_delivered", "webhook_dead"])
        pending, (delivered, dead) = await pipe.execute()
        return int(pending), int(delivered or 0), int(dead or 0)

    async def create_adhoc(
        self,
        url: str,
        body: bytes,
        event_type: str = "",
        idempotency_key: str = "",
        endpoint: str = "",
    ) -> AdhocCreated:
        """POST /deliver: a new pending delivery of ``body`` to ``url`` (an SSRF-checked URL);
        with ``endpoint``, an event for that subscribed endpoint (signed with its secrets)."""
        fingerprint = hashlib.sha256(b"%s\n%s\n%s" % (url.encode(), event_type.encode(), body))
        reply = results.deliver(
            await self.run_script(
                "deliver",
                ADHOC,
                id=new_adhoc_id(),
                url=url,
                body=body,
                event_type=event_type,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint.hexdigest()[:32],
                idempotency_ttl_s=IDEMPOTENCY_TTL_S,
                endpoint=endpoint,
            )
        )
        created = reply.code == DeliverCode.CREATED
        return AdhocCreated(reply.delivery_id, created, reply.same_request)


def _delivery(f: dict[str, str]) -> Delivery:
    return Delivery(
        id=f["id"],
        job_id=f.get("jobId", ""),
        bot_type=f.get("botType", ""),
        url=f["url"],
        body=f["body"].encode(),
        attempt=int(f["attempt"]),
        max_attempts=int(f["maxAttempts"]),
        token=f["token"],
        event_type=f.get("eventType", ""),
        endpoint=f.get("endpoint", ""),
    )


def _record_json(record: AttemptRecord, attempt: int) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "at": record.at_ms,
        "durationMs": record.duration_ms,
        "statusCode": record.status_code,
        "error": record.error,
        "outcome": record.outcome,
        "response": record.response_excerpt,
    }
