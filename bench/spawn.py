"""Spawn cost: a trivial hello bot through ProcessRunner vs a bare create_subprocess_exec.

    .venv/bin/python bench/spawn.py [--n 40]

Per language, runs the bundled hello bot N times each way, interleaved (so drift hits both
equally), and prints the medians and their ratio (target ≤ 1.10). Both ways get the same
scrubbed environment, working folder and interpreter. The "launcher" column is the bare run
behind botsys-launch with only the limits (which already puts a subreaper between launcher and
bot: the containment of a machine without namespaces); "contained" is the default path (the
PID namespace and, for a root server, the switch to the bot user): their difference is what the
namespace path costs over that fallback per start (target ≤ 1 ms). Then python's
``start = "fork"`` against a bare spawn and a bare ``os.fork()`` of this process in the same
loop (target ≥ 5x bare spawn), with the runner's own CPU per attempt in each mode, and a
~500-line bot (which fork mode compiles once) against its bare spawn. Figures are
ratios and differences within one run, never absolute gates (DESIGN §9).

The java rows compare java/hello's start through the runner before class archives and JDK
selection (`java` on PATH, a class folder) with each JDK under /usr/lib/jvm, without and with
its class archive (target: the default ≤ 0.6x before).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import record  # noqa: E402
from botsys.config import ConfigError, load_settings  # noqa: E402
from botsys.runners.jdk import jdk_at  # noqa: E402
from botsys.runners.process import ProcessRunner  # noqa: E402
from botsys.runners.protocol import encode_envelope  # noqa: E402
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


def uncontained(prefix: list[str]) -> list[str]:
    """The launcher prefix with only the limits: no PID namespace, no user switch."""
    return [a for a in prefix if a != "ns=pid" and not a.startswith("user=")]


async def bench_language(runner: ProcessRunner, bot_type: str, n: int) -> dict[str, float]:
    spec = AttemptSpec("bench", bot_type, "hello", {"n": 1}, 1, 60.0)
    ref = runner.registry.resolve(bot_type, "hello")
    bt = runner._settings.bot_types[bot_type]
    build = await runner._build(bt, ref, 60.0)  # compile (java) outside the timed loop
    await runner.compile_cache.archives.settled()  # and its class archive
    build = await runner._build(bt, ref, 60.0)
    workdir = runner.sandbox.make_workdir(bot_type)  # owned by the bot user, if any
    # The same scrubbed environment for both ways: this box exports NODE_EXTRA_CA_CERTS, which
    # alone costs node ~80 ms per start; inheriting it would flatter the runner.
    env = runner.sandbox.env(bot_type, workdir)
    command = runner.command(bt, ref, build, workdir)  # the bot user's interpreter, the JDK
    contained = runner.sandbox.prefix(bot_type) + command
    ways = {
        "launcher": uncontained(runner.sandbox.prefix(bot_type)) + command,
        "contained": contained,
    }
    stdin = encode_envelope(spec)
    times: dict[str, list[float]] = {"bare": [], "launcher": [], "contained": [], "runner": []}
    try:
        for _ in range(2):  # warm the page cache
            await bare(command, stdin, env, workdir)
            await through_runner(runner, spec)
        for _ in range(n):
            times["bare"].append(await bare(command, stdin, env, workdir))
            for way, argv in ways.items():
                times[way].append(await bare(argv, stdin, env, workdir))
            times["runner"].append(await through_runner(runner, spec))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {k: statistics.median(v) for k, v in times.items()}


def launcher_cost(runner: ProcessRunner, n: int) -> dict[str, float]:
    """Median ms of ``botsys-launch ... -- /bin/true`` per option set, interleaved: the
    launcher's own share of a start, without a runtime's noise around it."""
    launcher = runner.sandbox.tools.launcher
    if launcher is None:
        return {}
    true = shutil.which("true") or "/bin/true"
    contained = [a for a in runner.sandbox.prefix("python") if a.startswith(("user=", "ns="))]
    ways = {"limits": [], "contained": contained, "+ns=net": [*contained, "ns=net"]}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(n):
        for way, options in ways.items():
            t0 = time.perf_counter()
            subprocess.run([launcher, str(os.getpid()), "core=0", *options, "--", true], check=True)
            times[way].append(time.perf_counter() - t0)
    return {way: statistics.median(v) * 1e3 for way, v in times.items()}


def make_runner(**overrides: object) -> ProcessRunner:
    """The defaults (bots as botsys-bot when root); as root if that user cannot reach the
    bundled bots (e.g. a checkout under /root)."""
    try:
        return ProcessRunner(load_settings(environ={}, overrides=overrides))
    except ConfigError as exc:
        print(f"note: {exc}; measuring with bots as this user")
        overrides = {**overrides, "runner.bot_user": ""}
        return ProcessRunner(load_settings(environ={}, overrides=overrides))


def bare_fork() -> float:
    """A bare os.fork() of this process, whose child exits at once, waited for."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - t0


