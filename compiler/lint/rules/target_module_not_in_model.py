"""
## What it does
Reports `lora.target_modules` entries that name no linear module of the model
(`model.linear_modules`), listing the names the architecture really has; and a
`target_modules` string (other than `all-linear`) that as a regular expression matches no
module path, such as `q_proj,v_proj` or `q_proj`. `null` (peft's default) is not checked.

## Why is this bad?
Module names differ between architectures: BERT's attention projections are `query` and
`value`, Llama's are `q_proj` and `v_proj`. peft raises "Target modules ... not found in
the base model" only after the model has been downloaded and loaded, and a list where just
some names match trains fewer layers than intended without any error at all. peft reads a
string as one regular expression that must match a module's whole path
(`model.layers.0.self_attn.q_proj`), so a comma-separated string or a bare name matches
nothing.

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

import re

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, body_linear
from loracfg.compiler.lint.yamlpos import join

CODE = "L012"
NAME = "target-module-not-in-model"
SEVERITY = Severity.ERROR


# Module paths as the common architectures nest them: a regex must fullmatch one of these, for some name
_PATHS = ("model.layers.0.self_attn.{}", "model.layers.0.mlp.{}", "bert.encoder.layer.0.attention.self.{}",
          "encoder.layer.0.attention.self.{}", "transformer.h.0.attn.{}", "model.decoder.layers.0.self_attn.{}")


def _matches_something(pattern: str, names: list[str]) -> bool:
    try:
        regex = re.compile(pattern)
    except re.error:
        return False
    return any(regex.fullmatch(p.format(n)) for n in names for p in _PATHS)


def check(ctx: LintContext):
    targets = ctx.get("lora.target_modules")
    real = ctx.get("model.linear_modules")
    if isinstance(targets, str) and targets.lower() != "all-linear" and real:
        names = body_linear(real)
        if not _matches_something(targets, list(real)):
            parts = [p.strip() for p in re.split(r"[,\s]+", targets) if p.strip()]
            listed = [p for p in parts if p in real] or names
            how = "one string of several names" if len(parts) > 1 else "a bare name"
            yield Finding("lora.target_modules",
                          f"lora.target_modules is {how}, '{targets}': peft reads a string as one regular "
                          f"expression over whole module paths (model.layers.0.self_attn.q_proj) and it matches "
                          f"no module, so get_peft_model fails after loading the model; write a list",
                          f"lora.target_modules=[{','.join(listed)}]")
        return
    if not isinstance(targets, list):
        return
    real_set = set(real)
    family = ctx.get("model.config.model_type")
    good = [t for t in targets if t.rsplit(".", 1)[-1] in real_set]
    for i, target in enumerate(targets):
        if target.rsplit(".", 1)[-1] in real_set:
            continue
        fix_list = good or body_linear(real)
        yield Finding(join("lora.target_modules", i),
                      f"target module '{target}' is not a linear module of {family} "
                      f"({ctx.get('model.name_or_path')}); its linear modules are: {', '.join(real)}",
                      f"lora.target_modules=[{','.join(fix_list)}]")
