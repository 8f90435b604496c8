"""Train a LoRA / QLoRA run from the composed config: ``python train.py lora=r16 schedule=cosine``.

A Hydra app kept tiny: compose, lint (errors stop it with the same diagnostics as
``loracfg lint``), then compile and run. Compiling and running land with the compiler and
runner issues; until then this lints the composition and says so.
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
    from compiler import report
    from compiler.lint import lint
    from compiler.settings import load as load_settings

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    result = lint(overrides, config_dir=Path(__file__).resolve().parent / "conf", settings=load_settings())
    if result.diagnostics:
        print(report.render(result, "text"), file=sys.stderr)
    if result.has_errors:
        sys.exit(1)
    sys.exit("train.py: the config lints clean, but compiling it into Hugging Face objects and training it are "
             "not implemented yet (compiler and runner issues); use `loracfg lint` meanwhile")


if __name__ == "__main__":
    register_search_path_plugin()
    main()
