"""
## What it does
Warns when `lora.r` is above 256.

## Why is this bad?
The point of LoRA is a low-rank update. Past a rank of a few hundred the adapter has the
memory and optimizer cost of a sizeable share of the layer while quality gains flatten
(the LoRA and QLoRA papers see none past 64 to 256); a full fine-tune or a smaller rank is
usually the better choice.

## Example
```yaml
r: 1024
lora_alpha: 2048
```

## Use instead
```yaml
r: 64
lora_alpha: 128
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L016"
NAME = "lora-rank-too-high"
SEVERITY = Severity.WARNING

HIGH = 256


def check(ctx: LintContext):
    r = ctx.get("lora.r")
    if r > HIGH:
        hidden = ctx.get("model.config.hidden_size")
        yield Finding("lora.r", f"r={r} is above {HIGH} (the model's hidden size is {hidden}); LoRA rarely gains "
                                f"past 64 to 256", "lora.r=64")
