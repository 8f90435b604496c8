"""Data parallel on one machine: `python train.py hardware=cpu|cpu-2proc` against the hand-written job
(benchmarks/handwritten_lora.py alone, and under `torchrun --nproc_per_node 2`), side by side.

The same work at each world size: STEPS optimizer steps of micro-batch 8 x accumulation 2 on one process,
STEPS/2 on two (each step then takes twice the sequences), so both sizes train on the same number of
sequences. Whole processes (launch, rendezvous, data, training, saving), interleaved, a warm-up round, then
REPEATS rounds, medians. Prints loracfg / hand-written per world size (target <= 1.05) and the scaling
efficiency (time on one process / time on two / 2) of each. Run it on a quiet machine.

    python benchmarks/ddp_scaling.py [--repeats 3] [--steps 120]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> float:
    t0 = time.time()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return time.time() - t0


def commands(world: int, steps: int, work: Path) -> dict[str, list[str]]:
    job = [f"schedule.max_steps={steps}", "schedule.num_train_epochs=null", "schedule.save_strategy=no",
           "schedule.eval_strategy=no", "data.test_size=0"]
    hand = [str(ROOT / "benchmarks" / "handwritten_lora.py"), str(steps), str(work)]
    return {
        "loracfg": [sys.executable, str(ROOT / "train.py"), f"hardware={'cpu' if world == 1 else 'cpu-2proc'}",
                    f"output_dir={work}", f"hydra.run.dir={work}/hydra", *job],
        "hand-written": [sys.executable, *hand] if world == 1 else
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}", *hand],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps on one process (half on two)")
    args = parser.parse_args()
    times: dict[tuple[int, str], list[float]] = {}
    for i in range(args.repeats + 1):
        for world in (1, 2):
            for name in ("loracfg", "hand-written"):
                work = Path(tempfile.mkdtemp())
                wall = _run(commands(world, args.steps // world, work)[name], work)
                shutil.rmtree(work, ignore_errors=True)
                if i:  # the first round warms file caches
                    times.setdefault((world, name), []).append(wall)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"tiny-llama LoRA on CPU, {args.steps} steps x 16 sequences in all, n={args.repeats}, medians (s)")
    for world in (1, 2):
        lo, hw = med[(world, "loracfg")], med[(world, "hand-written")]
        print(f"  {world} process(es): loracfg {lo:6.2f}   hand-written {hw:6.2f}   ratio {lo / hw:.3f} (target <= 1.05)")
    for name in ("loracfg", "hand-written"):
        print(f"  scaling efficiency {name}: {med[(1, name)] / med[(2, name)] / 2:.2f}")


if __name__ == "__main__":
    main()
