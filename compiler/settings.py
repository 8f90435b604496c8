"""Project settings from ``pyproject.toml`` ``[tool.loracfg]``, found the way ruff finds its own."""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SettingsError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    ignore: frozenset[str] = frozenset()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    path: Path | None = None
    root: Path = field(default_factory=Path.cwd)

    def ignored(self, code: str, file: str) -> bool:
        if code in self.ignore:
            return True
        for pattern, codes in self.per_file_ignores:
            if code in codes and (fnmatch.fnmatch(file, pattern) or fnmatch.fnmatch(Path(file).name, pattern)):
                return True
        return False


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has a ``[tool.loracfg]`` table."""
    for d in [start, *start.parents]:
        p = d / "pyproject.toml"
        if p.is_file():
            try:
                text = p.read_text(encoding="utf-8")
                if "loracfg" in tomllib.loads(text).get("tool", {}):
                    return p
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                if "tool.loracfg" in p.read_bytes().decode("utf-8", "replace"):  # ours, but unreadable: say so
                    raise SettingsError(f"{p}: not valid TOML ({e}); loracfg reads its [tool.loracfg] table "
                                        f"from this file") from e
                continue
            except OSError:
                continue
    return None


def _codes(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise SettingsError(f"{where} must be a list of rule codes, e.g. [\"L006\"]")
    return frozenset(c.strip().upper() for c in value)


def load(start: Path | None = None) -> Settings:
    path = find_pyproject((start or Path.cwd()).resolve())
    if path is None:
        return Settings()
    table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["loracfg"]
    unknown = set(table) - {"ignore", "per-file-ignores"}
    if unknown:
        raise SettingsError(f"{path}: unknown key(s) in [tool.loracfg]: {', '.join(sorted(unknown))}; "
                            f"known keys: ignore, per-file-ignores")
    ignore = _codes(table.get("ignore", []), f"{path}: [tool.loracfg] ignore")
    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise SettingsError(f"{path}: [tool.loracfg] per-file-ignores must be a table of glob = [codes]")
    per_file = tuple((glob, _codes(v, f"{path}: per-file-ignores '{glob}'")) for glob, v in pfi.items())
    return Settings(ignore, per_file, path, path.parent)
