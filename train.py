"""Train a LoRA / QLoRA run from the composed config: ``python train.py lora=r16 schedule=cosine``.

A Hydra app kept tiny: compose, lint (errors stop it with the same diagnostics as
``loracfg lint``), compile, hand the plan to the runner, and return the run's eval loss (what
Hydra's sweepers optimize).
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from pathlib import Path

import hydra

from compiler.compose import register_search_path_plugin
from compiler.files import write_json
from compiler.sweep import POINTER, run_overrides
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from compiler import hf, report
    from compiler.cli import summary
    from compiler.pipeline import compile_run
    from compiler.settings import load as load_settings

    hc = HydraConfig.get()
    overrides = run_overrides(hc.overrides.task)
    # In a sweep one failing point must not take the others down: it is recorded, and returns NaN.
    multirun = hc.mode == RunMode.MULTIRUN
    point = Point(Path(hc.runtime.output_dir) / POINTER, overrides)

    def fail(message: str) -> float:
        point.record("failed", error=message)
        if multirun:
            print(f"train.py: point {' '.join(overrides)} failed: {message}", file=sys.stderr)
            return math.nan
        sys.exit(f"train.py: error: {message}")

    try:
        hf.require_train_extra("train")
    except hf.MissingExtra as e:
        return fail(str(e))
    # Hydra composed cfg from these overrides already: it is linted as it is, not composed a second time
    compiled = compile_run(overrides, Path(__file__).resolve().parent / "conf", load_settings(),
                           composed=(cfg, dict(hc.runtime.choices)))
    if compiled.lint.diagnostics:
        print(report.render(compiled.lint, "text"), file=sys.stderr)
    if not compiled.ok:
        return fail(f"lint errors: {', '.join(sorted({d.code for d in compiled.lint.diagnostics}))}")
    print(summary(compiled.plan, compiled.notes))
    from runner.errors import RunError
    from runner.run import Preempted, eval_metric, run, run_dir_of

    point.run_dir = str(run_dir_of(compiled.plan))
    point.record("running")
    try:
        metrics = run(compiled.plan, objects=compiled.objects)
    except RunError as e:
        return fail(str(e))
    except Preempted as e:
        point.record("interrupted", error=str(e))
        print(f"train.py: {e}; run the same command again to resume", file=sys.stderr)
        sys.exit(128 + e.signum)
    except Exception as e:  # noqa: BLE001 - a crashed point is recorded; outside a sweep it still raises
        if not multirun:
            raise
        traceback.print_exc()
        return fail(f"{type(e).__name__}: {e}")
    point.record("finished")
    return eval_metric(metrics)


class Point:
    """The pointer file in Hydra's job directory that `loracfg report` reads: overrides, run dir, status."""

    def __init__(self, path: Path, overrides: list[str]):
        self.path, self.overrides, self.run_dir = path, overrides, None

    def record(self, status: str, **extra: str) -> None:
        write_json(self.path, {"overrides": self.overrides, "run_dir": self.run_dir, "status": status,
                               "slurm_job_id": os.environ.get("SLURM_JOB_ID"), **extra})


if __name__ == "__main__":
    register_search_path_plugin()
    main()
