"""A replica killed with SIGKILL leaves no bot running (PDEATHSIG via setpriv)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from tests.support.requires import require_module
from tests.support.timing import MARGIN_S

from .conftest import REPO, alive, write_bot

SLEEPERS = {
    "python": 'import time\nprint("ready", flush=True)\ntime.sleep(300)\n',
    "node": 'console.log("ready");\nsetTimeout(() => {}, 300000);\n',
    "bash": "echo ready\nexec sleep 300\n",
}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_kill_9_of_the_server_kills_its_bots(bots_dir, java_cache, loop, start_mode):
    if loop == "uvloop":
        require_module("uvloop", "pip install -e .")
    for bot_type, source in SLEEPERS.items():
        write_bot(bots_dir, bot_type, "sleeper", source)
    harness = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.runners.kill9_harness",
        str(bots_dir),
        str(java_cache),
        loop,
        start_mode,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(harness.stdout.readline(), 20)
        pids = json.loads(line)
        # each attempt's processes (launcher or leader, init, bot) and the fork mode's zygote
        assert len(pids) >= 4 and all(alive(pid) for pid in pids)
        loop = asyncio.get_running_loop()
        harness.send_signal(signal.SIGKILL)
        t0 = loop.time()
        # The sleepers would live 300 s: dying within the margin is dying with the server.
        while any(alive(pid) for pid in pids) and loop.time() - t0 < MARGIN_S:
            await asyncio.sleep(0.005)  # measuring how long they take to die, not waiting on them
        elapsed = loop.time() - t0
        survivors = [pid for pid in pids if alive(pid)]
        assert survivors == [], f"{len(survivors)} of {len(pids)} bots alive {elapsed:.3f} s later"
    finally:
        if harness.returncode is None:
            harness.kill()
        await harness.wait()
        for pid in pids if "pids" in locals() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
