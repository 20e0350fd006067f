"""A replica that drained must end: whatever is stuck after the cleanup (a thread that never
returns) gets serve.EXIT_AFTER_CLEANUP_S, then the stacks go to stderr and the process exits 1."""

from __future__ import annotations

import subprocess
import sys
import time

STUCK_AFTER_CLEANUP = """
import asyncio, threading
import botsys.serve as serve
serve.EXIT_AFTER_CLEANUP_S = 0.5
asyncio.run(serve._bound_the_exit(None))
threading.Thread(target=threading.Event().wait, name="stuck").start()  # joined at exit: never
"""


def test_a_thread_stuck_after_cleanup_cannot_keep_the_process_alive():
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", STUCK_AFTER_CLEANUP], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 1, run
    assert "Timeout" in run.stderr and "Thread" in run.stderr, run.stderr  # every stack
    assert time.monotonic() - t0 < 20  # the bound, not the test's own timeout


def test_a_clean_exit_is_not_held_up():
    code = STUCK_AFTER_CLEANUP.split("threading.Thread")[0]  # armed, and nothing stuck
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stderr == "", run


STUCK_IN_SHUTDOWN = """
import asyncio, threading
import botsys.serve as serve
asyncio.run(serve._bound_the_shutdown(0.5, None))
threading.Event().wait()  # a shutdown step that never returns
"""


def test_a_shutdown_that_never_ends_is_cut_at_its_budget_with_the_stacks():
    """The whole shutdown is bounded, not only what follows the cleanup: a drain step waiting
    forever (seen: a background loop that lost its cancel) ends the process."""
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", STUCK_IN_SHUTDOWN], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 1, run
    assert "Timeout" in run.stderr and "Thread" in run.stderr, run.stderr
    assert time.monotonic() - t0 < 20


def test_the_shutdown_budget_covers_every_wait_a_clean_shutdown_may_take():
    from botsys.serve import SHUTDOWN_TIMEOUT_S, shutdown_budget_s
    from tests.conftest import make_settings

    s = make_settings(**{"server.drain_timeout_s": 30.0})
    legit = SHUTDOWN_TIMEOUT_S + s.webhooks.timeout_s + s.engine.lease_ms / 1000 + 30.0
    assert shutdown_budget_s(s) >= legit + 10  # and room for re-cancels and closing clients
