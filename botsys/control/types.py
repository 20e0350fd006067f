"""A bot type as the control plane sees it: its definition, validation and JSON view.

A type runs on a *runtime* — one of the types in configuration (python, node, java, or a
custom one), whose command, extension and sandbox it inherits — and may narrow the bots it
serves to an allow-list or take them from a folder of its own. Configured types are the seeds;
a runtime write overrides one, a reset returns it to the file's values. Pure: no Redis here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botsys.config import BotTypeSettings
from botsys.runners.registry import BOT_NAME

from .errors import FieldInvalid

TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # fullmatch; as config.py: job ids embed it
LIMIT_MAX = 100_000
CADENCE_MAX = 100_000
INTERVAL_S = (0.001, 86_400.0)
PRIORITY = (1, 1000)
RETRIES_MAX = 9  # retryAttempts: attempts after the first (engine max_attempts is 1..10)
TIMEOUT_MS_MIN = 100
DESCRIPTION_MAX = 500
ALLOW_LIST_MAX = 500
MODES = ("queue", "reject")
SOURCES = ("config", "runtime", "override")
READ_ONLY = ("source", "version")  # in a body: ignored, so GET → edit → PUT round-trips


class TypeInvalid(FieldInvalid):
    """A bot type definition refused (``cadence.max``)."""


@dataclass(frozen=True)
class Cadence:
    max: int
    interval_s: float
    mode: str = "queue"

    def view(self) -> dict[str, Any]:
        return {"max": self.max, "intervalS": self.interval_s, "mode": self.mode}


@dataclass(frozen=True)
class TypeDef:
    """A type's definition (what the API writes; ``source`` and ``version`` are derived)."""

    name: str
    runtime: str
    bots: tuple[str, ...] | None = None
    bots_dir: str | None = None
    limit: int = 5
    cadence: Cadence | None = None
    default_priority: int = 3
    retry_attempts: int = 0
    timeout_ms: int = 300_000
    description: str = ""

    def body(self) -> dict[str, Any]:
        """The definition as the API (and the Redis record) spells it."""
        return {
            "name": self.name,
            "runtime": self.runtime,
            "bots": list(self.bots) if self.bots is not None else None,
            "botsDir": self.bots_dir,
            "limit": self.limit,
            "cadence": self.cadence.view() if self.cadence else None,
            "defaultPriority": self.default_priority,
            "retryAttempts": self.retry_attempts,
            "timeoutMs": self.timeout_ms,
            "description": self.description,
        }

    def view(self, source: str, version: int) -> dict[str, Any]:
        return {**self.body(), "source": source, "version": version}

    def settings(self, runtime: BotTypeSettings) -> BotTypeSettings:
        """The effective settings: the runtime's command and sandbox with this type's values."""
        cadence = self.cadence or Cadence(0, 1.0)
        return dataclasses.replace(
            runtime,
            name=self.name,
            runtime="" if runtime.name == self.name else runtime.name,
            default_bot=runtime.default_bot
            if not self.bots or runtime.default_bot in self.bots
            else self.bots[0],
            bots=list(self.bots or ()),
            bots_dir=self.bots_dir or "",
            limit=self.limit,
            timeout_s=self.timeout_ms / 1000,
            max_attempts=self.retry_attempts + 1,
            cadence_max=cadence.max,
            cadence_interval_s=cadence.interval_s,
            cadence_mode=cadence.mode,
            default_priority=self.default_priority,
            description=self.description,
        )


def from_settings(bt: BotTypeSettings) -> TypeDef:
    """A configured type's seed definition (its file values)."""
    cadence = (
        Cadence(bt.cadence_max, bt.cadence_interval_s, bt.cadence_mode) if bt.cadence_max else None
    )
    return TypeDef(
        name=bt.name,
        runtime=bt.runtime or bt.name,
        bots=tuple(bt.bots) if bt.bots else None,
        bots_dir=bt.bots_dir or None,
        limit=bt.limit,
        cadence=cadence,
        default_priority=bt.default_priority,
        retry_attempts=bt.max_attempts - 1,
        timeout_ms=round(bt.timeout_s * 1000),
        description=bt.description,
    )


def validate(
    body: Any, name: str, runtimes: Mapping[str, BotTypeSettings], base: TypeDef | None = None
) -> TypeDef:
    """A definition from a request body. ``base`` None: a whole definition (POST, PUT: missing
    fields take the runtime's configured values); else the fields of ``body`` change ``base``
    (PATCH). Raises TypeInvalid naming the first bad field."""
    if not isinstance(body, Mapping):
        raise TypeInvalid("body", "must be a JSON object")
    unknown = sorted(set(body) - set(_FIELDS) - set(READ_ONLY) - {"name"})
    if unknown:
        raise TypeInvalid(unknown[0], f"unknown field; allowed: {', '.join(_FIELDS)}")
    if "name" in body and body["name"] != name:
        raise TypeInvalid("name", f"must be {name!r} (the type in the URL) or left out")
    if base is None:
        runtime = _runtime(body.get("runtime"), runtimes)
        start = from_settings(dataclasses.replace(runtimes[runtime], name=name, runtime=runtime))
        start = dataclasses.replace(
            start, bots=None, bots_dir=None, cadence=None, description="", runtime=runtime
        )
    else:
        runtime = _runtime(body.get("runtime", base.runtime), runtimes)
        start = dataclasses.replace(base, runtime=runtime)
    changes = {attr: check(body[key]) for key, (attr, check) in _FIELDS.items() if key in body}
    changes.pop("runtime", None)
    typedef = dataclasses.replace(start, **changes)
    max_ms = round(runtimes[runtime].max_timeout_s * 1000)
    if typedef.timeout_ms > max_ms:
        raise TypeInvalid("timeoutMs", f"at most {max_ms} (runtime {runtime}'s max_timeout_s)")
    return typedef


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
        raise TypeInvalid("name", "a lowercase identifier: a-z first, then a-z, 0-9, _ (≤ 32)")
    return name


