"""
## What it does
Reports `schedule.eval_strategy` set to `steps` or `epoch` while `data.test_size` is 0, so
no rows are held out for evaluation.

## Why is this bad?
The run has nothing to evaluate on: transformers' `Trainer` refuses an `eval_strategy`
without an `eval_dataset` when it is built, after the model has loaded (on a cluster, after
the queue wait).

## Example
```yaml
# data
test_size: 0.0
# schedule
eval_strategy: steps
```

## Use instead
```yaml
# data
test_size: 0.1
# schedule
eval_strategy: steps
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L022"
NAME = "evaluation-without-eval-split"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    strategy = ctx.get("schedule.eval_strategy")
    if strategy != "no" and not ctx.get("data.test_size"):
        yield Finding("data.test_size", f"eval_strategy is '{strategy}' but data.test_size is 0: no rows are held "
                                        f"out to evaluate on (hold some out, or set schedule.eval_strategy=no)",
                      "data.test_size=0.1")
