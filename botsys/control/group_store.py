"""Bot groups in Redis: versioned definitions and the per-group selection counter.

Every replica reads a group from Redis at each invoke (one pipelined round trip with the
counter), so a change is in force everywhere at once, with no cache to expire. Writes go through
group_write.lua: create, replace and delete are atomic and honour an expected version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..store import results
from ..store.connection import Store
from ..store.results import DrawCode, GroupCode
from .routing import Group

IDEMPOTENCY_TTL_S = 24 * 3600  # as long as a type's idempotency keys


class GroupMissing(LookupError):
    pass


class GroupExists(Exception):
    pass


class VersionMismatch(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the group is at version {current}")
        self.current = current


@dataclass(frozen=True)
class StoredGroup:
    group: Group
    version: int

    def view(self) -> dict[str, Any]:
        return {**self.group.to_json(), "version": self.version}


@dataclass(frozen=True)
class Draw:
    """What invoke needs to choose a member: the group and its next sequence number, or the
    member a repeat of a keyed request goes to (``remembered``; no number was drawn)."""

    group: Group
    seq: int
    remembered: str | None = None


class GroupStore:
    def __init__(self, store: Store) -> None:
        self.redis, self.keys, self.scripts = store.redis, store.keys, store.scripts

    async def list(self) -> tuple[list[StoredGroup], int]:
        """Every group, by id, and the latest version of any (the list's ETag)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.groups())
        pipe.hgetall(self.keys.group_versions())
        bodies, versions = await pipe.execute()
        groups = [
            StoredGroup(Group.from_json(json.loads(bodies[g])), int(versions.get(g, 0)))
            for g in sorted(bodies)
        ]
        return groups, int(versions.get("", 0))

    async def get(self, group_id: str) -> StoredGroup | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.groups(), group_id)
        pipe.hget(self.keys.group_versions(), group_id)
        body, version = await pipe.execute()
        if body is None:
            return None
        return StoredGroup(Group.from_json(json.loads(body)), int(version or 0))

    async def create(self, group: Group) -> int:
        return (await self._write("create", group.group_id, group, None))[0]

    async def put(self, group: Group, expected: int | None = None) -> tuple[int, bool]:
        """(version, created): replaces the group, or creates it when there is none (unless an
        expected version was given: then GroupMissing)."""
        return await self._write("put", group.group_id, group, expected)

    async def delete(self, group_id: str, expected: int | None = None) -> int:
        return (await self._write("delete", group_id, None, expected))[0]

    async def _write(
        self, op: str, group_id: str, group: Group | None, expected: int | None
    ) -> tuple[int, bool]:
        k = self.keys
        body = json.dumps(group.to_json(), separators=(",", ":")) if group else ""
        keys = {"groups": k.groups(), "versions": k.group_versions(), "seq": k.group_seq(group_id)}
        args = {
            "op": op,
            "id": group_id,
            "body": body,
            "expected": "" if expected is None else expected,
        }
        reply = results.group_write(await self.scripts.run("group_write", keys, args))
        if reply.code == GroupCode.MISSING:
            raise GroupMissing(group_id)
        if reply.code == GroupCode.EXISTS:
            raise GroupExists(group_id)
        if reply.code == GroupCode.VERSION_MISMATCH:
            raise VersionMismatch(reply.version)
        return reply.version, reply.created

    async def draw(self, group_id: str, key: str = "") -> Draw | None:
        """The group and its next sequence number, in one round trip (None: no such group).
        With an Idempotency-Key whose first request chose a member already: that member, and
        the counter stays where it is."""
        if key:
            return await self._draw_keyed(group_id, key)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.groups(), group_id)
        pipe.incr(self.keys.group_seq(group_id))
        body, seq = await pipe.execute()
        if body is None:
            await self.redis.delete(self.keys.group_seq(group_id))  # not left behind by a typo
            return None
        return Draw(Group.from_json(json.loads(body)), int(seq))

    async def _draw_keyed(self, group_id: str, key: str) -> Draw | None:
        k = self.keys
        keys = {
            "groups": k.groups(),
            "seq": k.group_seq(group_id),
            "idem": k.group_idempotency(group_id, key),
        }
        reply = results.group_draw(await self.scripts.run("group_draw", keys, {"id": group_id}))
        if reply.code == DrawCode.MISSING:
            return None
        group = Group.from_json(json.loads(reply.body))
        return Draw(group, reply.seq, reply.member or None)

    async def remembered(self, group_id: str, key: str, member: str) -> str:
        """The member first chosen for this Idempotency-Key (``member`` if this is the first):
        a repeated request goes to the same member, where its job is found again."""
        k = self.keys.group_idempotency(group_id, key)
        if await self.redis.set(k, member, nx=True, ex=IDEMPOTENCY_TTL_S):
            return member
        return await self.redis.get(k) or member
