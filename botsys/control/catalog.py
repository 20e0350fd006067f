"""The bot types that exist now, on this replica: configuration's seeds with the runtime
records laid over them.

``live`` is the mapping every component reads as ``settings.bot_types`` (app.py puts it
there): when the catalog applies a change it holds the new effective settings at once, so the
API accepts jobs for a new type, the registry resolves its bots and the runner finds its
command without a restart. Listeners (the orchestrator) hear which types came and went.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from botsys.config import BotTypeSettings

from .type_store import Record, TypeStore
from .types import TypeDef, from_record, from_settings

log = logging.getLogger("botsys.control")


class LiveTypes(Mapping[str, BotTypeSettings]):
    """A read-only mapping whose contents the catalog replaces (one assignment: atomic)."""

    def __init__(self, types: Mapping[str, BotTypeSettings]) -> None:
        self._types = dict(types)

    def __getitem__(self, name: str) -> BotTypeSettings:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def replace(self, types: dict[str, BotTypeSettings]) -> None:
        self._types = types


@dataclass(frozen=True)
class Entry:
    definition: TypeDef
    source: str  # config | runtime | override
    version: int

    def view(self) -> dict:
        return self.definition.view(self.source, self.version)


@dataclass(frozen=True)
class Change:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


Listener = Callable[[Change], None]


class TypeCatalog:
    """``names()`` and ``get(name)`` are what other components (groups, the dashboard) use."""

    def __init__(self, configured: Mapping[str, BotTypeSettings]) -> None:
        self.runtimes: dict[str, BotTypeSettings] = dict(configured)  # also the seeds
        self.live = LiveTypes(self.runtimes)
        self.version = 0
        self._entries = {n: Entry(from_settings(bt), "config", 0) for n, bt in configured.items()}
        self._listeners: list[Listener] = []

    def names(self) -> list[str]:
        """The configured types in the file's order, then the runtime-created ones by name."""
        return list(self._entries)

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def seed(self, name: str) -> TypeDef | None:
        """A configured type's file values (what reset returns it to)."""
        bt = self.runtimes.get(name)
        return from_settings(bt) if bt is not None else None

    async def refresh(self, store: TypeStore, *, force: bool = False) -> Change:
        """Re-read the records if the catalog's version moved; apply and announce the change."""
        if not force and await store.version() == self.version:
            return Change()
        version, records = await store.read_all(list(self.runtimes))
        return self.apply(version, records)

    def apply(self, version: int, records: Mapping[str, Record]) -> Change:
        entries = self._entries_from(records)
        before = self._entries
        change = Change(
            added=sorted(set(entries) - set(before)),
            removed=sorted(set(before) - set(entries)),
            changed=sorted(
                n for n in set(entries) & set(before) if entries[n].version != before[n].version
            ),
        )
        self._entries = entries
        self.version = version  # (lower after Redis lost the records: then it counts anew)
        self.live.replace({n: self._effective(e) for n, e in entries.items()})
        if change:
            log.info(
                "bot types: added %s, removed %s, changed %s",
                change.added or "-",
                change.removed or "-",
                change.changed or "-",
            )
            for listener in self._listeners:
                listener(change)
        return change

    def _entries_from(self, records: Mapping[str, Record]) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        for name in [*self.runtimes, *sorted(set(records) - set(self.runtimes))]:
            record = records.get(name)
            configured = name in self.runtimes
            if record is None:
                if configured:
                    entries[name] = Entry(from_settings(self.runtimes[name]), "config", 0)
                continue
            if record.definition is None:
                continue  # a tombstone: the configured type was deleted
            try:
                definition = from_record(record.definition)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("bot type %s: unreadable record skipped (%s)", name, exc)
                continue
            if definition.runtime not in self.runtimes:
                log.error(
                    "bot type %s: runtime %s is not configured here", name, definition.runtime
                )
                continue
            entries[name] = Entry(
                definition, "override" if configured else "runtime", record.version
            )
        return entries

    def _effective(self, entry: Entry) -> BotTypeSettings:
        d = entry.definition
        if entry.source == "config":
            return self.runtimes[d.name]
        return d.settings(self.runtimes[d.runtime])
