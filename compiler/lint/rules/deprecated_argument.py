"""
## What it does
Reports keys that Hugging Face renamed or removed, such as `evaluation_strategy` (now
`eval_strategy`) or `per_gpu_train_batch_size` (now `per_device_train_batch_size`), and
names the key to use. The list is the schemas' own: each such key carries
`"deprecated": true` and `"x-renamed-to"`.

## Why is this bad?
transformers 5 no longer accepts `evaluation_strategy`: `TrainingArguments` raises a
TypeError on it. Older versions accept it with only a warning, so the same config works on
one machine and fails on another.

## Example
```yaml
evaluation_strategy: steps
```

## Use instead
```yaml
eval_strategy: steps
```
"""

from functools import cache

from loracfg.compiler.lint.compose import GROUPS
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L017"
NAME = "deprecated-argument"
SEVERITY = Severity.ERROR


@cache
def deprecated_keys() -> dict[str, str]:
    from loracfg.compiler.lint.validate import group_schema

    out = {}
    for group in GROUPS:
        for name, prop in group_schema(group).get("properties", {}).items():
            if prop.get("deprecated"):
                out[f"{group}.{name}"] = prop.get("x-renamed-to", "")
    return out


def check(ctx: LintContext):
    for key, new in deprecated_keys().items():
        if ctx.get(key) is None:
            continue
        group, old = key.split(".", 1)
        value = ctx.get(key)
        if new:
            yield Finding(key, f"'{old}' was renamed to '{new}' by transformers; the old name fails on "
                               f"transformers 5", f"~{key} {group}.{new}={value}")
        else:
            yield Finding(key, f"'{old}' was removed by transformers", f"~{key}")
