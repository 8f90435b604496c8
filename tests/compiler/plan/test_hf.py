"""Real Hugging Face objects: every shipped option and a pairwise set of combinations compile on CPU,
and the objects carry exactly the configured values. Runs against whichever transformers is
installed (tests/compiler/plan/test_transformers4.py runs this file again against transformers 4.x)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from loracfg.compiler.estimate.memory import estimate  # noqa: E402
from loracfg.compiler.lint.compose import GROUPS, Composer  # noqa: E402
from loracfg.compiler.pipeline import compile_run  # noqa: E402
from loracfg.compiler.plan import hf  # noqa: E402
from loracfg.compiler.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "conf"
OPTIONS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in GROUPS}


def _value(x):
    return getattr(x, "value", x)


def assert_objects_carry_the_config(compiled) -> None:
    cfg, plan, o = compiled.plan["config"], compiled.plan, compiled.objects
    sched, lora, quant = cfg["schedule"], cfg["lora"], cfg["quant"]
    ta = o.training_arguments
    assert ta.learning_rate == sched["learning_rate"]
    assert _value(ta.lr_scheduler_type) == sched["lr_scheduler_type"]
    assert ta.weight_decay == sched["weight_decay"] and ta.max_grad_norm == sched["max_grad_norm"]
    assert ta.per_device_train_batch_size == sched["per_device_train_batch_size"]
    assert ta.gradient_accumulation_steps == sched["gradient_accumulation_steps"]
    assert ta.max_steps == sched["max_steps"] and ta.seed == cfg["seed"]
    assert _value(ta.eval_strategy if hasattr(ta, "eval_strategy") else ta.evaluation_strategy) == sched["eval_strategy"]
    assert _value(ta.save_strategy) == sched["save_strategy"]
    if hasattr(ta, "warmup_ratio"):
        assert ta.warmup_ratio == sched["warmup_ratio"]
    else:
        assert ta.warmup_steps == sched["warmup_ratio"]
    resolved = plan["resolved"]
    cuda, quantized = cfg["hardware"]["accelerator"] == "cuda", quant["load_in_4bit"] or quant["load_in_8bit"]
    auto = "paged_adamw_8bit" if cuda and quantized else "adamw_torch_fused" if cuda else "adamw_torch"
    assert _value(ta.optim) == resolved["optim"] == (auto if sched["optim"] == "auto" else sched["optim"])
    assert (ta.bf16, ta.fp16) == (resolved["precision"] == "bf16", resolved["precision"] == "fp16")
    lc = o.lora_config
    assert (lc.r, lc.lora_alpha, lc.lora_dropout) == (lora["r"], lora["lora_alpha"], lora["lora_dropout"])
    assert (lc.use_dora, lc.use_rslora, lc.bias) == (lora["use_dora"], lora["use_rslora"], lora["bias"])
    targets = lora["target_modules"]
    if targets == "all-linear" and cfg["model"]["task"] == "token-cls":  # spelled out without the head (plan)
        targets = sorted(set(cfg["model"]["linear_modules"]) - {"classifier", "score"})
    assert lc.target_modules == (set(targets) if isinstance(targets, list) else targets)
    assert _value(lc.task_type) == {"causal-lm": "CAUSAL_LM", "seq-cls": "SEQ_CLS", "token-cls": "TOKEN_CLS"}[
        cfg["model"]["task"]]
    if quant["load_in_4bit"] or quant["load_in_8bit"]:
        b = o.bnb_config
        assert (b.load_in_4bit, b.load_in_8bit) == (quant["load_in_4bit"], quant["load_in_8bit"])
        if quant["load_in_4bit"]:
            assert b.bnb_4bit_quant_type == quant["bnb_4bit_quant_type"]
            assert b.bnb_4bit_use_double_quant == quant["bnb_4bit_use_double_quant"]
            assert b.bnb_4bit_compute_dtype == getattr(torch, quant["bnb_4bit_compute_dtype"])
            assert o.model_kwargs["quantization_config"] is b
        else:
            assert b.llm_int8_threshold == quant["llm_int8_threshold"]
    else:
        assert o.bnb_config is None and "quantization_config" not in o.model_kwargs
    dtype = o.model_kwargs.get("dtype", o.model_kwargs.get("torch_dtype"))
    assert dtype == getattr(torch, plan["model"]["from_pretrained"].get("dtype")
                            or plan["model"]["from_pretrained"]["torch_dtype"])


# What each task trains on (written out here, not read from the rule, so the rule is checked against it).
TRAINS_ON = {"causal-lm": {"text", "completion", "alpaca", "messages"}, "seq-cls": {"classification"},
             "token-cls": {"token-cls"}}
PARTNER = {"seq-cls": ("model=minilm-l6", "data=tiny-sentiment"), "token-cls": ("model=minilm-l6-tagger", "data=tiny-tags")}


def _runnable(override: str) -> list[str]:
    """The option with the defaults, or with a partner where the defaults cannot run it (as loracfg lint does)."""
    cfg = _composed([override])
    if cfg["quant"]["load_in_8bit"]:  # LLM.int8 trains on CUDA only (L011)
        return [override, "hardware=a10g"]
    if cfg["data"]["format"] in TRAINS_ON[cfg["model"]["task"]]:
        return [override]
    if override.startswith("model="):
        return [override, PARTNER[cfg["model"]["task"]][1]]
    return [override, next(m for m, d in PARTNER.values() if d == override)]


@pytest.mark.parametrize("override", [f"{g}={o}" for g in GROUPS for o in OPTIONS[g]])
def test_every_shipped_option_compiles_to_objects_with_the_configured_values(override):
    compiled = compile_run(_runnable(override), CONF)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    assert compiled.plan["compiled_for"]["transformers"] == transformers.__version__
    assert_objects_carry_the_config(compiled)


def pairwise(groups: dict[str, list[str]]) -> list[dict[str, str]]:
    """A small set of full combinations covering every pair of options of every two groups."""
    names = list(groups)
    uncovered = {(a, x, b, y) for a, b in itertools.combinations(names, 2) for x in groups[a] for y in groups[b]}
    rows = []
    while uncovered:
        a, x, b, y = min(uncovered)
        row = {a: x, b: y}
        for g in names:
            if g not in row:
                row[g] = max(groups[g], key=lambda o: sum(
                    ((g, o, h, row[h]) if names.index(g) < names.index(h) else (h, row[h], g, o)) in uncovered
                    for h in row))
        rows.append(row)
        uncovered -= {(p, row[p], q, row[q]) for p, q in itertools.combinations(names, 2)}
    return rows


PAIRS = pairwise(OPTIONS)


def _composed(overrides):
    with Composer(CONF) as composer:
        return composer.compose(overrides)[0].config


def test_pairwise_set_covers_every_pair():
    covered = {(a, r[a], b, r[b]) for r in PAIRS for a, b in itertools.combinations(GROUPS, 2)}
    assert len(covered) == sum(len(OPTIONS[a]) * len(OPTIONS[b]) for a, b in itertools.combinations(GROUPS, 2))
    largest = max(len(OPTIONS[a]) * len(OPTIONS[b]) for a, b in itertools.combinations(GROUPS, 2))
    assert len(PAIRS) <= largest + 5  # no pairwise set is smaller than the largest product of two groups


@pytest.mark.parametrize("row", PAIRS, ids=lambda r: " ".join(f"{g}={o}" for g, o in r.items()))
def test_pairwise_combinations_compile_or_are_refused_by_lint(row):
    overrides = [f"{g}={o}" for g, o in row.items()]
    full = compile_run(overrides, CONF, build_objects=False)
    too_big = not estimate(full.plan["config"] if full.plan else _composed(overrides)).memory.fits
    assert ("L019" in {d.code for d in full.lint.diagnostics}) == too_big
    # the objects are what this test checks: a 7B that does not fit a small GPU still compiles without L019
    compiled = compile_run(overrides, CONF, Settings(ignore=frozenset({"L019"})))
    errors = {d.code for d in compiled.lint.diagnostics if d.severity.value == "error"}
    cfg = _composed(overrides)
    refused = {"L009"} if row["hardware"] in ("t4", "v100") and row["quant"] == "nf4" else set()  # bf16 on old GPUs
    if cfg["data"]["format"] not in TRAINS_ON[cfg["model"]["task"]]:
        refused.add("L020")  # a seq-cls model with text or chat rows, a causal LM with classification rows
    if cfg["quant"]["load_in_8bit"] and cfg["hardware"]["accelerator"] != "cuda":
        refused.add("L011")  # LLM.int8 does not train on the CPU
    if refused:
        assert errors == refused and not compiled.ok
        return
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    assert_objects_carry_the_config(compiled)


def test_constructor_errors_become_diagnostics_with_the_key():
    # L026 catches this at lint time; ignored here, the constructor's refusal reaches the user as H001 on the key
    overrides = ["schedule.lr_scheduler_type=reduce_lr_on_plateau", "schedule.eval_strategy=no"]
    assert "L026" in {d.code for d in compile_run(overrides, CONF).lint.diagnostics}
    compiled = compile_run(overrides, CONF, Settings(ignore=frozenset({"L026"})))
    assert not compiled.ok
    [d] = [d for d in compiled.lint.diagnostics if d.severity.value == "error"]
    assert d.code == "H001" and d.key == "schedule.lr_scheduler_type" and "eval" in d.message
    # and the plateau scheduler ignores the cosine option's warmup; eval_steps is idle without evaluation
    assert sorted(w.code for w in compiled.lint.diagnostics if w is not d) == ["L024", "L035"]


def test_missing_train_extra_names_the_extra(monkeypatch):
    monkeypatch.setattr(hf, "TRAIN_EXTRA", ("torch", "no_such_module_for_loracfg"))
    with pytest.raises(hf.MissingExtra, match=r"pip install 'loracfg\[train\]'"):
        hf.require_train_extra("compile")


def _dicts(*objects) -> list:
    return [json.loads(json.dumps(o.to_dict(), default=str)) if o is not None else None for o in objects]


# Imports the emitted script, builds its model, tokenizer and Trainer, and trains two optimizer steps.
_USE_SCRIPT = """
import importlib.util, json, sys
import torch
spec = importlib.util.spec_from_file_location("emitted", sys.argv[1])
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
rows = [{"input_ids": [5 + i % 7] * 16, "attention_mask": [1] * 16, "labels": [5 + i % 7] * 16} for i in range(16)]
trainer = script.build_trainer(rows)
model = trainer.model
base = [p for n, p in model.named_parameters() if "lora_" not in n and p.dtype.is_floating_point]
before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
trainer.train()
json.dump({
    "linear4bit": sum(type(m).__name__ == "Linear4bit" and type(m).__module__.startswith("bitsandbytes")
                      for m in model.modules()),
    "trainable": model.get_nb_trainable_parameters()[0],
    "base_checksum": float(sum(p.detach().double().abs().sum() for p in base)),
    "steps": trainer.state.global_step,
    "changed": sum(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if n in before),
}, open(sys.argv[2], "w"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [[], ["quant=nf4", "lora=dora-r16"]], ids=["lora", "qlora-dora"])
def test_emitted_script_builds_the_same_objects_model_and_trainer(tmp_path, overrides):
    overrides = [*overrides, f"output_dir={tmp_path / 'out'}", "schedule.max_steps=2", "schedule.eval_strategy=no"]
    script, out = tmp_path / "train_lora.py", tmp_path / "objects.json"
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "compile", "--config-dir", str(CONF), "--emit", "python",
                        "-o", str(script), *overrides], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "loracfg" not in [line.split()[1] for line in script.read_text().splitlines()
                             if line.startswith(("import ", "from "))]
    r = subprocess.run([sys.executable, str(script), "--objects-json", str(out)], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    emitted = json.loads(out.read_text())
    compiled = compile_run(overrides, CONF)
    o = compiled.objects
    expected = _dicts(o.training_arguments, o.lora_config, o.bnb_config)
    assert [emitted["TrainingArguments"], emitted["LoraConfig"], emitted["BitsAndBytesConfig"]] == expected

    # The script's model is the runner's: same random base (same seed and ids), quantized where the plan says.
    built = tmp_path / "built.json"
    r = subprocess.run([sys.executable, "-c", _USE_SCRIPT, str(script), str(built)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(built.read_text())
    from loracfg.runner.run import _from_config, _tokenizer
    from peft import get_peft_model

    plan = compiled.plan
    reference = _from_config(plan, _tokenizer(plan))
    layers = plan["model"]["architecture"]["num_hidden_layers"]
    assert got["linear4bit"] == (7 * layers if o.bnb_config is not None else 0)
    assert got["trainable"] == get_peft_model(reference, o.lora_config).get_nb_trainable_parameters()[0]
    if o.bnb_config is None:
        ref_base = [p for n, p in reference.named_parameters() if "lora_" not in n]
        assert got["base_checksum"] == pytest.approx(float(sum(p.detach().double().abs().sum() for p in ref_base)))
    assert got["steps"] == 2 and got["changed"] > 0


def test_compile_cli_writes_the_plan_and_refuses_on_lint_errors(tmp_path):
    out = tmp_path / "plan.json"
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "compile", "--config-dir", str(CONF), "-o", str(out),
                        "lora=r64"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "method:     LoRA, r=64 alpha=128" in r.stdout and "steps:      339 optimizer steps (3 epochs x 113/epoch), warmup 11" in r.stdout
    plan = json.loads(out.read_text())
    assert plan["hash"].startswith("sha256:") and plan["compiled_for"]["peft"]
    bad = tmp_path / "bad.json"
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "compile", "--config-dir", str(CONF), "-o", str(bad),
                        "schedule.learning_rate=5e-3"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "L001" in r.stdout and not bad.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half-written temp file


def test_diff_shows_hugging_face_argument_names(tmp_path):
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "diff", "--config-dir", str(CONF), "lora=r16",
                        "lora=r64 schedule.learning_rate=1e-4"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert lines["LoraConfig.r"].endswith("16 -> 64")
    assert lines["TrainingArguments.learning_rate"].endswith("0.0002 -> 0.0001")
    assert "LoraConfig.bias" not in lines


def test_diff_of_two_plan_files(tmp_path):
    from loracfg.compiler.plan import build as plan_module

    paths = []
    for name, overrides in (("a", ["lora=r16"]), ("b", ["lora=r64", "schedule.learning_rate=1e-4"])):
        compiled = compile_run([*overrides, f"output_dir={tmp_path / 'out'}"], CONF, build_objects=False)
        assert compiled.ok
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(plan_module.dumps(compiled.plan))
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "diff", *map(str, paths)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [f"--- {paths[0]}", f"+++ {paths[1]}"]
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert lines["LoraConfig.r"].endswith("16 -> 64") and lines["LoraConfig.lora_alpha"].endswith("32 -> 128")
    assert lines["TrainingArguments.learning_rate"].endswith("0.0002 -> 0.0001")
    assert "TrainingArguments.seed" not in lines
    (tmp_path / "broken.json").write_text("{")
    r = subprocess.run([sys.executable, "-m", "loracfg.compiler.cli", "diff", str(paths[0]), str(tmp_path / "broken.json")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "is not a plan (invalid JSON" in r.stderr and "Traceback" not in r.stderr


def test_an_argument_the_installed_peft_lacks_is_H002_at_the_key_that_set_it():
    """What a plan from a newer schema meets on an older peft: a LoraConfig argument peft does not have."""
    from loracfg.compiler.lint.check import check_composition
    from loracfg.compiler.lint.compose import Composer
    from loracfg.compiler.plan import build as plan_module

    with Composer(CONF) as composer:
        comp, diags = check_composition(composer, [])
        assert not [d for d in diags if d.severity.value == "error"]
        plan = plan_module.build(comp)
        plan["lora"]["LoraConfig"]["lora_dropout_schedule"] = "cosine"  # no peft has this argument
        plan["sources"]["LoraConfig.lora_dropout_schedule"] = "lora.lora_dropout"
        _, found = hf.specialize(plan, comp.locate)
    [d] = found
    peft_version = plan["compiled_for"]["peft"]
    assert (d.code, d.key) == ("H002", "lora.lora_dropout")
    assert d.message == (f"LoraConfig of peft {peft_version} has no argument 'lora_dropout_schedule'; "
                         f"upgrade peft or remove the key")
    assert d.location.file.endswith("conf/lora/r16.yaml") and d.location.line > 1


def test_an_fsdp_plan_builds_accelerates_fsdp2_plugin_and_its_wrap_class_is_in_the_model():
    """The Trainer's FSDP path needs CUDA, so on this machine the plan is checked at the object level: the
    TrainingArguments turn its settings into accelerate's FSDP plugin arguments, and the class it wraps at
    (read from the model facts, torch-free) is a module class of the real model."""
    from accelerate.utils.dataclasses import get_module_class_from_name  # what the FSDP plugin looks classes up with
    from loracfg.compiler.plan.build import content_hash
    from loracfg.compiler.plan.facts import meta_model

    compiled = compile_run(["hardware=2xh100", "hardware.strategy=fsdp", "quant=nf4",
                            "schedule.gradient_checkpointing=true"], CONF)
    assert compiled.ok, [(d.code, d.message) for d in compiled.lint.diagnostics]
    plan, args = compiled.plan, compiled.objects.training_arguments
    assert plan["hash"] == content_hash(plan)  # building the objects left the plan as it was sealed
    assert not any(k.startswith(("ACCELERATE_USE_FSDP", "FSDP_")) for k in os.environ)  # checking leaks nothing
    if int(transformers.__version__.split(".")[0]) < 5:
        # transformers 4 hands FSDP to accelerate through environment variables and knows no FSDP version: there
        # the plan runs as FSDP1 full_shard with the same wrap class (README: "More than one GPU")
        assert [str(getattr(o, "value", o)) for o in args.fsdp] == ["full_shard"]
        assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
        return
    assert args.fsdp and args.fsdp_plugin_args == {
        "fsdp_version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "transformer_cls_names_to_wrap":
        "LlamaDecoderLayer", "cpu_ram_efficient_loading": True, "state_dict_type": "FULL_STATE_DICT",
        "activation_checkpointing": True, "reshard_after_forward": True}
    assert not args.gradient_checkpointing  # FSDP's activation checkpointing instead
    assert compiled.objects.bnb_config.bnb_4bit_quant_storage == torch.bfloat16
    model = meta_model(plan["model"]["architecture"], "causal-lm")
    [name] = plan["training"]["TrainingArguments"]["fsdp_config"]["transformer_layer_cls_to_wrap"]
    layer = get_module_class_from_name(model, name)
    assert layer is not None and sum(isinstance(m, layer) for m in model.modules()) == \
        plan["model"]["architecture"]["num_hidden_layers"]
