"""The contract between the orchestrator and a runner.

A runner is any object with ``async run(spec, sink) -> AttemptOutcome``. The orchestrator stops
an attempt (cancel, lease lost, drain) by cancelling the task awaiting ``run``: the runner then
kills the bot's process group (SIGTERM, grace, SIGKILL), reaps it, and re-raises
``asyncio.CancelledError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from botsys.states import JobState

OutcomeStatus = Literal[JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT]


@dataclass(frozen=True)
class AttemptSpec:
    job_id: str
    bot_type: str
    bot: str
    payload: Any
    attempt: int  # 1-based
    timeout_s: float  # wall clock for this attempt


@dataclass(frozen=True)
class AttemptOutcome:
    status: OutcomeStatus
    result: Any = None
    error: str | None = None  # for failures: a short reason plus the tail of stderr
    exit_code: int | None = None  # negative: killed by that signal
    log_truncated: bool = False


class EventSink(Protocol):
    """Receives a running bot's events. Calls must not block: implementations buffer."""

    def started(self, pid: int) -> None: ...

    def progress(self, percent: int) -> None: ...

    def log(self, text: str) -> None: ...


class Runner(Protocol):
    async def run(self, spec: AttemptSpec, sink: EventSink) -> AttemptOutcome: ...
