"""conf -> compose -> schema -> rules -> plan -> Hugging Face objects, for ``loracfg compile`` and ``train.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from loracfg.compiler.lint.check import (
    LintResult,
    check_adopted,
    check_composition,
    default_config_dir,
    finalize,
)
from loracfg.compiler.lint.compose import Composer
from loracfg.compiler.plan import build as plan_module
from loracfg.compiler.settings import Settings


@dataclass
class Compiled:
    lint: LintResult
    plan: dict[str, Any] | None = None
    objects: Any = None  # loracfg.compiler.plan.hf.HFObjects
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None and not self.lint.has_errors


def compile_run(overrides: Sequence[str] = (), config_dir: Path | None = None, settings: Settings | None = None,
                build_objects: bool = True, composed: tuple[Any, dict[str, str]] | None = None) -> Compiled:
    """Lint one composition; when it has no error, plan it for the installed versions and build the objects.

    ``composed``: (cfg, choices) that a Hydra app (train.py) already composed from these overrides; it is
    linted as it is instead of being composed again. Needs the train extra
    (``loracfg.compiler.plan.hf.require_train_extra`` says so) for everything after lint.
    """
    from loracfg.compiler.plan import hf

    settings = settings or Settings()
    root = config_dir or default_config_dir()
    result = LintResult(compositions=1)
    with Composer(root) as composer:
        if composed is not None:
            comp, diags = check_adopted(composer, composed[0], overrides, composed[1])
        else:
            comp, diags = check_composition(composer, overrides)
        finalize(diags, settings, result)
        if comp is None or result.has_errors:
            return Compiled(result)
        plan, hf_diags = hf.specialize(plan_module.build(comp), comp.locate)
        objects = hf.to_hf(plan, comp.locate) if build_objects and not hf_diags else None
        if objects is not None:
            hf_diags += objects.diagnostics
    finalize(hf_diags, settings, result)
    if result.has_errors:
        return Compiled(result)
    return Compiled(result, plan, objects, objects.notes if objects else [])
