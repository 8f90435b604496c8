"""
## What it does
Warns when bitsandbytes is used on hardware whose accelerator is not CUDA: 4-bit or 8-bit
quantization (`quant.load_in_4bit`, `quant.load_in_8bit`) or an 8-bit bitsandbytes
optimizer (`adamw_8bit`, `adamw_bnb_8bit`, `lion_8bit`, ...). Paged optimizers are L010's.

## Why is this bad?
bitsandbytes has a CPU path (0.48 and later), so this runs, but its kernels there are
unoptimised: 4-bit matmuls on the CPU are many times slower than the 16-bit ones they
replace, and quantizing saves memory that a CPU run rarely lacks. It is right for testing a
QLoRA config on a laptop, not for a real run. 8-bit (LLM.int8) training does not run there at
all: its backward pass needs the int8 state that only the CUDA kernels keep (bitsandbytes 0.50
raises `'Parameter' object has no attribute 'CB'` at the first step), so that one is an error.

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

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L011"
NAME = "bitsandbytes-without-cuda"
SEVERITY = Severity.WARNING

BNB_OPTIMIZERS = ("_8bit", "_bnb", "lion_32bit")


def eight_bit_off_cuda(cfg: dict) -> bool:
    """LLM.int8 on a device other than CUDA: it does not train there (this rule's error)."""
    return bool(cfg["quant"].get("load_in_8bit")) and cfg["hardware"]["accelerator"] != "cuda"


def check(ctx: LintContext):
    accel = ctx.get("hardware.accelerator")
    if accel == "cuda":
        return
    if ctx.get("quant.load_in_4bit"):
        yield Finding("quant.load_in_4bit", f"4-bit bitsandbytes quantization on '{accel}' runs bitsandbytes' slow "
                                            f"CPU path; fine for testing a config, slow for training", "quant=none")
    if eight_bit_off_cuda(ctx.config):
        yield Finding("quant.load_in_8bit", f"8-bit bitsandbytes quantization does not train on '{accel}': the "
                                            f"backward pass needs CUDA's int8 state and fails at the first step "
                                            f"('Parameter' object has no attribute 'CB'); 4-bit runs there",
                      "quant=nf4", Severity.ERROR)
    optim = ctx.get("schedule.optim")
    if not optim.startswith("paged_") and any(tag in optim for tag in BNB_OPTIMIZERS):
        yield Finding("schedule.optim", f"optim {optim} is a bitsandbytes optimizer; on '{accel}' it runs "
                                        f"bitsandbytes' slow CPU path", "schedule.optim=adamw_torch")
