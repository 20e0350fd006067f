"""Spawn cost: a trivial hello bot through ProcessRunner vs a bare create_subprocess_exec.

    .venv/bin/python bench/spawn.py [--n 40]

Per language, runs the bundled hello bot N times each way, interleaved (so drift hits both
equally), and prints the medians and their ratio (target ≤ 1.10). Both ways get the same
scrubbed environment and working folder. The "wrappers" column is the bare run with the
runner's native chain (setpriv + prlimit) in front, to show what the chain itself costs. Figures are ratios within one run, never absolute gates (DESIGN §9).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import record  # noqa: E402
from botsys.config import load_settings  # noqa: E402
from botsys.runners.process import ProcessRunner  # noqa: E402
from botsys.runners.protocol import encode_envelope  # noqa: E402
from botsys.runners.sandbox import render  # noqa: E402
from botsys.runners.types import AttemptSpec  # noqa: E402

LANGUAGES = ("python", "node", "java")


class NullSink:
    def started(self, pid: int) -> None: ...

    def progress(self, percent: int) -> None: ...

    def log(self, text: str) -> None: ...


async def bare(argv: list[str], stdin: bytes, env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(stdin)
    assert proc.returncode == 0 and b"hello" in out, out
    return time.perf_counter() - t0


async def through_runner(runner: ProcessRunner, spec: AttemptSpec) -> float:
    t0 = time.perf_counter()
    outcome = await runner.run(spec, NullSink())
    assert outcome.status == "succeeded", outcome.error
    return time.perf_counter() - t0


async def bench_language(runner: ProcessRunner, bot_type: str, n: int) -> dict[str, float]:
    spec = AttemptSpec("bench", bot_type, "hello", {"n": 1}, 1, 60.0)
    ref = runner.registry.resolve(bot_type, "hello")
    bt = runner._settings.bot_types[bot_type]
    build = await runner._build(bt, ref, 60.0)  # compile (java) outside the timed loop
    workdir = Path(tempfile.mkdtemp(prefix="botsys-bench-"))
    # The same scrubbed environment for both ways: this box exports NODE_EXTRA_CA_CERTS, which
    # alone costs node ~80 ms per start; inheriting it would flatter the runner.
    env = runner.sandbox.env(bot_type, workdir)
    command = render(bt.command, runner.sandbox.values(ref.path, ref.name, build, workdir))
    wrapped = runner.sandbox.prefix(bot_type) + command
    stdin = encode_envelope(spec)
    times: dict[str, list[float]] = {"bare": [], "wrappers": [], "runner": []}
    try:
        for _ in range(2):  # warm the page cache
            await bare(command, stdin, env, workdir)
            await through_runner(runner, spec)
        for _ in range(n):
            times["bare"].append(await bare(command, stdin, env, workdir))
            times["wrappers"].append(await bare(wrapped, stdin, env, workdir))
            times["runner"].append(await through_runner(runner, spec))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {k: statistics.median(v) for k, v in times.items()}


async def main(n: int) -> int:
    runner = ProcessRunner(load_settings(environ={}))
    print(f"spawn cost, median of {n} (ms); ratio = runner / bare")
    print(f"{'type':8} {'bare':>8} {'wrappers':>9} {'runner':>8} {'ratio':>7}")
    worst, figures = 0.0, {"n": n}
    for bot_type in LANGUAGES:
        m = await bench_language(runner, bot_type, n)
        ratio = m["runner"] / m["bare"]
        worst = max(worst, ratio)
        figures[bot_type] = {
            "bareMs": m["bare"] * 1e3,
            "runnerMs": m["runner"] * 1e3,
            "ratio": ratio,
        }
        print(
            f"{bot_type:8} {m['bare'] * 1e3:8.1f} {m['wrappers'] * 1e3:9.1f} "
            f"{m['runner'] * 1e3:8.1f} {ratio:7.3f}"
        )
    print(f"worst ratio {worst:.3f} (target ≤ 1.10)")
    record("spawn", figures)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="runs per language and way")
    sys.exit(asyncio.run(main(parser.parse_args().n)))
