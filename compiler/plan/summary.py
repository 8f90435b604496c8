"""The plan as the lines `loracfg compile` and the training app print before a run: model, method, steps,
batch, precision, the versions it was compiled for, and every decision and renamed argument."""

from __future__ import annotations


def summary(plan: dict, notes: list[str]) -> str:
    m, r, v = plan["model"], plan["resolved"], plan["compiled_for"]
    lora = plan["lora"]["LoraConfig"]
    q = plan["quantization"]["BitsAndBytesConfig"] if plan["quantization"] else None
    method = ("QLoRA 4-bit " + q.get("bnb_4bit_quant_type", "")) if q and q.get("load_in_4bit") else \
        "LoRA on an 8-bit base" if q else "LoRA"
    variant = "DoRA " if lora.get("use_dora") else "rsLoRA " if lora.get("use_rslora") else ""
    ta = plan["training"]["TrainingArguments"]
    micro, accum = ta["per_device_train_batch_size"], ta["gradient_accumulation_steps"]
    lines = [
        f"model:      {m['name_or_path']} ({m['task']}, {m['auto_class']}{', built from config' if m['from_config'] else ''})",
        f"method:     {method}, {variant}r={lora['r']} alpha={lora['lora_alpha']} on {lora.get('target_modules')}",
        f"steps:      {r['total_steps']} optimizer steps ({r['epochs']:g} epochs x {r['steps_per_epoch']}/epoch), "
        f"warmup {r['warmup_steps']}",
        f"batch:      effective {r['effective_batch_size']} = {micro} x {accum} accumulation x {r['world_size']} device(s)",
        f"precision:  {r['precision']}, optimizer {r['optim']}",
        f"for:        transformers {v['transformers']}, peft {v['peft']}, torch {v['torch']}",
    ]
    lines += [f"resolved:   {d['argument']} = {d['value']!r}: {d['why']}" for d in plan["decisions"]]
    lines += [f"mapped:     {x['from']} -> {x['to']}: {x['why']}" for x in plan["mapping"]]
    lines += [f"note:       {n}" for n in notes]
    return "\n".join(lines)
