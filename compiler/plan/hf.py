"""Stage 5: the one place that imports torch, transformers, peft and bitsandbytes.

``specialize`` maps a version-neutral plan onto the signatures of the installed classes
(``TrainingArguments``, ``LoraConfig``, ``BitsAndBytesConfig``, ``Trainer``), recording each
mapping it used; ``to_hf`` builds the real objects, turning constructor errors into
diagnostics; ``emit_python`` writes a standalone script that builds the same objects.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import inspect
import os
import platform
import pprint
import re
import textwrap
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable

from loracfg.compiler.lint import codes
from loracfg.compiler.lint.diagnostics import Diagnostic, Location
from loracfg.compiler.plan.build import seal
from loracfg.compiler.plan.eject_data import data_section

TRAIN_EXTRA = ("torch", "transformers", "peft")
VERSIONED = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")


class MissingExtra(Exception):
    """A command needs the ``train`` extra and it is not installed."""


def require_train_extra(command: str) -> None:
    missing = [m for m in TRAIN_EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"`loracfg {command}` builds Hugging Face objects and needs the train extra "
                           f"(missing: {', '.join(missing)}). Install it with: pip install 'loracfg[train]'")


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str | None], ...]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return tuple(out.items())


def installed_versions() -> dict[str, str | None]:
    """Python's and the versioned packages' versions (read once per process: metadata lookups are slow)."""
    return dict(_versions())


@functools.cache
def _params(fn: Callable) -> frozenset[str]:
    return frozenset(n for n, p in inspect.signature(fn).parameters.items()
                     if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))


@dataclass
class _Mapper:
    plan: dict[str, Any]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    locate: Callable[[str], Location] | None = None

    def note(self, source: str, target: str, why: str) -> None:
        self.plan["mapping"].append({"from": source, "to": target, "why": why})

    def rename(self, kwargs: dict, cls: str, old: str, new: str, why: str) -> None:
        if old not in kwargs:
            return
        kwargs[new] = kwargs.pop(old)
        src = self.plan["sources"].pop(f"{cls}.{old}", old)
        self.plan["sources"][f"{cls}.{new}"] = src
        self.note(f"{cls}.{old}", f"{cls}.{new}", why)

    def unsupported(self, kwargs: dict, cls: str, accepted: set[str], package: str) -> None:
        for k in sorted(set(kwargs) - accepted):
            key = self.plan["sources"].get(f"{cls}.{k}")
            v = self.plan["compiled_for"].get(package)
            self.diagnostics.append(_diag(codes.ARGUMENT_NOT_SUPPORTED,
                                          f"{cls} of {package} {v} has no argument '{k}'; upgrade {package} or remove "
                                          f"the key", key, self.locate))


def _diag(code: codes.Code, message: str, key: str | None, locate: Callable[[str], Location] | None,
          fix: str | None = None) -> Diagnostic:
    loc = locate(key) if (locate and key) else Location("<plan>", 1, 1)
    return Diagnostic(code.code, code.severity, message, key, loc, fix)


def specialize(plan: dict[str, Any], locate: Callable[[str], Location] | None = None
               ) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Finish a plan for the installed transformers / peft: argument names from their signatures."""
    import transformers
    from packaging.version import Version
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, Trainer, TrainingArguments

    plan["compiled_for"] = installed_versions()
    plan["mapping"] = []
    m = _Mapper(plan, locate=locate)
    tv = transformers.__version__

    ta = plan["training"]["TrainingArguments"]
    ta_params = _params(TrainingArguments)
    if "warmup_ratio" in ta and "warmup_ratio" not in ta_params:
        ratio = ta.pop("warmup_ratio")
        src = plan["sources"].pop("TrainingArguments.warmup_ratio")
        if "warmup_steps" not in ta:
            ta["warmup_steps"] = ratio
            plan["sources"]["TrainingArguments.warmup_steps"] = src
        m.note("TrainingArguments.warmup_ratio", "TrainingArguments.warmup_steps",
               f"transformers {tv} TrainingArguments has no warmup_ratio; a warmup_steps below 1 is a ratio")
    if "eval_strategy" not in ta_params and "evaluation_strategy" in ta_params:
        m.rename(ta, "TrainingArguments", "eval_strategy", "evaluation_strategy",
                 f"transformers {tv} still calls it evaluation_strategy (renamed in 4.41)")
    if "use_cpu" not in ta_params and "no_cuda" in ta_params:
        m.rename(ta, "TrainingArguments", "use_cpu", "no_cuda", f"transformers {tv} calls it no_cuda (renamed in 4.34)")
    if "activation_checkpointing" in ta_params:
        for old in ("gradient_checkpointing", "gradient_checkpointing_kwargs"):
            m.rename(ta, "TrainingArguments", old, old.replace("gradient_", "activation_"),
                     f"transformers {tv} deprecates {old} for {old.replace('gradient_', 'activation_')}")
    if "logging_dir" in ta_params and "logging_dir" not in ta:
        ta["logging_dir"] = f"{ta['output_dir']}/logs"
        plan["sources"]["TrainingArguments.logging_dir"] = "output_dir"
        m.note("output_dir", "TrainingArguments.logging_dir",
               f"transformers {tv} defaults logging_dir to a timestamped path; a plan's run must be the same run")
    m.unsupported(ta, "TrainingArguments", ta_params, "transformers")

    tokenizer_arg = "processing_class" if "processing_class" in _params(Trainer.__init__) else "tokenizer"
    plan["trainer"] = {"tokenizer_argument": tokenizer_arg}
    if tokenizer_arg == "tokenizer":
        m.note("Trainer.processing_class", "Trainer.tokenizer", f"transformers {tv} Trainer takes tokenizer=")

    fp = plan["model"]["from_pretrained"]
    # from_pretrained takes these through **kwargs, so there is no signature to read: the rename is by version.
    if "dtype" in fp and Version(tv) < Version("4.56"):
        fp["torch_dtype"] = fp.pop("dtype")
        m.note("from_pretrained.dtype", "from_pretrained.torch_dtype", f"transformers {tv} predates dtype= (4.56)")
    if plan["quantization"]:
        m.note("quant.load_in_4bit/load_in_8bit", "from_pretrained.quantization_config",
               "quantization goes through BitsAndBytesConfig (load_in_4bit= on from_pretrained is gone in 5.x)")
        bnb = plan["quantization"]["BitsAndBytesConfig"]
        # BitsAndBytesConfig swallows unknown keyword arguments silently: accept only its named parameters.
        m.unsupported(bnb, "BitsAndBytesConfig", _params(BitsAndBytesConfig.__init__), "transformers")
    m.unsupported(plan["lora"]["LoraConfig"], "LoraConfig", _params(LoraConfig), "peft")
    return seal(plan), m.diagnostics