# A zygote-sized python (json loaded) forking the hello bot in a loop, with nothing around it:
# what any fork-based start could reach at best. "ns": each fork in a PID namespace of its own
# whose init forks the bot, the containment fork mode keeps (two forks per job, root only).
FORK_LOOP = r"""
import ctypes, json, os, sys
n, ns, script = int(sys.argv[1]), sys.argv[2] == "ns", sys.argv[3]
code = compile(open(script).read(), script, "exec")
libc = ctypes.CDLL(None, use_errno=True)
home = os.open("/proc/self/ns/pid", os.O_RDONLY) if ns else -1
null = os.open(os.devnull, os.O_WRONLY)
def bot():
    r, w = os.pipe()
    os.write(w, b'{"jobId": "bench"}')
    os.close(w)
    os.dup2(r, 0)
    os.dup2(null, 1)
    sys.stdin, sys.stdout = open(0, closefd=False), open(1, "w", closefd=False)
    exec(code, {"__name__": "__main__"})
    sys.stdout.flush()
    os._exit(0)
for _ in range(n):
    if ns:
        libc.unshare(0x20000000)
    pid = os.fork()
    if pid == 0:
        if ns:
            b = os.fork()
            if b == 0:
                bot()
            os.waitpid(b, 0)
            os._exit(0)
        bot()
    if ns:
        libc.setns(home, 0x20000000)
    os.waitpid(pid, 0)
"""


def fork_loop_rate(n: int, ns: bool, workers: int = 2) -> float:
    """Jobs/s of ``workers`` FORK_LOOP processes side by side (one per core here)."""
    script = str(Path(__file__).resolve().parent.parent / "botsys/bots/python/hello.py")
    argv = [sys.executable, "-c", FORK_LOOP, str(n), "ns" if ns else "-", script]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv) for _ in range(workers)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("the fork loop failed")
    return n * workers / (time.perf_counter() - t0)


async def bare_spawn_rate(argv, stdin, env, cwd, n: int, concurrency: int = 8) -> float:
    """Jobs/s of bare spawns of the same bot, ``concurrency`` at a time (as bench/e2e.py)."""
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await bare(argv, stdin, env, cwd)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - t0)


def server_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process only, not its bots
    return usage.ru_utime + usage.ru_stime


async def bench_fork(n: int) -> dict[str, float]:
    """python hello: bare spawn, bare fork, and the runner in each start mode, interleaved;
    with the runner's own CPU per attempt."""
    runners = {mode: make_runner(**{"bot_types.python.start": mode}) for mode in ("spawn", "fork")}
    await runners["fork"].start()
    spawner = runners["spawn"]
    spec = AttemptSpec("bench", "python", "hello", {"n": 1}, 1, 60.0)
    ref = spawner.registry.resolve("python", "hello")
    bt = spawner._settings.bot_types["python"]
    workdir = spawner.sandbox.make_workdir("python")
    env = spawner.sandbox.env("python", workdir)
    build = await spawner._build(bt, ref, 60.0)  # python: nothing to build
    command = spawner.command(bt, ref, build, workdir)  # the bot user's interpreter
    stdin = encode_envelope(spec)
    times: dict[str, list[float]] = {"bare spawn": [], "bare fork": [], "spawn": [], "fork": []}
    cpu: dict[str, list[float]] = {"spawn": [], "fork": []}
    try:
        for _ in range(3):  # warm the page cache and the zygote
            for runner in runners.values():
                await through_runner(runner, spec)
        for _ in range(n):
            times["bare spawn"].append(await bare(command, stdin, env, workdir))
            times["bare fork"].append(bare_fork())
            for mode, runner in runners.items():
                c0 = server_cpu()
                times[mode].append(await through_runner(runner, spec))
                cpu[mode].append(server_cpu() - c0)
        # The ceiling of any fork-based start: rates, interleaved, best of 3 rounds each.
        rates: dict[str, float] = {"spawn rate": 0.0, "fork rate": 0.0, "fork ns rate": 0.0}
        for _ in range(3):
            spawned = await bare_spawn_rate(command, stdin, env, workdir, 4 * n)
            rates["spawn rate"] = max(rates["spawn rate"], spawned)
            rates["fork rate"] = max(rates["fork rate"], fork_loop_rate(4 * n, ns=False))
            if os.geteuid() == 0:
                rates["fork ns rate"] = max(rates["fork ns rate"], fork_loop_rate(4 * n, ns=True))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        await runners["fork"].aclose()
    out = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    out.update({f"cpu {k}": statistics.median(v) * 1e3 for k, v in cpu.items()})
    out.update(rates)
    return out


