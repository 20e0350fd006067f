"""The job model: ids and the Redis hash ↔ public JSON view (its states are
``states.JobState``, its retry schedule ``backoff.backoff_ms``)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import jsonsafe
from .states import JobState

PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 1, 1000, 3

# A job's hash fields that its summary (lists) reads: everything but payload and result.
SUMMARY_FIELDS = (
    *("id", "botType", "bot", "state", "progress", "priority", "attempt", "maxAttempts"),
    *("createdAt", "startedAt", "finishedAt", "runAt", "durationMs", "error", "owner"),
    *("webhookUrl", "deliveryId", "webhookState", "webhookAttempts", "webhookLastStatus"),
    "webhookDeliveredAt",
    "group",
)
ERROR_EXCERPT = 300  # characters of a job's error shown in lists

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_JOB_ID = re.compile(r"^([a-z][a-z0-9_]{0,31})-([0-9A-HJKMNP-TV-Z]{26})$")


# The last id's (ms, random part): ids made in the same millisecond count up from it, so this
# process's ids sort in the order they were made (ULID's monotonic mode), and lists that show
# the newest first by id agree with the order of the requests.
_last = [0, 0]
_RANDOM_MAX = (1 << 80) - 1


def new_job_id(bot_type: str, now_ms: int | None = None) -> str:
    """``<type>-<ULID>``: sortable by creation time, and any replica derives the type from it."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms == _last[0] and _last[1] < _RANDOM_MAX:
        rand = _last[1] + 1
    else:
        rand = int.from_bytes(os.urandom(10), "big")
    _last[:] = (ms, rand)
    value = (ms << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{bot_type}-{''.join(reversed(chars))}"


def bot_type_of(job_id: str) -> str | None:
    """The bot type a job id belongs to, or None if it is not a job id at all."""
    m = _JOB_ID.fullmatch(job_id)
    return m.group(1) if m else None


def iso_ms(ms: str | int | None) -> str | None:
    if ms in (None, ""):
        return None
    dt = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(v: Any, default: int | None = None) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _json(text: str | None) -> Any:
    if text in (None, ""):
        return None
    try:
        return jsonsafe.loads(text)  # one stored by an older version with NaN: served as text
    except ValueError:
        return text


@dataclass(frozen=True)
class Job:
    """A job as stored: the Redis hash's fields (all strings)."""

    fields: dict[str, str]

    @property
    def id(self) -> str:
        return self.fields["id"]

    @property
    def state(self) -> str:
        return self.fields.get("state", "")

    @property
    def bot_type(self) -> str:
        return self.fields.get("botType", "")

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def view(self) -> dict[str, Any]:
        """The public JSON shape of GET /job/{id} (DESIGN §6)."""
        f = self.fields
        return {
            **self._summary(),
            "result": _json(f.get("result")),
            "error": f.get("error") or None,
            "payload": _json(f.get("payload")),
        }

    def summary(self) -> dict[str, Any]:
        """A job in a list (GET /jobs): no payload or result (GET /job/{id} has them) and at
        most ``ERROR_EXCERPT`` characters of the error, so a page's size stays bounded."""
        error = self.fields.get("error") or None
        if error and len(error) > ERROR_EXCERPT:
            error = error[: ERROR_EXCERPT - 1] + "…"
        return {**self._summary(), "error": error}

    def _summary(self) -> dict[str, Any]:
        f = self.fields
        return {
            "jobId": f["id"],
            "botType": f.get("botType"),
            "bot": f.get("bot"),
            "state": f.get("state"),
            "progress": _int(f.get("progress"), 0),
            "priority": _int(f.get("priority")),
            "attempt": _int(f.get("attempt"), 0),
            "maxAttempts": _int(f.get("maxAttempts"), 1),
            "createdAt": iso_ms(f.get("createdAt")),
            "startedAt": iso_ms(f.get("startedAt")),
            "finishedAt": iso_ms(f.get("finishedAt")),
            "runAt": iso_ms(f.get("runAt")) if f.get("state") == JobState.DELAYED else None,
            "durationMs": _int(f.get("durationMs")),
            "replica": f.get("owner") or None,
            "webhook": self._webhook_view(),
            "group": _json(f.get("group")),  # {groupId, rule, member} when routed by a group
        }

    def _webhook_view(self) -> dict[str, Any] | None:
        f = self.fields
        if not f.get("webhookUrl"):
            return None
        return {
            "url": f["webhookUrl"],
            "deliveryId": f.get("deliveryId") or None,
            "state": f.get("webhookState") or "not_scheduled",
            "attempts": _int(f.get("webhookAttempts"), 0),
            "lastStatus": _int(f.get("webhookLastStatus")),
            "deliveredAt": iso_ms(f.get("webhookDeliveredAt")),
        }


@dataclass(frozen=True)
class Claim:
    """A job this replica now holds a lease on."""

    job: Job
    token: str

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def attempt(self) -> int:
        return _int(self.job.get("attempt"), 1) or 1

    @property
    def payload(self) -> Any:
        return _json(self.job.get("payload"))

    @property
    def timeout_s(self) -> float:
        return (_int(self.job.get("timeoutMs"), 0) or 0) / 1000

    @property
    def failures(self) -> int:
        return _int(self.job.get("failures"), 0) or 0

    @property
    def created_ms(self) -> int:
        return _int(self.job.get("createdAt"), 0) or 0

    @property
    def started_ms(self) -> int:
        return _int(self.job.get("startedAt"), 0) or 0