def _torch_dtype(name: Any) -> Any:
    import torch

    return getattr(torch, name) if isinstance(name, str) else name


@dataclass
class HFObjects:
    training_arguments: Any
    lora_config: Any
    bnb_config: Any
    model_kwargs: dict[str, Any]
    notes: list[str]
    diagnostics: list[Diagnostic]


def training_arguments_kwargs(plan: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """TrainingArguments kwargs to build on this machine: a CUDA plan checked on a machine without
    CUDA gets use_cpu (transformers refuses bf16 there otherwise); the plan keeps the target's."""
    import torch

    kwargs = copy.deepcopy(plan["training"]["TrainingArguments"])  # TrainingArguments fills fsdp_config in place
    notes = []
    if plan["config"]["hardware"]["accelerator"] == "cuda" and not torch.cuda.is_available():
        key = "no_cuda" if any(m["to"] == "TrainingArguments.no_cuda" for m in plan["mapping"]) else "use_cpu"
        kwargs[key] = True
        notes.append(f"this machine has no CUDA: TrainingArguments is built here with {key}=True to check the "
                     f"plan; the runner builds it on the target without it")
    if kwargs.get("ddp_backend") and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        # accelerate asks the process group for its size as soon as a backend is named: only the launched processes
        # have one, so the plan is checked here (and launched from here) without it
        kwargs.pop("ddp_backend")
    return kwargs, notes


def bnb_kwargs(plan: dict[str, Any]) -> dict[str, Any] | None:
    if not plan["quantization"]:
        return None
    kwargs = dict(plan["quantization"]["BitsAndBytesConfig"])
    if "bnb_4bit_compute_dtype" in kwargs:
        kwargs["bnb_4bit_compute_dtype"] = _torch_dtype(kwargs["bnb_4bit_compute_dtype"])
    return kwargs


def from_pretrained_kwargs(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's from_pretrained arguments with dtype names as torch dtypes (without the quantization config)."""
    kwargs = dict(plan["model"]["from_pretrained"])
    for k in ("dtype", "torch_dtype"):
        if k in kwargs:
            kwargs[k] = _torch_dtype(kwargs[k])
    return kwargs


def to_hf(plan: dict[str, Any], locate: Callable[[str], Location] | None = None,
          keep_environment: bool = False) -> HFObjects:
    """The real Hugging Face objects of a specialized plan; constructor errors become diagnostics.

    ``keep_environment``: keep what building the TrainingArguments exports to the environment (the runner
    does: transformers reads FSDP_CPU_RAM_EFFICIENT_LOADING while loading the model)."""
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, TrainingArguments

    diags: list[Diagnostic] = []

    def construct(cls: Any, name: str, kwargs: dict[str, Any]) -> Any:
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            text = str(e)
            arg = next((k for k in sorted(kwargs, key=len, reverse=True) if re.search(rf"\b{re.escape(k)}\b", text)),
                       None)
            key = plan["sources"].get(f"{name}.{arg}") if arg else None
            first = next((line for line in text.splitlines() if line.strip()), text)
            diags.append(_diag(codes.HF_REJECTED, f"{name} rejected the plan: {first}", key, locate))
            return None

    ta_kwargs, notes = training_arguments_kwargs(plan)
    saved = dict(os.environ)
    ta = construct(TrainingArguments, "TrainingArguments", ta_kwargs)
    if not keep_environment:  # FSDP arguments export ACCELERATE_USE_FSDP & co. for accelerate: a plan only
        os.environ.clear()    # checked here (lint, compile, tests) must not turn FSDP on for what runs next
        os.environ.update(saved)
    lora = construct(LoraConfig, "LoraConfig", plan["lora"]["LoraConfig"])
    bnb_kw = bnb_kwargs(plan)
    bnb = construct(BitsAndBytesConfig, "BitsAndBytesConfig", bnb_kw) if bnb_kw is not None else None
    model_kwargs = from_pretrained_kwargs(plan)
    if bnb is not None:
        model_kwargs["quantization_config"] = bnb
    return HFObjects(ta, lora, bnb, model_kwargs, notes, diags)


_SCRIPT = '''#!/usr/bin/env python
"""{model} with {method}, compiled by loracfg {version} for transformers {transformers} / peft {peft}.

Plan {hash}.
This script does what loracfg's runner does with plain datasets + transformers + peft
(loracfg is not needed): it reads and prepares the data (chat template, loss on the completions only,
packing), builds the same TrainingArguments, LoraConfig and BitsAndBytesConfig as the plan, loads the
model, trains and saves the adapter. `python THIS` trains; build_trainer(train_dataset, ...) takes
datasets of your own; `python THIS --objects-json OUT` writes the built objects' to_dict().
"""

{stdlib}
import torch
from datasets import Dataset, load_dataset
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import ({transformers_names})

TRAINING_ARGUMENTS = {training}
LORA_CONFIG = {lora}
BNB_CONFIG = {bnb}
FROM_PRETRAINED = {from_pretrained}
MODEL = {name_or_path!r}
FROM_CONFIG = {from_config!r}
ARCHITECTURE = {architecture}
TOKENIZER = {tokenizer!r}
SEED = {seed!r}


def build_objects():
    bnb = None
    if BNB_CONFIG is not None:
        kwargs = dict(BNB_CONFIG)
        if "bnb_4bit_compute_dtype" in kwargs:
            kwargs["bnb_4bit_compute_dtype"] = getattr(torch, kwargs["bnb_4bit_compute_dtype"])
        bnb = BitsAndBytesConfig(**kwargs)
    return TrainingArguments(**TRAINING_ARGUMENTS), LoraConfig(**LORA_CONFIG), bnb


def build_model(bnb, tokenizer):
    kwargs = dict(FROM_PRETRAINED)
    for key in ("dtype", "torch_dtype"):
        if key in kwargs:
            kwargs[key] = getattr(torch, kwargs[key])
    if bnb is not None:
        kwargs["quantization_config"] = bnb
    if not FROM_CONFIG:
        return {auto_class}.from_pretrained(MODEL, **kwargs)
    # Random weights from the architecture, seeded: the same model loracfg's runner builds.
    extra = {{"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}}
    if kwargs.get("num_labels"):
        extra["num_labels"] = kwargs["num_labels"]
    torch.manual_seed(SEED)
    model = {auto_class}.from_config(AutoConfig.for_model(**ARCHITECTURE, **extra))
    if bnb is None:
        return model.to(kwargs.get("dtype", kwargs.get("torch_dtype")))
    # bitsandbytes quantizes only inside from_pretrained: save the random base once, load it quantized.
    base = os.path.join(TRAINING_ARGUMENTS["output_dir"], "base-model")
    if not os.path.isfile(os.path.join(base, "config.json")):
        model.save_pretrained(base)
    kwargs.pop("num_labels", None)  # already in the saved config
    return {auto_class}.from_pretrained(base, **kwargs)


def build_tokenizer():
    if TOKENIZER == "byte-level":
        from transformers import ByT5Tokenizer
        return ByT5Tokenizer()
    remote = FROM_PRETRAINED.get("trust_remote_code", False)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER, trust_remote_code=remote)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model_and_tokenizer():
    """The PEFT model to train (quantized and prepared for k-bit training where the plan says so)."""
    _, lora, bnb = build_objects()
    tokenizer = build_tokenizer()
    model = build_model(bnb, tokenizer)
    if bnb is not None:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(
            TRAINING_ARGUMENTS.get("gradient_checkpointing") or TRAINING_ARGUMENTS.get("activation_checkpointing")))
        # bitsandbytes repacks 4-bit weights for CPU inference at the first evaluation (CPUs with AVX512-BF16)
        # and then passes no gradient through them in training: keep them trainable, as loracfg's runner does
        for module in model.modules():
            if getattr(module, "support_avx512bf16_for_cpu", False):
                module.support_avx512bf16_for_cpu = False
    return get_peft_model(model, lora), tokenizer


def build_trainer(train_dataset, eval_dataset=None, data_collator=None):
    args = build_objects()[0]
    model, tokenizer = build_model_and_tokenizer()
    model.print_trainable_parameters()
    return Trainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                   data_collator=data_collator, {tokenizer_argument}=tokenizer)


{data}
if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--objects-json":
        args, lora, bnb = build_objects()
        with open(sys.argv[2], "w") as f:
            json.dump({{"TrainingArguments": args.to_dict(), "LoraConfig": lora.to_dict(),
                       "BitsAndBytesConfig": bnb.to_dict() if bnb is not None else None}}, f, default=str)
    else:
        print(json.dumps({{"eval_loss": train()}}))
'''


def _literal(value: Any) -> str:
    return pprint.pformat(value, indent=4, sort_dicts=False, width=100)


def emit_python(plan: dict[str, Any]) -> str:
    """A standalone script building the plan's objects with plain transformers + peft."""
    training = plan["training"]["TrainingArguments"]
    quant = plan["quantization"]["BitsAndBytesConfig"] if plan["quantization"] else None
    method = "QLoRA (4-bit)" if quant and quant.get("load_in_4bit") else "LoRA on 8-bit" if quant else "LoRA"
    data = data_section(plan)
    return _SCRIPT.format(
        model=plan["model"]["name_or_path"], method=method, version=plan["loracfg_version"],
        transformers=plan["compiled_for"]["transformers"], peft=plan["compiled_for"]["peft"], hash=plan["hash"],
        auto_class=plan["model"]["auto_class"], training=_literal(training),
        lora=_literal(plan["lora"]["LoraConfig"]), bnb=_literal(quant),
        from_pretrained=_literal(plan["model"]["from_pretrained"]), name_or_path=plan["model"]["name_or_path"],
        from_config=plan["model"]["from_config"], architecture=_literal(plan["model"]["architecture"]),
        tokenizer=plan["model"]["tokenizer"], seed=plan["config"]["seed"],
        tokenizer_argument=plan["trainer"]["tokenizer_argument"], data=data.code,
        stdlib="".join(sorted({"import json\n", "import os\n", "import sys\n", *data.stdlib},
                              key=lambda line: (line.startswith("from"), line))),
        transformers_names=textwrap.fill(", ".join(sorted({"AutoConfig", "AutoTokenizer", "BitsAndBytesConfig",
                                                            "Trainer", "TrainingArguments", "set_seed",
                                                            plan["model"]["auto_class"], *data.transformers})),
                                         width=95, subsequent_indent=" " * 26),
    )
