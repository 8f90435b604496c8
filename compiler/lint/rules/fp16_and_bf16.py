"""
## What it does
Reports a schedule with both `fp16: true` and `bf16: true`.

## Why is this bad?
A run computes in one half-precision format. transformers' `TrainingArguments` raises
"At most one of fp16 and bf16 can be True" when it is built, which on a cluster is after
the job waited in the queue.

## Example
```yaml
bf16: true
fp16: true
```

## Use instead
```yaml
bf16: auto
fp16: auto
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L008"
NAME = "fp16-and-bf16-both-on"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    if ctx.get("schedule.fp16") is True and ctx.get("schedule.bf16") is True:
        fix = "schedule.fp16=false" if ctx.get("hardware.supports_bf16") else "schedule.bf16=false"
        yield Finding("schedule.fp16", "fp16 and bf16 are both true; at most one mixed precision can be on "
                                       "(or leave both at 'auto')", fix)
