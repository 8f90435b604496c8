"""The estimator's facts and parameter counts against the real architectures (meta device, no weights).

Every shipped model is built with transformers from its option's `config` on the meta device:
its `linear_modules` / `other_modules` facts must be exactly the real ones, and for every model x
every lora option (plus bias / modules_to_save variants) the trainable and total parameters the
estimator computes from the facts alone must equal what peft reports on the real model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from loracfg.compiler.estimate.memory import count_parameters  # noqa: E402
from loracfg.compiler.lint.compose import Composer  # noqa: E402
from loracfg.compiler.plan.build import AUTO_CLASSES  # noqa: E402
from loracfg.compiler.plan.build import build as build_plan
from loracfg.compiler.plan.facts import facts_of, meta_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
LORAS = sorted(p.stem for p in (ROOT / "conf" / "lora").glob("*.yaml"))


@pytest.fixture(scope="module")
def composer():
    with Composer(ROOT / "conf") as c:
        yield c


def _config(composer, overrides):
    comp, diags = composer.compose(overrides)
    assert comp is not None, diags
    return comp.config


def _model(cfg):
    m = cfg["model"]
    return meta_model(m["config"], m["task"], m.get("num_labels"))


@pytest.mark.parametrize("model", MODELS)
def test_shipped_facts_are_the_real_architecture(composer, model):
    cfg = _config(composer, [f"model={model}"])
    built = _model(cfg)
    real = facts_of(built)
    assert cfg["model"]["linear_modules"] == real["linear_modules"], \
        f"conf/model/{model}.yaml: linear_modules differ; run scripts/model_facts.py --refresh conf/model/{model}.yaml"
    assert cfg["model"]["other_modules"] == real["other_modules"]
    assert cfg["model"]["no_split_modules"] == real["no_split_modules"] and real["no_split_modules"]
    assert count_parameters({**cfg, "lora": {**cfg["lora"], "target_modules": [], "modules_to_save": None}}).base \
        == built.num_parameters()


def _peft_counts(cfg, planned_targets=None):
    lora = cfg["lora"]
    config = peft.LoraConfig(
        r=lora["r"], lora_alpha=lora["lora_alpha"], lora_dropout=lora["lora_dropout"],
        target_modules=planned_targets or lora["target_modules"], bias=lora["bias"], use_rslora=lora["use_rslora"],
        use_dora=lora["use_dora"], modules_to_save=lora["modules_to_save"],
        task_type=AUTO_CLASSES[cfg["model"]["task"]][1])
    model = peft.get_peft_model(_model(cfg), config)
    return model.get_nb_trainable_parameters()


CASES = [(m, [f"lora={lo}"]) for m in MODELS for lo in LORAS] + [
    ("bert-base", ["lora.bias=all"]),
    ("bert-base", ["lora.bias=lora_only", "lora.target_modules=[query,value]"]),
    ("qwen2.5-7b", ["lora.bias=lora_only"]),
    ("tiny-llama", ["lora.modules_to_save=[embed_tokens,lm_head]"]),
    ("tiny-llama", ["lora.target_modules=[q_proj,v_proj]", "lora=dora-r16"]),
    ("minilm-l6", ["lora.target_modules=null"]),
    ("llama-3-8b", ["lora.target_modules=null"]),
]


@pytest.mark.parametrize("model,overrides", CASES, ids=[f"{m}-{'-'.join(o)}" for m, o in CASES])
def test_parameter_counts_equal_peft(composer, model, overrides):
    comp, diags = composer.compose([f"model={model}", *overrides])
    assert comp is not None, diags
    cfg = comp.config
    ours = count_parameters(cfg)
    # the LoraConfig the runner builds: the plan may spell all-linear out (token-cls leaves its head out)
    trainable, total = _peft_counts(cfg, build_plan(comp)["lora"]["LoraConfig"].get("target_modules"))
    assert ours.exact
    assert (ours.trainable, ours.total) == (trainable, total), ours
