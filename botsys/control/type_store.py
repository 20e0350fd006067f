"""Bot type definitions in Redis.

Each type's runtime definition is one JSON record under its own hash tag (``{T}:type``),
written by a compare-and-set script (type_write.lua) that also puts its limit in force in
``{T}:meta``. A record is a definition (``{"def": {...}, "version": n}``) or a tombstone
(``{"deleted": true, "version": n}``: a configured type deleted at runtime). Beside them, under
``{types}``: a counter every write bumps (the catalog's version, and each record's) and an index
of every name ever written, so a replica reads the whole catalog in two round trips, and learns
it changed from one GET (or from the ``types`` channel, published after each write).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botsys.queue import JobQueue
from botsys.store import results
from botsys.store.connection import Store
from botsys.store.results import WriteCode


class VersionConflict(Exception):
    """The type changed since the caller read it (its stored version is ``current``)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the type changed meanwhile (version {current})")
        self.current = current


@dataclass(frozen=True)
class Record:
    version: int
    definition: dict[str, Any] | None  # None: a tombstone


class TypeStore:
    """``store``: app[STORE]; ``queue`` runs type_write.lua in the type's script context (its
    wake channel, for the limit it puts in force)."""

    def __init__(self, store: Store, queue: JobQueue) -> None:
        self.queue = queue
        self.redis, self.keys = store.redis, store.keys

    async def version(self) -> int:
        return int(await self.redis.get(self.keys.types_version()) or 0)

    async def read_all(self, names: list[str]) -> tuple[int, dict[str, Record]]:
        """(catalog version, the stored record of each of ``names`` and of every indexed name)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(k.types_version())
        pipe.hkeys(k.types_index())
        version, indexed = await pipe.execute()
        every = sorted(set(names) | set(indexed))
        pipe = self.redis.pipeline(transaction=False)
        for name in every:
            pipe.get(k.type_def(name))
        raw = await pipe.execute()
        records = {n: _record(text) for n, text in zip(every, raw, strict=True) if text}
        return int(version or 0), records

    async def read(self, name: str) -> Record | None:
        text = await self.redis.get(self.keys.type_def(name))
        return _record(text) if text else None

    async def write(
        self,
        name: str,
        definition: dict[str, Any] | None,
        *,
        expect: int | None,
        limit: int | None = None,
        remove: bool = False,
        deleted: bool | None = None,
    ) -> int:
        """Store a definition (None: a tombstone; ``remove``: no record at all) if the stored
        version is still ``expect`` (None: whatever it is); put ``limit`` in force. ``deleted``
        (default: for a tombstone) makes enqueue.lua refuse the type's jobs from now on, even
        from a replica that has not heard of the deletion yet. Returns the new version (for
        ``remove``: the catalog's). Raises VersionConflict."""
        if deleted is None:
            deleted = definition is None and not remove
        k = self.keys
        version = int(await self.redis.incr(k.types_version()))
        if remove:
            text = ""
        elif definition is None:
            text = json.dumps({"deleted": True, "version": version})
        else:
            text = json.dumps({"def": definition, "version": version})
        reply = results.type_write(
            await self.queue.run_script(
                "type_write",
                name,
                expect="" if expect is None else expect,
                record=text,
                limit="" if limit is None else limit,
                deleted="1" if deleted else "0",
            )
        )
        if reply.code == WriteCode.CONFLICT:
            raise VersionConflict(reply.version)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(k.types_index(), name, version)  # never removed: names are few
        # Bumped again once everything is written: a replica that read the catalog between the
        # first bump and the record's write sees the version move again, and re-reads.
        pipe.incr(k.types_version())
        pipe.publish(k.types_channel(), name)
        await pipe.execute()
        return version

    async def backlog(self, name: str) -> tuple[list[str], int]:
        """(ids of the type's waiting and delayed jobs, how many of its jobs run)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(k.queue(name), 0, -1)
        pipe.zrange(k.delayed(name), 0, -1)
        pipe.zcard(k.active(name))
        waiting, delayed, running = await pipe.execute()
        return [*waiting, *delayed], int(running)

    async def running(self, name: str) -> list[str]:
        return await self.redis.zrange(self.keys.active(name), 0, -1)


def _record(text: str) -> Record:
    data = json.loads(text)
    return Record(int(data["version"]), None if data.get("deleted") else data["def"])
