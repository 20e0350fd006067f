"""JobQueue: the Python API over the Lua scripts. Thin: one script (or pipeline) per call."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import jsonsafe
from .config import Settings
from .jobs import PRIORITY_DEFAULT, Claim, Job, bot_type_of, new_job_id
from .jobs import SUMMARY_FIELDS as JOB_SUMMARY_FIELDS
from .states import TERMINAL, JobState
from .store import results
from .store.connection import Store
from .store.keys import TypeKeys
from .store.notify import Notifier
from .store.results import CancelCode, ClaimCode, CompleteCode, EnqueueCode, RequeueCode
from .store.scripts import Bound

IDEMPOTENCY_TTL_S = 24 * 3600
LOG_LINES_KEPT = 2000
SEARCH_PAGE = 25  # jobs read at once by a text search (whole jobs: payloads may be MiBs)

log = logging.getLogger("botsys.queue")


class UnknownJob(LookupError):
    pass


class QueueFull(Exception):
    """Admission control refused a job: the type's backlog is at one of its caps."""

    def __init__(self, bot_type: str, cap: str, limit: int) -> None:
        super().__init__(f"{bot_type}: {cap} = {limit} reached")
        self.bot_type = bot_type
        # "max_queued" (jobs), "max_queued_bytes" (payload bytes) or "cadence" (a cadence in
        # reject mode: ``limit`` is then the ms until a job would be accepted)
        self.cap = cap
        self.limit = limit


class TypeDeleted(LookupError):
    """The bot type was deleted at runtime (this replica had not heard of it yet)."""


@dataclass(frozen=True)
class Enqueued:
    job_id: str
    created: bool  # False: an earlier job with the same idempotency key
    same_request: bool = True  # False: that earlier job was asked for with a different request
    position: int | None = None  # jobs waiting ahead of it when it was created (0: it started)
    claim: Claim | None = None  # the lease the enqueue script gave the caller (``take``)
    ready: bool = False  # created to run now (not delayed): a dispatcher could take it


@dataclass(frozen=True)
class Completion:
    recorded: bool  # False: this replica no longer owns the job (nothing was written)
    state: str = ""  # terminal state, or "delayed" when a retry was scheduled
    delivery_id: str = ""
    retry_at_ms: int = 0
    next: Claim | None = None  # the next job, leased to the caller along with the freed slot


@dataclass(frozen=True)
class TypeStats:
    waiting: int
    delayed: int
    running: int
    limit: int
    paused: bool
    counts: Mapping[str, int]  # terminal state → jobs ever finished in it
    webhook_pending: int
    webhook_delivered: int
    webhook_dead: int


