"""
## What it does
Flags a command-line change of the world size (`hardware=...`, `hardware.num_devices=...`,
`hardware.num_nodes=...`, one point of a sweep over them) that leaves the per-device batch and the
gradient accumulation as the schedule file has them, so the effective batch, and with it the
steps and the effective learning rate, changed with the hardware.

## Why is this bad?
The effective batch is `per_device_train_batch_size x gradient_accumulation_steps x world size`.
A sweep over `hardware` (or moving a tuned run from one GPU to eight) then also sweeps the
effective batch: eight devices take eight times the batch and an eighth of the steps at the same
learning rate, which is a different run, not the same run faster.

## Example
```yaml
# python train.py hardware=8xa100-80g   (the schedule was tuned on one GPU)
per_device_train_batch_size: 8
gradient_accumulation_steps: 8
```

## Use instead
```yaml
# python train.py hardware=8xa100-80g schedule.gradient_accumulation_steps=1
per_device_train_batch_size: 8
gradient_accumulation_steps: 1
```
or let the compiler keep the effective batch for any world size:
```yaml
per_device_train_batch_size: auto
effective_batch_size: 64
```
"""

from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L039"
NAME = "world-size-changes-batch"
SEVERITY = Severity.WARNING

BATCH_KEYS = ("schedule.per_device_train_batch_size", "schedule.gradient_accumulation_steps")


def _hardware_from_command_line(ctx: LintContext) -> bool:
    group = any(o.split("=", 1)[0].lstrip("+~") == "hardware" for o in ctx.comp.overrides)
    keys = any(ctx.comp.from_command_line(k) for k in ("hardware.num_devices", "hardware.num_nodes"))
    return group or keys


def check(ctx: LintContext):
    world = ctx.derived.world_size
    if ctx.get("schedule.effective_batch_size") is not None:
        return  # per_device_train_batch_size: auto kept the effective batch for this world size
    if world <= 1 or not _hardware_from_command_line(ctx) or any(ctx.comp.from_command_line(k) for k in BATCH_KEYS):
        return
    micro, accum = ctx.get("schedule.per_device_train_batch_size"), ctx.get("schedule.gradient_accumulation_steps")
    one = micro * accum
    keep = f"schedule.gradient_accumulation_steps={accum // world}" if accum % world == 0 else \
        f"schedule.per_device_train_batch_size={one // world} schedule.gradient_accumulation_steps=1" \
        if one % world == 0 else None
    fix = keep or f"schedule.gradient_accumulation_steps={accum}"
    yield Finding("schedule.gradient_accumulation_steps",
                  f"the hardware from the command line makes the world size {world}, and the schedule's batch "
                  f"({micro} x {accum} accumulation, from {ctx.where('schedule.gradient_accumulation_steps')}) "
                  f"was left as it is: the effective batch is {one * world}, not {one}, with 1/{world} of the steps "
                  f"at the same learning rate"
                  + (f"; {keep} keeps it at {one}" if keep else "; no split keeps it at " + str(one)),
                  fix)
