"""Fixtures for the runner tests: settings over a temporary bots folder, a recording sink."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from botsys.config import Settings, load_settings
from botsys.runners.process import ProcessRunner
from botsys.runners.types import AttemptOutcome, AttemptSpec
from botsys.runners.zygote import kill_all_zygotes
from tests.support.procs import pid_alive, stat_fields

try:
    import uvloop
except ImportError:  # optional: the server uses it when installed
    uvloop = None

REPO = Path(__file__).resolve().parents[2]
BUNDLED_BOTS = REPO / "botsys" / "bots"

# A bot type that exists only in settings: the tests' hostile shell bots use it.
BASH_TYPE = {"command": ["bash", "{script}"], "extension": ".sh", "default_bot": "hello"}


def pytest_asyncio_loop_factories(config, item):
    """Runner tests run on asyncio's loop; the hostile-bot tests also on uvloop, which
    ``botsys serve`` installs (its subprocess transports differ from asyncio's)."""
    factories = {"asyncio": asyncio.new_event_loop}
    module = getattr(getattr(item, "module", None), "__name__", "")
    if uvloop is not None and module.endswith("test_hostile"):
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@dataclass
class RecordingSink:
    """Records every event; ``started_event`` lets a test await the spawn instead of sleeping."""

    pids: list[int] = field(default_factory=list)
    progress_values: list[int] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    started_event: asyncio.Event = field(default_factory=asyncio.Event)
    _logged: asyncio.Event = field(default_factory=asyncio.Event)

    def started(self, pid: int) -> None:
        self.pids.append(pid)
        self.started_event.set()

    def progress(self, percent: int) -> None:
        self.progress_values.append(percent)

    def log(self, text: str) -> None:
        self.logs.append(text)
        self._logged.set()

    async def wait_for_log(self, needle: str) -> str:
        """The first log line containing ``needle``, awaiting it if it has not come yet."""
        while True:
            for line in self.logs:
                if needle in line:
                    return line
            self._logged.clear()
            await self._logged.wait()

    @property
    def log_bytes(self) -> int:
        return sum(len(t.encode()) for t in self.logs)


# How python bots start in make_settings' settings; the ``start_mode`` fixture sets it, other
# tests run under the default (defaults.toml: fork).
START_MODES = ("spawn", "fork")
_start: dict[str, str | None] = {"mode": None}


@pytest.fixture(params=START_MODES)
def start_mode(request):
    """Runs a test once per start mode of python bots (``start = "spawn"`` / ``"fork"``);
    whatever zygotes it started are killed after it."""
    _start["mode"] = request.param
    yield request.param
    _start["mode"] = None
    kill_all_zygotes()


@pytest.fixture(autouse=True)
def _no_zygote_left():
    """Python bots fork from a zygote by default: kill whatever zygotes a test started."""
    yield
    kill_all_zygotes()


def pytest_collection_modifyitems(items):
    """A start mode only changes python bots: other types run in the spawn case only."""
    kept = [item for item in items if not _fork_of_another_type(item)]
    items[:] = kept


def _fork_of_another_type(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    bot_type = params.get("bot_type")
    return params.get("start_mode") == "fork" and bot_type is not None and bot_type != "python"


def make_settings(bots_dir: Path, cache_dir: Path, **overrides: Any) -> Settings:
    """The built-in defaults (real limits), a test bots folder, short timings."""
    base = {
        "runner.bots_dir": str(bots_dir),
        "runner.cache_dir": str(cache_dir),
        "runner.kill_grace_s": 0.5,
        # As the test's own user even as root: the bots live in pytest's private tmp folders.
        # The default (botsys-bot when root) is tested in test_containment.py.
        "runner.bot_user": "",
    }
    if _start["mode"] is not None:
        base["bot_types.python.start"] = _start["mode"]
    for key, value in BASH_TYPE.items():
        base[f"bot_types.bash.{key}"] = value
    return load_settings(environ={}, overrides={**base, **overrides})


def write_bot(bots_dir: Path, bot_type: str, name: str, source: str) -> Path:
    ext = {"python": ".py", "node": ".js", "java": ".java", "bash": ".sh", "sh": ".sh"}[bot_type]
    path = bots_dir / bot_type / f"{name}{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


@pytest.fixture(scope="session")
def java_cache(tmp_path_factory) -> Path:
    """One compile cache for the session: java bots compile once across tests."""
    path = tmp_path_factory.mktemp("java-cache")
    path.chmod(0o755)
    return path


@pytest.fixture
def bots_dir(tmp_path) -> Path:
    path = tmp_path / "bots"
    path.mkdir()
    return path


@pytest.fixture
def settings(bots_dir, java_cache) -> Settings:
    return make_settings(bots_dir, java_cache)


@pytest.fixture
def runner(settings) -> ProcessRunner:
    return ProcessRunner(settings)


def spec(bot_type: str, bot: str, payload: Any = None, timeout_s: float = 20.0) -> AttemptSpec:
    return AttemptSpec(
        job_id="job-1", bot_type=bot_type, bot=bot, payload=payload, attempt=1, timeout_s=timeout_s
    )


async def run_bot(
    runner: ProcessRunner, bot_type: str, bot: str, payload: Any = None, timeout_s: float = 20.0
) -> tuple[AttemptOutcome, RecordingSink, float]:
    sink = RecordingSink()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    outcome = await runner.run(spec(bot_type, bot, payload, timeout_s), sink)
    return outcome, sink, loop.time() - t0


alive = pid_alive  # a zombie has already been killed


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        fields = stat_fields(entry) if entry.isdigit() else None
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def token():
    """The escape probe's ``sleep`` argument; what a failed test left behind is killed after."""
    from tests.faults.containment import daemons

    value = f"300.{secrets.randbelow(10**9)}"
    yield value
    for pid in daemons(value):
        os.kill(pid, signal.SIGKILL)
