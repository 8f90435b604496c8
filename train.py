"""Train a LoRA / QLoRA run from this checkout's conf/: ``python train.py lora=r16 schedule=cosine``.

The example entry point; ``loracfg train`` is the same Hydra app for any repository (see
``loracfg.runner.train``). ``-m``, ``--cfg job``, launchers and sweepers work as in any Hydra app.
"""

from pathlib import Path

from loracfg.runner.train import main

if __name__ == "__main__":
    main(Path(__file__).resolve().parent / "conf")
