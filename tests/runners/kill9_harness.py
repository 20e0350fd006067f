"""A stand-in replica for the kill -9 test: runs sleeping bots and prints their pids.

Usage: python -m tests.runners.kill9_harness BOTS_DIR CACHE_DIR asyncio|uvloop spawn|fork
(the test kill -9s it). Prints every process of every attempt, and the zygote in fork mode.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from botsys.runners.process import ProcessRunner
from tests.runners import conftest
from tests.runners.conftest import RecordingSink, group_members, make_settings, spec

BOTS = [("python", "sleeper"), ("node", "sleeper"), ("bash", "sleeper"), ("python", "sleeper")]


async def main(bots_dir: Path, cache_dir: Path, start: str) -> None:
    conftest._start["mode"] = start
    runner = ProcessRunner(make_settings(bots_dir, cache_dir))
    sinks = [RecordingSink() for _ in BOTS]
    tasks = [
        asyncio.create_task(runner.run(spec(bot_type, bot, timeout_s=300), sink))
        for (bot_type, bot), sink in zip(BOTS, sinks, strict=True)
    ]
    for sink in sinks:
        await sink.wait_for_log("ready")  # the bot's own code is running, not just the wrappers
    pids = [pid for sink in sinks for pid in group_members(sink.pids[0])]
    zygote = runner.zygotes.running("python")
    print(json.dumps(pids + ([zygote.pid] if zygote else [])), flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    if sys.argv[3] == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[4]))
