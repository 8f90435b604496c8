"""
## What it does
Reports `hardware.strategy: fsdp` on hardware that is not CUDA (`hardware=cpu`, `cpu-2proc`, `mps`).

## Why is this bad?
The Trainer's FSDP path (accelerate's FSDP plugin) needs an accelerator: on the CPU, FSDP2 silently
runs as plain data parallelism (every process holds the whole model, nothing is sharded) and FSDP1
raises "There are currently no available devices found" after the model has loaded.

## Example
```yaml
# python train.py hardware=cpu-2proc
accelerator: cpu
num_devices: 2
strategy: fsdp
```

## Use instead
```yaml
accelerator: cpu
num_devices: 2
strategy: ddp
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L038"
NAME = "fsdp-without-cuda"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    accelerator = ctx.get("hardware.accelerator")
    if ctx.get("hardware.strategy") == "fsdp" and accelerator != "cuda":
        yield Finding("hardware.strategy",
                      f"strategy fsdp on {accelerator}: the Trainer's FSDP needs CUDA (on the CPU FSDP2 silently runs "
                      f"as DDP with nothing sharded, FSDP1 fails after loading the model)",
                      "hardware.strategy=ddp")
