"""
## What it does
Reports `load_best_model_at_end: true` when evaluation is off, when `eval_strategy` and
`save_strategy` differ, or when with the `steps` strategy `save_steps` is not a multiple of
`eval_steps`.

## Why is this bad?
The best model can only be reloaded from a checkpoint saved at a step where it was
evaluated. transformers raises a ValueError for each of these when `TrainingArguments` is
built, which on a cluster is after the queue wait.

## Example
```yaml
load_best_model_at_end: true
eval_strategy: epoch
save_strategy: steps
```

## Use instead
```yaml
load_best_model_at_end: true
eval_strategy: steps
save_strategy: steps
eval_steps: 50
save_steps: 100
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L013"
NAME = "load-best-model-strategy-mismatch"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    if not ctx.get("schedule.load_best_model_at_end"):
        return
    ev, save = ctx.get("schedule.eval_strategy"), ctx.get("schedule.save_strategy")
    if ev == "no":
        yield Finding("schedule.load_best_model_at_end",
                      "load_best_model_at_end needs evaluation, but eval_strategy is 'no'",
                      f"schedule.eval_strategy={save if save in ('steps', 'epoch') else 'steps'}")
    elif save not in (ev, "best"):
        yield Finding("schedule.save_strategy",
                      f"load_best_model_at_end needs save_strategy to match eval_strategy ('{ev}'), got '{save}'",
                      f"schedule.save_strategy={ev}")
    elif save == "steps":
        eval_steps = ctx.get("schedule.eval_steps") or ctx.get("schedule.logging_steps")
        save_steps = ctx.get("schedule.save_steps")
        if save_steps is not None and eval_steps and save_steps % eval_steps:
            yield Finding("schedule.save_steps",
                          f"load_best_model_at_end needs save_steps to be a multiple of eval_steps; "
                          f"save_steps={fmt(save_steps)} and eval_steps={fmt(eval_steps)}",
                          f"schedule.save_steps={fmt(eval_steps * max(1, round(save_steps / eval_steps)))}")
