"""Codes of the checks the compose and schema stages make (lint rules live in ``loracfg.compiler.lint.rules``).

Each is documented in ruff's form so ``loracfg rule C002`` explains it like any rule.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from loracfg.compiler.lint.diagnostics import Severity


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: Severity
    doc: str
    stage: str  # "compose", "schema", "rule" or "compile"
    check: Callable | None = None

    def render(self) -> str:
        return f"# {self.name} ({self.code})\n\nSeverity: {self.severity.value}. Stage: {self.stage}.\n\n{self.doc.strip()}\n"


def _code(code: str, name: str, stage: str, doc: str, severity: Severity = Severity.ERROR) -> Code:
    return Code(code, name, severity, inspect.cleandoc(doc), stage)


MALFORMED_YAML = _code("C001", "malformed-yaml", "compose", """
## What it does
Reports a config file that is not valid YAML (or repeats a key), at the line and column the parser stopped.

## Why is this bad?
Hydra cannot load the file, so nothing that uses it composes.

## Example
```yaml
target_modules: [q_proj, v_proj
```

## Use instead
```yaml
target_modules: [q_proj, v_proj]
```
""")

MISSING_OPTION = _code("C002", "missing-config-option", "compose", """
## What it does
Reports a group option that does not exist (`lora=r32` with no `conf/lora/r32.yaml`), listing the options that do.

## Why is this bad?
Hydra stops the run before anything starts; a typo in a sweep would only show up when that job starts.

## Example
```console
loracfg lint lora=r23
```

## Use instead
```console
loracfg lint lora=r16
```
""")

UNKNOWN_OVERRIDE = _code("C003", "override-of-unknown-key", "compose", """
## What it does
Reports a command-line override of a key that the composed config does not have, naming the keys that are close.

## Why is this bad?
Hydra refuses it; with `+` it would add a key that no stage reads, so the setting silently does nothing.

## Example
```console
python train.py schedule.learning_rat=1e-4
```

## Use instead
```console
python train.py schedule.learning_rate=1e-4
```
""")

INVALID_OVERRIDE = _code("C004", "invalid-override", "compose", """
## What it does
Reports a command-line override that Hydra's override grammar cannot parse.

## Why is this bad?
Hydra stops before composing anything.

## Example
```console
loracfg lint schedule.learning_rate=[1e-4,
```

## Use instead
```console
loracfg lint schedule.learning_rate=1e-4
```
""")

MISSING_VALUE = _code("C005", "missing-value", "compose", """
## What it does
Reports a mandatory value (`???`) that nothing filled in.

## Why is this bad?
OmegaConf raises `MissingMandatoryValue` the moment a stage reads it, possibly hours into a job.

## Example
```yaml
name_or_path: ???
```

## Use instead
```console
python train.py model.name_or_path=meta-llama/Llama-2-7b-hf
```
""")

BROKEN_INTERPOLATION = _code("C006", "broken-interpolation", "compose", """
## What it does
Reports an interpolation (`${...}`) that does not resolve: a key that does not exist, or a resolver that fails.

## Why is this bad?
OmegaConf raises when the value is read, which for a rarely read key may be late in a run.

## Example
```yaml
eval_steps: ${schedule.save_step}
```

## Use instead
```yaml
eval_steps: ${schedule.save_steps}
```
""")

COMPOSITION_FAILED = _code("C007", "composition-failed", "compose", """
## What it does
Reports any other reason Hydra could not compose the config (a bad defaults list, a package clash), with Hydra's message.

## Why is this bad?
Without a composed config nothing can be checked or run.

## Example
```yaml
defaults:
  - lora: [r8, r16]
```

## Use instead
```yaml
defaults:
  - lora: r16
```
""")

MISSING_FILE = _code("C008", "missing-file", "compose", """
## What it does
Reports a file named on the command line that does not exist or is not a config option file.

## Why is this bad?
Nothing can be linted for it; most often a typo in the path.

## Example
```console
loracfg lint conf/lora/r61.yaml
```

## Use instead
```console
loracfg lint conf/lora/r64.yaml
```
""")

UNKNOWN_KEY = _code("S001", "unknown-key", "schema", """
## What it does
Reports a key that the group's JSON schema does not define, with the closest known keys.

