"""
## What it does
Checks that `schedule.learning_rate` lies between 1e-6 and 1e-3.

## Why is this bad?
Above 1e-3 LoRA adapters diverge or collapse to a constant output within a few hundred
steps; below 1e-6 they barely move from their zero initialisation, so the run spends its
GPU hours reproducing the base model.

## Example
```yaml
learning_rate: 5.0e-3
```

## Use instead
```yaml
learning_rate: 2.0e-4
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L001"
NAME = "learning-rate-out-of-range"
SEVERITY = Severity.ERROR

LOW, HIGH = 1e-6, 1e-3


def check(ctx: LintContext):
    lr = ctx.get("schedule.learning_rate")
    if lr > HIGH:
        yield Finding("schedule.learning_rate",
                      f"learning_rate {fmt(lr)} is above {fmt(HIGH)}: LoRA training diverges at this rate "
                      f"(typical LoRA rates are 1e-4 to 3e-4)", "schedule.learning_rate=2e-4")
    elif lr < LOW:
        yield Finding("schedule.learning_rate",
                      f"learning_rate {fmt(lr)} is below {fmt(LOW)}: the adapter will barely move from its "
                      f"zero initialisation (typical LoRA rates are 1e-4 to 3e-4)", "schedule.learning_rate=2e-4")
