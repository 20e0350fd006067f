"""Run one bot locally and print its events: ``python -m botsys run-bot python/simulate``.

For bot authors: the exact runner the server uses (same sandbox, limits and protocol), with no
Redis and no HTTP. Events are printed as they arrive, then the outcome as one JSON line.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, TextIO

from botsys.config import Settings
from botsys.runners.process import ProcessRunner
from botsys.runners.registry import UnknownBot
from botsys.runners.types import AttemptSpec
from botsys.states import JobState

EXIT_CODES = {JobState.SUCCEEDED: 0, JobState.FAILED: 1, JobState.TIMED_OUT: 124}  # 124: timeout(1)
EXIT_USAGE = 2


class PrintSink:
    """Writes each event as a line: ``[  0.123s] progress 50``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._t0 = time.monotonic()

    def started(self, pid: int) -> None:
        self._line(f"started pid {pid}")

    def progress(self, percent: int) -> None:
        self._line(f"progress {percent}%")

    def log(self, text: str) -> None:
        self._line(f"log {text}")

    def _line(self, text: str) -> None:
        self._out.write(f"[{time.monotonic() - self._t0:8.3f}s] {text}\n")
        self._out.flush()


async def run_local(
    settings: Settings, type_and_bot: str, payload: Any, out: TextIO, timeout_s: float = 0
) -> int:
    """Run ``<type>[/<bot>]`` once; returns 0 succeeded, 1 failed, 124 timed out, 2 bad name."""
    bot_type, _, bot = type_and_bot.partition("/")
    runner = ProcessRunner(settings)
    try:
        ref = runner.registry.resolve(bot_type, bot or None)
    except UnknownBot as exc:
        out.write(f"error: {exc}\n")
        return EXIT_USAGE
    bt = settings.bot_types[ref.bot_type]
    spec = AttemptSpec(
        job_id=f"local-{uuid.uuid4().hex[:12]}",
        bot_type=ref.bot_type,
        bot=ref.name,
        payload=payload,
        attempt=1,
        timeout_s=timeout_s or bt.timeout_s,
    )
    try:
        outcome = await runner.run(spec, PrintSink(out))
    finally:
        await runner.aclose()  # a fork-mode type's zygote
    summary = {
        "status": outcome.status,
        "result": outcome.result,
        "error": outcome.error,
        "exitCode": outcome.exit_code,
        "logTruncated": outcome.log_truncated,
    }
    out.write(json.dumps(summary, ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_CODES[outcome.status]
