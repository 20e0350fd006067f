"""Turns a bot's stdout and stderr bytes into sink calls, within fixed memory.

Everything here is synchronous and bounded: the supervisor feeds it chunks as they arrive, so a
bot can never make the server buffer more than ``result_cap`` (one pending stdout line) plus a
few KiB, however much it prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botsys.runners.protocol import (
    Invalid,
    LineSplitter,
    Log,
    Progress,
    Result,
    looks_like_result,
)
from botsys.runners.protocol import parse_line as parse_event
from botsys.runners.types import EventSink

log = logging.getLogger(__name__)

TRUNCATED_MARKER = "[output truncated]"
STDERR_TAIL_BYTES = 4096
STDERR_MAX_LINE = 16384
# Room for the '{"result": ' wrapper around a result of exactly result_cap bytes.
RESULT_LINE_SLACK = 64


class OutputCollector:
    """The bot-facing half of an attempt: events to ``sink``, the result and stderr tail kept."""

    def __init__(self, sink: EventSink, *, log_cap: int, result_cap: int) -> None:
        self._sink = sink
        self._log_left = log_cap
        self._result_cap = result_cap
        self._stdout = LineSplitter(result_cap + RESULT_LINE_SLACK)
        self._stderr = LineSplitter(STDERR_MAX_LINE)
        self._tail = bytearray()
        self._last_progress: int | None = None
        self._sink_failed = False
        self.result: Any = None
        self.result_error: str | None = None
        self.log_truncated = False

    # -- fed by the supervisor ------------------------------------------------------------------

    def started(self, pid: int) -> None:
        self._call(self._sink.started, pid)

    def stdout(self, data: bytes) -> None:
        for line, cut in self._stdout.feed(data):
            self._stdout_line(line, cut)

    def stderr(self, data: bytes) -> None:
        self._tail += data
        del self._tail[:-STDERR_TAIL_BYTES]
        for line, _cut in self._stderr.feed(data):
            self._log_bytes(line)

    def finish(self) -> None:
        """End of both streams: handle unterminated last lines."""
        for line, cut in self._stdout.flush():
            self._stdout_line(line, cut)
        for line, _cut in self._stderr.flush():
            self._log_bytes(line)

    # -- read by the runner ---------------------------------------------------------------------

    def stderr_tail(self) -> str:
        text = self._tail.decode("utf-8", "replace").strip()
        return ("…" + text) if len(self._tail) >= STDERR_TAIL_BYTES else text

    # -- internals ------------------------------------------------------------------------------

    def _stdout_line(self, line: bytes, cut: bool) -> None:
        if self.log_truncated and line.lstrip()[:1] != b"{":
            return  # draining a flood: only events can still matter
        if cut:
            if looks_like_result(line):
                self._result_too_big(f"more than {len(line)}")
            else:
                self._log_bytes(line)
            return
        event = parse_event(line)
        if isinstance(event, Result):
            if len(line) > self._result_cap + RESULT_LINE_SLACK // 2:
                self._result_too_big(str(len(line)))
            else:
                self.result = event.value
        elif isinstance(event, Progress):
            if event.percent != self._last_progress:
                self._last_progress = event.percent
                self._call(self._sink.progress, event.percent)
        elif isinstance(event, Log):
            self._log_text(event.text)
        elif isinstance(event, Invalid):
            self.result = None
            self.result_error = self.result_error or event.error  # the first one is the cause

    def _result_too_big(self, size: str) -> None:
        self.result = None
        self.result_error = (
            f"result too large: {size} bytes; the cap is runner.result_cap_kb = "
            f"{self._result_cap // 1024} KiB"
        )

    def _log_bytes(self, line: bytes) -> None:
        if self.log_truncated:
            return  # draining: discard without decoding
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        if text.strip():
            self._log_text(text)

    def _log_text(self, text: str) -> None:
        if self.log_truncated:
            return
        size = len(text.encode("utf-8", "replace"))
        if size <= self._log_left:
            self._log_left -= size
            self._call(self._sink.log, text)
            return
        head = text.encode("utf-8", "replace")[: self._log_left].decode("utf-8", "ignore")
        if head:
            self._call(self._sink.log, head)
        self._call(self._sink.log, TRUNCATED_MARKER)
        self._log_left = 0
        self.log_truncated = True

    def _call(self, method: Callable[[Any], None], arg: Any) -> None:
        """One sink call; a failing sink loses that event, never the attempt's result."""
        try:
            method(arg)
        except Exception:
            if not self._sink_failed:
                self._sink_failed = True
                log.exception("event sink failed; the bot keeps running (later errors not shown)")