class JobQueue:
    def __init__(self, store: Store, settings: Settings, replica: str):
        self.redis, self.keys, self.scripts = store.redis, store.keys, store.scripts
        self.settings = settings
        self.replica = replica
        # Per (script, slot): its keys and the settings it declares, bound on first use (naming
        # them costs per call otherwise). Types come and go at runtime (control/catalog.py):
        # ``forget_context`` drops a type whose settings changed.
        self._bound: dict[tuple[str, str], Bound] = {}
        self._type_keys: dict[str, TypeKeys] = {}
        self._seen: set[str] = set()  # types used since start: a deleted one's jobs stay readable
        # Per bot type: the subscribed endpoints lib.lua's fan_out sends the type's job events to.
        self._endpoints: dict[str, list[dict]] = {}
        # Called with the bot type when this replica re-created its lost record (metrics).
        self.on_reseeded: Callable[[str], None] | None = None

    @property
    def bot_types(self) -> list[str]:
        return list(self.settings.bot_types)

    def forget_context(self, bot_type: str) -> None:
        self._bound = {k: v for k, v in self._bound.items() if k[1] != bot_type}

    def set_endpoints(self, per_type: dict[str, list[dict]]) -> None:
        """The endpoints each bot type's job events fan out to (endpoints.py keeps it current)."""
        self._endpoints = per_type
        self._bound = {}  # bound again on next use, with the new endpoints

    def _settings(self, bot_type: str) -> dict[str, Any]:
        """Every setting a script may declare as an argument, for one slot."""
        e, k = self.settings.engine, self.keys
        bt = self.settings.bot_types.get(bot_type)
        cadence_max = bt.cadence_max if bt is not None else 0
        return {
            "prefix": k.type_prefix(bot_type),
            "replica": self.replica,
            "retention_s": e.retention_s,
            "failed_retention_s": e.failed_retention_s,
            "max_index": e.max_index,
            "keep_finished": e.keep_finished,
            "max_queued": e.max_queued,
            "max_queued_bytes": e.max_queued_bytes,
            "webhook_attempts": self.settings.webhooks.max_retries,
            "delivery_lease_ms": self.settings.webhooks.lease_ms,
            "lease_ms": e.lease_ms,
            "max_stalls": e.max_stalls,
            # A waiting dispatcher re-claims at least every idle_wait_s, refreshing its
            # place; older entries belong to replicas that stopped or died.
            "waiter_ttl_ms": int(e.idle_wait_s * 2000) + 1000,
            "events_prefix": k.events_channel(""),
            "deliveries_channel": k.deliveries_channel(),
            "wake_channel": k.wake_channel(bot_type),
            "cancel_channel": k.cancel_channel(),
            # At most cadence_max starts per cadence_ms, across replicas (0: no cadence).
            "cadence_max": cadence_max,
            "cadence_ms": round(bt.cadence_interval_s * 1000) if cadence_max else 0,
            "cadence_reject": "1" if cadence_max and bt.cadence_mode == "reject" else "",
            "endpoints": json.dumps(self._endpoints.get(bot_type, []), separators=(",", ":")),
        }

    def _bind(self, name: str, bot_type: str) -> Bound:
        found = self._bound.get((name, bot_type))
        if found is None:  # first use, a changed type, or a slot that is no type (ad hoc)
            sig = self.scripts.signatures[name]
            every = self._settings(bot_type)
            # As text: a str argument is framed as is, an int is encoded per call.
            static = {n: str(every[n]) for n in sig.args if n in every}
            found = self._bound[(name, bot_type)] = sig.bind(self.type_keys(bot_type), static)
            if bot_type in self.settings.bot_types:
                self._seen.add(bot_type)
        return found

    def type_keys(self, bot_type: str) -> TypeKeys:
        found = self._type_keys.get(bot_type)
        if found is None:
            found = self._type_keys[bot_type] = self.keys.of(bot_type)
        return found

    async def run_script(
        self, name: str, bot_type: str, *, now: int | None = None, **args: Any
    ) -> Any:
        """Run a script on one slot: ``args`` are its own arguments, by name; its keys and the
        settings it declares are added (``now``: None = Redis time, when it declares one)."""
        bound = self._bind(name, bot_type)
        if bound.takes_now:
            args["now"] = "" if now is None else now
        return await self.scripts.run_bound(bound, args)

    def type_of(self, job_id: str) -> str:
        t = bot_type_of(job_id)
        if t is None or (t not in self.settings.bot_types and t not in self._seen):
            raise UnknownJob(job_id)
        return t

    # -- lifecycle -------------------------------------------------------------------------

    async def seed_limits(self) -> dict[str, int]:
        """At start-up: every type's record from configuration (see seed_limit.lua)."""
        out = {}
        for t, bt in self.settings.bot_types.items():
            reply = await self.run_script("seed_limit", t, limit=bt.limit, hold_ms=0)
            out[t] = results.seed_limit(reply).limit
        return out

    async def reseed(self, bot_type: str, now: int | None = None) -> bool:
        """Re-create a type's record that Redis lost (restarted empty, flushed, failed over)
        from configuration; True if this call did it (one replica does: it alone logs and
        counts it). No lease is given for one lease period after, while attempts of the lost
        state stop themselves (self-fencing), so the limit holds through the loss."""
        bt = self.settings.bot_types[bot_type]
        hold_ms = self.settings.engine.lease_ms
        reply = await self.run_script(
            "seed_limit", bot_type, limit=bt.limit, hold_ms=hold_ms, now=now
        )
        if not results.seed_limit(reply).created:
            return False
        log.warning(
            "bot type %s: its record was missing in Redis (restarted empty, flushed or failed "
            "over?); re-created from configuration: limit %d, not paused (a limit or pause set "
            "through PATCH /queues is lost); new leases wait %d ms for running attempts of the "
            "lost state to stop",
            bot_type,
            bt.limit,
            hold_ms,
        )
        if self.on_reseeded is not None:
            self.on_reseeded(bot_type)
        return True

    async def reseed_all(self) -> list[str]:
        """``reseed`` every type whose record is missing; the ones this call re-created."""
        return [t for t in self.bot_types if await self.reseed(t)]

    async def enqueue(
        self,
        bot_type: str,
        bot: str,
        payload: Any = None,
        *,
        priority: int = PRIORITY_DEFAULT,
        webhook_url: str = "",
        timeout_s: float | None = None,
        max_attempts: int | None = None,
        delay_ms: int = 0,
        idempotency_key: str = "",
        fingerprint: str = "",
        group: str = "",
        take: bool = False,
        now: int | None = None,
    ) -> Enqueued:
        """``take``: the caller can start the job now; if a slot is free and the job is next in
        line, the script leases it to the caller (``Enqueued.claim``): no wake-up, no claim.
        ``group``: the JSON {groupId, rule, member} of a job routed by a bot group."""
        bt = self.settings.bot_types[bot_type]
        job_id = new_job_id(bot_type, now)
        fields = {
            "botType": bot_type,
            "bot": bot,
            "payload": jsonsafe.compact({} if payload is None else payload),
            "priority": priority,
            "webhookUrl": webhook_url,
            "timeoutMs": int((timeout_s or bt.timeout_s) * 1000),
            "maxAttempts": max_attempts or bt.max_attempts,
            "idempotencyKey": idempotency_key,
            "fingerprint": fingerprint,  # of the request, to tell a repeat from a reused key
            "group": group,
        }
        reply = results.enqueue(
            await self.run_script(
                "enqueue",
                bot_type,
                id=job_id,
                fields=json.dumps(fields),
                delay_ms=delay_ms,
                idempotency_ttl_s=IDEMPOTENCY_TTL_S,
                take="1" if take and not delay_ms else "",
                now=now,
            )
        )
        jid = reply.job_id
        if reply.code == EnqueueCode.DELETED:
            raise TypeDeleted(bot_type)
        if reply.code < 0:
            raise QueueFull(bot_type, reply.code.name.lower(), reply.limit)
        if reply.code == EnqueueCode.EXISTING and fingerprint:
            return Enqueued(jid, False, await self._same_request(bot_type, jid, fingerprint))
        if reply.code == EnqueueCode.EXISTING:
            return Enqueued(jid, False)
        if reply.claim is not None:
            return Enqueued(jid, True, position=0, claim=_claim(reply.claim), ready=True)
        return Enqueued(jid, True, position=reply.position, ready=not delay_ms)

    async def _same_request(self, bot_type: str, job_id: str, fingerprint: str) -> bool:
        # A job that expired, or one stored without a fingerprint, cannot be told apart: a repeat.
        earlier = await self.redis.hget(self.keys.job(bot_type, job_id), "fingerprint")
        return earlier in (None, "", fingerprint)

    async def claim(
        self, bot_type: str, count: int, now: int | None = None
    ) -> tuple[int, list[Claim]]:
        """Returns (ms until delayed/expired work is due, or -1; the claimed jobs)."""
        reply = results.claim(await self.run_script("claim", bot_type, want=count, now=now))
        if reply.code == ClaimCode.RECORD_MISSING:
            await self.reseed(bot_type, now=now)
            reply = results.claim(await self.run_script("claim", bot_type, want=count, now=now))
            if reply.code == ClaimCode.RECORD_MISSING:  # lost again at once: retry shortly
                return 100, []
        return reply.wait_ms, [_claim(f) for f in reply.claims]

    async def heartbeat(
        self, bot_type: str, leases: Iterable[tuple[str, str]], now: int | None = None
    ) -> dict[str, int]:
        """Renew leases: job id → 1 renewed, 0 lost, 2 renewed but cancel requested."""
        leases = list(leases)
        flat = [x for pair in leases for x in pair]
        reply = results.heartbeat(
            await self.run_script("heartbeat", bot_type, leases=flat, now=now)
        )
        return {job_id: s for (job_id, _), s in zip(leases, reply.leases, strict=True)}

    async def complete(
        self,
        claim: Claim,
        status: str,
        *,
        result_json: str = "",
        error: str = "",
        retry_delay_ms: int = 0,
        take_next: int = 0,
        now: int | None = None,
    ) -> Completion:
        """``take_next``: how many jobs of the type the caller could start now; if the freed
        slot stays with this replica, the script leases it the next waiting job."""
        t = claim.job.bot_type
        reply = results.complete(
            await self.run_script(
                "complete",
                t,
                id=claim.job_id,
                token=claim.token,
                status=status,
                result=result_json,
                error=error,
                retry_delay_ms=retry_delay_ms,
                take_next=take_next,
                now=now,
            )
        )
        if reply.code == CompleteCode.LOST:
            return Completion(False)
        nxt = None if reply.next is None else _claim(reply.next)
        if reply.code == CompleteCode.RETRYING:
            return Completion(True, JobState.DELAYED, retry_at_ms=reply.retry_at_ms, next=nxt)
        return Completion(True, reply.state, reply.delivery_id, next=nxt)

    async def requeue(self, claim: Claim) -> bool:
        t = claim.job.bot_type
        reply = await self.run_script("requeue", t, id=claim.job_id, token=claim.token)
        return results.requeue(reply) == RequeueCode.REQUEUED

    async def cancel(self, job_id: str, now: int | None = None) -> results.CodeState:
        """(code, state): see CancelCode."""
        return await self.cancel_in(self.type_of(job_id), job_id, now)

    async def cancel_in(
        self, bot_type: str, job_id: str, now: int | None = None
    ) -> results.CodeState:
        """``cancel`` in a known slot (a deleted type's leftovers)."""
        reply = results.code_state(await self.run_script("cancel", bot_type, id=job_id, now=now))
        return results.CodeState(CancelCode(reply.code), reply.state)

    async def retry(self, job_id: str, now: int | None = None) -> results.CodeState:
        """(code, state): see RetryCode."""
        reply = await self.run_script("retry", self.type_of(job_id), id=job_id, now=now)
        return results.code_state(reply)

    # -- events from running bots ----------------------------------------------------------

    async def record_events(
        self, bot_type: str, job_id: str, progress: int | None, lines: list[str]
    ) -> None:
        """Progress and log lines of a running attempt, in one round trip; fanned out to SSE."""
        pipe = self.redis.pipeline(transaction=False)
        channel = self.keys.events_channel(job_id)
        if progress is not None:
            pipe.hset(self.keys.job(bot_type, job_id), "progress", progress)
            pipe.publish(channel, json.dumps({"type": "progress", "progress": progress}))
        if lines:
            log_key = self.keys.log(bot_type, job_id)
            pipe.rpush(log_key, *lines)
            pipe.ltrim(log_key, -LOG_LINES_KEPT, -1)
            pipe.publish(channel, json.dumps({"type": "log", "lines": lines}))
        await pipe.execute()

    # -- reads -----------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        try:
            t = self.type_of(job_id)
        except UnknownJob:
            return None
        fields = await self.redis.hgetall(self.keys.job(t, job_id))
        return Job(fields) if fields.get("state") else None

    async def logs(self, job_id: str, tail: int = LOG_LINES_KEPT) -> list[str]:
        t = self.type_of(job_id)
        return await self.redis.lrange(self.keys.log(t, job_id), -tail, -1)

    async def list_jobs(
        self,
        bot_type: str,
        state: str | None = None,
        limit: int = 50,
        before: tuple[int, str] | None = None,
        query: str | None = None,
        max_scan: int = 5000,
    ) -> list[Job]:
        """Newest first. ``before`` is the cursor: (index score, job id) of the last job seen;
        the id breaks ties between jobs indexed in the same millisecond.

        Terminal states have their own index; other filters (a live state, ``query`` — text
        searched case-insensitively in the id, bot, payload, result and error) scan the
        index page by page, at most ``max_scan`` jobs, so a search never costs unbounded work.
        """
        index = self._index_for(bot_type, state)
        wanted = self._matcher(state, query)
        # Only a text search reads payloads and results (in small pages: they may be MiBs).
        searching = bool((query or "").strip())
        fields = None if searching else JOB_SUMMARY_FIELDS
        found: list[Job] = []
        page = (limit if wanted is None else SEARCH_PAGE if searching else 200) + 1
        scanned = 0
        while len(found) < limit and scanned < max_scan:
            rows = await self._index_page(index, before, page)
            if not rows:
                break
            scanned += len(rows)
            jobs = await self._load(bot_type, [m for m, _ in rows], fields)
            found.extend(j for j in jobs if wanted is None or wanted(j))
            before = (int(rows[-1][1]), rows[-1][0])
        return found[:limit]

    async def _index_page(self, index: str, before: tuple[int, str] | None, n: int) -> list:
        """Up to n (id, score) rows after the cursor: first the rest of the cursor's own
        score (members of equal score come in reverse id order), then strictly older ones."""
        if before is None:
            return await self.redis.zrevrangebyscore(index, "+inf", "-inf", 0, n, withscores=True)
        score, last_id = before
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrevrangebyscore(index, score, score, withscores=True)
        pipe.zrevrangebyscore(index, f"({score}", "-inf", 0, n, withscores=True)
        same, older = await pipe.execute()
        return ([row for row in same if row[0] < last_id] + older)[:n]

    @staticmethod
    def _matcher(state: str | None, query: str | None):
        live_state = state if state and state not in TERMINAL else None
        needle = (query or "").strip().lower()
        if live_state is None and not needle:
            return None
        fields = ("id", "bot", "payload", "result", "error")

        def wanted(job: Job) -> bool:
            if live_state and job.state != live_state:
                return False
            return not needle or any(needle in (job.get(f) or "").lower() for f in fields)

        return wanted

    def _index_for(self, bot_type: str, state: str | None) -> str:
        k = self.keys
        if state in TERMINAL:
            return k.done(bot_type, state)
        return k.jobs(bot_type)

    async def _load(
        self, bot_type: str, ids: list[str], fields: tuple[str, ...] | None = None
    ) -> list[Job]:
        """The jobs still stored, with every field or only ``fields``."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            key = self.keys.job(bot_type, job_id)
            pipe.hgetall(key) if fields is None else pipe.hmget(key, fields)
        replies = await pipe.execute()
        if fields is not None:
            replies = [
                {k: v for k, v in zip(fields, r, strict=True) if v is not None} for r in replies
            ]
        return [Job(f) for f in replies if f.get("state")]

    async def index_score(self, job: Job, state: str | None) -> int:
        """The cursor value for the page after ``job``."""
        if state in TERMINAL:
            return int(job.get("finishedAt") or 0)
        return int(job.get("createdAt") or 0)

    async def stats(self) -> dict[str, TypeStats]:
        """Every type's counts in one pipelined round trip (also feeds /metrics)."""
        pipe = self.redis.pipeline(transaction=False)
        types = self.bot_types
        for t in types:
            k = self.keys
            pipe.zcard(k.queue(t))
            pipe.zcard(k.delayed(t))
            pipe.zcard(k.active(t))
            pipe.hgetall(k.meta(t))
            pipe.zcard(k.deliveries(t))
        replies = await pipe.execute()
        out = {}
        for i, t in enumerate(types):
            waiting, delayed, running, meta, pending = replies[i * 5 : i * 5 + 5]
            out[t] = TypeStats(
                waiting=waiting,
                delayed=delayed,
                running=running,
                limit=int(meta.get("limit", 0)),
                paused=meta.get("paused") == "1",
                counts={s: int(meta.get(s, 0)) for s in TERMINAL},
                webhook_pending=pending,
                webhook_delivered=int(meta.get("webhook_delivered", 0)),
                webhook_dead=int(meta.get("webhook_dead", 0)),
            )
        return out

    # -- live queue control ----------------------------------------------------------------

    async def waiting_ids(self, bot_type: str) -> list[str]:
        """Every waiting and delayed job of the type (a deleted type's leftovers)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.queue(bot_type), 0, -1)
        pipe.zrange(self.keys.delayed(bot_type), 0, -1)
        waiting, delayed = await pipe.execute()
        return [*waiting, *delayed]

    def notifier(self) -> Notifier:
        """A pub/sub subscription on this queue's Redis (for callers without a shared one)."""
        return Notifier(self.redis)

    def wake_channel(self, bot_type: str) -> str:
        """Published when a dispatcher of ``bot_type`` may find work (see ``subscribe``)."""
        return self.keys.wake_channel(bot_type)

    def cancel_channel(self) -> str:
        """Published with a job id when a running job is cancelled."""
        return self.keys.cancel_channel()

    async def wake(self, bot_type: str) -> None:
        """Tell every replica's dispatcher of this type to look for work now."""
        await self.redis.publish(self.keys.wake_channel(bot_type), "wake")

    async def set_queue(
        self, bot_type: str, *, limit: int | None = None, paused: bool | None = None
    ):
        pipe = self.redis.pipeline(transaction=True)
        if limit is not None:
            pipe.hset(self.keys.meta(bot_type), "limit", limit)
        if paused is not None:
            pipe.hset(self.keys.meta(bot_type), "paused", int(paused))
        pipe.publish(self.keys.wake_channel(bot_type), "limit")
        await pipe.execute()


def _claim(fields: dict[str, str]) -> Claim:
    """A claimed job from its fields (the script's HGETALL)."""
    return Claim(Job(fields), fields["token"])
