"""The HTTP layer. Only the app factory imports it: ``setup_api(app)`` installs middlewares,
routes and the OpenAPI document."""

from __future__ import annotations

from .setup import setup_api

__all__ = ["setup_api"]
