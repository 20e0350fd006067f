"""Java class archives (runners/class_archive.py) on the real JDKs: trained once per build and
reused across processes, a damaged archive ignored and rebuilt, every bundled java bot run on
each JDK with and without its archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from botsys.runners.class_archive import flavor, intact
from botsys.runners.process import ProcessRunner

from .conftest import BUNDLED_BOTS, make_settings, run_bot, write_bot

JDKS = {
    17: Path("/usr/lib/jvm/java-17-openjdk-amd64"),
    25: Path("/usr/lib/jvm/temurin-25-jdk-amd64"),
}
on_each_jdk = pytest.mark.parametrize(
    "feature",
    [
        pytest.param(f, marks=pytest.mark.skipif(not home.is_dir(), reason=f"no JDK {f} here"))
        for f, home in JDKS.items()
    ],
)

# Reports the options its JVM got: proof that a run used the archive.
ARGS_BOT = """
import java.lang.management.ManagementFactory;

public class args {
    public static void main(String[] a) throws Exception {
        System.in.readAllBytes();
        String flags = String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments());
        boolean archived = flags.contains("-XX:AOTCache=") || flags.contains("-XX:SharedArchiveFile=");
        String gc = "";
        for (var bean : ManagementFactory.getGarbageCollectorMXBeans()) gc += "|" + bean.getName();
        System.out.println("{\\"result\\": {\\"archived\\": " + archived + ", \\"gc\\": \\"" + gc + "\\"}}");
    }
}
"""


def runner_on(feature: int, bots_dir: Path, cache: Path) -> ProcessRunner:
    return ProcessRunner(make_settings(bots_dir, cache, **{"runner.java": str(JDKS[feature])}))


def archives_in(cache: Path) -> list[Path]:
    found = (cache / "java").glob("*/archive-*")
    return sorted(p for p in found if not p.name.endswith((".sha256", ".lock")))


async def archived(runner: ProcessRunner, bot: str = "args") -> bool:
    outcome, _, _ = await run_bot(runner, "java", bot)
    assert outcome.status == "succeeded", outcome.error
    return outcome.result["archived"]


@on_each_jdk
async def test_archive_is_trained_once_and_reused_across_processes(feature, bots_dir, tmp_path):
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    cache = tmp_path / "cache"
    runner = runner_on(feature, bots_dir, cache)
    assert runner.sandbox.jdk.feature == feature
    assert not await archived(runner)  # the first job never waits for training
    await runner.compile_cache.archives.settled()
    assert await archived(runner) and await archived(runner)
    assert runner.compile_cache.archives.built == 1
    [archive] = archives_in(cache)
    assert archive.suffix == flavor(runner.sandbox.jdk).suffix and intact(archive)
    assert archive.stat().st_mode & 0o444 == 0o444  # readable by the bot user
    # another server process on the same cache: checks the archive, never trains again
    again = runner_on(feature, bots_dir, cache)
    await run_bot(again, "java", "args")
    await again.compile_cache.archives.settled()
    assert await archived(again) and again.compile_cache.archives.built == 0


@on_each_jdk
async def test_damaged_archive_is_ignored_then_rebuilt(feature, bots_dir, tmp_path):
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    cache = tmp_path / "cache"
    runner = runner_on(feature, bots_dir, cache)
    await run_bot(runner, "java", "args")
    await runner.compile_cache.archives.settled()
    [archive] = archives_in(cache)
    with open(archive, "r+b") as f:  # truncated: JDK 17 would die of SIGBUS mapping it
        f.truncate(archive.stat().st_size // 2)
    fresh = runner_on(feature, bots_dir, cache)
    assert not await archived(fresh)  # runs without it, never with the damaged file
    await fresh.compile_cache.archives.settled()
    assert fresh.compile_cache.archives.built == 1 and intact(archive)
    assert await archived(fresh)


# The old generation's MXBean of each collector.
SERIAL, G1, PARALLEL = "MarkSweepCompact", "G1 Old Generation", "PS MarkSweep"


async def collector(runner: ProcessRunner) -> tuple[bool, str]:
    outcome, _, _ = await run_bot(runner, "java", "args")
    assert outcome.status == "succeeded", outcome.error
    names = outcome.result["gc"].split("|")
    [gc] = [name for name in (SERIAL, G1, PARALLEL) if name in names]
    return outcome.result["archived"], gc


@on_each_jdk
async def test_the_archive_brings_the_faster_collector_unless_the_command_names_one(
    feature, bots_dir, tmp_path
):
    """JDK 25: with its AOT cache a bot runs the serial collector (it starts sooner); JDK 17
    keeps G1, whose archived heap only G1 loads; a command's own collector always wins, and
    still gets an archive."""
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    runner = runner_on(feature, bots_dir, tmp_path / "default")
    assert await collector(runner) == (False, G1)  # no archive yet: the JVM's own choice
    await runner.compile_cache.archives.settled()
    assert await collector(runner) == (True, SERIAL if feature >= 25 else G1)

    command = ["{java}", "-XX:+UseParallelGC", "-Xmx256m", "-cp", "{classpath}", "{bot}"]
    own = ProcessRunner(
        make_settings(
            bots_dir,
            tmp_path / "own",
            **{"runner.java": str(JDKS[feature]), "bot_types.java.command": command},
        )
    )
    assert await collector(own) == (False, PARALLEL)
    await own.compile_cache.archives.settled()
    assert await collector(own) == (True, PARALLEL)


async def test_shutdown_stops_a_training_in_progress(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    runner = ProcessRunner(make_settings(bots_dir, tmp_path / "cache"))
    await run_bot(runner, "java", "args")  # starts the training in the background
    assert runner.compile_cache.archives.pending == 1  # training takes seconds, the job less
    await runner.aclose()
    assert runner.compile_cache.archives.pending == 0
    [build] = (tmp_path / "cache" / "java").iterdir()
    assert not archives_in(tmp_path / "cache")
    assert not [p for p in build.iterdir() if p.name.startswith(".tmp-")]


async def test_one_replica_trains_while_the_others_run_without(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    cache = tmp_path / "cache"
    first, second = (ProcessRunner(make_settings(bots_dir, cache)) for _ in range(2))
    await run_bot(first, "java", "args")  # first starts training
    assert first.compile_cache.archives.pending == 1
    assert not await archived(second)
    await second.compile_cache.archives.settled()  # saw the lock: did not train, nor give up
    await first.compile_cache.archives.settled()
    assert (first.compile_cache.archives.built, second.compile_cache.archives.built) == (1, 0)
    await run_bot(second, "java", "args")  # looks again
    await second.compile_cache.archives.settled()
    assert await archived(second)


async def test_a_command_managing_cds_itself_gets_no_archive(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    command = ["{java}", "-Xshare:auto", "-cp", "{classpath}", "{bot}"]
    runner = ProcessRunner(make_settings(bots_dir, tmp_path, **{"bot_types.java.command": command}))
    await run_bot(runner, "java", "args")
    await runner.compile_cache.archives.settled()
    assert not await archived(runner) and runner.compile_cache.archives.built == 0


async def test_failed_training_leaves_the_bot_running_without_archive(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "args", ARGS_BOT)
    runner = runner_on(25, bots_dir, tmp_path) if JDKS[25].is_dir() else None
    if runner is None:
        pytest.skip("no JDK 25 here")
    (Path(runner.compile_cache.archives.trainer_dir())).mkdir(parents=True)
    # a trainer that is not a class: the jar has no trainer, so training fails
    (runner.compile_cache.archives.trainer_dir() / "botsys_aot_train.class").write_bytes(b"x")
    assert not await archived(runner)
    await runner.compile_cache.archives.settled()
    assert runner.compile_cache.archives.built == 1 and not archives_in(tmp_path)
    assert not await archived(runner)  # no new attempt per job in this process


async def test_training_never_runs_bot_code(bots_dir, tmp_path):
    """Training runs as the server: a bot class named like the trainer is not trained."""
    marker = tmp_path / "ran"
    source = (
        (BUNDLED_BOTS / "java" / "hello.java").read_text()
        + f"""
