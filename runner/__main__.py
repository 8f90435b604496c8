"""``python -m loracfg.runner PLAN.json``: train a plan compiled elsewhere (e.g. on a login node without a GPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from loracfg.compiler.plan.hf import MissingExtra, require_train_extra
    from loracfg.runner.errors import RunError

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m loracfg.runner PLAN.json   (write one with `loracfg compile -o PLAN.json`)", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        require_train_extra("run")
        plan = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(plan, dict):
            raise RunError(f"{path} is not a loracfg plan (a JSON object); write one with `loracfg compile`")
        return execute(plan)
    except FileNotFoundError:
        print(f"runner: error: no such plan file: '{path}'; write one with `loracfg compile -o {path}`",
              file=sys.stderr)
    except json.JSONDecodeError as e:
        print(f"runner: error: {path} is not a plan: invalid JSON ({e})", file=sys.stderr)
    except (RunError, MissingExtra) as e:
        print(f"runner: error: {e}", file=sys.stderr)
    return 1


def execute(plan: dict) -> int:
    """Run a plan; exit status 0 done, 128+N when preempted by signal N (a checkpoint was saved)."""
    from loracfg.runner.launch import die_with_launcher, join_slurm_tasks, start
    from loracfg.runner.run import Preempted

    die_with_launcher()
    try:
        join_slurm_tasks(plan)  # one task of a SLURM step of several: it is a rank already
        start(plan)
    except Preempted as e:
        print(f"runner: {e}; run the same command again to resume", file=sys.stderr)
        return 128 + e.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
