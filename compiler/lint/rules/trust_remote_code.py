"""
## What it does
Warns when `model.trust_remote_code` is true.

## Why is this bad?
transformers then downloads and runs Python files from the model repository with your
permissions, on every node of the job. Anyone who can push to that repository (or to a
revision that is not pinned) can run code on your machines. Most architectures are in
transformers itself and need no remote code.

## Example
```yaml
trust_remote_code: true
```

## Use instead
```yaml
trust_remote_code: false
# or, having read the code: pin it
trust_remote_code: true
revision: 3f2c1a0  # the commit you reviewed
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L014"
NAME = "trust-remote-code"
SEVERITY = Severity.WARNING


def check(ctx: LintContext):
    if ctx.get("model.trust_remote_code"):
        pinned = ctx.get("model.revision")
        note = f" (pinned to revision {pinned})" if pinned else "; pin model.revision to the commit you reviewed"
        yield Finding("model.trust_remote_code",
                      f"trust_remote_code runs Python code from the repository of {ctx.get('model.name_or_path')} "
                      f"on this machine{note}", "model.trust_remote_code=false")
