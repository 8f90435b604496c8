"""The points of a sweep: expanded, linted before launch, and each one's record in its job directory.

Sweeps are plain Hydra multirun. Hydra's compose API cannot expand sweep syntax
(``schedule.learning_rate=1e-4,2e-4``), so the points are expanded with Hydra's own override parser,
the way its BasicSweeper does (the cartesian product of every sweep override's values); ``preflight``
lints each and finds the ones whose run already finished. ``Point`` is the pointer file
(``loracfg.json``) the training app writes into each job directory, which ``report`` reads.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

POINTER = "loracfg.json"  # written by the training app into each Hydra job directory (Point)


def expand(overrides: Sequence[str]) -> list[list[str]]:
    """Every point of a sweep: each sweep override (a,b,c / range / choice) expanded, then the product.

    A continuous ``interval(lo, hi)`` (what Optuna samples from) has no points to enumerate: its two
    bounds stand in for it, so both ends of the search space are linted."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    axes = []
    for ov in parsed:
        key = ov.get_key_element()
        if ov.is_interval_sweep():
            interval = ov.value()
            axes.append([f"{key}={interval.start}", f"{key}={interval.end}"])
        elif ov.is_sweep_override():
            axes.append([f"{key}={value}" for value in ov.sweep_string_iterator()])
        else:
            axes.append([ov.input_line])
    return [list(point) for point in itertools.product(*axes)]


def enumerable(overrides: Sequence[str]) -> bool:
    """Whether expand() gives the sweep's real points (no interval searched by a sampler)."""
    return not any(ov.is_interval_sweep() for ov in OverridesParser.create().parse_overrides(list(overrides)))


def sweep_overrides(config: DictConfig) -> list[str]:
    """The sweep as Hydra's BasicSweeper sees it: hydra.sweeper.params first, then the command line."""
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)


def run_overrides(point: Sequence[str]) -> list[str]:
    """A point's overrides that shape the run (not Hydra's own settings or the sweep selector)."""
    return [o for o in point if not o.lstrip("+~").startswith(("hydra.", "hydra/", "sweep="))]


def main_config_dir(hydra_config: DictConfig) -> Path:
    """The app's primary config dir (Hydra's ``main`` config source), from the ``hydra`` node of the config."""
    for source in hydra_config.runtime.config_sources:
        if source.provider == "main" and source.schema == "file":
            return Path(source.path)
    from loracfg.compiler.resources import shipped_conf_dir

    return shipped_conf_dir()


def preflight(points: list[list[str]], config_dir: Path, out=sys.stderr) -> tuple[bool, list[Path | None]]:
    """Lint every point; (whether all are free of errors, each point's finished run dir or None)."""
    from loracfg.compiler.lint import render as lint_render
    from loracfg.compiler.lint.check import LintResult, check_composition, finalize
    from loracfg.compiler.lint.compose import Composer
    from loracfg.compiler.plan import build as plan_module
    from loracfg.compiler.settings import load as load_settings

    settings = load_settings()
    ok, finished = True, []
    with Composer(config_dir) as composer:
        for point in points:
            run = run_overrides(point)
            comp, diags = check_composition(composer, run)
            result = finalize(diags, settings, LintResult(compositions=1))
            if result.has_errors:
                ok = False
                print(f"sweep point {' '.join(run) or '(defaults)'} has errors:", file=out)
                print(lint_render.render(result, "text"), file=out)
                finished.append(None)
                continue
            built = plan_module.build(comp) if comp is not None else None
            run_dir = Path(built["training"]["TrainingArguments"]["output_dir"]) if built else None
            metrics = run_dir / "metrics.json" if run_dir else None
            done = bool(metrics and metrics.is_file() and json.loads(metrics.read_text()).get("finished"))
            finished.append(run_dir if done else None)
    return ok, finished


class Point:
    """The pointer file in Hydra's job directory that `loracfg report` reads: overrides, run dir, status."""

    def __init__(self, path: Path, overrides: list[str]):
        self.path, self.overrides, self.run_dir = path, overrides, None
        self.writes = True  # False in the other ranks of a point that runs as several SLURM tasks

    def record(self, status: str, **extra: str) -> None:
        from loracfg.compiler.files import write_json

        if not self.writes:
            return
        write_json(self.path, {"overrides": self.overrides, "run_dir": self.run_dir, "status": status,
                               "slurm_job_id": os.environ.get("SLURM_JOB_ID"), **extra})
