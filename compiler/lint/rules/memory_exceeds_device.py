"""
## What it does
Estimates the peak memory of one training step on one device (base weights by quantization,
adapters, gradients, optimizer states, activations at the configured micro-batch and sequence
length, logits, CUDA context; `loracfg estimate` shows the breakdown) and reports a
composition whose estimate exceeds `hardware.device_memory_gib`, with the changes that would
fit: a smaller micro-batch with more accumulation steps (same effective batch), gradient
checkpointing, a 4-bit base. An error on CUDA; a warning on CPU, where the limit is host
memory, which the `hardware` option only approximates.

## Why is this bad?
An out-of-memory error comes after the job waited in the queue, downloaded the weights and
loaded them; rules of thumb ("100 MB per billion parameters per sample") miss the quantization,
the optimizer and the sequence length by factors.

## Example
```yaml
# python train.py model=llama-3-8b quant=none hardware=t4
per_device_train_batch_size: 8
```

## Use instead
```yaml
# python train.py model=llama-3-8b quant=nf4 hardware=t4 schedule.gradient_checkpointing=true
per_device_train_batch_size: 2
gradient_accumulation_steps: 8
```
"""

from __future__ import annotations

from typing import Any, Mapping

from loracfg.compiler.estimate.memory import (
    Memory,
    estimate_memory,
    fmt_bytes,
    with_changes,
)
from loracfg.compiler.lint.diagnostics import Severity
from loracfg.compiler.lint.rules._base import Finding, LintContext

CODE = "L019"
NAME = "memory-exceeds-device"
SEVERITY = Severity.ERROR


def _nf4(cfg: Mapping[str, Any]) -> dict[str, Any]:
    dtype = "bfloat16" if cfg["hardware"]["supports_bf16"] else "float16"
    return {"load_in_4bit": True, "load_in_8bit": False, "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": dtype}


def _batch_split(micro: int, accum: int, largest: int) -> tuple[int, int] | None:
    """The largest micro-batch <= ``largest`` that divides micro x accum, and its accumulation steps."""
    per_device = micro * accum
    fitting = [b for b in range(min(largest, micro - 1), 0, -1) if per_device % b == 0]
    return (fitting[0], per_device // fitting[0]) if fitting else None


def fixes(cfg: Mapping[str, Any], memory: Memory) -> list[tuple[str, Memory]]:
    """Overrides that would fit, least invasive first, each with its estimate."""
    sched, quant = cfg["schedule"], cfg["quant"]
    micro, accum = int(sched["per_device_train_batch_size"]), int(sched["gradient_accumulation_steps"])
    out: list[tuple[str, Memory]] = []

    def keep_batch(label: str, changed: Mapping[str, Any], mem: Memory) -> None:
        if mem.fits:
            out.append((label, mem))
            return
        split = _batch_split(micro, accum, mem.max_micro_batch)
        if split:
            b, a = split
            out.append((f"{label} schedule.per_device_train_batch_size={b} schedule.gradient_accumulation_steps={a}"
                        .strip(), estimate_memory(changed, micro_batch=b)))

    keep_batch("", cfg, memory)
    variants: list[tuple[str, dict[str, Any]]] = []
    if not sched.get("gradient_checkpointing"):
        variants.append(("schedule.gradient_checkpointing=true",
                         with_changes(cfg, schedule={"gradient_checkpointing": True})))
    if not quant.get("load_in_4bit"):
        variants.append(("quant=nf4", with_changes(cfg, quant=_nf4(cfg))))
        if not sched.get("gradient_checkpointing"):
            variants.append(("quant=nf4 schedule.gradient_checkpointing=true",
                             with_changes(cfg, quant=_nf4(cfg), schedule={"gradient_checkpointing": True})))
    for label, changed in variants:
        keep_batch(label, changed, estimate_memory(changed))
    return out


def check(ctx: LintContext):
    cfg = ctx.config
    memory = estimate_memory(cfg)
    if memory.fits:
        return
    hw = cfg["hardware"]
    b = memory.breakdown
    what = (f"estimated peak memory {fmt_bytes(memory.peak_bytes_per_device)} per device exceeds "
            f"{hw['device_name']}'s {hw['device_memory_gib']} GiB (base weights {fmt_bytes(b['base_weights'])}, "
            f"activations and logits {fmt_bytes(b['activations'] + b['logits_and_loss'])} at micro-batch "
            f"{memory.micro_batch} x {memory.seq_len} tokens, optimizer states {fmt_bytes(b['optimizer_states'])}; "
            f"`loracfg estimate` shows all of it)")
    found = fixes(cfg, memory)
    if found:
        what += "; fits with: " + "; ".join(f"{label} ({fmt_bytes(m.peak_bytes_per_device)})" for label, m in found)
    else:
        what += "; no micro-batch, gradient checkpointing or 4-bit setting fits: choose a device with more memory"
    weights_alone = b["base_weights"] + b["cuda_context"] > memory.limit_bytes
    key = "model.name_or_path" if weights_alone or not found or not found[0][0].startswith("schedule.per_device") \
        else "schedule.per_device_train_batch_size"
    severity = None if hw["accelerator"] == "cuda" else Severity.WARNING
    yield Finding(key, what, found[0][0] if found else None, severity)
