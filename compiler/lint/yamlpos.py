"""Key paths of a composed config (`value_at`, `join`) and the line and column of every key of a YAML file, which
Hydra and OmegaConf do not keep."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Positions = dict[str, tuple[int, int]]


def value_at(config: Any, key: str, default: Any = None) -> Any:
    """The value at a full key (``lora.target_modules[0]``) of a composed config, else ``default``."""
    node: Any = config
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(node, list) or idx >= len(node):
                return default
            node = node[idx]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


def join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _walk(node: yaml.Node, prefix: str, out: Positions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = join(prefix, key_node.value)
            out[key] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            _walk(value_node, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = join(prefix, i)
            out[key] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, key, out)


@lru_cache(maxsize=512)
def _positions(path: str, mtime_ns: int) -> Positions:
    with open(path, encoding="utf-8") as f:
        node = yaml.compose(f, Loader=_Loader)
    out: Positions = {}
    if node is not None:
        _walk(node, "", out)
    return out


def positions(path: str | os.PathLike) -> Positions:
    """Map of dotted key (``a.b[0]``) -> (line, col) of its value, 1-based. Raises yaml.YAMLError."""
    path = os.fspath(path)
    return _positions(path, os.stat(path).st_mtime_ns)


@lru_cache(maxsize=512)
def _lines(path: str, mtime_ns: int) -> tuple[str, ...]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return tuple(f.read().splitlines())


def source_line(path: str | os.PathLike, line: int) -> str:
    try:
        lines = _lines(os.fspath(path), os.stat(path).st_mtime_ns)
    except OSError:
        return ""
    return lines[line - 1] if 0 < line <= len(lines) else ""
