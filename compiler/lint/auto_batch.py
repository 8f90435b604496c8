"""``schedule.per_device_train_batch_size: auto``: the compiler picks the micro-batch before launch.

With a target ``schedule.effective_batch_size``, the micro-batch is the largest that divides the sequences each
device takes per optimizer step (effective batch / world size) and that the memory estimate fits on the declared
device; the gradient accumulation makes up the rest, so the effective batch is the same for any world size. The
Trainer's ``auto_find_batch_size`` finds out by running out of memory, after the job started.

Runs after schema validation, before the rules: every rule, the plan and the estimator see the numbers. What was
picked, and why, is kept on the composition (``Composition.batch_decisions``) for the plan's decisions.
"""

from __future__ import annotations

import copy

from loracfg.compiler.derived import world_size
from loracfg.compiler.lint import codes
from loracfg.compiler.lint.compose import Composition
from loracfg.compiler.lint.diagnostics import Diagnostic

MICRO, ACCUM, TARGET = ("schedule.per_device_train_batch_size", "schedule.gradient_accumulation_steps",
                        "schedule.effective_batch_size")


def _diag(comp: Composition, key: str, message: str, fix: str | None) -> Diagnostic:
    code = codes.AUTO_BATCH_UNRESOLVED
    return Diagnostic(code.code, code.severity, message, key, comp.locate(key), fix, comp.overrides)


def resolve(comp: Composition) -> list[Diagnostic]:
    from loracfg.compiler.estimate.memory import estimate_memory

    sched, hw = comp.config["schedule"], comp.config["hardware"]
    micro, target = sched.get("per_device_train_batch_size"), sched.get("effective_batch_size")
    world = world_size(comp.config)
    if micro != "auto":
        if target is not None and micro * sched["gradient_accumulation_steps"] * world != target:
            actual = micro * sched["gradient_accumulation_steps"] * world
            return [_diag(comp, TARGET, f"effective_batch_size {target} is used only with per_device_train_batch_"
                          f"size: auto; with {micro} x {sched['gradient_accumulation_steps']} accumulation x {world} "
                          f"device(s) the effective batch is {actual}", f"{MICRO}=auto")]
        return []
    if target is None:
        return [_diag(comp, MICRO, "per_device_train_batch_size: auto needs schedule.effective_batch_size, the batch "
                      "to keep for any number of devices", f"++{TARGET}=16")]
    if target % world:
        near = max(world, round(target / world) * world)
        return [_diag(comp, TARGET, f"effective_batch_size {target} cannot be split evenly over {world} processes "
                      f"(hardware.num_devices x num_nodes)", f"++{TARGET}={near}")]
    per_device = target // world
    probe = copy.deepcopy(comp.config)  # the estimate of one sequence per step, to find the largest that fits
    probe["schedule"].update(per_device_train_batch_size=1, gradient_accumulation_steps=per_device)
    memory = estimate_memory(probe, micro_batch=1)
    fitting = [b for b in range(min(per_device, max(memory.max_micro_batch, 1)), 0, -1) if per_device % b == 0]
    chosen = fitting[0]
    accum = per_device // chosen
    device = hw.get("device_name") or hw["accelerator"]
    fit = (f"the memory estimate fits at most {memory.max_micro_batch} sequences of {probe['data']['max_length']} "
           f"tokens on {device} ({hw['device_memory_gib']} GiB)") if memory.max_micro_batch else \
        f"not even one sequence fits the memory estimate on {device} (L019 says what would)"
    sched["per_device_train_batch_size"], sched["gradient_accumulation_steps"] = chosen, accum
    comp.batch_decisions = [
        ("TrainingArguments.per_device_train_batch_size", chosen,
         f"per_device_train_batch_size: auto -> {chosen}: the largest micro-batch dividing the {per_device} sequences "
         f"each of {world} process(es) takes per step (effective_batch_size {target}) that fits: {fit}"),
        ("TrainingArguments.gradient_accumulation_steps", accum,
         f"{per_device} sequences per device per step / micro-batch {chosen}: the effective batch stays {target} = "
         f"{chosen} x {accum} x {world}"),
    ]
    return []
