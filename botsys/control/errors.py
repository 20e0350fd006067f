"""The one error of the control plane's validators: a field the API names, and why."""

from __future__ import annotations


class FieldInvalid(ValueError):
    """A field with a bad value; ``field`` names it as the API shows it (``cadence.max``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