def big_bot(lines: int) -> str:
    """A bot of about ``lines`` lines of small functions that reads its envelope and answers:
    what a spawned python compiles at every start and fork mode compiles once."""
    out = ["import json, sys"]
    for i in range(lines // 4):
        out += [
            f"def helper_{i}(data, factor={i}):",
            f"    total = sum(x * factor for x in data if x % {i % 7 + 2})",
            f"    return {{'n': {i}, 'total': total}}",
            "",
        ]
    out.append('print(json.dumps({"result": {"hello": json.load(sys.stdin)["jobId"]}}))')
    return "\n".join(out) + "\n"


async def bench_fork_big(n: int, lines: int = 500) -> dict[str, float]:
    """A ~500-line python bot: bare spawn vs the runner in fork mode, interleaved (ms)."""
    bots = Path(tempfile.mkdtemp(prefix="botsys-bench-bots-"))
    try:
        (bots / "python").mkdir()
        (bots / "python" / "big.py").write_text(big_bot(lines))
        for path in (bots, bots / "python", bots / "python" / "big.py"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)  # the bot user reads it
        runner = make_runner(**{"bot_types.python.start": "fork", "runner.bots_dir": str(bots)})
        await runner.start()
        spec = AttemptSpec("bench", "python", "big", {"n": 1}, 1, 60.0)
        ref = runner.registry.resolve("python", "big")
        bt = runner._settings.bot_types["python"]
        workdir = runner.sandbox.make_workdir("python")
        env = runner.sandbox.env("python", workdir)
        command = runner.command(bt, ref, await runner._build(bt, ref, 60.0), workdir)
        stdin = encode_envelope(spec)
        times: dict[str, list[float]] = {"bare spawn": [], "fork": []}
        try:
            for _ in range(3):  # the zygote compiles it after the first
                await through_runner(runner, spec)
            for _ in range(n):
                times["bare spawn"].append(await bare(command, stdin, env, workdir))
                times["fork"].append(await through_runner(runner, spec))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            await runner.aclose()
    finally:
        shutil.rmtree(bots, ignore_errors=True)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


# The java type before class archives and JDK selection: `java` on PATH, a class folder.
JAVA_BEFORE = {
    "bot_types.java.compile": ["javac", "-d", "{build}", "{script}"],
    "bot_types.java.command": [
        "java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx256m", "-cp", "{build}", "{bot}"
    ],
}  # fmt: skip


def java_variants() -> dict[str, ProcessRunner]:
    """Runners for the java rows: before, and the defaults on each JDK here without and with
    the class archive (a command with -Xshare:auto manages CDS itself: no archive)."""
    plain = {"bot_types.java.command": [
        "{java}", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx256m", "-cp", "{classpath}",
        "{bot}",
    ]}  # fmt: skip
    variants = {"before (PATH java)": make_runner(**JAVA_BEFORE)}
    for home in sorted(Path("/usr/lib/jvm").glob("*")):
        jdk = jdk_at(home)
        if jdk is None or home.is_symlink() or not jdk.version:
            continue
        label = f"JDK {jdk.feature}"
        variants[f"{label} no archive"] = make_runner(**plain, **{"runner.java": str(home)})
        variants[f"{label} archive"] = make_runner(**{"runner.java": str(home)})
    return variants


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def bench_java(n: int) -> dict[str, dict[str, float]]:
    """Median start (ms, through the runner) of java/hello per variant, interleaved."""
    spec = AttemptSpec("bench", "java", "hello", {"n": 1}, 1, 60.0)
    variants = java_variants()
    for runner in variants.values():  # compile and archive outside the timed loop
        await through_runner(runner, spec)
        await runner.compile_cache.archives.settled()
        await through_runner(runner, spec)
    times: dict[str, list[float]] = {label: [] for label in variants}
    cpu: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(n):
        for label, runner in variants.items():
            before_cpu = children_cpu()
            times[label].append(await through_runner(runner, spec))
            cpu[label].append(children_cpu() - before_cpu)
    before, before_cpu = (statistics.median(v["before (PATH java)"]) for v in (times, cpu))
    print(
        f"java/hello start through the runner, median of {n}; ratio = / before; cpu = the "
        "reaped processes' user+sys (the steadier figure on a loaded machine)"
    )
    print(f"  {'variant':22} {'wall ms':>8} {'ratio':>7} {'cpu ms':>7} {'ratio':>7}")
    rows = {}
    for label in variants:
        wall, used = statistics.median(times[label]), statistics.median(cpu[label])
        rows[label] = {
            "ms": wall * 1e3,
            "ratio": wall / before,
            "cpuMs": used * 1e3,
            "cpuRatio": used / before_cpu,
        }
        print(
            f"  {label:22} {wall * 1e3:8.1f} {wall / before:7.3f} {used * 1e3:7.1f} "
            f"{used / before_cpu:7.3f}"
        )
    return rows


async def main(n: int, java_only: bool = False) -> int:
    if java_only:  # the java rows alone, not recorded
        await bench_java(n)
        return 0
    runner = make_runner(**{"bot_types.python.start": "spawn"})  # these rows: spawns
    print(f"spawn cost, median of {n} (ms); ratio = runner / bare; added = contained - launcher")
    print(f"contained = {' '.join(runner.sandbox.prefix('python')[2:])}")
    print(
        f"{'type':8} {'bare':>8} {'launcher':>9} {'contained':>10} {'added':>7} "
        f"{'runner':>8} {'ratio':>7}"
    )
    worst, most_added, figures = 0.0, float("-inf"), {"n": n}
    for bot_type in LANGUAGES:
        m = await bench_language(runner, bot_type, n)
        ratio = m["runner"] / m["bare"]
        added = m["contained"] - m["launcher"]
        worst, most_added = max(worst, ratio), max(most_added, added)
        figures[bot_type] = {
            "bareMs": m["bare"] * 1e3,
            "runnerMs": m["runner"] * 1e3,
            "ratio": ratio,
            "containmentAddedMs": added * 1e3,
        }
        print(
            f"{bot_type:8} {m['bare'] * 1e3:8.1f} {m['launcher'] * 1e3:9.1f} "
            f"{m['contained'] * 1e3:10.1f} {added * 1e3:7.2f} {m['runner'] * 1e3:8.1f} {ratio:7.3f}"
        )
    print(f"worst ratio {worst:.3f} (target ≤ 1.10)")
    print(f"containment adds at most {most_added * 1e3:.2f} ms per start, with a runtime")
    cost = launcher_cost(runner, max(10 * n, 20))
    if cost:
        added = cost["contained"] - cost["limits"]
        net = cost["+ns=net"] - cost["contained"]
        figures["launcherAddedMs"] = added
        print(
            f"launcher alone ({max(10 * n, 20)} runs of true): limits {cost['limits']:.3f} ms, "
            f"contained {cost['contained']:.3f} ms: containment adds {added:.3f} ms per start "
            f"(target ≤ 1 ms); network = none adds {net:.3f} ms more"
        )
    m = await bench_fork(n)
    speedup = m["bare spawn"] / m["fork"]
    print(
        f"python start = fork (median ms): bare spawn {m['bare spawn']:.2f}, bare fork "
        f"{m['bare fork']:.2f}, runner spawn {m['spawn']:.2f}, runner fork {m['fork']:.2f}: "
        f"{speedup:.1f}x bare spawn (target ≥ 5), {m['fork'] - m['bare fork']:.2f} ms over a bare "
        f"fork; the runner's own CPU per attempt: spawn {m['cpu spawn']:.2f} ms, fork "
        f"{m['cpu fork']:.2f} ms"
    )
    print(
        f"python jobs/s, best of 3 interleaved rounds: bare spawn {m['spawn rate']:.0f} (8 at a "
        f"time), a bare fork loop of a small python running hello {m['fork rate']:.0f} "
        f"({m['fork rate'] / m['spawn rate']:.1f}x), the same with a PID namespace and its init "
        f"per job {m['fork ns rate']:.0f} ({m['fork ns rate'] / m['spawn rate']:.1f}x): the "
        "ceiling of fork mode before any server work"
    )
    big = await bench_fork_big(n)
    print(
        f"python start = fork, a 500-line bot (median ms): bare spawn {big['bare spawn']:.2f}, "
        f"runner fork {big['fork']:.2f}: {big['bare spawn'] / big['fork']:.1f}x (compiled once "
        "by the zygote)"
    )
    figures["pythonForkBigBot"] = {"bareSpawnMs": big["bare spawn"], "runnerForkMs": big["fork"]}
    figures["pythonFork"] = {
        "bareSpawnMs": m["bare spawn"],
        "bareForkMs": m["bare fork"],
        "runnerSpawnMs": m["spawn"],
        "runnerForkMs": m["fork"],
        "speedupOverBareSpawn": speedup,
        "serverCpuSpawnMs": m["cpu spawn"],
        "serverCpuForkMs": m["cpu fork"],
        "bareSpawnsPerS": m["spawn rate"],
        "bareForkLoopPerS": m["fork rate"],
        "bareForkLoopNsPerS": m["fork ns rate"],
    }
    if "java" in LANGUAGES:
        figures["javaStart"] = await bench_java(n)
    record("spawn", figures)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="runs per language and way")
    parser.add_argument("--java", action="store_true", help="only the java start rows")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.n, args.java)))
