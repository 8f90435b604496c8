"""
## What it does
Reports a schedule that sets both `max_steps` (> 0) and `num_train_epochs`, with the number
of epochs that `max_steps` really means for this data and effective batch. It is a warning
when that is more than 5 epochs or less than 1, and information otherwise.

## Why is this bad?
transformers' Trainer lets `max_steps` win and silently ignores `num_train_epochs`: a
config that reads "3 epochs" may train for a tenth of one, or for twenty.

## Example
```yaml
num_train_epochs: 3
max_steps: 5000
```

## Use instead
```yaml
num_train_epochs: null
max_steps: 5000
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L005"
NAME = "max-steps-overrides-epochs"
SEVERITY = Severity.WARNING

MIN_EPOCHS, MAX_EPOCHS = 1.0, 5.0


def check(ctx: LintContext):
    max_steps, epochs = ctx.get("schedule.max_steps"), ctx.get("schedule.num_train_epochs")
    if max_steps <= 0 or epochs is None:
        return
    d = ctx.derived
    real = d.epochs
    what = (f"max_steps={max_steps} overrides num_train_epochs={fmt(epochs)}: with {d.train_samples} training "
            f"samples and an effective batch of {d.effective_batch_size} ({d.steps_per_epoch} steps per epoch) "
            f"it trains {fmt(real)} epochs")
    severity = None if not MIN_EPOCHS <= real <= MAX_EPOCHS else Severity.INFO
    if real > MAX_EPOCHS:
        what += ", more than 5: expect the adapter to overfit"
    elif real < MIN_EPOCHS:
        what += ", less than one pass over the data"
    yield Finding("schedule.max_steps", what, "schedule.num_train_epochs=null", severity)
