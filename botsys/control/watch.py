"""Keeps a replica's catalog current: a re-read when the ``types`` channel announces a write
(pub/sub, milliseconds), and a version check every ``poll_s`` in case a message was missed
(a reconnecting subscription, an API-only replica without one): a write is in force on every
replica within a second, without a restart."""

from __future__ import annotations

import asyncio
import logging

from botsys.store.errors import STORE_FAILED
from botsys.waiting import wait_event

from .catalog import TypeCatalog
from .type_store import TypeStore

log = logging.getLogger("botsys.control")

POLL_S = 0.5


class TypeWatcher:
    def __init__(self, catalog: TypeCatalog, store: TypeStore, poll_s: float = POLL_S) -> None:
        self.catalog = catalog
        self.store = store
        self.poll_s = poll_s
        self._poke = asyncio.Event()

    def poke(self, _message: str | None = None) -> None:
        """A notifier handler: a type was written (None: reconnected, maybe missed one)."""
        self._poke.set()

    async def run(self) -> None:
        while True:
            await wait_event(self._poke, self.poll_s)
            self._poke.clear()
            await self.run_once()

    async def run_once(self) -> None:
        try:
            await self.catalog.refresh(self.store)
        except STORE_FAILED as exc:  # the next poll retries
            log.warning("re-reading bot types failed: %s", type(exc).__name__)
