"""Quantities that follow from a composed config by arithmetic alone: effective batch, steps, warmup.

They mirror how transformers' Trainer counts (transformers 5: ceil of batches per epoch over
accumulation steps; warmup is ceil(total x ratio) unless a step count is given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Derived:
    world_size: int
    effective_batch_size: int
    train_samples: int
    eval_samples: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    epochs: float  # what the run really trains: max_steps / steps_per_epoch when max_steps is set


def derive(cfg: Mapping[str, Any]) -> Derived:
    sched, data, hw = cfg["schedule"], cfg["data"], cfg["hardware"]
    world = int(hw["num_devices"])
    micro = int(sched["per_device_train_batch_size"])
    accum = int(sched["gradient_accumulation_steps"])
    n = int(data["num_samples"])
    eval_samples = math.ceil(n * float(data["test_size"])) if data["test_size"] else 0
    train = max(n - eval_samples, 0)
    batches_per_device = math.ceil(math.ceil(train / world) / micro)
    steps_per_epoch = max(math.ceil(batches_per_device / accum), 1)
    max_steps = int(sched["max_steps"])
    epochs_cfg = sched.get("num_train_epochs")
    if max_steps > 0:
        total = max_steps
    else:
        total = math.ceil(float(epochs_cfg or 0) * steps_per_epoch)
    warmup_cfg = int(sched.get("warmup_steps") or 0)
    warmup = warmup_cfg if warmup_cfg > 0 else math.ceil(total * float(sched.get("warmup_ratio") or 0.0))
    return Derived(
        world_size=world,
        effective_batch_size=micro * accum * world,
        train_samples=train,
        eval_samples=eval_samples,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        warmup_steps=warmup,
        epochs=total / steps_per_epoch,
    )
