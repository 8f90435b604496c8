"""
## What it does
Reports a `data.format` whose rows the model's `task` cannot be trained on: classification rows
for a causal LM, text or conversations for a sequence classifier, word/tag rows for anything but
a token classifier, and classification rows without `data.label_field`.

## Why is this bad?
The runner turns each row into the inputs and labels of the model's task. A sequence
classifier needs a class label per row; a causal LM learns tokens, not a class. The mismatch
otherwise surfaces only once the model is loaded and the first batch is built, after the
download and the GPU allocation.

## Example
```yaml
# model: bert-base (task: seq-cls)
format: text
```

## Use instead
```yaml
format: classification
dataset_text_field: text
label_field: label
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L020"
NAME = "data-format-mismatches-task"
SEVERITY = Severity.ERROR

# model.task -> the data formats whose rows train it
FORMATS_FOR_TASK = {"causal-lm": ("text", "completion", "alpaca", "messages"), "seq-cls": ("classification",),
                    "token-cls": ("token-cls",)}


def feeds(task: str, fmt: str) -> bool:
    return fmt in FORMATS_FOR_TASK.get(task, ())


def check(ctx: LintContext):
    task, fmt = ctx.get("model.task"), ctx.get("data.format")
    if not feeds(task, fmt):
        usable = FORMATS_FOR_TASK[task]
        yield Finding("data.format", f"data.format is {fmt} but model.task is {task}, which trains on "
                                     f"{', '.join(usable)} rows", f"data.format={usable[0]}")
    elif fmt == "classification" and not ctx.get("data.label_field"):
        yield Finding("data.format", "classification rows need data.label_field, the column with the class label",
                      "+data.label_field=label")
