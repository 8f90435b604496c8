"""An estimate as the text `loracfg estimate` prints: parameters, the memory breakdown per device, whether it
fits, the largest micro-batch that does, and the steps the schedule means."""

from __future__ import annotations

from typing import Any, Mapping

from loracfg.compiler.derived import resolve_dtype, resolve_optim
from loracfg.compiler.estimate.memory import Estimate, fmt_bytes


def render_text(est: Estimate, cfg: Mapping[str, Any]) -> str:
    p, m, s = est.parameters, est.memory, est.steps
    model, hw, quant = cfg["model"], cfg["hardware"], cfg["quant"]
    q = "4-bit " + quant.get("bnb_4bit_quant_type", "") + (" double-quant" if quant.get("bnb_4bit_use_double_quant")
                                                           else "") if quant.get("load_in_4bit") else \
        "8-bit" if quant.get("load_in_8bit") else resolve_dtype(cfg)
    lines = [
        f"model        {model['name_or_path']} ({model['config']['model_type']}, {model['task']}), base in {q}",
        f"parameters   total {p.total:,}   trainable {p.trainable:,} ({100 * p.trainable / p.total:.4f}%)",
        f"             LoRA r={cfg['lora']['r']} on {p.lora_layers} modules ({', '.join(p.targets) or 'none'}): "
        f"{p.lora:,}" + (f", DoRA magnitudes {p.dora_magnitude:,}" if p.dora_magnitude else "")
        + (f", modules_to_save {p.modules_to_save:,}" if p.modules_to_save else "")
        + (f", biases {p.trainable_bias:,}" if p.trainable_bias else ""),
    ]
    if not p.exact:
        lines.append(f"             (not exact: {p.note})")
    lines += ["", f"memory per device at micro-batch {m.micro_batch} x {m.seq_len} tokens "
                  f"({resolve_optim(cfg)}, gradient checkpointing "
                  f"{'on' if cfg['schedule'].get('gradient_checkpointing') else 'off'}"
                  + (f", {m.strategy} over {s['world_size']} processes" if m.strategy != "single" else "") + ")"]
    width = max(len(k) for k in m.breakdown)
    for k, v in m.breakdown.items():
        lines.append(f"  {k.replace('_', ' ').ljust(width)}  {fmt_bytes(v):>12}")
    lines.append(f"  {'peak'.ljust(width)}  {fmt_bytes(m.peak_bytes_per_device):>12}   of "
                 f"{hw['device_memory_gib']} GiB on {hw['device_name']}: "
                 + ("fits" if m.fits else "DOES NOT FIT"))
    lines.append(f"  largest micro-batch that fits: {m.max_micro_batch}")
    lines += [f"  note: {n}" for n in m.notes]
    lines += ["", f"steps        {s['total_steps']} optimizer steps = {s['epochs']:g} epochs x {s['steps_per_epoch']} "
                  f"steps/epoch ({s['train_samples']} samples / effective batch {s['effective_batch_size']}), "
                  f"warmup {s['warmup_steps']}" + (" (max_steps set: it decides, not num_train_epochs)"
                                                    if s["max_steps_set"] else "")]
    return "\n".join(lines)
