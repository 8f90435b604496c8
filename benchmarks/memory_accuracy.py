#!/usr/bin/env python
"""Estimated versus measured peak memory: `loracfg estimate` against torch.cuda.max_memory_allocated.

    python benchmarks/memory_accuracy.py                 # CUDA: every case; CPU: the accelerate part only
    python benchmarks/memory_accuracy.py --cases qwen2.5-0.5b:lora --steps 4

On a CUDA machine each case trains a few real steps through the real path (compile a plan, run
`python -m loracfg.runner plan.json` in a fresh process) on a model built from its config with random
weights (no download): a 0.5B, a 1.5B and a 7B-class shape (qwen2.5-0.5b, qwen2.5-1.5b,
mistral-7b), each with LoRA on a 16-bit base and with QLoRA (nf4). The sequences are packed to
exactly `data.max_length` tokens so the estimate's sequence length is the real one, and the
optimizer is plain AdamW (paged optimizers live in CUDA unified memory, which
max_memory_allocated does not see). The comparison leaves the CUDA context out of the estimate,
since max_memory_allocated leaves it out too. Target: every ratio within 0.90..1.10.

Without CUDA (and with --accelerate-only) it prints the model-size comparison with accelerate's
`estimate-memory` arithmetic (accelerate.utils.calculate_maximum_sizes on the same meta-device
architecture; the CLI itself fetches configs from the hub, which this tool never does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPES = ("qwen2.5-0.5b", "qwen2.5-1.5b", "mistral-7b")
METHODS = {"lora": ["quant=none"], "qlora": ["quant=nf4"]}
GIB = 1024 ** 3


def case_overrides(shape: str, method: str, micro: int, seq: int, steps: int, out: str, hardware: str) -> list[str]:
    return [
        f"model={shape}", "model.from_config=true", "model.tokenizer_name_or_path=byte-level",
        *METHODS[method], f"hardware={hardware}",
        "data.packing=true", "data.packing_strategy=wrapped", f"data.max_length={seq}", "data.num_samples=2000",
        "data.test_size=0.0",
        f"schedule.max_steps={steps}", "schedule.num_train_epochs=null", "schedule.warmup_ratio=0.0",
        "+schedule.warmup_steps=1", f"schedule.per_device_train_batch_size={micro}",
        "schedule.gradient_accumulation_steps=1", "schedule.optim=adamw_torch", "schedule.eval_strategy=no",
        "schedule.save_strategy=no", "schedule.logging_steps=1", f"output_dir={out}",
    ]


def measure(overrides: list[str]) -> tuple[dict, dict]:
    from loracfg.compiler.estimate.memory import estimate
    from loracfg.compiler.pipeline import compile_run
    from loracfg.compiler.plan import build as plan_module
    from loracfg.compiler.settings import Settings

    compiled = compile_run(overrides, ROOT / "conf", Settings(ignore=frozenset({"L019", "L006", "L004"})),
                           build_objects=False)
    if not compiled.ok:
        raise SystemExit("not compiled: " + "; ".join(f"{d.code} {d.message}" for d in compiled.lint.diagnostics))
    est = estimate(compiled.plan["config"]).as_json()  # the plan carries the composed config
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(plan_module.dumps(compiled.plan))
        subprocess.run([sys.executable, "-m", "loracfg.runner", str(plan_path)], cwd=ROOT, check=True)
    run_dir = ROOT / compiled.plan["training"]["TrainingArguments"]["output_dir"]
    return est, json.loads((run_dir / "metrics.json").read_text())


def accelerate_comparison() -> list[dict]:
    """Model size by dtype: accelerate's estimate-memory arithmetic vs ours, on the same architectures."""
    from accelerate.utils import calculate_maximum_sizes
    from loracfg.compiler.estimate.memory import estimate_memory, with_changes
    from loracfg.compiler.lint.compose import Composer
    from loracfg.compiler.plan.facts import meta_model

    rows = []
    with Composer(ROOT / "conf") as c:
        for shape in (*SHAPES, "llama-3-8b"):
            cfg = c.compose([f"model={shape}", "hardware=a100-80g"])[0].config
            total, _ = calculate_maximum_sizes(meta_model(cfg["model"]["config"], cfg["model"]["task"]))
            ours = {
                "16-bit": estimate_memory(cfg).breakdown["base_weights"],
                "int8": estimate_memory(with_changes(cfg, quant={"load_in_8bit": True})).breakdown["base_weights"],
                "nf4": estimate_memory(with_changes(cfg, quant={
                    "load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16",
                    "bnb_4bit_use_double_quant": False})).breakdown["base_weights"],
                "nf4+dq": estimate_memory(with_changes(cfg, quant={
                    "load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16",
                    "bnb_4bit_use_double_quant": True})).breakdown["base_weights"],
            }
            theirs = {"16-bit": total / 2, "int8": total / 4, "nf4": total / 8, "nf4+dq": total / 8}
            rows.append({"model": shape, "ours": ours, "accelerate": theirs})
    print("\nmodel size (weights only): ours vs accelerate estimate-memory (same architecture, meta device)")
    print(f"{'model':14} {'dtype':7} {'ours GiB':>9} {'accelerate GiB':>15} {'ours/acc':>9}")
    for r in rows:
        for k in r["ours"]:
            print(f"{r['model']:14} {k:7} {r['ours'][k] / GIB:9.2f} {r['accelerate'][k] / GIB:15.2f} "
                  f"{r['ours'][k] / r['accelerate'][k]:9.3f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="*", default=[f"{s}:{m}" for s in SHAPES for m in METHODS],
                   help="SHAPE:METHOD, METHOD lora or qlora")
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--hardware", default="h100", help="the hardware option whose memory is the limit")
    p.add_argument("--accelerate-only", action="store_true")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    results: dict = {"accelerate": accelerate_comparison()}
    try:
        import torch
        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if args.accelerate_only or not cuda:
        if not args.accelerate_only:
            print("\nno CUDA device here: the estimated-vs-measured table needs one (see the docstring)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    rows = []
    out = tempfile.mkdtemp(prefix="loracfg-memory-")
    for case in args.cases:
        shape, method = case.split(":")
        est, metrics = measure(case_overrides(shape, method, args.micro_batch, args.seq, args.steps, out,
                                              args.hardware))
        predicted = est["peak_bytes_per_device"] - est["memory_breakdown"]["cuda_context"]
        measured = metrics["peak_memory_bytes"]
        rows.append({"case": case, "estimated": predicted, "measured": measured, "ratio": predicted / measured,
                     "breakdown": est["memory_breakdown"], "memory_kind": metrics.get("peak_memory_kind")})
        print(f"{case:22} estimated {predicted / GIB:7.2f} GiB  measured {measured / GIB:7.2f} GiB  "
              f"ratio {predicted / measured:5.3f}", flush=True)
    results["cases"] = rows
    print(f"\n{'case':22} {'estimated GiB':>14} {'measured GiB':>13} {'ratio':>7}")
    for r in rows:
        print(f"{r['case']:22} {r['estimated'] / GIB:14.2f} {r['measured'] / GIB:13.2f} {r['ratio']:7.3f}")
    inside = sum(0.9 <= r["ratio"] <= 1.1 for r in rows)
    print(f"{inside}/{len(rows)} cases within +-10% (micro-batch {args.micro_batch} x {args.seq} tokens, "
          f"torch {torch.__version__}, {torch.cuda.get_device_name()})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
