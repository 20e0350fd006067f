"""Browser fixtures: Debian's chromium driven by Playwright (no downloaded browser), against
real `python -m botsys serve` replicas on a private redis-server, loopback only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import cluster, redis  # noqa: F401 — shared fixtures
from tests.support.procs import start_mock_webhook
from tests.support.requires import require, require_module

CHROMIUM = "/usr/bin/chromium"
# No first-run, sync, component updates or QUIC: the browser talks to 127.0.0.1 only.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


# Package scope: sync Playwright runs an event loop of its own in this thread; it must be
# stopped before the suites after this package run their asyncio tests.
@pytest.fixture(scope="package")
def browser():
    sync_api = require_module("playwright.sync_api", "pip install -e '.[test]'")
    require(
        shutil.which(CHROMIUM) is not None,
        "apt-get install chromium (Debian's build; never `playwright install`)",
    )
    sync_api.expect.set_options(timeout=10_000)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh context per test (empty sessionStorage: no key carried over). Script errors
    and CSP violations fail the test: the page must run under its own strict policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda err: problems.append(f"pageerror: {err}"))
    pg.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and problems.append(msg.text),
    )
    yield pg
    context.close()
    assert not problems, problems


@pytest.fixture(scope="session")
def mock_webhook(tmp_path_factory):
    mock = start_mock_webhook(tmp_path_factory.mktemp("mock"))
    yield mock
    mock.stop()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: the test's tmp dir (and docs/img when asked)."""
    out = tmp_path / "screenshots"
    out.mkdir()
    return out
