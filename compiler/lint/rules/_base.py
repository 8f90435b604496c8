"""What a rule sees (a schema-valid composed config) and what it returns (findings)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from loracfg.compiler.derived import Derived, derive
from loracfg.compiler.lint.compose import Composition
from loracfg.compiler.lint.diagnostics import Severity


@dataclass(frozen=True)
class Finding:
    key: str
    message: str
    fix: str | None = None
    severity: Severity | None = None  # None: the rule's own severity


class LintContext:
    def __init__(self, comp: Composition):
        self.comp = comp
        self.config = comp.config

    def get(self, key: str, default: Any = None) -> Any:
        return self.comp.get(key, default)

    @cached_property
    def derived(self) -> Derived:
        return derive(self.config)

    def where(self, key: str) -> str:
        loc = self.comp.locate(key)
        return f"{loc.file}:{loc.line}"


# The output heads: all-linear leaves them out, and the module lists a fix suggests never name them.
HEADS = ("lm_head", "classifier", "score")


def body_linear(linear: dict[str, Any]) -> list[str]:
    """The model's linear modules but its output heads (what ``all-linear`` adapts), in the model's order."""
    return [name for name in linear if name not in HEADS]


def fmt(x: float) -> str:
    """1e-4 -> '1e-04'-free human form: '0.0001' stays '1e-4'; 2.0 -> '2'; 0.25 -> '0.25'."""
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        mantissa, exp = f"{x:.3g}".split("e") if "e" in f"{x:.3g}" else (f"{x:.3g}", None)
        if exp is None:
            return mantissa
        return f"{mantissa}e{int(exp)}"
    return f"{x:.3g}"
