"""
## What it does
Warns when bitsandbytes is used on hardware whose accelerator is not CUDA: 4-bit or 8-bit
quantization (`quant.load_in_4bit`, `quant.load_in_8bit`) or an 8-bit bitsandbytes
optimizer (`adamw_8bit`, `adamw_bnb_8bit`, `lion_8bit`, ...). Paged optimizers are L010's.

## Why is this bad?
bitsandbytes has a CPU path (0.48 and later), so this runs, but its kernels there are
unoptimised: 4-bit matmuls on the CPU are many times slower than the 16-bit ones they
replace, and quantizing saves memory that a CPU run rarely lacks. It is right for testing a
QLoRA config on a laptop, not for a real run.

## Example
```yaml
# hardware: cpu
load_in_4bit: true
```

## Use instead
```yaml
# hardware: a10g (or quant: none on the CPU)
load_in_4bit: true
```
"""

from compiler.diagnostics import Severity
from compiler.rules._base import Finding, LintContext

CODE = "L011"
NAME = "bitsandbytes-without-cuda"
SEVERITY = Severity.WARNING

BNB_OPTIMIZERS = ("_8bit", "_bnb", "lion_32bit")


def check(ctx: LintContext):
    accel = ctx.get("hardware.accelerator")
    if accel == "cuda":
        return
    for key, what in (("quant.load_in_4bit", "4-bit"), ("quant.load_in_8bit", "8-bit")):
        if ctx.get(key):
            yield Finding(key, f"{what} bitsandbytes quantization on '{accel}' runs bitsandbytes' slow CPU path; "
                               f"fine for testing a config, slow for training", "quant=none")
    optim = ctx.get("schedule.optim")
    if not optim.startswith("paged_") and any(tag in optim for tag in BNB_OPTIMIZERS):
        yield Finding("schedule.optim", f"optim {optim} is a bitsandbytes optimizer; on '{accel}' it runs "
                                        f"bitsandbytes' slow CPU path", "schedule.optim=adamw_torch")
