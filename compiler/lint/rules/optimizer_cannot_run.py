"""
## What it does
Reports an `optim` the run cannot build: one made for a device loracfg does not train on
(`adamw_torch_xla`: TPU, `adamw_torch_npu_fused`: Ascend NPU), one that needs
`optim_target_modules` (the GaLore and APOLLO families project the gradients of full
fine-tuning), and one whose package is not installed in the environment `loracfg lint` runs in
(`schedule_free_*`: schedulefree, `adamw_torch_4bit`/`8bit`: torchao, `lomo`/`adalomo`:
lomo-optim, `grokadamw`, `stable_adamw`: torch-optimi, `adamw_anyprecision`: torchdistx).

## Why is this bad?
transformers builds the optimizer only when training starts (`Trainer.create_optimizer`), after
the model is loaded and, on a cluster, after the job waited in the queue; each of these raises
there. The package check reads the environment lint runs in (without importing anything): lint
where you train, or add the package to the pre-commit hook's `additional_dependencies`.

## Example
```yaml
optim: galore_adamw
```

## Use instead
```yaml
optim: auto   # fused AdamW on CUDA, paged 8-bit AdamW for a quantized base, AdamW on CPU
```
"""

import importlib.util

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L027"
NAME = "optimizer-cannot-run"
SEVERITY = Severity.ERROR

DEVICE_ONLY = {"adamw_torch_xla": "a TPU (torch_xla)", "adamw_torch_npu_fused": "an Ascend NPU (torch_npu)"}
NEEDS_TARGETS = ("galore_", "apollo_")
# optim -> (importable module, what to pip install)
PACKAGES = {
    "adamw_anyprecision": ("torchdistx", "git+https://github.com/pytorch/torchdistx"),
    "adamw_torch_4bit": ("torchao", "'torchao>=0.4'"),
    "adamw_torch_8bit": ("torchao", "'torchao>=0.4'"),
    "lomo": ("lomo_optim", "lomo-optim"),
    "adalomo": ("lomo_optim", "lomo-optim"),
    "grokadamw": ("grokadamw", "grokadamw"),
    "schedule_free_radam": ("schedulefree", "'schedulefree>=1.4'"),
    "schedule_free_adamw": ("schedulefree", "schedulefree"),
    "schedule_free_sgd": ("schedulefree", "schedulefree"),
    "stable_adamw": ("optimi", "torch-optimi"),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check(ctx: LintContext):
    optim = ctx.get("schedule.optim")
    key, fix = "schedule.optim", "schedule.optim=auto"
    if optim in DEVICE_ONLY:
        yield Finding(key, f"optim {optim} runs only on {DEVICE_ONLY[optim]}; loracfg trains on cuda, cpu or mps",
                      fix)
    elif optim.startswith(NEEDS_TARGETS):
        yield Finding(key, f"optim {optim} projects the gradients of full fine-tuning and needs "
                           f"optim_target_modules; LoRA's adapters are low-rank already (transformers raises "
                           f"'You need to define `optim_target_modules`')", fix)
    elif optim in PACKAGES and not installed(PACKAGES[optim][0]):
        module, pip = PACKAGES[optim]
        yield Finding(key, f"optim {optim} needs the '{module}' package, which is not installed here "
                           f"(pip install {pip}); transformers raises when training starts", fix)
