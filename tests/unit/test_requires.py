"""tests/support/requires: a missing tool skips locally and fails in CI."""

from __future__ import annotations

import pytest

from tests.support.requires import require, require_module, require_tool


@pytest.mark.parametrize("ci", ["", "false"])
def test_a_missing_tool_skips_outside_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool is not installed"):
        require_tool("no-such-tool", "apt-get install it")


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_missing_tool_fails_in_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI=true and this test cannot run"):
        require_module("no_such_module_here", "pip install it")


def test_what_is_there_passes(monkeypatch):
    monkeypatch.setenv("CI", "true")
    require(True, "nothing")
    assert require_tool("sh", "it is everywhere").endswith("/sh")
    assert require_module("json", "stdlib").dumps([]) == "[]"
