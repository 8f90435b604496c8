"""`python train.py` against a hand-written transformers + peft script: same job, timed side by side.

Same model (tiny Llama from config, seed 42), data (tiny-patterns), steps, batch, optimizer and
seed; both on CPU, no held-out split (so no evaluation) and no checkpoints, both save the adapter. Whole processes, interleaved,
REPEATS each after a warm-up, medians. Also the time from process start to the end of the first
optimizer step. Target (issue #5): train.py / hand-written <= 1.05.

    python benchmarks/runner_overhead.py [--repeats 5] [--steps 339]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> tuple[float, float]:
    t0 = time.time()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    first = [float(line.split("=", 1)[1]) for line in r.stdout.splitlines() if line.startswith("FIRST_STEP_UNIX=")]
    if not first:  # train.py records it in the run's metrics.json
        metrics = max(cwd.glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
        first = [json.loads(metrics.read_text())["first_step_unix"]]
    return wall, first[0] - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=339, help="optimizer steps (339: the embedded default, 3 epochs)")
    args = parser.parse_args()
    job = [f"schedule.max_steps={args.steps}", "schedule.num_train_epochs=null", "schedule.save_strategy=no",
           "schedule.eval_strategy=no", "data.test_size=0"]
    results: dict[str, list[tuple[float, float]]] = {"train.py": [], "hand-written": []}
    for i in range(args.repeats + 1):
        for name in results:
            work = Path(tempfile.mkdtemp())
            cmd = [sys.executable, str(ROOT / "train.py"), f"output_dir={work}", *job] if name == "train.py" \
                else [sys.executable, str(ROOT / "benchmarks" / "handwritten_lora.py"), str(args.steps), str(work)]
            timing = _run(cmd, work)
            shutil.rmtree(work, ignore_errors=True)
            if i:  # the first round warms file caches
                results[name].append(timing)
    print(f"{args.steps} optimizer steps of tiny-llama LoRA on CPU, n={args.repeats}, medians")
    med = {}
    for name, runs in results.items():
        med[name] = (statistics.median(w for w, _ in runs), statistics.median(f for _, f in runs))
        print(f"  {name:13s} whole process {med[name][0]:6.2f} s   first optimizer step after {med[name][1]:5.2f} s")
    ratio = med["train.py"][0] / med["hand-written"][0]
    print(f"ratio train.py / hand-written: {ratio:.3f} (target <= 1.05); "
          f"time to first step: {med['train.py'][1] - med['hand-written'][1]:+.2f} s")


if __name__ == "__main__":
    main()
