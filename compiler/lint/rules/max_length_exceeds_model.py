"""
## What it does
Reports `data.max_length` above the model's `max_position_embeddings`.

## Why is this bad?
Positions past the model's table do not exist: learned position embeddings (BERT) raise an
index error on the first long batch, and rotary models (Llama) run but were never trained at
those lengths, so the loss on long examples is meaningless. Either way it shows up mid-run.

## Example
```yaml
# model: bert-base (512 positions)
max_length: 1024
```

## Use instead
```yaml
max_length: 512
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L018"
NAME = "max-length-exceeds-model"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    want, limit = ctx.get("data.max_length"), ctx.get("model.config.max_position_embeddings")
    if want > limit:
        yield Finding("data.max_length",
                      f"max_length {want} is above the {limit} positions of {ctx.get('model.name_or_path')}",
                      f"data.max_length={limit}")
