"""schedule.per_device_train_batch_size: auto + effective_batch_size: the compiler picks the micro-batch the memory
estimate fits and the accumulation that keeps the effective batch for any world size (torch-free)."""

from __future__ import annotations

from pathlib import Path

import pytest
from loracfg.compiler.estimate.memory import estimate_memory
from loracfg.compiler.lint.check import check_composition
from loracfg.compiler.lint.compose import Composer
from loracfg.compiler.plan.build import build

ROOT = Path(__file__).resolve().parents[3]
AUTO = ["schedule.per_device_train_batch_size=auto", "+schedule.effective_batch_size=64", "model=llama-3-8b",
        "quant=nf4", "data.max_length=512"]


@pytest.fixture(scope="module")
def composer():
    with Composer(ROOT / "conf") as c:
        yield c


def _plan(composer, *overrides):
    comp, diags = check_composition(composer, list(overrides))
    errors = [(d.code, d.message) for d in diags if d.severity.value == "error"]
    assert not errors, errors
    return comp, build(comp)


@pytest.mark.parametrize("hardware, world", [("hardware=a10g", 1), ("hardware=4xa10g", 4), ("hardware=8xa100-80g", 8)])
def test_the_effective_batch_is_kept_for_any_world_size_with_the_largest_micro_batch_that_fits(composer, hardware,
                                                                                              world):
    comp, plan = _plan(composer, *AUTO, hardware)
    ta = plan["training"]["TrainingArguments"]
    micro, accum = ta["per_device_train_batch_size"], ta["gradient_accumulation_steps"]
    assert micro * accum * world == plan["resolved"]["effective_batch_size"] == 64
    memory = estimate_memory(comp.config)
    assert memory.fits and memory.micro_batch == micro
    per_device = 64 // world
    bigger = [b for b in range(micro + 1, per_device + 1) if per_device % b == 0]
    assert all(not estimate_memory(comp.config, micro_batch=b).fits for b in bigger), (micro, bigger)
    why = next(d["why"] for d in plan["decisions"] if d["argument"] == "TrainingArguments.per_device_train_batch_size")
    assert why.startswith(f"per_device_train_batch_size: auto -> {micro}") and "fits" in why
    assert not [d for d in check_composition(composer, [*AUTO, hardware])[1] if d.code == "L039"]


def test_a_bigger_device_gets_a_bigger_micro_batch(composer):
    small = _plan(composer, *AUTO, "hardware=a10g")[1]["training"]["TrainingArguments"]
    large = _plan(composer, *AUTO, "hardware=a100-80g")[1]["training"]["TrainingArguments"]
    assert large["per_device_train_batch_size"] > small["per_device_train_batch_size"]
    assert large["gradient_accumulation_steps"] < small["gradient_accumulation_steps"]


@pytest.mark.parametrize("overrides, key, fix", [
    (["schedule.per_device_train_batch_size=auto"], "schedule.per_device_train_batch_size",
     "++schedule.effective_batch_size=16"),
    (["schedule.per_device_train_batch_size=auto", "+schedule.effective_batch_size=30", "hardware=4xa10g"],
     "schedule.effective_batch_size", "++schedule.effective_batch_size=32"),
    (["+schedule.effective_batch_size=30"], "schedule.effective_batch_size",
     "schedule.per_device_train_batch_size=auto"),
])
def test_what_cannot_be_resolved_is_S005_with_a_help_that_fixes_it(composer, overrides, key, fix):
    _, diags = check_composition(composer, overrides)
    [d] = [d for d in diags if d.code == "S005"]
    assert d.key == key and d.fix == fix and d.severity.value == "error" and d.location.line >= 1
    fixed = [o for o in overrides if o.split("=")[0].lstrip("+") != fix.split("=")[0].lstrip("+")] + [fix]
    _, after = check_composition(composer, fixed)
    assert not [d for d in after if d.severity.value == "error"], [(d.code, d.message) for d in after]
