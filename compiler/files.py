"""Writing files whole or not at all: a crash never leaves half a plan, metric file or pointer behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json(path: Path, value: Any) -> None:
    write_atomically(path, json.dumps(value, indent=2, default=str) + "\n")
