"""
## What it does
Reports `data.packing: true` or `data.padding_free: true` for classification rows (and any
task other than a causal LM), and warns about `packing_strategy: wrapped` for completion,
alpaca or messages rows.

## Why is this bad?
Packing and padding-free batches put several examples into one sequence. A classifier has one
label per sequence, so packed examples would share one label. `wrapped` packing cuts the
token stream into max_length blocks without regard for the examples: a conversation is split
across blocks (the second half trains without its prompt) and every example attends to the ones
before it in its block. `bfd` packing keeps examples whole and restarts position ids per
example, so none attends to another.

## Example
```yaml
format: messages
packing: true
packing_strategy: wrapped
```

## Use instead
```yaml
format: messages
packing: true
packing_strategy: bfd
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L021"
NAME = "packing-unsupported-for-format"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    fmt, task = ctx.get("data.format"), ctx.get("model.task")
    for key in ("packing", "padding_free"):
        if ctx.get(f"data.{key}") and (fmt == "classification" or task != "causal-lm"):
            yield Finding(f"data.{key}", f"data.{key} is on for {fmt} rows of a {task} model: one label per "
                                         f"sequence cannot cover several packed examples", f"data.{key}=false")
    if ctx.get("data.packing") and ctx.get("data.packing_strategy") == "wrapped" and fmt not in ("text",
                                                                                                   "classification"):
        yield Finding("data.packing_strategy", f"data.packing_strategy is wrapped for {fmt} rows: conversations are "
                                               f"cut across max_length blocks and attend to the examples before "
                                               f"them; bfd keeps each example whole and apart",
                      "data.packing_strategy=bfd", Severity.WARNING)
