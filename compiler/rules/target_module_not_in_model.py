"""
## What it does
Reports `lora.target_modules` entries that name no linear module of the model
(`model.linear_modules`), listing the names the architecture really has. `all-linear`,
`null` (peft's default) and regular expressions are not checked.

## Why is this bad?
Module names differ between architectures: BERT's attention projections are `query` and
`value`, Llama's are `q_proj` and `v_proj`. peft raises "Target modules ... not found in
the base model" only after the model has been downloaded and loaded, and a list where just
some names match trains fewer layers than intended without any error at all.

## Example
```yaml
# model: llama-3-8b
target_modules: [query, value]
```

## Use instead
```yaml
target_modules: [q_proj, v_proj]
```
"""

from compiler.diagnostics import Severity
from compiler.rules._base import Finding, LintContext
from compiler.yamlpos import join

CODE = "L012"
NAME = "target-module-not-in-model"
SEVERITY = Severity.ERROR


def check(ctx: LintContext):
    targets = ctx.get("lora.target_modules")
    if not isinstance(targets, list):
        return
    real = ctx.get("model.linear_modules")
    real_set = set(real)
    family = ctx.get("model.config.model_type")
    good = [t for t in targets if t.rsplit(".", 1)[-1] in real_set]
    for i, target in enumerate(targets):
        if target.rsplit(".", 1)[-1] in real_set:
            continue
        fix_list = good or [m for m in real if m not in ("lm_head", "classifier", "score")]
        yield Finding(join("lora.target_modules", i),
                      f"target module '{target}' is not a linear module of {family} "
                      f"({ctx.get('model.name_or_path')}); its linear modules are: {', '.join(real)}",
                      f"lora.target_modules=[{','.join(fix_list)}]")
