"""
## What it does
Warns when `schedule.weight_decay` is above 0.1. Zero, and 0.01 to 0.1, are both fine.

## Why is this bad?
AdamW's decoupled decay pulls the adapter weights towards zero every step; LoRA's update is
already small and low-rank, and a strong decay undoes what it learns, so the run converges
to a weaker adapter.

## Example
```yaml
weight_decay: 0.3
```

## Use instead
```yaml
weight_decay: 0.01
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L007"
NAME = "weight-decay-too-high"
SEVERITY = Severity.WARNING

HIGH = 0.1


def check(ctx: LintContext):
    wd = ctx.get("schedule.weight_decay")
    if wd > HIGH:
        yield Finding("schedule.weight_decay",
                      f"weight_decay {fmt(wd)} is above {fmt(HIGH)}; LoRA adapters train well with 0 or 0.01 to 0.1",
                      "schedule.weight_decay=0.01")
