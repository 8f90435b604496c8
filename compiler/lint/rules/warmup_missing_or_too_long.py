"""
## What it does
Warns when the warmup is 0 steps or longer than 20% of the total optimizer steps.

## Why is this bad?
Without warmup the first updates of a freshly initialised adapter, taken with Adam's
uncalibrated second moments, can be large enough to spike the loss. A warmup longer than a
fifth of the run spends much of the budget below the chosen learning rate and leaves little
time for the schedule's decay.

## Example
```yaml
warmup_ratio: 0.0
```

## Use instead
```yaml
warmup_ratio: 0.03
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L004"
NAME = "warmup-missing-or-too-long"
SEVERITY = Severity.WARNING

MAX_FRACTION = 0.2


def check(ctx: LintContext):
    d = ctx.derived
    key = "schedule.warmup_steps" if (ctx.get("schedule.warmup_steps") or 0) > 0 else "schedule.warmup_ratio"
    fix = "schedule.warmup_ratio=0.03"
    if d.total_steps <= 0:
        return
    if d.warmup_steps == 0:
        yield Finding(key, f"no warmup: the first of {d.total_steps} optimizer steps already use the full "
                           f"learning rate", fix)
    elif d.warmup_steps > MAX_FRACTION * d.total_steps:
        yield Finding(key, f"warmup is {d.warmup_steps} of {d.total_steps} steps "
                           f"({fmt(100 * d.warmup_steps / d.total_steps)}%), more than {fmt(100 * MAX_FRACTION)}% "
                           f"of the run", fix + (" schedule.warmup_steps=0" if key.endswith("steps") else ""))
