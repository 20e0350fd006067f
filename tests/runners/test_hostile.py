"""Hostile bots (reliability-anchors §6.C): each test measures what it asserts, with real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from botsys.runners.output import TRUNCATED_MARKER
from botsys.runners.process import ProcessRunner
from tests.support.procs import children_of
from tests.support.timing import MARGIN_S

from .conftest import (
    BUNDLED_BOTS,
    RecordingSink,
    alive,
    group_members,
    make_settings,
    rss_bytes,
    run_bot,
    spec,
    write_bot,
)

# Every case under both start modes of python bots (conftest.start_mode).
pytestmark = pytest.mark.usefixtures("start_mode")

TIMEOUT = 1.0
GRACE = 0.5  # make_settings' kill_grace_s
SLACK = MARGIN_S  # the slow paths below last far longer (sleep 300, spin forever)

SPIN_PY = "while True:\n    pass\n"
SPIN_JS = "for (;;) {}\n"
IGNORE_TERM_PY = """
    import signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        time.sleep(1)
"""
SLEEPER_PY = """
    import time
    print("ready", flush=True)
    time.sleep(300)
"""


@pytest.mark.parametrize(
    ("bot_type", "source"), [("python", SPIN_PY), ("node", SPIN_JS)], ids=["python", "node"]
)
async def test_infinite_loop_is_stopped_at_the_timeout(runner, bots_dir, bot_type, source):
    write_bot(bots_dir, bot_type, "spin", source)
    outcome, sink, elapsed = await run_bot(runner, bot_type, "spin", timeout_s=TIMEOUT)
    assert outcome.status == "timed_out" and outcome.exit_code == -signal.SIGTERM
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, f"stopped after {elapsed:.3f} s"
    assert not group_members(sink.pids[0])


async def test_sigterm_ignoring_bot_is_sigkilled_after_grace(runner, bots_dir):
    write_bot(bots_dir, "python", "stubborn", IGNORE_TERM_PY)
    # 3 s, not TIMEOUT: a loaded machine may not reach signal(SIGTERM, SIG_IGN) within 1 s.
    timeout = 3.0
    outcome, sink, elapsed = await run_bot(runner, "python", "stubborn", timeout_s=timeout)
    assert outcome.status == "timed_out" and outcome.exit_code == -signal.SIGKILL
    assert "SIGKILL" in outcome.error
    bound = timeout + GRACE
    assert bound <= elapsed < bound + SLACK, f"killed after {elapsed:.3f} s (bound {bound} s)"
    assert not alive(sink.pids[0])


async def test_whole_group_is_killed_and_pipes_held_by_children_do_not_hang(runner, bots_dir):
    # the shell's children inherit stdout: with a plain proc.kill() + wait() this hangs
    write_bot(bots_dir, "bash", "forks", 'sleep 300 & sleep 300 & echo "ready $!"; sleep 300\n')
    sink = RecordingSink()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    task = asyncio.create_task(runner.run(spec("bash", "forks", timeout_s=TIMEOUT), sink))
    await sink.wait_for_log("ready")
    members = group_members(sink.pids[0])
    outcome = await task
    elapsed = loop.time() - t0
    assert len(members) >= 3, f"expected the shell and 2 sleeps in the group, saw {members}"
    assert outcome.status == "timed_out"
    assert elapsed < TIMEOUT + GRACE + SLACK, f"returned after {elapsed:.3f} s"
    assert [pid for pid in members if alive(pid)] == [] and not group_members(sink.pids[0])


@pytest.mark.parametrize("newlines", [True, False], ids=["lines", "one-huge-line"])
async def test_flood_of_200_mb_is_capped_and_memory_stays_bounded(
    runner, settings, bots_dir, newlines
):
    write_bot(
        bots_dir,
        "python",
        "flood",
        f"""
        import sys
        block = (b"x" * 1023 + b"\\n") * 1024 if {newlines} else b"y" * (1024 * 1024)
        for _ in range(100):  # 100 MiB to each stream, interleaved
            sys.stdout.buffer.write(block)
            sys.stdout.buffer.flush()
            sys.stderr.buffer.write(block)
            sys.stderr.buffer.flush()
        print('\\n{{"result": "done"}}', flush=True)
        """,
    )
    before = peak = rss_bytes()

    async def sample():
        nonlocal peak
        while True:
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        outcome, sink, elapsed = await run_bot(runner, "python", "flood", timeout_s=30)
    finally:
        sampler.cancel()
    cap = settings.runner.log_cap_kb * 1024
    growth = peak - before
    forwarded = sink.log_bytes - len(TRUNCATED_MARKER)
    assert outcome.status == "succeeded" and outcome.result == "done", outcome.error
    assert outcome.log_truncated and sink.logs[-1] == TRUNCATED_MARKER
    assert forwarded <= cap, f"forwarded {forwarded} bytes of log, cap {cap}"
    limit = 2 * cap + settings.runner.result_cap_kb * 1024 + 16 * 2**20
    assert growth <= limit, f"server RSS grew {growth / 2**20:.1f} MiB in {elapsed:.2f} s"


async def test_bot_that_never_reads_stdin_gets_an_8_mib_payload_without_deadlock(runner, bots_dir):
    write_bot(bots_dir, "python", "deaf", 'print(\'{"result": "did not read"}\', flush=True)\n')
    payload = {"blob": "z" * (8 * 2**20)}
    outcome, _, elapsed = await run_bot(runner, "python", "deaf", payload, timeout_s=10)
    assert outcome.status == "succeeded" and outcome.result == "did not read", outcome.error
    assert elapsed < 10, f"took {elapsed:.3f} s: deadlocked until its timeout"


async def test_bot_that_never_reads_stdin_and_hangs_times_out(runner, bots_dir):
    write_bot(bots_dir, "python", "deaf_sleeper", "import time\ntime.sleep(300)\n")
    payload = {"blob": "z" * (8 * 2**20)}
    outcome, _, elapsed = await run_bot(runner, "python", "deaf_sleeper", payload, TIMEOUT)
    assert outcome.status == "timed_out"
    assert elapsed < TIMEOUT + SLACK, f"took {elapsed:.3f} s"


async def test_memory_hog_is_stopped_by_its_limit_while_node_and_java_still_start(
    runner, settings, bots_dir
):
    # The configured limits (config.toml): python RLIMIT_AS 512 MiB, node/java RLIMIT_DATA 1 GiB.
    write_bot(
        bots_dir, "python", "hog", "chunks = []\nwhile True:\n    chunks.append(bytearray(2**26))\n"
    )
    write_bot(
        bots_dir, "node", "hog", "const a = [];\nfor (;;) a.push(Buffer.alloc(2 ** 26, 1));\n"
    )
    for bot_type, ext in (("node", ".js"), ("java", ".java")):
        write_bot(
            bots_dir, bot_type, "hello", (BUNDLED_BOTS / bot_type / f"hello{ext}").read_text()
        )
    before = rss_bytes()
    for bot_type in ("python", "node"):
        outcome, _, elapsed = await run_bot(runner, bot_type, "hog", timeout_s=20)
        assert outcome.status == "failed", f"{bot_type} hog: {outcome}"
        assert elapsed < 10, f"{bot_type} hog ran {elapsed:.2f} s before its limit stopped it"
    assert "MemoryError" in outcome.error or "memory" in outcome.error.lower()
    for bot_type in ("node", "java"):
        outcome, _, elapsed = await run_bot(runner, bot_type, "hello", timeout_s=20)
        assert outcome.status == "succeeded", f"{bot_type} hello under the limits: {outcome.error}"
    growth = rss_bytes() - before
    assert abs(growth) < 10 * 2**20, f"server RSS changed by {growth / 2**20:.1f} MiB"


ENV_DUMP = {
    "python": """
        import json, os, sys
        sys.stdin.read()
        fds = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                pass  # the fd of the listing itself, closed by now
        print(json.dumps({"result": {"env": dict(os.environ), "fds": fds, "cwd": os.getcwd()}}))
    """,
    "node": """
        const fs = require("fs");
        const fds = {};
        for (const fd of fs.readdirSync("/proc/self/fd")) {
          try { fds[fd] = fs.readlinkSync(`/proc/self/fd/${fd}`); } catch (e) {}
        }
        console.log(JSON.stringify({result: {env: process.env, fds, cwd: process.cwd()}}));
    """,
}


@pytest.mark.parametrize("bot_type", ["python", "node"])
async def test_environment_is_scrubbed(monkeypatch, bots_dir, java_cache, bot_type):
    secrets = {
        "REDIS_URL": "redis://:hunter2@localhost:6379/0",
        "BOTSYS_API_KEYS": "key-one,key-two",
        "BOTSYS_WEBHOOK_SECRET": "whsec_c2VjcmV0",
        "AWS_SECRET_ACCESS_KEY": "nope",
        "BOTSYS_HONEYPOT": "must-not-leak",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = make_settings(bots_dir, java_cache, **{f"bot_types.{bot_type}.env": ["MODE=test"]})
    runner = ProcessRunner(settings)
    write_bot(bots_dir, bot_type, "dump", ENV_DUMP[bot_type])
    payload = {"env": {"LD_PRELOAD": "/tmp/evil.so"}, "NODE_OPTIONS": "--require /tmp/evil.js"}
    outcome, _, _ = await run_bot(runner, bot_type, "dump", payload)
    assert outcome.status == "succeeded", outcome.error
    env, cwd = outcome.result["env"], outcome.result["cwd"]
    leaked = sorted(set(env) - {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "MODE"})
    assert leaked == [], f"{len(leaked)} variables leaked: {leaked}"
    assert env["MODE"] == "test" and env["HOME"] == env["TMPDIR"] == cwd
    assert not any(v in json.dumps(env) for v in secrets.values())
    extra_fds = {fd: target for fd, target in outcome.result["fds"].items() if int(fd) > 2}
    # the listing itself holds one fd on /proc/<pid>/fd; node adds its own epoll/eventfd/pipes
    unexpected = {fd: t for fd, t in extra_fds.items() if not _runtime_fd(t)}
    assert unexpected == {}, f"inherited descriptors: {unexpected}"
    assert not os.path.exists(cwd), "the private working directory was not removed"


def _runtime_fd(target: str) -> bool:
    return target.startswith(("/proc/", "anon_inode:", "pipe:")) and "socket" not in target


async def test_background_child_is_killed_when_the_bot_exits(runner, bots_dir):
    write_bot(
        bots_dir,
        "bash",
        "leaves_child",
        """
        # $! is the child's pid in the bot's PID namespace; the test needs the machine's,
        # which /proc (not remounted) shows the child itself as /proc/self.
        ( read -r pid _ < /proc/self/stat; echo "$pid" > "$HOME/pid.tmp"
          mv "$HOME/pid.tmp" "$HOME/pid"; exec sleep 300 ) &
        until [ -s "$HOME/pid" ]; do :; done
        echo "{\\"log\\": \\"child $(cat "$HOME/pid")\\"}"
        echo '{"result": "bye"}'
        """,
    )
    outcome, sink, elapsed = await run_bot(runner, "bash", "leaves_child")
    child = int(next(line for line in sink.logs if line.startswith("child")).split()[1])
    assert outcome.status == "succeeded" and outcome.result == "bye"
    # Waiting for the child's end of stdout would last until the bot's timeout (20 s).
    assert elapsed < 20, f"runner returned after {elapsed:.3f} s (a child holds stdout)"
    assert not alive(child), f"background child {child} outlived its bot"


@pytest.mark.parametrize(
    ("source", "signal_used", "bound"),
    [(SLEEPER_PY, "SIGTERM", SLACK), (IGNORE_TERM_PY, "SIGKILL", GRACE + SLACK)],
    ids=["obeys-sigterm", "ignores-sigterm"],
)
async def test_cancelling_the_task_kills_the_group(runner, bots_dir, source, signal_used, bound):
    write_bot(bots_dir, "python", "victim", source)
    sink = RecordingSink()
    task = asyncio.create_task(runner.run(spec("python", "victim", timeout_s=60), sink))
    await sink.wait_for_log("ready")
    pid = sink.pids[0]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = loop.time() - t0
    assert not alive(pid) and not group_members(pid)
    assert elapsed < bound, f"cancel took {elapsed:.3f} s with {signal_used}"


async def test_cpu_limit_fires_as_sigxcpu(bots_dir, java_cache):
    settings = make_settings(bots_dir, java_cache, **{"bot_types.bash.cpu_s": 1})
    write_bot(bots_dir, "bash", "burn", "while :; do :; done\n")
    # timeout 120 s: under load 1 CPU-second can take over 10 s of wall time; it bounds a hang.
    outcome, _, elapsed = await run_bot(ProcessRunner(settings), "bash", "burn", timeout_s=120)
    assert outcome.status == "failed" and outcome.exit_code == -signal.SIGXCPU
    assert "CPU limit" in outcome.error and elapsed < 120, f"after {elapsed:.2f} s (timeout 120 s)"


async def test_file_size_limit(bots_dir, java_cache):
    settings = make_settings(bots_dir, java_cache, **{"bot_types.python.file_size_mb": 1})
    write_bot(bots_dir, "python", "big_file", "open('big', 'wb').write(b'x' * 2_000_000)\n")
    outcome, _, _ = await run_bot(ProcessRunner(settings), "python", "big_file")
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the signal killing it
    assert outcome.status == "failed" and "File too large" in outcome.error


async def test_oversized_result_fails_clearly(runner, bots_dir):
    write_bot(
        bots_dir,
        "python",
        "big_result",
        "import json\nprint(json.dumps({'result': 'r' * 2**21}))\n",
    )
    outcome, _, _ = await run_bot(runner, "python", "big_result")
    assert outcome.status == "failed"
    assert "result too large" in outcome.error and "1024 KiB" in outcome.error


async def test_crash_reports_the_stderr_tail(runner, bots_dir):
    write_bot(
        bots_dir,
        "python",
        "crash",
        "import sys\nprint('x' * 10000, file=sys.stderr)\nraise SystemExit('boom: the reason')\n",
    )
    outcome, _, _ = await run_bot(runner, "python", "crash")
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert outcome.error.startswith("exit code 1\n") and outcome.error.endswith("boom: the reason")
    assert len(outcome.error) < 4200, f"error is {len(outcome.error)} chars"


async def test_many_attempts_leak_no_fds_zombies_or_folders(runner, bots_dir):
    import tempfile
    from pathlib import Path

    write_bot(
        bots_dir, "python", "hello", "import sys\nsys.stdin.read()\nprint('{\"result\": 1}')\n"
    )
    tmp = Path(tempfile.gettempdir())
    fds_before = len(os.listdir("/proc/self/fd"))
    dirs_before = set(tmp.glob("botsys-python-*"))
    for _ in range(6):  # 60 attempts, 10 at a time
        batch = await asyncio.gather(*(run_bot(runner, "python", "hello") for _ in range(10)))
        assert all(outcome.status == "succeeded" for outcome, _, _ in batch)
    fds_after = len(os.listdir("/proc/self/fd"))
    zombies = [pid for pid in children_of(os.getpid()) if not alive(pid)]
    assert abs(fds_after - fds_before) <= 2, f"fds {fds_before} → {fds_after}"
    assert zombies == [], f"{len(zombies)} zombie children"
    assert set(tmp.glob("botsys-python-*")) - dirs_before == set(), "working folders left behind"


async def test_a_nan_result_fails_the_attempt_clearly(runner, bots_dir):
    # Python's json writes NaN by default; JSON.parse (and every webhook receiver) rejects it.
    write_bot(bots_dir, "python", "nan_result", 'print(\'{"result": {"mean": NaN}}\')\n')
    outcome, _, _ = await run_bot(runner, "python", "nan_result")
    assert outcome.status == "failed" and outcome.result is None
    assert "not valid JSON: result.mean: number out of range" in outcome.error
