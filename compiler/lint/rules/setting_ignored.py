"""
## What it does
Warns about a setting the run drops because another one decides the same thing: `warmup_ratio`
beside a `warmup_steps` above 0, `eval_steps` with an `eval_strategy` other than `steps`,
`save_steps` with a `save_strategy` other than `steps`, `bnb_4bit_*` keys without
`load_in_4bit`, `llm_int8_threshold` without `load_in_8bit`, and the other `llm_int8_*` keys
(skip modules, CPU offload; they serve 4-bit too) on a base that is not quantized.

## Why is this bad?
transformers and bitsandbytes take one of the two and ignore the other without a word: a
warmup of `warmup_ratio` that never happens because `warmup_steps` wins, a 4-bit compute dtype
set on a base that loads in 16 bits. The config says something the run does not do.

## Example
```yaml
warmup_ratio: 0.05
warmup_steps: 10
```

## Use instead
```yaml
warmup_ratio: 0.05
warmup_steps: 0
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L035"
NAME = "setting-ignored"
SEVERITY = Severity.WARNING

INT8_ONLY = ("llm_int8_threshold",)  # the other llm_int8_* keys (skip modules, CPU offload) serve 4-bit as well


def _set(ctx: LintContext, key: str) -> bool:
    """Set by the config itself (not a library default filled in) to something."""
    return ctx.get(key) is not None and key not in ctx.comp.defaulted


def check(ctx: LintContext):
    ratio, steps = ctx.get("schedule.warmup_ratio") or 0, ctx.get("schedule.warmup_steps") or 0
    if ratio > 0 and steps > 0:
        yield Finding("schedule.warmup_ratio", f"warmup_steps={steps} decides the warmup; warmup_ratio={ratio} "
                                               f"is ignored", "schedule.warmup_steps=0")
    for interval, strategy in (("eval_steps", "eval_strategy"), ("save_steps", "save_strategy")):
        chosen = ctx.get(f"schedule.{strategy}")
        if _set(ctx, f"schedule.{interval}") and chosen not in ("steps", None):
            yield Finding(f"schedule.{interval}", f"{interval} is ignored: {strategy} is '{chosen}'",
                          f"schedule.{strategy}=steps")
    quant = ctx.get("quant") or {}
    quantized = quant.get("load_in_4bit") or quant.get("load_in_8bit")
    for key in sorted(k for k in quant if _set(ctx, f"quant.{k}") and quant[k] is not False):
        if key.startswith("bnb_4bit_") and not quant.get("load_in_4bit"):
            why = "the base does not load in 4-bit (quant.load_in_4bit is false)"
        elif key in INT8_ONLY and not quant.get("load_in_8bit"):
            why = "it is LLM.int8's outlier threshold and the base does not load in 8-bit"
        elif key.startswith("llm_int8_") and not quantized:  # skip modules and CPU offload serve 4-bit too
            why = "the base is not quantized"
        else:
            continue
        yield Finding(f"quant.{key}", f"quant.{key} is ignored: {why}", f"~quant.{key}")
