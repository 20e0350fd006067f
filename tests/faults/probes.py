"""The probe bots' interval log and the sweep line over it (pure functions, unit-tested)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

BOTS_DIR = Path(__file__).resolve().parent / "bots"
PROBE = "fault_probe"


@dataclass
class Run:
    """One start of a probe bot: an attempt of a job in one process."""

    bot_type: str
    job_id: str
    attempt: int
    start_ns: int
    pid: int
    ppid: int
    end_ns: int | None = None  # None: killed before it could log its end

    @property
    def finished(self) -> bool:
        return self.end_ns is not None


def read_runs(path: Path) -> list[Run]:
    """Parse ``S``/``E`` lines into runs, one per (pid, start)."""
    runs: dict[tuple[int, int], Run] = {}
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "S" and len(f) == 7:
            key = (int(f[5]), int(f[4]))
            runs.setdefault(key, Run(f[1], f[2], int(f[3]), int(f[4]), int(f[5]), int(f[6])))
        elif f[0] == "E" and len(f) == 8:
            key = (int(f[6]), int(f[4]))
            run = runs.setdefault(key, Run(f[1], f[2], int(f[3]), int(f[4]), int(f[6]), int(f[7])))
            run.end_ns = int(f[5])
    return sorted(runs.values(), key=lambda r: r.start_ns)


def max_overlap(intervals: Iterable[tuple[int, int]]) -> int:
    """Sweep line: the most intervals open at one instant. An interval ending at t does not
    overlap one starting at t (ends sort before starts)."""
    events = []
    for start, end in intervals:
        if end < start:
            raise ValueError(f"interval ends before it starts: {(start, end)}")
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def overlap_by_type(runs: Iterable[Run], end_of_killed: Callable[[Run], int]) -> dict[str, int]:
    """Max overlap per bot type; a run without an end line ends at ``end_of_killed(run)``."""
    by_type: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in runs:
        end = r.end_ns if r.end_ns is not None else end_of_killed(r)
        by_type[r.bot_type].append((r.start_ns, end))
    return {t: max_overlap(iv) for t, iv in by_type.items()}


def starts_per_job(runs: Iterable[Run]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in runs:
        out[r.job_id] += 1
    return dict(out)
