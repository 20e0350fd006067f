"""Java: each source compiles once (per content hash); later runs skip javac."""

from __future__ import annotations

import asyncio

from botsys.runners.process import ProcessRunner

from .conftest import BUNDLED_BOTS, RecordingSink, make_settings, run_bot, spec, write_bot


def fresh_runner(bots_dir, tmp_path) -> ProcessRunner:
    cache = tmp_path / "cache"
    return ProcessRunner(make_settings(bots_dir, cache))


async def test_second_run_skips_compilation(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "hello", (BUNDLED_BOTS / "java" / "hello.java").read_text())
    runner = fresh_runner(bots_dir, tmp_path)
    first, _, t_first = await run_bot(runner, "java", "hello")
    second, _, t_second = await run_bot(runner, "java", "hello")
    assert first.status == second.status == "succeeded", first.error or second.error
    assert runner.compile_cache.compiles == 1
    assert t_second < t_first / 2, f"first run {t_first:.3f} s, second {t_second:.3f} s"
    builds = list((tmp_path / "cache" / "java").iterdir())
    assert len(builds) == 1 and (builds[0] / "hello.class").is_file()
    # a new server process (same cache folder) does not compile again either
    third = fresh_runner(bots_dir, tmp_path)
    outcome, _, _ = await run_bot(third, "java", "hello")
    assert outcome.status == "succeeded" and third.compile_cache.compiles == 0


async def test_concurrent_first_runs_compile_once(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "hello", (BUNDLED_BOTS / "java" / "hello.java").read_text())
    runner = fresh_runner(bots_dir, tmp_path)
    outcomes = await asyncio.gather(*(run_bot(runner, "java", "hello") for _ in range(3)))
    assert [o.status for o, _, _ in outcomes] == ["succeeded"] * 3
    assert runner.compile_cache.compiles == 1


async def test_editing_the_source_recompiles(bots_dir, tmp_path):
    source = (BUNDLED_BOTS / "java" / "hello.java").read_text()
    write_bot(bots_dir, "java", "hello", source)
    runner = fresh_runner(bots_dir, tmp_path)
    await run_bot(runner, "java", "hello")
    write_bot(bots_dir, "java", "hello", source.replace('\\"java\\"', '\\"java v2\\"'))
    outcome, _, _ = await run_bot(runner, "java", "hello")
    assert outcome.result["hello"] == "java v2" and runner.compile_cache.compiles == 2


async def test_compile_error_fails_with_the_compiler_message(bots_dir, tmp_path):
    write_bot(bots_dir, "java", "broken", "public class broken { this is not java }\n")
    runner = fresh_runner(bots_dir, tmp_path)
    sink = RecordingSink()
    outcome = await runner.run(spec("java", "broken"), sink)
    assert outcome.status == "failed"
    assert "compile failed" in outcome.error and "broken.java:1: error" in outcome.error
    assert sink.pids == []  # the bot itself never started
    again = await runner.run(spec("java", "broken"), RecordingSink())
    assert again.error == outcome.error and runner.compile_cache.compiles == 1  # remembered
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "cache" / "java").iterdir())
