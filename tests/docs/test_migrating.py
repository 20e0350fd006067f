"""docs/MIGRATING.md keeps up with botsys: every variable of the original system, every metric
botsys exports and every route it serves is named on the page."""

from __future__ import annotations

import re

import pytest

from botsys.config import ENV_KEYS, ORIGINAL_ONLY_ENV, load_settings
from botsys.metrics import Metrics
from tests.support.procs import ROOT

PAGE = (ROOT / "docs" / "MIGRATING.md").read_text()

# The original system's own variables that botsys reads under the same name.
SHARED_ENV = [
    "API_GATEWAY_PORT",
    "MOCK_WEBHOOK_PORT",
    "MAX_PYTHON_BOTS",
    "MAX_NODE_BOTS",
    "MAX_JAVA_BOTS",
    "WEBHOOK_MAX_RETRIES",
    "WEBHOOK_RETRY_DELAY",
]


@pytest.mark.parametrize("name", [*SHARED_ENV, *ORIGINAL_ONLY_ENV])
def test_every_variable_of_the_original_is_mapped(name):
    assert f"`{name}`" in PAGE


def test_the_shared_variables_still_configure_botsys():
    assert set(SHARED_ENV) <= set(ENV_KEYS)


def test_every_exported_metric_is_mapped():
    metrics = Metrics(bot_types=["python"])
    names = {m.name for m in metrics.registry.collect()}
    ours = {n for n in names if not n.startswith(("process_", "python_"))}
    assert ours, names
    for name in ours:
        assert re.search(rf"`{name}(_total)?[{{`]", PAGE), f"{name} is not on MIGRATING.md"


def test_every_route_is_mapped():
    from botsys.app import create_app

    app = create_app(load_settings(environ={}))
    paths = {
        r.resource.canonical
        for r in app.router.routes()
        if r.method != "HEAD" and not r.resource.canonical.startswith(("/api-docs/", "/admin/"))
    }
    for path in paths:
        assert path in PAGE, f"{path} is not on MIGRATING.md"
