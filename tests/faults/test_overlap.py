"""The sweep-line overlap calculator and the probe-log parser (pure; no processes)."""

from __future__ import annotations

import pytest

from tests.faults.probes import max_overlap, overlap_by_type, read_runs, starts_per_job

pytestmark = [pytest.mark.faults]


def test_max_overlap_counts_open_intervals():
    assert max_overlap([]) == 0
    assert max_overlap([(0, 10)]) == 1
    assert max_overlap([(0, 10), (5, 15), (7, 8)]) == 3
    assert max_overlap([(0, 10), (11, 20), (21, 30)]) == 1


def test_touching_intervals_do_not_overlap():
    assert max_overlap([(0, 10), (10, 20)]) == 1, "an end at t comes before a start at t"


def test_a_bad_interval_is_refused():
    with pytest.raises(ValueError):
        max_overlap([(5, 4)])


def test_read_runs_pairs_starts_and_ends_and_keeps_killed_runs(tmp_path):
    log = tmp_path / "probe.log"
    log.write_text(
        "S python j1 1 100 11 1\n"
        "S node j2 1 150 12 1\n"
        "E python j1 1 100 200 11 1\n"
        "S python j1 2 300 13 2\n"
        "garbage line\n"
        "E python j1 2 300 400 13 2\n"
    )
    runs = read_runs(log)
    assert [(r.job_id, r.attempt, r.end_ns) for r in runs] == [
        ("j1", 1, 200),
        ("j2", 1, None),
        ("j1", 2, 400),
    ]
    assert starts_per_job(runs) == {"j1": 2, "j2": 1}
    assert overlap_by_type(runs, lambda r: 10_000) == {"python": 1, "node": 1}
    assert overlap_by_type(runs + [runs[0]], lambda r: r.start_ns)["python"] == 2
