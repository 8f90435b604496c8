"""
## What it does
Reports a 4-bit base trained with FSDP (`hardware.strategy: fsdp`, or `auto` where only the shards
fit) whose `bnb_4bit_quant_storage` is not the dtype the rest of the model is loaded in (the 4-bit
compute dtype). Left unset, the plan sets it to that dtype itself.

## Why is this bad?
FSDP flattens and shards the parameters of a layer as one tensor of one dtype. bitsandbytes packs
4-bit weights into `uint8` by default, which FSDP refuses ("Cannot flatten integer dtype tensors",
peft#1432); stored as another float dtype than its neighbours, the weights are sharded and gathered
as the wrong type and come back as garbage (Answer.AI's fsdp_qlora).

## Example
```yaml
# python train.py quant=nf4 hardware=8xa100-80g hardware.strategy=fsdp
load_in_4bit: true
bnb_4bit_compute_dtype: bfloat16
bnb_4bit_quant_storage: uint8
```

## Use instead
```yaml
load_in_4bit: true
bnb_4bit_compute_dtype: bfloat16
bnb_4bit_quant_storage: bfloat16
```
"""

from loracfg.compiler.derived import resolve_dtype
from loracfg.compiler.estimate.memory import resolve_strategy
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L037"
NAME = "fsdp-quant-storage-mismatch"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    storage = ctx.get("quant.bnb_4bit_quant_storage")
    if not ctx.get("quant.load_in_4bit") or not storage or ctx.derived.world_size <= 1:
        return
    dtype = resolve_dtype(ctx.config)
    if storage == dtype or resolve_strategy(ctx.config)[0] != "fsdp":
        return
    yield Finding("quant.bnb_4bit_quant_storage",
                  f"bnb_4bit_quant_storage is {storage} but FSDP shards the model as {dtype} (the 4-bit compute "
                  f"dtype the rest of the model loads in): "
                  + ("FSDP cannot flatten integer tensors" if storage == "uint8" else
                     "the packed weights would be gathered as the wrong type"),
                  f"quant.bnb_4bit_quant_storage={dtype}")