class botsys_aot_train {{
    static {{
        try {{ new java.io.File("{marker}").createNewFile(); }} catch (Exception e) {{ }}
    }}
    public static void main(String[] a) {{ }}
}}
"""
    )
    write_bot(bots_dir, "java", "hello", source)
    runner = ProcessRunner(make_settings(bots_dir, tmp_path / "cache"))
    outcome, _, _ = await run_bot(runner, "java", "hello")
    assert outcome.status == "succeeded", outcome.error
    await runner.compile_cache.archives.settled()
    assert not marker.exists() and not archives_in(tmp_path / "cache")
    outcome, _, _ = await run_bot(runner, "java", "hello")  # and the bot still runs
    assert outcome.status == "succeeded", outcome.error


@on_each_jdk
@pytest.mark.parametrize(
    "bot, payload",
    [
        ("hello", {"x": 1}),
        ("simulate", {"durationMs": 10, "failureRate": 0}),
        ("batch_process", {"records": 300, "batchSize": 100}),
    ],
)
async def test_bundled_java_bots_run_on_each_jdk(feature, bot, payload, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / f"jdk{feature}-cache"  # shared by the params
    cache.mkdir(exist_ok=True)
    runner = runner_on(feature, BUNDLED_BOTS, cache)
    for _ in range(2):  # without the archive, then with it
        outcome, _, _ = await run_bot(runner, "java", bot, payload)
        assert outcome.status == "succeeded", outcome.error
        await runner.compile_cache.archives.settled()
    assert runner.compile_cache.archives.built <= 1
    if bot == "simulate":
        assert outcome.result["version"].startswith(f"{feature}.")
