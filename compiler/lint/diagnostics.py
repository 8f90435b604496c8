"""The one shape every stage reports problems in: a ruff-style diagnostic."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

COMMAND_LINE = "<command line>"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Location:
    """Where a value was set: a file (shown relative to the working directory) or the command line."""

    file: str
    line: int = 1
    col: int = 1

    @classmethod
    def in_file(cls, path: str | os.PathLike, line: int = 1, col: int = 1) -> "Location":
        return cls(display_path(path), line, col)


def display_path(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    key: str | None
    location: Location
    fix: str | None = None
    composition: tuple[str, ...] = field(default=(), compare=False)

    @property
    def dedupe_key(self) -> tuple:
        return (self.code, self.location, self.key, self.message)

    def to_json(self) -> dict:
        d = asdict(self)
        loc = d.pop("location")
        d["severity"] = self.severity.value
        d.update(file=loc["file"], line=loc["line"], col=loc["col"])
        d["composition"] = list(self.composition)
        return d
