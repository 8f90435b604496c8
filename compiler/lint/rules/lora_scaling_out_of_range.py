"""
## What it does
Checks the LoRA scaling factor, `lora_alpha / r` (or `lora_alpha / sqrt(r)` with
`use_rslora`), against the range [0.5, 4], and flags a command-line override of `lora.r`
that left `lora.lora_alpha` as the option file had it.

## Why is this bad?
peft multiplies the adapter's output by this factor. Far below 0.5 the update is scaled
down so much that the adapter barely learns at a normal learning rate; far above 4 it
acts like a much larger learning rate. Changing `r` on the command line without `alpha`
silently changes the scaling, so a rank sweep also sweeps the effective learning rate.

## Example
```yaml
r: 64
lora_alpha: 16
```

## Use instead
```yaml
r: 64
lora_alpha: 128
```
"""

import math

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, fmt

CODE = "L003"
NAME = "lora-scaling-out-of-range"
SEVERITY = Severity.WARNING

LOW, HIGH, TARGET = 0.5, 4.0, 2.0


def check(ctx: LintContext):
    r, alpha, rs = ctx.get("lora.r"), ctx.get("lora.lora_alpha"), ctx.get("lora.use_rslora")
    denom = math.sqrt(r) if rs else r
    scaling = alpha / denom
    good_alpha = TARGET * denom
    good = fmt(good_alpha) if rs else str(int(good_alpha))
    formula = "lora_alpha/sqrt(r)" if rs else "lora_alpha/r"
    fix = f"lora.lora_alpha={good}"
    r_alone = ctx.comp.from_command_line("lora.r") and not ctx.comp.from_command_line("lora.lora_alpha")
    if not LOW <= scaling <= HIGH:
        side = "below" if scaling < LOW else "above"
        why = " (lora.r was overridden on the command line, lora_alpha was not)" if r_alone else ""
        yield Finding("lora.lora_alpha",
                      f"{formula} = {fmt(alpha)}/{'sqrt(' + str(r) + ')' if rs else r} = {fmt(scaling)} is {side} "
                      f"[{fmt(LOW)}, {fmt(HIGH)}]{why}; lora_alpha={good} gives {fmt(TARGET)}", fix)
    elif r_alone:
        yield Finding("lora.r",
                      f"lora.r was overridden to {r} but lora.lora_alpha stayed {fmt(alpha)} "
                      f"(from {ctx.where('lora.lora_alpha')}), so {formula} is now {fmt(scaling)}; "
                      f"override lora_alpha with it (lora_alpha={good} gives {fmt(TARGET)})", fix)
