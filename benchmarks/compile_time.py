"""How long `loracfg compile` takes for the embedded default, and how much of it is importing the stack.

Whole processes, interleaved, medians:
- `loracfg compile -o plan.json` (compose, lint, plan, specialize, build the objects, write)
- `python -c "<the imports loracfg.compiler.plan.hf makes>"` (torch, transformers' TrainingArguments, Trainer,
  BitsAndBytesConfig, peft's LoraConfig): the share that is importing
- `loracfg lint conf/config.yaml` (the part before the training stack)

    python benchmarks/compile_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import medians, time_commands  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = ("import torch, transformers, peft\nfrom transformers import TrainingArguments, Trainer, BitsAndBytesConfig\n"
           "from peft import LoraConfig")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    loracfg = shutil.which("loracfg", path=str(Path(sys.executable).parent)) or "loracfg"
    out = Path(tempfile.mkdtemp()) / "plan.json"
    commands = {
        "loracfg compile (embedded default)": [loracfg, "compile", "-o", str(out)],
        "import torch + transformers + peft classes": [sys.executable, "-c", IMPORTS],
        "loracfg lint conf/config.yaml": [loracfg, "lint", "conf/config.yaml"],
    }
    times = time_commands(commands, args.repeats, ROOT)
    med = medians(times)
    for name, t in med.items():
        print(f"{name:45s} {t * 1000:7.0f} ms median (n={args.repeats})")
    total, imports = med["loracfg compile (embedded default)"], med["import torch + transformers + peft classes"]
    print(f"\nimporting the training stack is {imports / total:.0%} of `loracfg compile`")


if __name__ == "__main__":
    main()
