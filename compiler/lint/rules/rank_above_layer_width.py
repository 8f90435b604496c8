"""
## What it does
Warns when the LoRA rank `r` is at least the width (the smaller of in and out features) of every
layer it adapts.

## Why is this bad?
An update B @ A of a layer cannot have a rank above the layer's width: past it, extra rank adds
parameters, optimizer state and compute, and no capacity; with `use_rslora` the scaling
alpha / sqrt(r) shrinks the update further. It trains, silently doing less than the config says.

## Example
```yaml
# tiny-llama: every adapted layer is 64 to 128 wide
r: 256
```

## Use instead
```yaml
r: 32
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, body_linear

CODE = "L034"
NAME = "rank-above-layer-width"
SEVERITY = Severity.WARNING

def adapted(ctx: LintContext) -> dict[str, list[dict]]:
    linear = ctx.get("model.linear_modules") or {}
    targets = ctx.get("lora.target_modules")
    if targets == "all-linear":
        return {n: linear[n] for n in body_linear(linear)}
    if isinstance(targets, list):
        return {n: linear[n] for n in {t.rsplit(".", 1)[-1] for t in targets} if n in linear}
    return {}


def check(ctx: LintContext):
    r = ctx.get("lora.r")
    layers = adapted(ctx)
    widths = [min(s["in_features"], s["out_features"]) for shapes in layers.values() for s in shapes]
    if isinstance(r, int) and widths and r >= max(widths):
        yield Finding("lora.r", f"r={r} is at least the width of every adapted layer (at most {max(widths)}: "
                                f"{', '.join(sorted(layers))}); an update cannot have a higher rank than its layer, "
                                f"so the extra rank adds parameters and no capacity", f"lora.r={max(8, max(widths) // 4)}")
