"""The plan: plain data, hardware decisions written down with their reasons, a stable content hash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from loracfg.compiler.lint.compose import Composer
from loracfg.compiler.plan import build as plan_module

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def composer():
    with Composer(ROOT / "conf") as c:
        yield c


def build(composer, *overrides):
    comp, diags = composer.compose(overrides)
    assert diags == []
    return plan_module.build(comp)


def decision(plan, argument):
    return next(d for d in plan["decisions"] if d["argument"] == argument)


def test_cpu_default_resolves_fp32_adamw_and_use_cpu(composer):
    p = build(composer)
    ta = p["training"]["TrainingArguments"]
    assert (ta["bf16"], ta["fp16"], ta["optim"], ta["use_cpu"]) == (False, False, "adamw_torch", True)
    assert "no CUDA" in decision(p, "TrainingArguments.bf16")["why"]
    assert p["model"]["from_pretrained"]["dtype"] == "float32" and p["model"]["from_pretrained"]["device_map"] is None
    assert p["resolved"] == {"precision": "fp32", "optim": "adamw_torch", "effective_batch_size": 16,
                             "train_samples": 1800, "eval_samples": 200, "steps_per_epoch": 113,
                             "total_steps": 339, "warmup_steps": 11, "epochs": 3.0, "world_size": 1,
                             "strategy": "single", "sequences": "padded"}


@pytest.mark.parametrize("keys, mode", [
    ([], "padded"), (["data.padding_free=true"], "padding-free"), (["data.packing=true"], "packed-bfd"),
    (["data.packing=true", "data.packing_strategy=wrapped"], "packed-wrapped"),
    (["data.packing=true", "data.padding_free=true"], "packed-bfd")])
def test_the_batching_mode_is_a_decision_with_its_why(composer, keys, mode):
    p = build(composer, "data=tiny-chat", *keys)
    assert p["resolved"]["sequences"] == mode == decision(p, "data.sequences")["value"]
    why = decision(p, "data.sequences")["why"]
    assert ("no example attends to another" in why) == (mode in ("padding-free", "packed-bfd"))
    assert ("attend to the ones before them" in why) == (mode == "packed-wrapped")


def test_qlora_on_an_a100_picks_bf16_and_the_paged_optimizer(composer):
    p = build(composer, "quant=nf4", "hardware=a100-80g")
    ta = p["training"]["TrainingArguments"]
    assert (ta["bf16"], ta["fp16"], ta["optim"]) == (True, False, "paged_adamw_8bit")
    assert "use_cpu" not in ta
    assert p["quantization"]["BitsAndBytesConfig"]["bnb_4bit_quant_type"] == "nf4"
    assert p["model"]["from_pretrained"] == {"dtype": "bfloat16", "device_map": "auto", "attn_implementation": "sdpa",
                                             "trust_remote_code": False}


def test_t4_gets_fp16_and_multi_gpu_a_per_rank_device_map(composer):
    p = build(composer, "hardware=t4", "hardware.num_devices=4", "schedule.gradient_checkpointing=true")
    ta = p["training"]["TrainingArguments"]
    assert (ta["bf16"], ta["fp16"], ta["optim"]) == (False, True, "adamw_torch_fused")
    assert ta["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    assert p["model"]["from_pretrained"]["device_map"] == "local_rank"
    assert p["resolved"]["effective_batch_size"] == 64


def test_explicit_values_are_kept_and_sources_name_the_config_key(composer):
    p = build(composer, "schedule.learning_rate=3e-4", "schedule.optim=adamw_torch_fused", "lora=dora-r16")
    assert p["training"]["TrainingArguments"]["learning_rate"] == 3e-4
    assert p["training"]["TrainingArguments"]["optim"] == "adamw_torch_fused"
    assert not any(d["argument"] == "TrainingArguments.optim" for d in p["decisions"])
    assert p["lora"]["LoraConfig"]["use_dora"] is True and p["lora"]["LoraConfig"]["task_type"] == "CAUSAL_LM"
    assert p["sources"]["TrainingArguments.learning_rate"] == "schedule.learning_rate"
    assert p["sources"]["LoraConfig.r"] == "lora.r"


def test_plan_is_json_and_its_hash_is_stable_and_sensitive(composer):
    a = plan_module.seal(build(composer))
    again = plan_module.seal(build(composer))
    other = plan_module.seal(build(composer, "schedule.learning_rate=1e-4"))
    assert json.loads(plan_module.dumps(a)) == a
    assert a["hash"] == again["hash"] != other["hash"]
    assert plan_module.content_hash(json.loads(plan_module.dumps(a))) == a["hash"]


def test_planning_imports_no_training_stack():
    code = ("import sys\nfrom loracfg.compiler.lint.compose import Composer\nfrom loracfg.compiler.plan import build as plan\n"
            f"with Composer({str(ROOT / 'conf')!r}) as c:\n    plan.seal(plan.build(c.compose(['quant=nf4'])[0]))\n"
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stderr


# -- many devices: the strategy and its settings ------------------------------------------------------------------

def test_auto_strategy_is_ddp_where_the_model_fits_one_device_and_fsdp_where_only_shards_fit(composer):
    fits = build(composer, "hardware=8xa100-80g", "model=llama-3-8b", "quant=none")
    assert fits["resolved"]["strategy"] == "ddp" and "fits one device" in decision(fits, "strategy")["why"]
    assert fits["training"]["TrainingArguments"]["ddp_find_unused_parameters"] is False
    assert "fsdp" not in fits["training"]["TrainingArguments"]
    # 16 GB of bf16 weights and micro-batch 8 of 512 tokens without checkpointing: over an A10G's 22 GiB
    big = build(composer, "hardware=4xa10g", "model=llama-3-8b", "quant=none")
    assert big["resolved"]["strategy"] == "fsdp", decision(big, "strategy")
    assert "sharded over the 4 processes" in decision(big, "strategy")["why"]
    assert big["model"]["from_pretrained"]["device_map"] is None  # FSDP places the shards
    assert "ddp_find_unused_parameters" not in big["training"]["TrainingArguments"]
    cpu = build(composer, "hardware=cpu-2proc")
    assert cpu["resolved"]["strategy"] == "ddp" and "needs CUDA" in decision(cpu, "strategy")["why"]
    assert build(composer)["resolved"]["strategy"] == "single"


def test_qlora_fsdp_plan_wraps_the_decoder_layers_and_stores_4_bit_weights_in_the_compute_dtype(composer):
    plan = build(composer, "hardware=8xa100-80g", "hardware.strategy=fsdp", "model=llama-3-8b", "quant=nf4",
                 "schedule.gradient_checkpointing=true")
    ta = plan["training"]["TrainingArguments"]
    assert ta["fsdp"] is True and ta["ddp_timeout"] == plan_module.DDP_TIMEOUT_S
    assert ta["fsdp_config"] == {"version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                 "cpu_ram_efficient_loading": True, "state_dict_type": "FULL_STATE_DICT",
                                 "reshard_after_forward": True, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"],
                                 "activation_checkpointing": True}
    # checkpointing goes to FSDP's own, not the model's (which would all-gather each layer twice)
    assert ta["gradient_checkpointing"] is False and "gradient_checkpointing_kwargs" not in ta
    assert plan["quantization"]["BitsAndBytesConfig"]["bnb_4bit_quant_storage"] == "bfloat16"
    for argument in ("fsdp_config.transformer_layer_cls_to_wrap", "BitsAndBytesConfig.bnb_4bit_quant_storage",
                     "fsdp_config.cpu_ram_efficient_loading", "fsdp_config.version", "TrainingArguments.ddp_timeout"):
        assert decision(plan, argument)["why"], argument
    assert plan["sources"]["fsdp_config.transformer_layer_cls_to_wrap"] == "model.no_split_modules"
    # a storage the user set is kept (L037 checks it), and a base in 16 bits has none to set
    kept = build(composer, "hardware=8xa100-80g", "hardware.strategy=fsdp", "quant=nf4",
                 "+quant.bnb_4bit_quant_storage=float32")
    assert kept["quantization"]["BitsAndBytesConfig"]["bnb_4bit_quant_storage"] == "float32"


def test_nodes_multiply_the_world_size_the_effective_batch_and_divide_the_steps(composer):
    one = build(composer, "hardware=8xa100-80g")
    two = build(composer, "hardware=8xa100-80g", "hardware.num_nodes=2")
    assert (one["resolved"]["world_size"], two["resolved"]["world_size"]) == (8, 16)
    assert two["resolved"]["effective_batch_size"] == 2 * one["resolved"]["effective_batch_size"]
    assert two["resolved"]["steps_per_epoch"] < one["resolved"]["steps_per_epoch"]
    assert decision(two, "launch.nnodes")["value"] == 2 and decision(two, "launch.nproc_per_node")["value"] == 8
