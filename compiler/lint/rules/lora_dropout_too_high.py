"""
## What it does
Warns when `lora.lora_dropout` is above 0.3.

## Why is this bad?
Dropout on the adapter's input zeroes that share of the signal the adapter learns from;
above 0.3 the low-rank update sees too little of it and learns slowly. LoRA papers use 0.0
to 0.1 (0.05 is peft's examples' choice).

## Example
```yaml
lora_dropout: 0.5
```

## Use instead
```yaml
lora_dropout: 0.05
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L015"
NAME = "lora-dropout-too-high"
SEVERITY = Severity.WARNING

HIGH = 0.3


def check(ctx: LintContext):
    p = ctx.get("lora.lora_dropout")
    if p > HIGH:
        yield Finding("lora.lora_dropout", f"lora_dropout {fmt(p)} is above {fmt(HIGH)}; 0.0 to 0.1 is usual",
                      "lora.lora_dropout=0.05")
