"""Tests that need a tool, a module or a privilege: skipped on a developer's machine that
lacks it, failed in CI (``CI=true``), where scripts/test.sh installs everything and a skip
would turn a missing check into a green run."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(ok: bool, missing: str) -> None:
    """Go on if ``ok``; otherwise skip, or fail in CI. ``missing`` names what is missing and
    how to get it."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"CI=true and this test cannot run: {missing}", pytrace=False)
    pytest.skip(missing, allow_module_level=True)


def require_tool(name: str, how: str) -> str:
    """The path of command ``name``; ``how`` says how to install it."""
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed ({how})")
    return path or ""


def require_module(name: str, how: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, f"python module {name} is missing ({how})")
        raise  # not reached: require skipped or failed


def require_root(why: str) -> None:
    require(os.geteuid() == 0, f"needs root: {why}")
