"""
## What it does
Checks `lr_scheduler_kwargs` against the scheduler `lr_scheduler_type` names: an argument the
scheduler lacks, one it needs and is not given (`min_lr` or `min_lr_rate` for
`cosine_with_min_lr`, `num_decay_steps` for `warmup_stable_decay`), both of two exclusive ones,
and arguments a scheduler that takes none silently drops; and `reduce_lr_on_plateau` without evaluation, whose
loss it steps on.

## Why is this bad?
transformers builds the scheduler only when training starts (`Trainer.create_scheduler`), after
the model is loaded and, on a cluster, after the job waited in the queue; a missing or unknown
argument is a `ValueError` or `TypeError` there. `constant` and `constant_with_warmup` ignore
their arguments without a word.

## Example
```yaml
lr_scheduler_type: cosine_with_min_lr
lr_scheduler_kwargs: {}
```

## Use instead
```yaml
lr_scheduler_type: cosine_with_min_lr
lr_scheduler_kwargs: {min_lr_rate: 0.1}
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L026"
NAME = "scheduler-arguments-mismatch"
SEVERITY = Severity.ERROR

# lr_scheduler_type -> the lr_scheduler_kwargs its transformers schedule function takes (transformers 4.57-5.x;
# tests/compiler/lint/rules/test_scheduler_arguments.py compares this table with the installed signatures).
ACCEPTS: dict[str, tuple[str, ...]] = {
    "linear": (),
    "cosine": ("num_cycles",),
    "cosine_with_restarts": ("num_cycles",),
    "polynomial": ("lr_end", "power"),
    "inverse_sqrt": ("timescale",),
    "reduce_lr_on_plateau": ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
                             "eps"),
    "cosine_with_min_lr": ("num_cycles", "min_lr", "min_lr_rate"),
    "cosine_warmup_with_min_lr": ("num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate"),
    "warmup_stable_decay": ("num_decay_steps", "num_stable_steps", "warmup_type", "decay_type", "min_lr_ratio",
                            "num_cycles"),
}
IGNORES = ("constant", "constant_with_warmup")  # get_scheduler calls these without the kwargs
# scheduler -> (groups of which exactly one argument is needed, an example value for the fix)
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "cosine_with_min_lr": (("min_lr", "min_lr_rate"), "min_lr_rate:0.1"),
    "cosine_warmup_with_min_lr": (("min_lr", "min_lr_rate"), "min_lr_rate:0.1"),
    "warmup_stable_decay": (("num_decay_steps",), "num_decay_steps:100"),
}


def _fix(kwargs: dict, drop: set[str] = frozenset(), add: str | None = None) -> str:
    items = [f"{k}:{v}" for k, v in kwargs.items() if k not in drop] + ([add] if add else [])
    return "'schedule.lr_scheduler_kwargs={" + ",".join(items) + "}'"


def check(ctx: LintContext):
    name = ctx.get("schedule.lr_scheduler_type")
    kwargs = ctx.get("schedule.lr_scheduler_kwargs") or {}
    key = "schedule.lr_scheduler_kwargs"
    if name in IGNORES:
        if kwargs:
            yield Finding(key, f"lr_scheduler_type {name} takes no arguments: transformers drops "
                               f"{', '.join(sorted(kwargs))} without a word", "'schedule.lr_scheduler_kwargs={}'",
                          Severity.WARNING)
        return
    if name not in ACCEPTS:
        return
    if name == "reduce_lr_on_plateau" and ctx.get("schedule.eval_strategy") == "no":
        yield Finding("schedule.lr_scheduler_type", "lr_scheduler_type reduce_lr_on_plateau steps on the evaluation "
                                                    "loss, but eval_strategy is 'no' (TrainingArguments refuses it)",
                      "schedule.eval_strategy=steps")
    unknown = sorted(set(kwargs) - set(ACCEPTS[name]))
    if unknown:
        takes = ", ".join(ACCEPTS[name]) or "none"
        yield Finding(f"{key}.{unknown[0]}", f"lr_scheduler_type {name} has no argument "
                                             f"{', '.join(unknown)} (it takes: {takes}); transformers raises a "
                                             f"TypeError when training starts", _fix(kwargs, set(unknown)))
    if name in NEEDS:
        group, example = NEEDS[name]
        given = [k for k in group if kwargs.get(k) is not None]
        if not given:
            yield Finding(key, f"lr_scheduler_type {name} needs {' or '.join(group)} in lr_scheduler_kwargs; "
                               f"transformers raises when training starts", _fix(kwargs, add=example))
        elif len(given) > 1:
            yield Finding(f"{key}.{given[1]}", f"lr_scheduler_type {name} takes only one of {' and '.join(given)}",
                          _fix(kwargs, {given[1]}))
