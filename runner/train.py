"""The training app: ``loracfg train [OVERRIDES]`` (any repository) and ``python train.py`` (this checkout).

A Hydra app kept tiny: Hydra composes (so ``-m``/``--multirun``, ``--cfg job``, launchers, sweepers and
callbacks all work as in any Hydra app), then lint (errors stop it with the same diagnostics as
``loracfg lint``), compile, hand the plan to the runner, and return the run's eval loss (what Hydra's
sweepers optimize). The primary config dir is the user's ``conf/`` (this checkout's for train.py);
loracfg's shipped groups come after it through the search-path plugin.
"""

from __future__ import annotations

import math
import sys
import traceback
from pathlib import Path
from typing import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from loracfg.compiler.sweep.points import POINTER, Point, main_config_dir, run_overrides
from omegaconf import DictConfig


def task(cfg: DictConfig) -> float | None:
    from loracfg.compiler.lint import render
    from loracfg.compiler.pipeline import compile_run
    from loracfg.compiler.plan import hf
    from loracfg.compiler.plan.summary import summary
    from loracfg.compiler.settings import load as load_settings

    hc = HydraConfig.get()
    overrides = run_overrides(hc.overrides.task)
    # In a sweep one failing point must not take the others down: it is recorded, and returns NaN.
    multirun = hc.mode == RunMode.MULTIRUN
    point = Point(Path(hc.runtime.output_dir) / POINTER, overrides)

    def fail(message: str) -> float:
        point.record("failed", error=message)
        if multirun:
            print(f"loracfg train: point {' '.join(overrides)} failed: {message}", file=sys.stderr)
            return math.nan
        sys.exit(f"loracfg train: error: {message}")

    try:
        hf.require_train_extra("train")
    except hf.MissingExtra as e:
        return fail(str(e))
    from loracfg.runner.launch import slurm_tasks

    # Hydra composed cfg from these overrides already: it is linted as it is, not composed a second time. A task
    # of a SLURM step of several builds its objects only once it has joined the run as its rank (below): the
    # TrainingArguments fix the process's distributed state when they are built
    compiled = compile_run(overrides, main_config_dir(hc), load_settings(), composed=(cfg, dict(hc.runtime.choices)),
                           build_objects=slurm_tasks() <= 1)
    if compiled.lint.diagnostics:
        print(render.render(compiled.lint, "text"), file=sys.stderr)
    if not compiled.ok:
        return fail(f"lint errors: {', '.join(sorted({d.code for d in compiled.lint.diagnostics}))}")
    print(summary(compiled.plan, compiled.notes))
    from loracfg.runner.errors import RunError
    from loracfg.runner.launch import join_slurm_tasks, rank, start
    from loracfg.runner.run import Preempted, eval_metric, run_dir_of

    point.run_dir = str(run_dir_of(compiled.plan))
    try:
        if join_slurm_tasks(compiled.plan):  # the tasks share the job's directory: rank 0 keeps the pointer
            point.writes = rank() == 0
    except RunError as e:
        return fail(str(e))
    point.record("running")
    try:
        metrics = start(compiled.plan, objects=compiled.objects)  # torch.distributed.run where it needs more processes
    except RunError as e:
        return fail(str(e))
    except Preempted as e:
        point.record("interrupted", error=str(e))
        print(f"loracfg train: {e}; run the same command again to resume", file=sys.stderr)
        sys.exit(128 + e.signum)
    except Exception as e:  # noqa: BLE001 - a crashed point is recorded; outside a sweep it still raises
        if not multirun:
            raise
        traceback.print_exc()
        return fail(f"{type(e).__name__}: {e}")
    point.record("finished")
    return eval_metric(metrics)


def main(config_dir: Path | None = None, argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Run the app with ``config_dir`` as Hydra's primary config dir: the given one, else ``./conf`` where it
    exists, else loracfg's shipped ``conf/``. ``argv`` (Hydra's command line) defaults to ``sys.argv[1:]``."""
    from loracfg.compiler.lint.compose import register_search_path_plugin
    from loracfg.compiler.resources import shipped_conf_dir

    if config_dir is None:
        config_dir = Path("conf") if Path("conf").is_dir() else shipped_conf_dir()
    if argv is not None or prog is not None:
        sys.argv = [prog or sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    register_search_path_plugin()
    hydra.main(version_base="1.3", config_path=str(Path(config_dir).resolve()), config_name="config")(task)()
