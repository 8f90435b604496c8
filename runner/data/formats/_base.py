"""The one example form every format adapter produces, and the error a bad row raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")
# Roles as files name them (OpenAI, ShareGPT, Gemini); data.role_map adds to these.
ROLE_MAP = {"system": "system", "user": "user", "assistant": "assistant", "human": "user", "gpt": "assistant",
            "bot": "assistant", "model": "assistant"}


class BadRow(Exception):
    """A row this format cannot use; the caller adds the row's file:line."""


@dataclass
class Example:
    """``text`` for text and classification rows (``label`` for the latter); ``turns`` ((role, content), roles
    system/user/assistant) for completion, alpaca and messages rows, rendered by the chat template; ``words``
    and one tag per word for token-cls rows."""

    text: str | None = None
    label: int | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)


def column(row: dict[str, Any], name: str, key: str) -> Any:
    if name not in row or row[name] is None:
        has = sorted(k for k, v in row.items() if v is not None and not k.startswith("_"))
        raise BadRow(f"no '{name}' column (data.{key}); the row has {has}")
    return row[name]


def string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRow(f"{what} is {type(value).__name__}, not a string")
    return value
