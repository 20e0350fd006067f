"""Which bots exist: ``<bots_dir>/<type>/<name><extension>`` for each configured bot type.

A bot name from a request is only ever looked up in a directory listing, never joined into a
path, and must be a plain identifier: no traversal is possible. Listings are cached per type and
re-read when the folder's mtime changes (one stat per lookup), and on any miss, so bots added or
removed on disk show up without a restart.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botsys.config import BotTypeSettings, Settings
from botsys.runners.bot_docs import bot_doc
from botsys.runners.bundled import bundled_bots

BOT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # fullmatch: `$` would pass 'x\n'


class UnknownBot(ValueError):
    """An unknown bot type or bot; ``field`` is the request field to blame ('botType' or 'bot')."""

    def __init__(self, message: str, *, field: str, available: list[str]) -> None:
        super().__init__(message)
        self.field = field
        self.available = available


@dataclass(frozen=True)
class BotRef:
    bot_type: str
    name: str
    path: Path


@dataclass
class _Listing:
    mtime_ns: int
    bots: dict[str, Path]
    folder: str = ""
    allowed: tuple[str, ...] = ()


def bots_root(settings: Settings) -> Path:
    """Where bots live: ``runner.bots_dir`` "" (the default) is the folder of bots bundled with
    the package (or their copy the bot user can read: runners/bundled.py); a relative one is
    taken from the working directory, or, if it does not exist there, from the folder of the
    config file that was loaded."""
    if not settings.runner.bots_dir:
        return bundled_bots(settings)
    path = Path(settings.runner.bots_dir).expanduser()
    if path.is_absolute():
        return path
    source = Path(settings.source)
    if not path.is_dir() and source.is_file():
        return (source.parent / path).resolve()
    return path.resolve()


class BotRegistry:
    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self._types = settings.bot_types
        self.root = root or bots_root(settings)
        self._listings: dict[str, _Listing] = {}
        self._folders: dict[str, str] = {}

    def types(self) -> list[str]:
        return sorted(self._types)

    def bots(self, bot_type: str) -> list[str]:
        return sorted(self._listing(self._bot_type(bot_type)).bots)

    def resolve(self, bot_type: str, bot: str | None = None) -> BotRef:
        """The bot to run; ``bot`` None or "" means the type's default bot."""
        bt = self._bot_type(bot_type)
        name = bot or bt.default_bot
        if not isinstance(name, str) or not BOT_NAME.fullmatch(name):
            raise self._unknown_bot(bt, f"invalid bot name {_shown(name)}")
        path = self._listing(bt).bots.get(name)
        if path is None:
            path = self._listing(bt, force=True).bots.get(name)  # just added? look again
        if path is None:
            raise self._unknown_bot(bt, f"unknown bot {_shown(name)} for type {bt.name}")
        return BotRef(bt.name, name, path)

    def describe(self) -> list[dict[str, Any]]:
        """GET /bots: every type with its bots and limits (JSON-able)."""
        return [
            {
                "botType": bt.name,
                "bots": self.bots(bt.name),
                "defaultBot": bt.default_bot,
                "limit": bt.limit,
                "timeoutS": bt.timeout_s,
                "maxTimeoutS": bt.max_timeout_s,
                "maxAttempts": bt.max_attempts,
                "extension": bt.extension,
                "docs": self.docs(bt.name),
            }
            for bt in (self._types[name] for name in self.types())
        ]

    def docs(self, bot_type: str) -> dict[str, dict[str, str]]:
        """Each bot's summary and expected payload, from the header of its file."""
        listing = self._listing(self._bot_type(bot_type)).bots
        return {name: bot_doc(path) for name, path in sorted(listing.items())}

    def _bot_type(self, bot_type: str) -> BotTypeSettings:
        bt = self._types.get(bot_type) if isinstance(bot_type, str) else None
        if bt is None:
            available = self.types()
            raise UnknownBot(
                f"unknown bot type {_shown(bot_type)}; available: {', '.join(available)}",
                field="botType",
                available=available,
            )
        return bt

    def _unknown_bot(self, bt: BotTypeSettings, what: str) -> UnknownBot:
        available = self.bots(bt.name)
        listed = ", ".join(available) or "(none)"
        return UnknownBot(f"{what}; available: {listed}", field="bot", available=available)

    def _listing(self, bt: BotTypeSettings, force: bool = False) -> _Listing:
        # os.stat on a plain string: this runs twice per job (API check, runner), and
        # pathlib's join and stat wrappers cost ~5 % of a POST /invoke (bench/api.py).
        # A type made at runtime takes its runtime's folder, or one of its own (control/).
        where = bt.bots_dir or bt.runtime or bt.name
        folder = self._folders.get(where) or self._folders.setdefault(
            where, os.fspath(self.root / where)
        )
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            mtime = -1
        cached = self._listings.get(bt.name)
        if cached is None or force or cached.mtime_ns != mtime or cached.folder != folder:
            found = _scan(Path(folder), bt.extension)
            if bt.bots:  # an allow-list: only those of its folder's bots
                found = {n: p for n, p in found.items() if n in bt.bots}
            cached = _Listing(mtime, found, folder, tuple(bt.bots))
            self._listings[bt.name] = cached
        elif cached.allowed != tuple(bt.bots):
            return self._listing(bt, force=True)
        return cached


def _scan(folder: Path, extension: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        name = entry.name[: -len(extension)]
        if entry.name.endswith(extension) and BOT_NAME.fullmatch(name) and entry.is_file():
            found[name] = Path(entry.path).resolve()
    return found


def _shown(value: object) -> str:
    """A user-supplied name, quoted and shortened for an error message."""
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "...'"
