"""What follows from a composed config alone: effective batch, steps, warmup, and the precision, optimizer and
weight dtype that ``auto`` resolves to. Shared by the lint rules, the plan and the estimator; imports nothing of ours.

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


def world_size(cfg: Mapping[str, Any]) -> int:
    """Processes of one run: hardware.num_devices on each of hardware.num_nodes."""
    hw = cfg["hardware"]
    return int(hw["num_devices"]) * int(hw.get("num_nodes") or 1)


def derive(cfg: Mapping[str, Any]) -> Derived:
    sched, data = cfg["schedule"], cfg["data"]
    world = world_size(cfg)
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


def resolve_precision(cfg: Mapping[str, Any]) -> tuple[bool, bool]:
    """(bf16, fp16) of TrainingArguments: ``auto`` picks bf16 on CUDA that has it, else fp16 on CUDA; an
    ``auto`` beside the other format set true stays off (transformers refuses both on)."""
    sched, hw = cfg["schedule"], cfg["hardware"]
    cuda = hw["accelerator"] == "cuda"
    bf16, fp16 = sched["bf16"], sched["fp16"]
    if bf16 == "auto" and fp16 is True:
        bf16 = False
    if bf16 == "auto":
        bf16 = bool(cuda and hw["supports_bf16"])
    if fp16 == "auto":
        fp16 = bool(cuda and not bf16 and hw["supports_fp16"])
    return bool(bf16), bool(fp16)


def resolve_optim(cfg: Mapping[str, Any]) -> str:
    """TrainingArguments.optim: ``auto`` is paged 8-bit AdamW for a quantized base on CUDA, fused AdamW on CUDA,
    torch AdamW elsewhere."""
    optim = cfg["schedule"]["optim"]
    if optim != "auto":
        return optim
    cuda = cfg["hardware"]["accelerator"] == "cuda"
    quant = cfg["quant"]
    if cuda and (quant.get("load_in_4bit") or quant.get("load_in_8bit")):
        return "paged_adamw_8bit"
    return "adamw_torch_fused" if cuda else "adamw_torch"


def resolve_dtype(cfg: Mapping[str, Any]) -> str:
    """from_pretrained's dtype: the 4-bit compute dtype for a 4-bit base, else the training precision."""
    quant = cfg["quant"]
    if quant.get("load_in_4bit"):
        return quant["bnb_4bit_compute_dtype"]
    bf16, fp16 = resolve_precision(cfg)
    return "bfloat16" if bf16 else "float16" if fp16 else "float32"
