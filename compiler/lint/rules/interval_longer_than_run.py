"""
## What it does
Reports an evaluation, logging or checkpoint interval (`eval_steps`, `logging_steps`,
`save_steps`, with their strategy set to `steps`) longer than the whole run, naming the run's
length in optimizer steps.

## Why is this bad?
The Trainer evaluates, logs and saves only when the step count reaches a multiple of the
interval. An interval past the last step means a run with no evaluation (no eval-loss curve,
nothing for `load_best_model_at_end` to choose from), no training-loss log, or no checkpoint to
resume from after a crash or a preemption; nothing says so.

## Example
```yaml
max_steps: 200
save_steps: 500
```

## Use instead
```yaml
max_steps: 200
save_steps: 50
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L023"
NAME = "interval-longer-than-run"
SEVERITY = Severity.WARNING

# interval key -> (its strategy key, what is lost)
INTERVALS = {"eval_steps": ("eval_strategy", "no evaluation happens (no eval-loss curve)"),
             "logging_steps": ("logging_strategy", "no training loss is logged"),
             "save_steps": ("save_strategy", "no checkpoint is written to resume from")}


def check(ctx: LintContext):
    total = ctx.derived.total_steps
    for key, (strategy, lost) in INTERVALS.items():
        every = ctx.get(f"schedule.{key}")
        if ctx.get(f"schedule.{strategy}", "steps") != "steps" or not isinstance(every, (int, float)):
            continue
        if every >= 1 and every > total:  # below 1 it is a ratio of the run (transformers), never too long
            yield Finding(f"schedule.{key}", f"schedule.{key}={every:g} is longer than the whole run "
                                             f"({total} optimizer steps): {lost}",
                          f"schedule.{key}={max(1, total // 4)}")
