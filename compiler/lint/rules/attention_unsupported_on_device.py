"""
## What it does
Reports an `attn_implementation` the declared hardware cannot run: FlashAttention 2 needs a CUDA
GPU of compute capability 8.0 or later (Ampere), FlashAttention 3 one of 9.0 (Hopper), and both
compute in float16 or bfloat16 only.

## Why is this bad?
transformers checks the attention implementation when it loads the model, on the node: on a T4
or V100, on the CPU, or with float32 weights, `from_pretrained` raises, after the download and,
on a cluster, after the queue.

## Example
```yaml
# hardware: t4
attn_implementation: flash_attention_2
```

## Use instead
```yaml
attn_implementation: sdpa
```
"""

from loracfg.compiler.derived import resolve_dtype
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext
from loracfg.compiler.lint.rules.hardware_facts_contradict_device import capability

CODE = "L031"
NAME = "attention-unsupported-on-device"
SEVERITY = Severity.ERROR

NEEDS = {"flash_attention_2": (8.0, "Ampere"), "flash_attention_3": (9.0, "Hopper")}


def check(ctx: LintContext):
    attn = ctx.get("model.attn_implementation")
    if attn not in NEEDS:
        return
    need, family = NEEDS[attn]
    key, fix = "model.attn_implementation", "model.attn_implementation=sdpa"
    accel = ctx.get("hardware.accelerator")
    cc = capability(ctx.get("hardware.compute_capability"))
    if accel != "cuda":
        yield Finding(key, f"{attn} runs on CUDA GPUs only; hardware.accelerator is {accel}", fix)
    elif cc is not None and cc < need:
        yield Finding(key, f"{attn} needs compute capability {need:g} ({family}) or later; "
                           f"{ctx.get('hardware.device_name') or 'this GPU'} has {cc:g}", fix)
    elif resolve_dtype(ctx.config) == "float32":
        yield Finding(key, f"{attn} computes in float16 or bfloat16 only, and the model would load in float32 "
                           f"(schedule.bf16 and fp16 are off)", "schedule.bf16=auto")
