"""
## What it does
Checks `layers_to_transform` and `modules_to_save` against the model: layer indices past the
model's `num_hidden_layers`, an empty list, `layers_to_transform` beside a string
`target_modules` (`all-linear` or a regular expression), and `modules_to_save` naming a module
the model does not have.

## Why is this bad?
peft refuses `layers_to_transform` with a string `target_modules` ("cannot be used when
`target_modules` is a str") and fails in `get_peft_model` when no layer is left to adapt; layer
indices past the end and names the model lacks are dropped, so the run trains less than the
config says, or nothing.

## Example
```yaml
# tiny-llama has 4 layers
target_modules: all-linear
layers_to_transform: [2, 3, 4]
```

## Use instead
```yaml
target_modules: [q_proj, v_proj]
layers_to_transform: [2, 3]
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext, body_linear
from loracfg.compiler.lint.yamlpos import join

CODE = "L029"
NAME = "adapter-scope-not-in-model"
SEVERITY = Severity.ERROR

def check(ctx: LintContext):
    layers = ctx.get("lora.layers_to_transform")
    linear = ctx.get("model.linear_modules") or {}
    n = ctx.get("model.config.num_hidden_layers")
    if isinstance(layers, list):
        body = body_linear(linear)
        targets = ctx.get("lora.target_modules")
        if not layers:
            yield Finding("lora.layers_to_transform", "layers_to_transform is empty: no layer would be adapted",
                          "lora.layers_to_transform=null")
        elif isinstance(targets, str):
            yield Finding("lora.layers_to_transform", f"layers_to_transform needs target_modules as a list of "
                                                      f"names; peft refuses it beside the string '{targets}'",
                          f"lora.target_modules=[{','.join(body)}]")
        if isinstance(n, int):
            for i, layer in enumerate(layers):
                if layer >= n:
                    keep = [x for x in layers if x < n]
                    yield Finding(join("lora.layers_to_transform", i),
                                  f"layer {layer} does not exist: {ctx.get('model.name_or_path')} has {n} layers "
                                  f"(0-{n - 1})", f"lora.layers_to_transform=[{','.join(map(str, keep))}]"
                                  if keep else "lora.layers_to_transform=null")
    saved = ctx.get("lora.modules_to_save")
    names = set(linear) | set(ctx.get("model.other_modules") or {})
    if isinstance(saved, list) and names:
        for i, module in enumerate(saved):
            if module.rsplit(".", 1)[-1] not in names:
                yield Finding(join("lora.modules_to_save", i),
                              f"modules_to_save names '{module}', which {ctx.get('model.name_or_path')} does not "
                              f"have; its modules are: {', '.join(sorted(names))}",
                              f"lora.modules_to_save=[{','.join(m for m in saved if m.rsplit('.', 1)[-1] in names)}]")
