"""start = "fork": what only a zygote can get wrong (the shared suites run in both modes)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from botsys.config import ConfigError
from botsys.runners.process import ProcessRunner
from botsys.runners.zygote import kill_all_zygotes
from tests.support.procs import SPARE, children_of, comm
from tests.support.timing import MARGIN_S

from . import conftest
from .conftest import RecordingSink, alive, group_members, make_settings, run_bot, spec, write_bot

pytestmark = pytest.mark.usefixtures("fork_mode")

LEAKY = """
import json, sys
seen = getattr(json, "botsys_mark", None)  # json is preloaded in the zygote
planted = "botsys_planted" in sys.modules
json.botsys_mark = "set by an earlier job"
sys.modules["botsys_planted"] = json
print(json.dumps({"result": {"seen": seen, "planted": planted}}))
"""

WHO = """
import json, sys
payload = json.load(sys.stdin)["payload"]
print(json.dumps({"result": {"name": __name__, "argv": sys.argv, "payload": payload,
                             "file": __file__, "path0": sys.path[0]}}))
"""

SLEEPER = 'import time\nprint("ready", flush=True)\ntime.sleep(300)\n'


@pytest.fixture
def fork_mode(monkeypatch):
    monkeypatch.setitem(conftest._start, "mode", "fork")
    yield
    kill_all_zygotes()


@pytest.fixture
async def runner(settings):
    runner = ProcessRunner(settings)
    yield runner
    await runner.aclose()


async def test_module_state_set_by_one_job_is_not_seen_by_the_next(runner, bots_dir):
    write_bot(bots_dir, "python", "leaky", LEAKY)
    for _ in range(3):
        outcome, _, _ = await run_bot(runner, "python", "leaky")
        assert outcome.status == "succeeded", outcome.error
        assert outcome.result == {"seen": None, "planted": False}


async def test_a_bot_runs_as_main_with_its_argv_and_stdin(runner, bots_dir):
    path = write_bot(bots_dir, "python", "who", WHO)
    outcome, _, _ = await run_bot(runner, "python", "who", {"n": 1})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {
        "name": "__main__",
        "argv": [str(path)],
        "payload": {"n": 1},
        "file": str(path),
        "path0": str(path.parent),
    }


ENVIRON = """
import json, os, subprocess
seen = subprocess.run(["env", "-0"], capture_output=True, check=True).stdout.decode()
child = dict(line.split("=", 1) for line in seen.split("\\0") if line)
print(json.dumps({"result": {"environ": dict(os.environ), "child": child, "cwd": os.getcwd()}}))
"""


async def test_the_environment_is_the_attempts_for_the_bot_and_its_children(runner, bots_dir):
    # Only what differs from the zygote's is set in the fork: the C environment must follow.
    write_bot(bots_dir, "python", "environ", ENVIRON)
    for _ in range(2):  # each attempt has its own HOME and TMPDIR (its folder)
        outcome, _, _ = await run_bot(runner, "python", "environ")
        assert outcome.status == "succeeded", outcome.error
        got = outcome.result
        assert got["environ"] == got["child"], "os.environ and the C environment differ"
        assert got["environ"]["HOME"] == got["environ"]["TMPDIR"] == got["cwd"]
        assert set(got["environ"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR"}


async def spare_bot(zygote_pid: int) -> int:
    """The bot of the zygote's spare, once it has one (it is forked after each attempt)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # only bounds a hang: a loaded machine forks a spare late
    while loop.time() < deadline:
        for init in children_of(zygote_pid):
            for bot in children_of(init):
                if comm(bot) == SPARE:
                    return bot
        await asyncio.sleep(0.005)  # polling /proc: nothing announces a spare
    raise AssertionError("no spare")


