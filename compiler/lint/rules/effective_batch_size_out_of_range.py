"""
## What it does
Warns when the effective batch size, `per_device_train_batch_size` x
`gradient_accumulation_steps` x `hardware.num_devices`, is below 8 or above 256.

## Why is this bad?
Below 8 the gradient of each LoRA step is noisy enough that the usual learning rates become
unstable; above 256 a small fine-tuning set yields only a handful of optimizer steps, and
the learning rate would need rescaling. Micro-batch and accumulation are usually chosen for
memory, so the product drifts unnoticed.

## Example
```yaml
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
```

## Use instead
```yaml
per_device_train_batch_size: 2
gradient_accumulation_steps: 8
```
"""

import math

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L006"
NAME = "effective-batch-size-out-of-range"
SEVERITY = Severity.WARNING

LOW, HIGH, TARGET = 8, 256, 16


def check(ctx: LintContext):
    d = ctx.derived
    micro = ctx.get("schedule.per_device_train_batch_size")
    accum = ctx.get("schedule.gradient_accumulation_steps")
    if LOW <= d.effective_batch_size <= HIGH:
        return
    per_step = micro * d.world_size
    good = max(1, math.ceil(TARGET / per_step))
    side = "below" if d.effective_batch_size < LOW else "above"
    yield Finding("schedule.gradient_accumulation_steps",
                  f"effective batch size {micro} x {accum} x {d.world_size} device(s) = {d.effective_batch_size} "
                  f"is {side} [{LOW}, {HIGH}]; gradient_accumulation_steps={good} gives {good * per_step}",
                  f"schedule.gradient_accumulation_steps={good}")
