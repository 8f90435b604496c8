"""
## What it does
Reports `data.packing: true` for rows that are not plain text: classification rows, and
completion, alpaca or messages rows (masked conversations).

## Why is this bad?
Packing concatenates examples into full-length sequences. A classifier has one label per
example, so packed examples would share one label. For masked conversations loracfg does not
pack yet: packing them without restarting position ids per example lets each example attend
to the previous ones. Either way the model trains on something other than the rows.

## Example
```yaml
format: messages
packing: true
```

## Use instead
```yaml
format: messages
packing: false
```
"""

from compiler.diagnostics import Severity
from compiler.rules._base import Finding, LintContext

CODE = "L021"
NAME = "packing-unsupported-for-format"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    fmt = ctx.get("data.format")
    if ctx.get("data.packing") and fmt != "text":
        why = ("one label per example cannot cover several packed examples" if fmt == "classification" else
               "loracfg packs text rows only so far; packed conversations would attend across examples")
        yield Finding("data.packing", f"data.packing is on for {fmt} rows: {why}", "data.packing=false")