async def test_a_spare_waits_ahead_and_one_that_died_is_not_used(runner, bots_dir):
    if not (os.geteuid() == 0 and runner.sandbox.pid_namespace):
        pytest.skip("spares are made where the zygote forks inits itself: root, PID namespaces")
    write_bot(bots_dir, "python", "who", WHO)
    await runner.start()
    zygote = runner.zygotes.running("python")
    first = await spare_bot(zygote.pid)
    outcome, _, _ = await run_bot(runner, "python", "who", {"n": 1})
    assert outcome.status == "succeeded" and outcome.result["payload"] == {"n": 1}
    assert not alive(first), "the attempt ran in the spare, which then ended"
    second = await spare_bot(zygote.pid)  # the next one, made after that attempt
    os.kill(second, signal.SIGKILL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MARGIN_S
    while alive(second) and loop.time() < deadline:  # dying takes the kernel a moment
        await asyncio.sleep(0.005)
    for n in (2, 3):  # the dead spare is let go: a plain fork, and no spares after it
        outcome, _, _ = await run_bot(runner, "python", "who", {"n": n})
        assert outcome.status == "succeeded", outcome.error
        assert outcome.result["payload"] == {"n": n}


async def test_exit_codes_and_uncaught_exceptions_are_reported_as_under_spawn(runner, bots_dir):
    write_bot(bots_dir, "python", "quits", "import sys\nsys.exit(3)\n")
    write_bot(bots_dir, "python", "raises", "raise ValueError('boom')\n")
    outcome, _, _ = await run_bot(runner, "python", "quits")
    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    outcome, _, _ = await run_bot(runner, "python", "raises")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert "ValueError: boom" in outcome.error


# Finds the zygote's code cache among the objects it forked with, and says whether the code
# running this bot is the zygote's compile of this very file.
FROM_ZYGOTE = """
import gc, json, sys
cache = [o["CODE"] for o in gc.get_objects() if isinstance(o, dict) and "CODE_MAX_SCRIPTS" in o]
entry = cache[0].get(__file__) if cache else None
mine = entry is not None and entry[1] is sys._getframe().f_code
print(json.dumps({"result": {"version": VERSION, "fromZygote": mine}}))
"""


async def test_a_script_is_compiled_once_in_the_zygote_and_an_edit_is_seen_at_once(
    runner, bots_dir
):
    path = write_bot(bots_dir, "python", "cached", FROM_ZYGOTE.replace("VERSION", "1"))
    got = [(await run_bot(runner, "python", "cached"))[0].result for _ in range(3)]
    # the first attempt compiles it itself; the zygote compiles it then, for the next ones
    assert got == [{"version": 1, "fromZygote": f} for f in (False, True, True)]

    before = path.stat()
    path.write_text(FROM_ZYGOTE.replace("VERSION", "2").lstrip())  # same size, same mtime:
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    got = [(await run_bot(runner, "python", "cached"))[0].result for _ in range(2)]
    assert got == [{"version": 2, "fromZygote": f} for f in (False, True)]


async def test_a_script_that_does_not_compile_fails_each_time_as_under_spawn(runner, bots_dir):
    write_bot(bots_dir, "python", "broken", "def f(:\n    pass\n")
    write_bot(bots_dir, "python", "nul", "x = 1\0\n")
    for _ in range(2):  # the second attempt comes after the zygote tried to compile it
        outcome, _, _ = await run_bot(runner, "python", "broken")
        assert (outcome.status, outcome.exit_code) == ("failed", 1)
        assert "SyntaxError" in outcome.error
        outcome, _, _ = await run_bot(runner, "python", "nul")
        assert (outcome.status, outcome.exit_code) == ("failed", 1)
        assert "null bytes" in outcome.error


async def test_a_killed_zygote_is_restarted_and_takes_its_attempts_along(runner, bots_dir):
    write_bot(bots_dir, "python", "sleeper", SLEEPER)
    write_bot(bots_dir, "python", "hello", 'print(\'{"result": "hi"}\')\n')
    await runner.start()
    zygote = runner.zygotes.running("python")
    sink = RecordingSink()
    attempt = asyncio.create_task(runner.run(spec("python", "sleeper", timeout_s=60), sink))
    await sink.wait_for_log("ready")
    members = group_members(sink.pids[0])
    assert members, "the attempt's group runs"
    os.kill(zygote.pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(attempt, 10)
    assert outcome.status == "failed" and outcome.exit_code == -signal.SIGKILL
    # SIGKILLed (parent-death signal, then the group): dying takes the kernel a moment
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while any(alive(pid) for pid in members) and loop.time() - t0 < MARGIN_S:
        await asyncio.sleep(0.005)  # measuring how long they take to die, not waiting on them
    assert not any(alive(pid) for pid in members), f"alive {loop.time() - t0:.3f} s later"
    outcome, _, _ = await run_bot(runner, "python", "hello")
    assert outcome.status == "succeeded", outcome.error
    restarted = runner.zygotes.running("python")
    assert restarted is not None and restarted.pid != zygote.pid


async def test_closing_the_runner_stops_its_zygote(settings):
    runner = ProcessRunner(settings)
    await runner.start()
    pid = runner.zygotes.running("python").pid
    await runner.aclose()
    assert not alive(pid)


def test_fork_needs_a_plain_python_command(bots_dir, java_cache):
    settings = make_settings(
        bots_dir,
        java_cache,
        **{"bot_types.bash.start": "fork", "bot_types.python.start": "spawn"},
    )
    with pytest.raises(ConfigError, match=r"bot_types\.bash\.start = \"fork\" needs command"):
        ProcessRunner(settings)


PARENT = '''"""parent: names the process it was started by.

Start: {start}
"""
import json
# the machine's pids (/proc is not remounted): getppid() says 1 inside a PID namespace
ppid = open("/proc/self/stat").read().rsplit(")", 1)[1].split()[1]
print(json.dumps({{"result": open(f"/proc/{{ppid}}/comm").read().strip()}}))
'''


@pytest.mark.parametrize("type_start", ["spawn", "fork"])
async def test_a_bot_header_overrides_its_types_start_mode(bots_dir, java_cache, type_start):
    write_bot(bots_dir, "python", "forked", PARENT.format(start="fork"))
    write_bot(bots_dir, "python", "spawned", PARENT.format(start="spawn"))
    settings = make_settings(bots_dir, java_cache, **{"bot_types.python.start": type_start})
    runner = ProcessRunner(settings)
    try:
        forked, _, _ = await run_bot(runner, "python", "forked")
        spawned, _, _ = await run_bot(runner, "python", "spawned")
    finally:
        await runner.aclose()
    assert forked.result == "botsys-zygote", forked.error  # its init (or reaper)
    assert spawned.result.startswith("botsys-launch"), spawned.error


async def test_ps_shows_the_bots_command_not_the_zygotes(runner, bots_dir):
    source = 'import json\nprint(json.dumps({"result": open("/proc/self/cmdline", "rb").read().decode()}))\n'
    path = write_bot(bots_dir, "python", "cmdline", source)
    outcome, _, _ = await run_bot(runner, "python", "cmdline")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result.rstrip("\0").split("\0") == [runner.sandbox.python("python"), str(path)]
