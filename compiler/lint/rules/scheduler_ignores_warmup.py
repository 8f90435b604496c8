"""
## What it does
Warns when a warmup is asked for (`warmup_ratio` or `warmup_steps` above 0) with a scheduler
that has none: `constant` and `reduce_lr_on_plateau`.

## Why is this bad?
transformers' `get_scheduler` passes the warmup only to schedules that have one; `constant`
starts at the full learning rate on step 0 (checked: the rate after `get_scheduler("constant",
num_warmup_steps=10)` is the full rate, `constant_with_warmup` starts at 0). The config reads
"warm up for 3%", the run does not, and nothing says so.

## Example
```yaml
lr_scheduler_type: constant
warmup_ratio: 0.03
```

## Use instead
```yaml
lr_scheduler_type: constant_with_warmup
warmup_ratio: 0.03
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L024"
NAME = "scheduler-ignores-warmup"
SEVERITY = Severity.WARNING

# schedulers without a warmup phase -> the one that has it (None: no such variant)
WITHOUT_WARMUP = {"constant": "constant_with_warmup", "reduce_lr_on_plateau": None}


def check(ctx: LintContext):
    scheduler = ctx.get("schedule.lr_scheduler_type")
    warmup = ctx.derived.warmup_steps
    if scheduler not in WITHOUT_WARMUP or warmup <= 0:
        return
    instead = WITHOUT_WARMUP[scheduler]
    yield Finding("schedule.lr_scheduler_type",
                  f"lr_scheduler_type {scheduler} has no warmup, so the {warmup} warmup step(s) asked for are "
                  f"ignored and the run starts at the full learning rate"
                  + (f"; {instead} warms up" if instead else ""),
                  f"schedule.lr_scheduler_type={instead}" if instead else "schedule.warmup_ratio=0.0")
