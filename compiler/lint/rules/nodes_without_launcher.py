"""
## What it does
Reports `hardware.num_nodes` above 1 when the Hydra launcher is not SLURM (`hydra/launcher=slurm`).

## Why is this bad?
Only a launcher that reaches every node can start the run's processes there. The default launcher
runs the job on this machine, where loracfg starts `num_devices` processes through
`torch.distributed.run`: the other nodes' ranks never come, and the rendezvous waits until it
times out. Under `hydra/launcher=slurm` SLURM starts `num_devices` tasks on each of the
`num_nodes` nodes, and every task joins as one rank.

## Example
```yaml
# python train.py hardware=8xa100-80g hardware.num_nodes=2
num_nodes: 2
```

## Use instead
```yaml
# python train.py -m hydra/launcher=slurm hardware=8xa100-80g hardware.num_nodes=2
num_nodes: 2
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L040"
NAME = "nodes-without-launcher"
SEVERITY = Severity.WARNING

NODE_LAUNCHERS = ("slurm", "submitit_slurm")


def check(ctx: LintContext):
    nodes = int(ctx.get("hardware.num_nodes") or 1)
    launcher = ctx.comp.launcher
    if nodes > 1 and launcher not in NODE_LAUNCHERS:
        yield Finding("hardware.num_nodes",
                      f"hardware.num_nodes is {nodes} but hydra/launcher is {launcher or 'not known here'}, which "
                      f"starts processes on this machine only; the other nodes' ranks would never join (unless "
                      f"every task is started by srun with `python -m loracfg.runner PLAN`)",
                      "hydra/launcher=slurm")
