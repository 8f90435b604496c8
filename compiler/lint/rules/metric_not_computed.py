"""
## What it does
Reports a `metric_for_best_model` that the run does not compute: every run reports the eval
loss (`loss`, `eval_loss`) and the evaluation's speed (`runtime`, `samples_per_second`,
`steps_per_second`); only classification (`seq-cls`, `token-cls`) adds `accuracy`.

## Why is this bad?
transformers looks the metric up after every evaluation during training and raises a
KeyError ("The `metric_for_best_model` training argument is set to 'eval_accuracy', which is
not found in the evaluation metrics") at the first one, after the queue wait and the first
steps. A causal language model computes no accuracy here.

## Example
```yaml
# model: tiny-llama (causal-lm)
metric_for_best_model: eval_accuracy
```

## Use instead
```yaml
metric_for_best_model: eval_loss
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L036"
NAME = "metric-not-computed"
SEVERITY = Severity.ERROR

ALWAYS = ("loss", "runtime", "samples_per_second", "steps_per_second")  # Trainer.evaluate's own, for every task
CLASSIFICATION = ("accuracy",)  # the runner's compute_metrics for seq-cls and token-cls


def computed(task: str) -> tuple[str, ...]:
    return ALWAYS + (CLASSIFICATION if task in ("seq-cls", "token-cls") else ())


def check(ctx: LintContext):
    metric = ctx.get("schedule.metric_for_best_model")
    if not isinstance(metric, str) or ctx.get("schedule.eval_strategy") == "no":
        return  # no evaluation during training: the metric is never looked up
    task = ctx.get("model.task")
    name = metric.removeprefix("eval_")  # transformers adds the prefix where it is missing
    if name not in computed(task):
        known = ", ".join(f"eval_{m}" for m in computed(task))
        yield Finding("schedule.metric_for_best_model",
                      f"metric_for_best_model '{metric}' is not computed by a {task} run (it reports {known}); "
                      f"transformers raises a KeyError at the first evaluation",
                      "schedule.metric_for_best_model=eval_loss")
