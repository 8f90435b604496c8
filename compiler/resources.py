"""Where loracfg's shipped files live: ``conf/`` and ``schemas/``.

In a source checkout (and an editable install) they sit beside ``compiler/`` at the
repository root; a built wheel carries them inside the package as ``loracfg/compiler/_shipped/``
(see ``[tool.setuptools.package-dir]`` in pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def _shipped(name: str) -> Path:
    for candidate in (_HERE / "_shipped" / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"loracfg's shipped '{name}/' folder is missing from {_HERE}; reinstall loracfg")


def shipped_conf_dir() -> Path:
    return _shipped("conf")


def schemas_dir() -> Path:
    return _shipped("schemas")
