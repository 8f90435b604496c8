"""
## What it does
Warns when `schedule.learning_rate` is outside the range LoRA usually needs: below 5e-5 or
above 5e-4 (errors beyond 1e-6..1e-3 are L001's). A rate of 1e-5..5e-5, the usual rate of
a full fine-tune, gets its own message.

## Why is this bad?
LoRA trains a small low-rank update from zero and wants roughly ten times the rate of a
full fine-tune: 1e-4 to 3e-4 is typical. A full-fine-tuning rate copied from another recipe
makes LoRA learn very slowly; a rate above 5e-4 makes loss spikes likely.

## Example
```yaml
learning_rate: 2.0e-5
```

## Use instead
```yaml
learning_rate: 2.0e-4
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt
from loracfg.compiler.lint.rules.learning_rate_out_of_range import HIGH, LOW

CODE = "L002"
NAME = "learning-rate-atypical-for-lora"
SEVERITY = Severity.WARNING

FULL_FT = (1e-5, 5e-5)
WARN_LOW, WARN_HIGH = 5e-5, 5e-4


def check(ctx: LintContext):
    lr = ctx.get("schedule.learning_rate")
    key, fix = "schedule.learning_rate", "schedule.learning_rate=2e-4"
    if FULL_FT[0] <= lr <= FULL_FT[1]:
        yield Finding(key, f"learning_rate {fmt(lr)} is a full-fine-tuning rate (1e-5 to 5e-5); LoRA usually "
                           f"needs about ten times more (1e-4 to 3e-4)", fix)
    elif LOW <= lr < WARN_LOW:
        yield Finding(key, f"learning_rate {fmt(lr)} is below 5e-5, far under the typical LoRA range 1e-4 to 3e-4", fix)
    elif WARN_HIGH < lr <= HIGH:
        yield Finding(key, f"learning_rate {fmt(lr)} is above 5e-4, over the typical LoRA range 1e-4 to 3e-4; "
                           f"expect loss spikes", fix)
