"""Small API helpers for the browser tests (the page is checked against what the API says)."""

from __future__ import annotations

import os
from pathlib import Path

from botsys.states import TERMINAL
from tests.support.procs import http, wait_for

# scripts/screenshot.sh sets this to docs/img to refresh the committed screenshots
SHOTS_ENV = "DASHBOARD_SCREENSHOT_DIR"


def docs_shots_dir() -> Path | None:
    value = os.environ.get(SHOTS_ENV)
    return Path(value) if value else None


def invoke(replica, headers=None, **body) -> str:
    status, reply, _ = http("POST", replica.url + "/invoke", body, headers)
    assert status == 202, reply
    return reply["jobId"]


def get_job(replica, job_id, headers=None) -> dict:
    status, reply, _ = http("GET", f"{replica.url}/job/{job_id}", headers=headers)
    assert status == 200, reply
    return reply


def wait_job(replica, job_id, cond=None, timeout=30.0, headers=None) -> dict:
    cond = cond or (lambda j: j["state"] in TERMINAL)
    return wait_for(
        lambda: (j := get_job(replica, job_id, headers)) and cond(j) and j,
        timeout,
        what=f"{job_id} condition",
    )
