"""Fixtures for the deploy checks; the helpers live in deploytools.py (importable by tests)."""

from .deploytools import prometheus  # noqa: F401 - a fixture, re-exported for pytest
