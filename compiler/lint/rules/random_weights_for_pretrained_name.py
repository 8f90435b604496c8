"""
## What it does
Warns when `from_config: true` builds a model with random weights although `name_or_path`
names a pretrained model (a hub id `org/name` or a local directory).

## Why is this bad?
`from_config` builds the architecture in `model.config` from scratch: nothing of the named
model's weights is loaded. Fine-tuning random weights with LoRA trains a few adapters on top of
noise; the loss falls a little and the result is useless, and nothing says so.

## Example
```yaml
name_or_path: Qwen/Qwen2.5-0.5B
from_config: true
```

## Use instead
```yaml
name_or_path: Qwen/Qwen2.5-0.5B
from_config: false
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L033"
NAME = "random-weights-for-pretrained-name"
SEVERITY = Severity.WARNING


def check(ctx: LintContext):
    name = ctx.get("model.name_or_path") or ""
    if ctx.get("model.from_config") and ("/" in name or "\\" in name):
        yield Finding("model.from_config", f"from_config is true: the model is built with RANDOM weights from "
                                           f"model.config, and the weights of '{name}' are not loaded",
                      "model.from_config=false")
