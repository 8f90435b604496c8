"""A user's mistake found while running a plan: one paragraph naming the key and the fix, exit 1."""

from __future__ import annotations


class RunError(Exception):
    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (key: {self.key})" if self.key else text