## Why is this bad?
No stage reads it, so a misspelt `lora_aplha: 64` silently trains with the default alpha.

## Example
```yaml
lora_aplha: 64
```

## Use instead
```yaml
lora_alpha: 64
```
""")

WRONG_TYPE = _code("S002", "wrong-type", "schema", """
## What it does
Reports a value of the wrong type for its key (a string where a number belongs, a list where a string belongs).

## Why is this bad?
Hugging Face would fail on it at construction time, or worse, accept it: `"2e-4"` as a string breaks the optimizer.

## Example
```yaml
learning_rate: "2e-4 "
```

## Use instead
```yaml
learning_rate: 2.0e-4
```
""")

INVALID_VALUE = _code("S003", "invalid-value", "schema", """
## What it does
Reports a value outside what its key accepts: not one of the allowed names, below a minimum, a combination the schema forbids.

## Why is this bad?
Hugging Face raises on most of these when the objects are built, long after the job was queued.

## Example
```yaml
optim: adamw
```

## Use instead
```yaml
optim: adamw_torch
```
""")

MISSING_KEY = _code("S004", "missing-required-key", "schema", """
## What it does
Reports a key that the group requires but that the composed config lacks.

## Why is this bad?
The compiler would have to guess it; transformers' own defaults are not always what a LoRA run wants (e.g. `bnb_4bit_quant_type` defaults to fp4, not nf4).

## Example
```yaml
load_in_4bit: true
```

## Use instead
```yaml
load_in_4bit: true
bnb_4bit_quant_type: nf4
bnb_4bit_compute_dtype: bfloat16
```
""")

AUTO_BATCH_UNRESOLVED = _code("S005", "auto-batch-unresolved", "schema", """
## What it does
Reports a `per_device_train_batch_size: auto` the compiler cannot resolve (no `effective_batch_size`
to keep, or one that does not split evenly over the processes), and an `effective_batch_size` set
beside a fixed micro-batch that gives another effective batch.

## Why is this bad?
With `auto` the compiler picks the largest micro-batch the memory estimate fits and the gradient
accumulation that keeps `effective_batch_size` for any number of devices; without a target there
is nothing to keep, and beside a fixed micro-batch the target would be silently ignored.

## Example
```yaml
per_device_train_batch_size: auto
```

## Use instead
```yaml
per_device_train_batch_size: auto
effective_batch_size: 32
```
""")

HF_REJECTED = _code("H001", "hf-constructor-rejected", "compile", """
## What it does
Reports a plan that a Hugging Face constructor (`TrainingArguments`, `LoraConfig`,
`BitsAndBytesConfig`) refused when `loracfg compile` built it, with transformers' or peft's
own message and the config key that fed the argument.

## Why is this bad?
The same error would stop the training job at start-up, after the queue wait and the model
download. Building the objects at compile time moves it to the command line.

## Example
```yaml
# schedule: eval_strategy is 'steps' but eval_steps resolves to an invalid value
eval_steps: -5
```

## Use instead
```yaml
eval_steps: 50
```
""")

ARGUMENT_NOT_SUPPORTED = _code("H002", "argument-not-in-installed-version", "compile", """
## What it does
Reports a config key whose Hugging Face argument the installed transformers or peft does not
have (e.g. `use_dora` on a peft older than 0.9), naming the class and the installed version.

## Why is this bad?
The constructor would raise a TypeError at start-up, or, for `BitsAndBytesConfig`, which
accepts unknown keyword arguments silently, the setting would simply be dropped.

## Example
```yaml
use_dora: true  # with peft 0.8
```

## Use instead
```console
pip install 'peft>=0.9'
```
""")

CHECKS: tuple[Code, ...] = (
    MALFORMED_YAML, MISSING_OPTION, UNKNOWN_OVERRIDE, INVALID_OVERRIDE, MISSING_VALUE,
    BROKEN_INTERPOLATION, COMPOSITION_FAILED, MISSING_FILE,
    UNKNOWN_KEY, WRONG_TYPE, INVALID_VALUE, MISSING_KEY, AUTO_BATCH_UNRESOLVED, HF_REJECTED, ARGUMENT_NOT_SUPPORTED,
)
