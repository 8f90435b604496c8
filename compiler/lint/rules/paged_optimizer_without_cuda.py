"""
## What it does
Reports a paged bitsandbytes optimizer (`optim: paged_adamw_8bit`, `paged_lion_32bit`, ...)
on hardware whose accelerator is not CUDA.

## Why is this bad?
Paged optimizers keep their state in CUDA unified memory and page it to the host under
memory pressure; there is no such memory off CUDA, and bitsandbytes fails when the first
optimizer step runs, after the model has loaded and the data has been tokenized.

## Example
```yaml
# hardware: cpu
optim: paged_adamw_8bit
```

## Use instead
```yaml
optim: adamw_torch
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L010"
NAME = "paged-optimizer-without-cuda"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    optim, accel = ctx.get("schedule.optim"), ctx.get("hardware.accelerator")
    if optim.startswith("paged_") and accel != "cuda":
        yield Finding("schedule.optim", f"optim {optim} is a paged bitsandbytes optimizer and needs CUDA; "
                                        f"hardware '{accel}' has none", "schedule.optim=adamw_torch")
