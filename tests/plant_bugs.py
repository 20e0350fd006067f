"""Plant, one at a time, the bugs that once slipped through the suite (issue 22), each in a
fresh copy of the repository, and check that the tests written for them fail; the same tests
must pass on an unplanted copy first. The working tree is never touched.

    .venv/bin/python -m tests.plant_bugs           # exit 0: every planted bug was caught
    .venv/bin/python -m tests.plant_bugs --slow    # also the fd leak (a 1000-job fault test)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plant:
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    slow: bool = False


PLANTS = [
    Plant(
        "leases are never renewed",
        "botsys/orchestrator.py",
        "            await self.renew_leases()\n",
        "            pass\n",
        (
            "tests/integration/test_orchestrator.py::"
            "test_a_job_longer_than_several_leases_keeps_its_lease_and_runs_once",
        ),
    ),
    Plant(  # the waits of these tests are events: a hang must fail them, not pass
        "a reservation given back wakes no dispatcher that waits for room",
        "botsys/orchestrator.py",
        "            self._room.set()  # a dispatcher may be waiting for the room this reservation held\n",
        "            pass\n",
        (
            "tests/integration/test_orchestrator.py::"
            "test_a_burst_of_enqueues_beyond_the_local_cap_cannot_stall_the_dispatcher",
        ),
    ),
    Plant(
        "a lease found lost does not stop the bot",
        "botsys/orchestrator.py",
        "                    a.stop(LEASE_LOST)\n",
        "                    pass\n",
        (
            "tests/integration/test_orchestrator.py::test_lost_lease_stops_the_bot_and_writes_nothing",
        ),
    ),
    Plant(
        "a name:port allow entry lets the name's addresses through on any port",
        "botsys/webhooks/guard.py",
        "remembered_port = port if (_normal_host(host), port) in self._allow.name_ports else None",
        "remembered_port = None",
        (
            "tests/webhooks/test_guard.py::"
            "test_connect_layer_alone_keeps_a_name_port_entry_to_its_port",
        ),
    ),
    Plant(
        "the fault harness retries a 500",
        "tests/faults/harness.py",
        "RETRYABLE = (0, 503)",
        "RETRYABLE = (0, 500, 503)",
        ("tests/faults/test_harness.py::test_a_500_fails_at_once",),
    ),
    Plant(
        "the fault samplers swallow every exception",
        "tests/faults/samplers.py",
        "        except self.TRANSIENT:",
        "        except Exception:",
        ("tests/faults/test_harness.py::test_a_sampler_that_breaks_fails_the_test",),
    ),
    Plant(
        "the access log's duration_ms is in seconds",
        "botsys/api/headers.py",
        '"duration_ms": round(elapsed * 1000, 2),',
        '"duration_ms": round(elapsed, 2),',
        ("tests/api/test_security.py::test_access_log_line_without_secrets",),
    ),
    Plant(
        "lib.lua spells the log key itself, not from KEY",
        "botsys/store/lua/lib.lua",
        "redis.call('EXPIRE', key(KEY.log, id), ttl)",
        "redis.call('EXPIRE', key('log', id), ttl)",
        (
            "tests/integration/test_scripts.py::"
            "test_scripts_use_only_the_keys_the_keys_module_names",
        ),
    ),
    Plant(
        "one attempt in 32 leaks a pipe",
        "botsys/orchestrator.py",
        "    def _start_attempt(self, claim: Claim) -> None:\n",
        "    def _start_attempt(self, claim: Claim) -> None:\n"
        "        __import__('os').pipe() if claim.job_id.endswith('Z') else None\n",
        ("tests/faults/test_hygiene.py",),
        slow=True,
    ),
]


def copy_repo(dest: Path) -> None:
    """The tracked files, as committed or edited (no .venv, no caches)."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src, dst = ROOT / name.decode(), dest / name.decode()
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            dst.chmod(src.stat().st_mode)


def run_tests(copy: Path, tests: tuple[str, ...]) -> int:
    """pytest in the copy: its botsys and tests shadow the editable install (cwd comes first)."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *tests]
    return subprocess.run(cmd, cwd=copy, capture_output=True).returncode


def check(plant: Plant) -> str | None:
    """None if the tests pass unplanted and fail planted; otherwise what went wrong."""
    with tempfile.TemporaryDirectory(prefix="botsys-plant-") as tmp:
        copy = Path(tmp)
        copy_repo(copy)
        if run_tests(copy, plant.tests) != 0:
            return "the tests fail without the bug"
        target = copy / plant.path
        text = target.read_text()
        if text.count(plant.old) != 1:
            return f"the line to change is not in {plant.path} exactly once"
        target.write_text(text.replace(plant.old, plant.new))
        if run_tests(copy, plant.tests) == 0:
            return "NOT CAUGHT: the tests still pass"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="include the slow fault tests")
    args = parser.parse_args()
    failed = 0
    for plant in PLANTS:
        if plant.slow and not args.slow:
            print(f"skipped (--slow): {plant.what}")
            continue
        problem = check(plant)
        failed += problem is not None
        print(
            f"{'caught' if problem is None else 'FAILED'}: {plant.what}"
            + (f" — {problem}" if problem else "")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
