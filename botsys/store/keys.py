"""Every Redis key and channel name botsys uses, in one place.

All keys of one bot type share the hash tag ``{<type>}`` so each script touches a single Redis
Cluster slot. A script receives the fixed keys it declares (``-- KEYS: queue meta``) by these
names, taken from ``TypeKeys``; keys that depend on data (a job's hash, its log) it builds from
the type's prefix (ARGV ``prefix``) and the ``DATA_KEYS`` suffixes, generated into its prologue
by store/scripts.py — so every name below exists once.
"""

from __future__ import annotations

from dataclasses import dataclass

# Suffixes under a type prefix, named as the scripts' KEYS (store/scripts.py).
QUEUE = "queue"  # ZSET waiting ids, score priority * 2^32 + seq
DELAYED = "delayed"  # ZSET ids waiting for a retry or a start time, score = due ms
ACTIVE = "active"  # ZSET the semaphore: running ids, score = lease expiry ms
META = "meta"  # HASH limit, paused, sequences, counters
JOBS = "jobs"  # ZSET every job id by creation ms (listing, newest first)
DELIVERIES = "deliveries"  # ZSET pending delivery ids, score = due ms (or lease expiry)
WAITERS = "waiters"  # ZSET replicas waiting for a slot of a full semaphore, score = ms joined
WAITERS_SEEN = "waiters_seen"  # HASH replica -> ms of its latest claim while waiting
STARTS = "starts"  # ZSET the cadence's sliding window: one member per start, score = start ms
ADMITS = "admits"  # ZSET a "reject" cadence's window: one member per job accepted at /invoke
TYPE_DEF = "type"  # STRING the type's runtime definition (JSON; control/type_store.py)

# Keys that depend on data: prefix + suffix + id. Lua builds them with lib.lua's key(KEY.job, id).
DATA_KEYS = {
    "job": "job:",  # HASH a job
    "log": "log:",  # LIST a job's log lines
    "fanout": "fanout:",  # LIST the ids of a job's deliveries to subscribed endpoints
    "idem": "idem:",  # STRING/HASH the job or delivery an Idempotency-Key created
    "delivery": "delivery:",  # HASH a webhook delivery
    "attempts": "attempts:",  # LIST a delivery's attempt records
    "done": "done:",  # ZSET finished jobs of one state, by finish ms
    "dlv": "dlv:",  # ZSET finished deliveries of one state, by finish ms
}


@dataclass(frozen=True)
class TypeKeys:
    """One bot type's fixed keys, by the names the Lua scripts declare (``-- KEYS: queue meta``),
    and its ``prefix`` for the data-dependent ones."""

    prefix: str
    queue: str
    delayed: str
    active: str
    meta: str
    jobs: str
    deliveries: str
    waiters: str
    waiters_seen: str
    starts: str
    admits: str
    type_def: str


