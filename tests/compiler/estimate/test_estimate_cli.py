"""`loracfg estimate` and the memory-fit rule (L019) on the shipped conf: no torch needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from loracfg.compiler.cli import main
from loracfg.compiler.estimate.memory import estimate, estimate_memory, with_changes
from loracfg.compiler.lint.check import lint
from loracfg.compiler.lint.compose import Composer

ROOT = Path(__file__).resolve().parents[3]
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
HARDWARE = sorted(p.stem for p in (ROOT / "conf" / "hardware").glob("*.yaml"))


def _cfg(*overrides):
    with Composer(ROOT / "conf") as c:
        return c.compose(list(overrides))[0].config


@pytest.mark.parametrize("model", MODELS)
def test_estimate_json_for_every_shipped_model(model, capsys):
    assert main(["estimate", f"model={model}", "hardware=a100-80g", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("total_params", "trainable_params", "peak_bytes_per_device", "fits", "max_micro_batch"):
        assert key in data
    assert 0 < data["trainable_params"] < data["total_params"]
    assert sum(data["memory_breakdown"].values()) == data["peak_bytes_per_device"]
    assert data["steps"]["total_steps"] == 339  # 1800 samples / effective batch 16 = 113 steps x 3 epochs


def test_estimate_text_names_the_verdict(capsys):
    assert main(["estimate", "model=llama-3-8b", "quant=none", "hardware=t4"]) == 0
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out and "of 15 GiB on Tesla T4" in out and "largest micro-batch that fits: 0" in out


def test_estimate_of_an_invalid_composition_exits_1_with_the_diagnostic(capsys):
    assert main(["estimate", "lora.r=abc"]) == 1
    err = capsys.readouterr().err
    assert "S002" in err and "lora.r" in err


def test_8b_in_16_bit_on_a_t4_is_a_lint_error_with_fixes_that_fit():
    result = lint(["model=llama-3-8b", "quant=none", "hardware=t4"], ROOT / "conf")
    (d,) = [d for d in result.diagnostics if d.code == "L019"]
    assert d.severity.value == "error" and d.key == "model.name_or_path"
    assert "exceeds Tesla T4's 15 GiB" in d.message and "quant=nf4" in d.fix
    fixed = lint(["model=llama-3-8b", "hardware=t4", *d.fix.split(), "quant.bnb_4bit_compute_dtype=float16"],
                 ROOT / "conf")
    assert not [x for x in fixed.diagnostics if x.code == "L019"], [x.message for x in fixed.diagnostics]


def test_a_smaller_micro_batch_keeps_the_effective_batch():
    result = lint(["model=llama-3-8b", "hardware=a10g"], ROOT / "conf")
    (d,) = [d for d in result.diagnostics if d.code == "L019"]
    assert d.key == "schedule.per_device_train_batch_size"
    micro, accum = (int(x.split("=")[1]) for x in d.fix.split())
    assert micro * accum == 8 * 2 and micro < 8


@pytest.mark.parametrize("hardware", HARDWARE)
def test_max_micro_batch_is_the_boundary(hardware):
    cfg = _cfg("model=mistral-7b", "quant=nf4", f"hardware={hardware}", "quant.bnb_4bit_compute_dtype=float16")
    m = estimate(cfg).memory
    if m.max_micro_batch:
        assert estimate_memory(cfg, micro_batch=m.max_micro_batch).fits
    assert not estimate_memory(cfg, micro_batch=m.max_micro_batch + 1).fits


def test_memory_moves_the_way_each_knob_says():
    cfg = _cfg("model=llama-2-7b", "hardware=a100-80g")
    base = estimate(cfg).memory
    nf4 = estimate_memory(with_changes(cfg, quant={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                                   "bnb_4bit_compute_dtype": "bfloat16",
                                                   "bnb_4bit_use_double_quant": False}))
    nf4_dq = estimate_memory(with_changes(cfg, quant={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                                      "bnb_4bit_compute_dtype": "bfloat16",
                                                      "bnb_4bit_use_double_quant": True}))
    gc = estimate_memory(with_changes(cfg, schedule={"gradient_checkpointing": True}))
    longer = estimate_memory(with_changes(cfg, data={"max_length": 1024}))
    eager = estimate_memory(with_changes(cfg, model={"attn_implementation": "eager"}))
    assert nf4_dq.breakdown["base_weights"] < nf4.breakdown["base_weights"] < base.breakdown["base_weights"] / 2
    assert gc.breakdown["activations"] < base.breakdown["activations"] / 4
    assert longer.breakdown["activations"] == pytest.approx(8 * base.breakdown["activations"], rel=0.01)
    assert eager.breakdown["activations"] > base.breakdown["activations"]
    # 16-bit Llama-2-7B: 6.74e9 parameters x 2 bytes
    assert base.breakdown["base_weights"] == 2 * 6_738_415_616


def test_lint_never_imports_torch_for_the_memory_rule():
    code = ("import sys; from loracfg.compiler.lint.check import lint; lint(['model=llama-3-8b','hardware=t4']); "
            "bad=[m for m in ('torch','transformers','peft','bitsandbytes') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_two_processes_halve_the_steps_and_keep_the_memory_per_device():
    """Each data-parallel process holds the whole model and its own micro-batch: the memory per device is the
    one-process figure, while the effective batch doubles and the steps of an epoch halve."""
    one, two = estimate(_cfg("hardware=cpu")), estimate(_cfg("hardware=cpu-2proc"))
    assert two.steps["effective_batch_size"] == 2 * one.steps["effective_batch_size"]
    assert two.steps["steps_per_epoch"] == -(-one.steps["train_samples"] // two.steps["effective_batch_size"])
    assert two.steps["total_steps"] < one.steps["total_steps"]
    assert two.memory.peak_bytes_per_device == one.memory.peak_bytes_per_device
    assert two.memory.max_micro_batch <= one.memory.max_micro_batch  # cpu-2proc: 8 GiB per process, not 16


def test_fsdp_divides_the_sharded_terms_by_the_world_size_and_not_the_activations():
    cfg = _cfg("hardware=4xa10g", "model=llama-3-8b", "quant=none")
    ddp, fsdp = estimate_memory(cfg, strategy="ddp"), estimate_memory(cfg, strategy="fsdp")
    assert (ddp.strategy, fsdp.strategy) == ("ddp", "fsdp")
    for term in ("base_weights", "adapter_weights", "gradients", "optimizer_states"):
        assert fsdp.breakdown[term] == -(-ddp.breakdown[term] // 4), term
    assert fsdp.breakdown["activations"] == ddp.breakdown["activations"]
    layer = ddp.breakdown["base_weights"] / 32  # two of the 32 layers gathered whole at a time
    assert fsdp.breakdown["fsdp_gathered_layers"] == pytest.approx(2 * layer, rel=1e-6)
    assert fsdp.max_micro_batch > ddp.max_micro_batch
    assert any("sharded (1/4 each)" in n for n in fsdp.notes)
    # auto: the whole 8B model in bf16 with micro-batch 8 does not fit an A10G, its quarter does
    assert not ddp.fits and fsdp.fits and estimate(cfg).memory.strategy == "fsdp"


def test_estimate_cli_names_the_strategy_and_world_size(capsys):
    assert main(["estimate", "hardware=4xa10g", "model=llama-3-8b", "quant=none", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "fsdp" and data["steps"]["world_size"] == 4
    assert main(["estimate", "hardware=4xa10g", "model=llama-3-8b", "quant=none"]) == 0
    assert "fsdp over 4 processes" in capsys.readouterr().out
