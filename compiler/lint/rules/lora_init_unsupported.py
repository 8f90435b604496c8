"""
## What it does
Checks `init_lora_weights` against what peft and the runner can do: a name peft does not know,
LoftQ (it needs a `loftq_config` and a full-precision base that loracfg does not build),
the data-driven initialisations (`eva`, `corda`, `lora_ga`: they need a pass over training
data before training, which the runner does not make), PiSSA, CorDA and MiCA on a quantized
base (they take an SVD of float weights), and `orthogonal` with an odd rank.

## Why is this bad?
peft applies the initialisation inside `get_peft_model`, after the model is loaded: an unknown
name, LoftQ without its config, CorDA without its preprocessing, PiSSA on 4-bit weights and an
odd orthogonal rank raise there. EVA and LoRA-GA without their data pass fall back to the
default initialisation without a word, so the run does not do what the config says.

## Example
```yaml
# with quant=nf4
init_lora_weights: pissa
```

## Use instead
```yaml
init_lora_weights: true   # or olora, which peft dequantizes and re-quantizes for a 4-bit base
```
"""

import re

from loracfg.compiler.lint.compose import close_matches
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L028"
NAME = "lora-init-unsupported"
SEVERITY = Severity.ERROR

KNOWN = ("gaussian", "pissa", "olora", "orthogonal", "mica", "loftq", "eva", "corda", "lora_ga")
PISSA_NITER = re.compile(r"^pissa_niter_[1-9][0-9]*$")
DATA_DRIVEN = {"eva": "initialize_lora_eva_weights", "corda": "preprocess_corda", "lora_ga": "preprocess_loraga"}
FLOAT_ONLY = ("pissa", "mica")  # and corda, which the runner cannot run at all (DATA_DRIVEN)


def check(ctx: LintContext):
    init = ctx.get("lora.init_lora_weights")
    key, fix = "lora.init_lora_weights", "lora.init_lora_weights=true"
    if isinstance(init, bool) or init is None:
        return
    name = "pissa" if PISSA_NITER.match(init) else init
    if name not in KNOWN:
        near = close_matches(init, KNOWN)
        yield Finding(key, f"peft has no LoRA initialisation '{init}' (true, false, {', '.join(KNOWN)} or "
                           f"pissa_niter_N); get_peft_model raises", f"lora.init_lora_weights={near[0]}" if near
                      else fix)
        return
    if name == "loftq":
        yield Finding(key, "init_lora_weights loftq needs a loftq_config and a full-precision base that LoftQ "
                           "quantizes itself; loracfg builds neither (peft: '`loftq_config` must be specified')", fix)
    elif name in DATA_DRIVEN:
        yield Finding(key, f"init_lora_weights {name} needs a pass over training data before training "
                           f"(peft's {DATA_DRIVEN[name]}), which the runner does not make: the adapters would "
                           f"start from the default initialisation" + (", or get_peft_model raises" if name ==
                                                                         "corda" else ""), fix)
    quantized = ctx.get("quant.load_in_4bit") or ctx.get("quant.load_in_8bit")
    if name in FLOAT_ONLY and quantized:
        yield Finding(key, f"init_lora_weights {init} takes an SVD of float weights and peft refuses a quantized "
                           f"base ('Please initialize {name.upper() if name != 'mica' else 'MiCA'} under float32, "
                           f"float16, or bfloat16'); olora works on a 4-bit base", "lora.init_lora_weights=olora")
    r = ctx.get("lora.r")
    if name == "orthogonal" and isinstance(r, int) and r % 2:
        yield Finding("lora.r", f"init_lora_weights orthogonal needs an even rank, r is {r}", f"lora.r={r + 1}")
