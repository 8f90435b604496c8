"""QLoRA on CUDA: the plan's real target. Marked gpu; skipped where there is no CUDA device."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.compiler.plan import build as plan_module  # noqa: E402
from loracfg.runner.run import run  # noqa: E402

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_qlora_trains_on_cuda_with_bf16_and_the_paged_optimizer(tmp_path):
    hardware = "a100-80g" if torch.cuda.is_bf16_supported() else "t4"
    quant = ["quant=nf4"] + (["quant.bnb_4bit_compute_dtype=float16"] if hardware == "t4" else [])
    compiled = compile_run([f"output_dir={tmp_path}", f"hardware={hardware}", *quant, "schedule.max_steps=20",
                            "schedule.num_train_epochs=null", "schedule.eval_steps=10", "schedule.save_steps=10"],
                           CONF)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    assert compiled.plan["resolved"]["optim"] == "paged_adamw_8bit"
    (tmp_path / "plan.json").write_text(plan_module.dumps(compiled.plan))
    metrics = run(compiled.plan)
    assert metrics["finished"] and metrics["global_step"] == 20
    assert metrics["peak_memory_kind"] == "cuda_max_memory_allocated" and metrics["peak_memory_bytes"] > 0
    assert metrics["quantized_linear_modules"] == 4 * 7
    assert metrics["final_eval_loss"] < metrics["initial_eval_loss"]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
@pytest.mark.parametrize("quant", [["quant=none"], ["quant=nf4"]], ids=["lora", "qlora"])
def test_fsdp_on_two_gpus_shards_and_trains(tmp_path, quant):
    """The Trainer's FSDP2 path, which CPU cannot run: two processes through torch.distributed.run."""
    import json
    import subprocess
    import sys

    root = CONF.parent
    r = subprocess.run([sys.executable, "train.py", "hardware=2xh100", "hardware.strategy=fsdp", *quant,
                        "hardware.supports_bf16=" + str(torch.cuda.is_bf16_supported()).lower(),
                        "schedule.max_steps=20", "schedule.num_train_epochs=null", "schedule.eval_steps=10",
                        "schedule.save_steps=10", f"output_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'hydra'}"],
                       cwd=root, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    (metrics,) = tmp_path.glob("*/metrics.json")
    m = json.loads(metrics.read_text())
    assert m["finished"] and m["global_step"] == 20 and (m["world_size"], m["strategy"]) == (2, "fsdp")
    assert m["distributed_type"] == "FSDP" and m["final_eval_loss"] < m["initial_eval_loss"]
