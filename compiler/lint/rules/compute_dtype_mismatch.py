"""
## What it does
Warns about a 4-bit `bnb_4bit_compute_dtype` of `float32`, and about one that disagrees with the
training precision (`bfloat16` compute with fp16 training, `float16` with bf16).

## Why is this bad?
bitsandbytes dequantizes 4-bit weights to the compute dtype for every matmul. float32 doubles
the activation memory and is several times slower on GPUs built for 16-bit matmuls; a compute
dtype other than the autocast precision casts activations back and forth on every adapted layer
(and float16 compute under bf16 training can overflow). Both train, silently slower or worse.

## Example
```yaml
load_in_4bit: true
bnb_4bit_compute_dtype: float32
```

## Use instead
```yaml
load_in_4bit: true
bnb_4bit_compute_dtype: bfloat16   # the training precision
```
"""

from loracfg.compiler.derived import resolve_precision
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L032"
NAME = "compute-dtype-mismatch"
SEVERITY = Severity.WARNING

DTYPE = {"bf16": "bfloat16", "fp16": "float16"}


def check(ctx: LintContext):
    if not ctx.get("quant.load_in_4bit") or ctx.get("hardware.accelerator") != "cuda":
        return
    compute = ctx.get("quant.bnb_4bit_compute_dtype")
    bf16, fp16 = resolve_precision(ctx.config)
    precision = "bf16" if bf16 else "fp16" if fp16 else None
    want = DTYPE.get(precision or "", "bfloat16" if ctx.get("hardware.supports_bf16") else "float16")
    key = "quant.bnb_4bit_compute_dtype"
    if compute == "float32":
        yield Finding(key, "4-bit layers compute in float32: every matmul dequantizes to 32 bits, twice the "
                           "activation memory and several times slower than 16-bit", f"{key}={want}")
    elif precision and compute != DTYPE[precision]:
        yield Finding(key, f"4-bit layers compute in {compute} while training runs in {precision}: activations are "
                           f"cast back and forth on every adapted layer", f"{key}={DTYPE[precision]}")
