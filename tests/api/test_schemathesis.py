"""Schemathesis 4 against a real `python -m botsys serve`: every check, zero failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.requires import require, require_tool

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).parent / "st"  # the venv running the tests, whatever its name


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_schemathesis_finds_nothing():
    require(ST.exists(), f"no {ST} (pip install -e '.[test]')")
    require_tool("curl", "apt-get install curl; scripts/test.sh does")
    run = subprocess.run(
        [str(ROOT / "scripts" / "schemathesis.sh")],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable, "ST": str(ST)},
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout
