"""
## What it does
Reports bfloat16 asked for on hardware without bf16 (`hardware.supports_bf16: false`, e.g.
T4 and V100): `schedule.bf16: true`, or a 4-bit compute dtype of `bfloat16`.

## Why is this bad?
Turing and Volta GPUs have no bf16 units. transformers refuses `bf16=True` there ("Your
setup doesn't support bf16/gpu"), and a bf16 compute dtype for bitsandbytes either fails or
runs emulated at a fraction of the speed. float16 is the format these GPUs have.

## Example
```yaml
# hardware: t4
bf16: true
```

## Use instead
```yaml
bf16: false
fp16: true
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L009"
NAME = "bf16-without-hardware-support"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    if ctx.get("hardware.supports_bf16"):
        return
    device = ctx.get("hardware.device_name") or ctx.get("hardware.accelerator")
    if ctx.get("schedule.bf16") is True:
        fix = "schedule.bf16=false schedule.fp16=true" if ctx.get("hardware.supports_fp16") else "schedule.bf16=false"
        yield Finding("schedule.bf16", f"bf16 is on but {device} has no bfloat16 support; use fp16 there", fix)
    if ctx.get("quant.load_in_4bit") and ctx.get("quant.bnb_4bit_compute_dtype") == "bfloat16":
        good = "float16" if ctx.get("hardware.supports_fp16") else "float32"
        yield Finding("quant.bnb_4bit_compute_dtype",
                      f"bnb_4bit_compute_dtype is bfloat16 but {device} has no bfloat16 support; use {good}",
                      f"quant.bnb_4bit_compute_dtype={good}")