def _runtime(value: Any, runtimes: Mapping[str, BotTypeSettings]) -> str:
    if value is None:
        raise TypeInvalid("runtime", f"required: one of {', '.join(sorted(runtimes))}")
    if not isinstance(value, str) or value not in runtimes:
        shown = repr(value)[:70]
        raise TypeInvalid(
            "runtime", f"unknown runtime {shown}; configured: {', '.join(sorted(runtimes))}"
        )
    return value


def _int(field: str, lo: int, hi: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeInvalid(field, "must be a whole number")
        if not lo <= value <= hi:
            raise TypeInvalid(field, f"must be between {lo} and {hi}")
        return value

    return check


def _bots(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= ALLOW_LIST_MAX:
        raise TypeInvalid("bots", f"null (every bot) or a list of 1 to {ALLOW_LIST_MAX} names")
    for item in value:
        if not isinstance(item, str) or not BOT_NAME.fullmatch(item):
            raise TypeInvalid("bots", f"{repr(item)[:70]} is not a bot name (A-Z a-z 0-9 _)")
    if len(set(value)) != len(value):
        raise TypeInvalid("bots", "names must be unique")
    return tuple(value)


def _bots_dir(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 1024 or "\x00" in value:
        raise TypeInvalid("botsDir", "null (the runtime's folder) or an absolute folder path")
    path = Path(value)
    if not path.is_absolute():
        raise TypeInvalid("botsDir", "must be an absolute path")
    if not path.is_dir():
        raise TypeInvalid("botsDir", f"{value[:200]!r} is not a folder on this replica")
    return value


def _cadence(value: Any) -> Cadence | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeInvalid("cadence", "null (no cadence) or {max, intervalS, mode}")
    unknown = sorted(set(value) - {"max", "intervalS", "mode"})
    if unknown:
        raise TypeInvalid(f"cadence.{unknown[0]}", "unknown field; allowed: max, intervalS, mode")
    for key in ("max", "intervalS"):
        if key not in value:
            raise TypeInvalid(f"cadence.{key}", "required")
    most = _int("cadence.max", 1, CADENCE_MAX)(value["max"])
    interval = value["intervalS"]
    lo, hi = INTERVAL_S
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise TypeInvalid("cadence.intervalS", "must be a number of seconds")
    if not math.isfinite(interval) or not lo <= interval <= hi:
        raise TypeInvalid("cadence.intervalS", f"must be between {lo} and {hi:g} seconds")
    mode = value.get("mode", "queue")
    if mode not in MODES:
        raise TypeInvalid("cadence.mode", f"one of {', '.join(MODES)}")
    return Cadence(most, float(interval), mode)


def _description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
        raise TypeInvalid("description", f"a string of at most {DESCRIPTION_MAX} characters")
    return value


def _runtime_passthrough(value: Any) -> Any:
    return value  # checked (and applied) before the other fields: it picks the defaults


# body field → (TypeDef attribute, checker)
_FIELDS = {
    "runtime": ("runtime", _runtime_passthrough),
    "bots": ("bots", _bots),
    "botsDir": ("bots_dir", _bots_dir),
    "limit": ("limit", _int("limit", 0, LIMIT_MAX)),
    "cadence": ("cadence", _cadence),
    "defaultPriority": ("default_priority", _int("defaultPriority", *PRIORITY)),
    "retryAttempts": ("retry_attempts", _int("retryAttempts", 0, RETRIES_MAX)),
    "timeoutMs": ("timeout_ms", _int("timeoutMs", TIMEOUT_MS_MIN, 7 * 86_400_000)),
    "description": ("description", _description),
}


def from_record(record: Mapping[str, Any]) -> TypeDef:
    """A definition stored by type_store (written by ``body()``; trusted)."""
    cadence = record.get("cadence")
    return TypeDef(
        name=record["name"],
        runtime=record["runtime"],
        bots=tuple(record["bots"]) if record.get("bots") is not None else None,
        bots_dir=record.get("botsDir"),
        limit=int(record["limit"]),
        cadence=Cadence(int(cadence["max"]), float(cadence["intervalS"]), cadence["mode"])
        if cadence
        else None,
        default_priority=int(record["defaultPriority"]),
        retry_attempts=int(record["retryAttempts"]),
        timeout_ms=int(record["timeoutMs"]),
        description=record.get("description", ""),
    )
