"""Every bundled bot, in every language, through the real ProcessRunner and real subprocesses."""

from __future__ import annotations

import statistics

import pytest

from botsys.runners.process import ProcessRunner

from .conftest import BUNDLED_BOTS, make_settings, run_bot

FAST = {"durationMs": 40, "failureRate": 0}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, java_cache):
    return ProcessRunner(make_settings(BUNDLED_BOTS, java_cache))


@pytest.mark.parametrize("bot_type", ["python", "node", "java"])
async def test_simulate(bundled, bot_type):
    outcome, sink, elapsed = await run_bot(bundled, bot_type, "simulate", FAST)
    assert outcome.status == "succeeded", outcome.error
    assert sink.progress_values == [25, 50, 75, 100]
    result = outcome.result
    assert result["processed"] is True and result["botType"] == bot_type
    assert result["input"] == FAST
    assert len(sink.pids) == 1 and any("simulate" in line for line in sink.logs)


@pytest.mark.parametrize("bot_type", ["python", "node", "java"])
async def test_simulate_failure_rate_from_payload(bundled, bot_type):
    outcome, _, _ = await run_bot(
        bundled, bot_type, "simulate", {"durationMs": 0, "failureRate": 1}
    )
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert f"Simulated {bot_type} bot execution error" in outcome.error


@pytest.mark.parametrize("bot_type", ["python", "node", "java"])
async def test_hello(bundled, bot_type):
    outcome, _, elapsed = await run_bot(bundled, bot_type, "hello", {"x": 1})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["hello"] == bot_type, f"took {elapsed:.3f} s"


async def test_python_data_analysis(bundled):
    numbers = [3, 1, 4, 1, 5, 9, 2, 6]
    outcome, sink, _ = await run_bot(bundled, "python", "data_analysis", {"numbers": numbers})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {
        "count": 8,
        "sum": 31,
        "mean": statistics.fmean(numbers),
        "median": 3.5,
        "stdev": statistics.stdev(numbers),
        "min": 1,
        "max": 9,
    }
    assert sink.progress_values[-1] == 100


async def test_python_data_analysis_rejects_bad_input(bundled):
    outcome, _, _ = await run_bot(bundled, "python", "data_analysis", {"numbers": [1, "two"]})
    assert outcome.status == "failed" and outcome.exit_code == 2
    assert "non-numbers" in outcome.error


async def test_node_process_api(bundled):
    payload = {
        "data": [
            {"id": 1, "user": {"name": "ann", "city": "oslo"}, "secret": "x"},
            {"id": 2, "user": {"name": "bob"}},
        ],
        "pick": ["id", "user.name", "user.city"],
        "rename": {"user.name": "userName"},
        "defaults": {"city": "unknown"},
        "uppercase": ["userName", "city"],
    }
    outcome, _, _ = await run_bot(bundled, "node", "process_api", payload)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {
        "count": 2,
        "items": [
            {"id": 1, "userName": "ANN", "city": "OSLO"},
            {"id": 2, "userName": "BOB", "city": "UNKNOWN"},
        ],
    }


async def test_java_batch_process(bundled):
    outcome, sink, _ = await run_bot(
        bundled, "java", "batch_process", {"records": 1000, "batchSize": 250}
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["processed"] == 1000 and outcome.result["batches"] == 4
    assert outcome.result["totals"]["id"] == sum(range(1000))
    assert sink.progress_values == [25, 50, 75, 100]
