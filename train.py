"""Train a LoRA / QLoRA run from the composed config: ``python train.py lora=r16 schedule=cosine``.

A Hydra app kept tiny: compose, lint (errors stop it with the same diagnostics as
``loracfg lint``), compile, hand the plan to the runner, and return the run's eval loss (what
Hydra's sweepers optimize).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra

from compiler.compose import register_search_path_plugin
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from compiler import hf, report
    from compiler.cli import summary
    from compiler.pipeline import compile_run
    from compiler.settings import load as load_settings

    overrides = list(HydraConfig.get().overrides.task)
    try:
        hf.require_train_extra("train")
    except hf.MissingExtra as e:
        sys.exit(f"train.py: {e}")
    compiled = compile_run(overrides, Path(__file__).resolve().parent / "conf", load_settings())
    if compiled.lint.diagnostics:
        print(report.render(compiled.lint, "text"), file=sys.stderr)
    if not compiled.ok:
        sys.exit(1)
    print(summary(compiled.plan, compiled.notes))
    from runner.errors import RunError
    from runner.run import Preempted, eval_metric, run

    try:
        return eval_metric(run(compiled.plan, objects=compiled.objects))
    except RunError as e:
        sys.exit(f"train.py: error: {e}")
    except Preempted as e:
        print(f"train.py: {e}; run the same command again to resume", file=sys.stderr)
        sys.exit(128 + e.signum)


if __name__ == "__main__":
    register_search_path_plugin()
    main()
