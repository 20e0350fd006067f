"""The bot wire protocol (docs/BOTS.md): pure functions, no I/O.

stdin:  one JSON envelope ``{"jobId", "botType", "bot", "payload", "attempt"}`` then EOF.
stdout: newline-delimited JSON events, a closed set: ``{"progress": 0..100}``, ``{"log": "..."}``,
        ``{"result": <any JSON>}``. Any other line (not JSON, not an object, not exactly one known
        key) is a log line, shown as written. A result or progress that is not valid JSON
        (NaN, Infinity, an overflowing number, a lone surrogate) is ``Invalid``: it fails the
        attempt, so no job, SSE event or webhook body can ever carry it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from botsys.jsonsafe import problem_in
from botsys.runners.types import AttemptSpec


@dataclass(frozen=True)
class Progress:
    percent: int  # clamped to 0..100


@dataclass(frozen=True)
class Log:
    text: str


@dataclass(frozen=True)
class Result:
    value: Any


@dataclass(frozen=True)
class Invalid:
    """A result or progress event whose value cannot be written back as valid JSON."""

    error: str


Event = Progress | Log | Result | Invalid

# A line that starts like a result event: used to recognise an oversized result whose line was
# cut at the cap (and so is not valid JSON any more).
_RESULT_PREFIX = re.compile(rb'^\s*\{\s*"result"\s*:')


def encode_envelope(spec: AttemptSpec) -> bytes:
    """The bytes written to a bot's stdin: one JSON object and a newline."""
    envelope = {
        "jobId": spec.job_id,
        "botType": spec.bot_type,
        "bot": spec.bot,
        "payload": spec.payload,
        "attempt": spec.attempt,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def parse_line(line: bytes) -> Event | None:
    """One stdout line (without its newline) → an event; blank lines → None."""
    text = line.rstrip(b"\r\n")
    stripped = text.strip()
    if not stripped:
        return None
    # Only lines that look like an object pay for a JSON parse: a bot flooding plain text
    # costs a byte comparison per line.
    if stripped[:1] == b"{":
        event = _event_from_json(stripped)
        if event is not None:
            return event
    return Log(_decode(text))


def looks_like_result(head: bytes) -> bool:
    """Whether the first bytes of a (cut) line are the start of a result event."""
    return bool(_RESULT_PREFIX.match(head))


def clamp_percent(value: float) -> int:
    return max(0, min(100, round(value)))


def _event_from_json(raw: bytes) -> Event | None:
    try:
        obj = json.loads(raw)  # lenient on purpose: NaN/Infinity are found and named below
    except (ValueError, RecursionError):  # includes UnicodeDecodeError
        return None
    if not isinstance(obj, dict) or len(obj) != 1:
        return None
    ((key, value),) = obj.items()
    if key == "result":
        found = problem_in(value, "result")
        if found is not None:
            return Invalid(
                f"the bot printed a result that is not valid JSON: {found[0]}: {found[1]}"
            )
        return Result(value)
    if key == "progress":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None  # not a number: shown as a log line instead
        if isinstance(value, float) and not math.isfinite(value):
            return Invalid(f"the bot printed a progress that is not a finite number: {value}")
        return Progress(clamp_percent(value))
    if key == "log":
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return Log(_valid_unicode(text))
    return None


def _valid_unicode(text: str) -> str:
    """Lone surrogates (from JSON escapes) replaced: they cannot be stored as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class LineSplitter:
    """Splits a byte stream into lines, never holding more than ``max_line`` bytes.

    ``feed`` returns ``(line, cut)`` pairs: ``cut`` is True when a line was longer than
    ``max_line``; its first ``max_line`` bytes are returned and the rest, up to the next newline,
    is discarded as it arrives. This is what keeps a bot printing 200 MB without a newline from
    growing the server's memory.
    """

    def __init__(self, max_line: int) -> None:
        self._max = max_line
        self._buf = bytearray()
        self._skipping = False  # inside the discarded tail of an over-long line

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            end = len(data) if nl < 0 else nl
            self._take(data, start, end, out)
            if nl < 0:
                break
            if not self._skipping:
                out.append((bytes(self._buf), False))
            self._buf.clear()
            self._skipping = False
            start = nl + 1
        return out

    def flush(self) -> list[tuple[bytes, bool]]:
        """The unterminated last line, at end of stream."""
        line, skipping = bytes(self._buf), self._skipping
        self._buf.clear()
        self._skipping = False
        return [(line, False)] if line and not skipping else []

    def _take(self, data: bytes, start: int, end: int, out: list[tuple[bytes, bool]]) -> None:
        if self._skipping:
            return
        room = self._max - len(self._buf)
        if end - start <= room:
            self._buf += data[start:end]
            return
        self._buf += data[start : start + room]
        out.append((bytes(self._buf), True))
        self._buf.clear()
        self._skipping = True
