"""
## What it does
Reports an `eval_steps`, `logging_steps` or `save_steps` above 1 that is not a whole number
(`logging_steps: 12.5`).

## Why is this bad?
transformers reads an interval below 1 as a fraction of the run and one of 1 or more as a
number of steps, which must be whole: `TrainingArguments` raises "--logging_steps must be an
integer if bigger than 1" when it is built, which on a cluster is after the job waited in the
queue.

## Example
```yaml
logging_steps: 12.5
```

## Use instead
```yaml
logging_steps: 12     # every 12 steps
# or a fraction of the run: logging_steps: 0.05
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt
from loracfg.compiler.lint.rules.interval_longer_than_run import INTERVALS

CODE = "L025"
NAME = "fractional-interval-above-one"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    for key, (strategy, _) in INTERVALS.items():
        every = ctx.get(f"schedule.{key}")
        if ctx.get(f"schedule.{strategy}", "steps") != "steps" or isinstance(every, bool) \
                or not isinstance(every, float) or every <= 1 or every.is_integer():
            continue
        yield Finding(f"schedule.{key}", f"schedule.{key}={fmt(every)} is above 1 but not a whole number of steps; "
                                         f"transformers refuses it (a value below 1 is a fraction of the run)",
                      f"schedule.{key}={round(every)}")