@dataclass(frozen=True)
class Keys:
    prefix: str = "botsys"

    def type_prefix(self, bot_type: str) -> str:
        return f"{self.prefix}:{{{bot_type}}}:"

    def of(self, t: str) -> TypeKeys:
        """The type's fixed keys, as the scripts name them."""
        p = self.type_prefix(t)
        return TypeKeys(
            prefix=p,
            queue=p + QUEUE,
            delayed=p + DELAYED,
            active=p + ACTIVE,
            meta=p + META,
            jobs=p + JOBS,
            deliveries=p + DELIVERIES,
            waiters=p + WAITERS,
            waiters_seen=p + WAITERS_SEEN,
            starts=p + STARTS,
            admits=p + ADMITS,
            type_def=p + TYPE_DEF,
        )

    def _t(self, bot_type: str, suffix: str) -> str:
        return self.type_prefix(bot_type) + suffix

    def queue(self, t: str) -> str:
        return self._t(t, QUEUE)

    def delayed(self, t: str) -> str:
        return self._t(t, DELAYED)

    def active(self, t: str) -> str:
        return self._t(t, ACTIVE)

    def meta(self, t: str) -> str:
        return self._t(t, META)

    def jobs(self, t: str) -> str:
        return self._t(t, JOBS)

    def done(self, t: str, state: str) -> str:
        return self._t(t, DATA_KEYS["done"] + state)

    def deliveries(self, t: str) -> str:
        return self._t(t, DELIVERIES)

    def waiters(self, t: str) -> str:
        return self._t(t, WAITERS)

    def waiters_seen(self, t: str) -> str:
        return self._t(t, WAITERS_SEEN)

    def starts(self, t: str) -> str:
        return self._t(t, STARTS)

    def admits(self, t: str) -> str:
        return self._t(t, ADMITS)

    def type_def(self, t: str) -> str:
        return self._t(t, TYPE_DEF)

    def types_index(self) -> str:
        """HASH type name → version of its runtime definition (or tombstone)."""
        return f"{self.prefix}:{{types}}:index"

    def types_version(self) -> str:
        """Counter bumped by every bot type write: the catalog's version."""
        return f"{self.prefix}:{{types}}:version"

    def types_channel(self) -> str:
        """Published after every bot type write: replicas re-read the catalog."""
        return f"{self.prefix}:types"

    def delivery_index(self, t: str, state: str) -> str:
        return self._t(t, DATA_KEYS["dlv"] + state)

    def job(self, t: str, job_id: str) -> str:
        return self._t(t, DATA_KEYS["job"] + job_id)

    def log(self, t: str, job_id: str) -> str:
        return self._t(t, DATA_KEYS["log"] + job_id)

    def delivery(self, t: str, delivery_id: str) -> str:
        return self._t(t, DATA_KEYS["delivery"] + delivery_id)

    def attempts(self, t: str, delivery_id: str) -> str:
        return self._t(t, DATA_KEYS["attempts"] + delivery_id)

    def fanout(self, t: str, job_id: str) -> str:
        """LIST the ids of a job's deliveries to subscribed endpoints (lib.lua's fan_out)."""
        return self._t(t, DATA_KEYS["fanout"] + job_id)

    def idempotency(self, t: str, key: str) -> str:
        return self._t(t, DATA_KEYS["idem"] + key)

    def ratelimit(self, client: str) -> str:
        return f"{self.prefix}:{{rl}}:{client}"

    def webhook_secrets(self) -> str:
        """The signing-secret ring (JSON), once rotated through the API (signing_secrets.py)."""
        return f"{self.prefix}:{{webhooks}}:secrets"

    def endpoints(self) -> str:
        """HASH endpoint id -> its JSON (endpoints.py)."""
        return f"{self.prefix}:{{webhooks}}:endpoints"

    # An endpoint's cluster-wide health (store/endpoint_health.py), under the endpoint's own
    # tag: each health script touches one endpoint's keys only.
    def endpoint_throttle(self, endpoint_id: str) -> str:
        """STRING the endpoint throttle's theoretical arrival time, µs (endpoint_throttle.lua)."""
        return f"{self.prefix}:{{{endpoint_id}}}:throttle"

    def endpoint_breaker(self, endpoint_id: str) -> str:
        """HASH its circuit breaker: oks, fails (decayed counts), openUntil ms, trips."""
        return f"{self.prefix}:{{{endpoint_id}}}:breaker"

    def endpoint_probe(self, endpoint_id: str) -> str:
        """STRING the token of the one half-open probe in flight, leased (SET NX PX)."""
        return f"{self.prefix}:{{{endpoint_id}}}:probe"

    def health_probe(self, replica: str) -> str:
        """A small key /health writes (with a TTL): does Redis accept writes?"""
        return f"{self.prefix}:{{health}}:{replica}"

    # Bot groups: global configuration under one hash tag (group_write.lua touches them together).
    def groups(self) -> str:
        """HASH groupId → the group's JSON definition."""
        return f"{self.prefix}:{{config}}:groups"

    def group_versions(self) -> str:
        """HASH groupId → its version; field "" holds the latest version of any group."""
        return f"{self.prefix}:{{config}}:group-versions"

    def group_seq(self, group_id: str) -> str:
        """The group's selection counter (round robin and weighted sequences)."""
        return f"{self.prefix}:{{config}}:group-seq:{group_id}"

    def group_idempotency(self, group_id: str, key: str) -> str:
        """The member chosen for a request with an Idempotency-Key: its repeats go there too."""
        return f"{self.prefix}:{{config}}:group-idem:{group_id}:{key}"

    # Pub/sub channels (not slot-bound).
    def wake_channel(self, t: str) -> str:
        return f"{self.prefix}:wake:{t}"

    def deliveries_channel(self) -> str:
        return f"{self.prefix}:wake-deliveries"

    def secrets_channel(self) -> str:
        return f"{self.prefix}:webhook-secrets"

    def endpoints_channel(self) -> str:
        return f"{self.prefix}:endpoints"

    def cancel_channel(self) -> str:
        return f"{self.prefix}:cancel"

    def events_channel(self, job_id: str) -> str:
        return f"{self.prefix}:events:{job_id}"

    def event_hub_channel(self) -> str:
        """Held subscribed by each replica's event hub (store/event_hub.py); nobody publishes."""
        return f"{self.prefix}:event-hub"
