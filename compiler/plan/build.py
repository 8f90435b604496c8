"""Stage 4: a lint-clean composition becomes a plan: plain data, JSON, hashed.

``build`` decides everything the hardware decides (precision, optimizer, device map, CPU use)
and writes each decision down with its reason. The keyword arguments use our config's names
(which are Hugging Face's); ``loracfg.compiler.plan.hf.specialize`` then maps them onto the signatures of
the transformers / peft that are installed. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from loracfg.compiler.derived import (
    derive,
    resolve_dtype,
    resolve_optim,
    resolve_precision,
)
from loracfg.compiler.estimate.memory import resolve_strategy
from loracfg.compiler.lint.compose import Composition

PLAN_VERSION = 4  # 2: data.format names the row shape, defaults filled in; 3: resolved.sequences (packing mode);
#                  4: resolved.strategy (single | ddp | fsdp), launch.nnodes
DDP_TIMEOUT_S = 600  # collective timeout: a rank that died stops the others in 10 minutes, not torch's 30

AUTO_CLASSES = {
    "causal-lm": ("AutoModelForCausalLM", "CAUSAL_LM"),
    "seq-cls": ("AutoModelForSequenceClassification", "SEQ_CLS"),
    "token-cls": ("AutoModelForTokenClassification", "TOKEN_CLS"),
}

# schedule keys that go to TrainingArguments as they are (same name), when set
_TRAINING_KEYS = (
    "learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_ratio", "warmup_steps", "num_train_epochs",
    "max_steps", "weight_decay", "max_grad_norm", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "logging_steps", "save_strategy", "save_steps", "save_total_limit",
    "eval_strategy", "eval_steps", "load_best_model_at_end", "metric_for_best_model", "gradient_checkpointing",
)
_LORA_KEYS = ("r", "lora_alpha", "lora_dropout", "target_modules", "bias", "use_rslora", "use_dora",
              "modules_to_save", "init_lora_weights", "layers_to_transform")
_BNB_KEYS = ("load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
             "bnb_4bit_compute_dtype", "bnb_4bit_quant_storage", "llm_int8_threshold", "llm_int8_skip_modules",
             "llm_int8_enable_fp32_cpu_offload")


def loracfg_version() -> str:
    try:
        return version("loracfg")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


class _Builder:
    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.sources: dict[str, str] = {}

    def decide(self, argument: str, value: Any, why: str) -> Any:
        self.decisions.append({"argument": argument, "value": value, "why": why})
        return value

    def take(self, target: dict, cls: str, section: dict, group: str, keys: tuple[str, ...]) -> None:
        for k in keys:
            if section.get(k) is not None:
                target[k] = section[k]
                self.sources[f"{cls}.{k}"] = f"{group}.{k}"


# The data keys a conf/data option may leave out, with the value the runner then uses (the column names
# of each format's usual files, loss on completions only). The plan carries them filled in.
DATA_DEFAULTS: dict[str, Any] = {
    "dataset_text_field": "text", "label_field": None, "tokens_field": "tokens", "tags_field": "ner_tags",
    "prompt_field": "prompt", "completion_field": "completion",
    "instruction_field": "instruction", "input_field": "input", "output_field": "output",
    "messages_field": "messages", "role_field": "role", "content_field": "content", "role_map": {},
    "chat_template": "auto", "train_on_inputs": False, "eos_token": None, "truncation_mode": "keep_start",
    "packing": False, "packing_strategy": "bfd", "padding_free": False, "dataset_num_proc": None,
    "on_bad_row": "error",
}

# How the runner turns examples into batches (plan["resolved"]["sequences"]), and why.
SEQUENCES = {
    "padded": "each batch padded to its longest example (DataCollatorForSeq2Seq; padding gets label -100)",
    "padding-free": "data.padding_free: each batch flattened into one row, position ids restarting per example "
                    "(DataCollatorWithFlattening) and the KV cache off in training, so transformers builds the "
                    "per-example causal mask from the position ids: no padding, no example attends to another",
    "packed-bfd": "data.packing with packing_strategy bfd: whole examples packed into sequences of at most "
                  "max_length tokens (best-fit decreasing), batches flattened with position ids restarting per "
                  "example and the KV cache off in training: no padding, no example attends to another",
    "packed-wrapped": "data.packing with packing_strategy wrapped: the token stream cut into blocks of exactly "
                      "max_length tokens; examples are split across blocks and attend to the ones before them",
}


def sequences(data: dict[str, Any], task: str) -> str:
    """The batching mode in effect (a key of SEQUENCES); packing applies to causal LMs only (L021)."""
    if task != "causal-lm":
        return "padded"
    if data.get("packing"):
        return "packed-wrapped" if data.get("packing_strategy") == "wrapped" else "packed-bfd"
    return "padding-free" if data.get("padding_free") else "padded"


def data_spec(data: dict[str, Any]) -> dict[str, Any]:
    """The data section with every optional key filled in."""
    return {**DATA_DEFAULTS, **{k: v for k, v in data.items() if k != "defaults"}}


def build(comp: Composition) -> dict[str, Any]:
    """The version-neutral plan of a lint-clean composition (``loracfg.compiler.plan.hf.specialize`` finishes it)."""
    cfg = comp.config
    model, quant, lora, sched, hw, data = (cfg[g] for g in ("model", "quant", "lora", "schedule", "hardware", "data"))
    d = derive(cfg)
    b = _Builder()
    for key, source in sorted(comp.defaulted.items()):
        b.decide(key, comp.get(key), f"not set by the config: {source}'s default")
    for argument, value, why in comp.batch_decisions:
        b.decide(argument, value, why)
    cuda = hw["accelerator"] == "cuda"
    quantized = bool(quant.get("load_in_4bit") or quant.get("load_in_8bit"))

    # -- precision ----------------------------------------------------------------------------
    bf16, fp16 = resolve_precision(cfg)
    if sched["bf16"] == "auto":
        b.decide("TrainingArguments.bf16", bf16,
                 "bf16: auto -> on: the hardware computes in bfloat16" if bf16 else
                 "bf16: auto -> off: fp16 is set true" if sched["fp16"] is True else
                 f"bf16: auto -> off: {'no CUDA (CPU autocast to bf16 is slower than fp32 for LoRA)' if not cuda else 'the hardware has no bfloat16'}")
    if sched["fp16"] == "auto":
        b.decide("TrainingArguments.fp16", fp16,
                 "fp16: auto -> on: CUDA without bf16, fp16 is the half precision it has" if fp16 else
                 "fp16: auto -> off: " + ("bf16 is on" if bf16 else "no CUDA" if not cuda else "no fp16 support"))
    precision = "bf16" if bf16 else "fp16" if fp16 else "fp32"

    run_id = run_id_of(cfg)
    training: dict[str, Any] = {"output_dir": f"{cfg['output_dir']}/{run_id}", "seed": cfg["seed"]}
    b.sources.update({"TrainingArguments.output_dir": "output_dir", "TrainingArguments.seed": "seed"})
    b.take(training, "TrainingArguments", sched, "schedule", _TRAINING_KEYS)
    training["bf16"], training["fp16"] = bf16, fp16
    b.sources.update({"TrainingArguments.bf16": "schedule.bf16", "TrainingArguments.fp16": "schedule.fp16"})
    if sched.get("num_train_epochs") is None:
        training.pop("num_train_epochs", None)

    # -- optimizer, devices, checkpointing ------------------------------------------------------
    optim = resolve_optim(cfg)
    if sched["optim"] == "auto":
        b.decide("TrainingArguments.optim", optim, {
            "paged_adamw_8bit": "optim: auto -> paged_adamw_8bit: quantized base on CUDA (QLoRA's optimizer; pages "
                                "state to host memory under pressure)",
            "adamw_torch_fused": "optim: auto -> adamw_torch_fused on CUDA",
            "adamw_torch": "optim: auto -> adamw_torch: paged and 8-bit optimizers need CUDA"}[optim])
    training["optim"] = optim
    b.sources["TrainingArguments.optim"] = "schedule.optim"
    if not cuda:
        training["use_cpu"] = b.decide("TrainingArguments.use_cpu", True, f"hardware.accelerator is {hw['accelerator']}")
        b.sources["TrainingArguments.use_cpu"] = "hardware.accelerator"
    strategy, strategy_why = resolve_strategy(cfg)
    if d.world_size > 1:  # one process per device: torch.distributed.run (runner.launch) or one SLURM task each
        nodes = int(hw.get("num_nodes") or 1)
        b.decide("launch.nproc_per_node", int(hw["num_devices"]),
                 f"hardware.num_devices is {hw['num_devices']}: one process per device, each training on its shard "
                 f"of every batch")
        b.sources["launch.nproc_per_node"] = "hardware.num_devices"
        if nodes > 1:
            b.decide("launch.nnodes", nodes, f"hardware.num_nodes is {nodes}: world size {d.world_size}; the processes "
                                             "are SLURM tasks (hydra/launcher=slurm) or torchrun per node")
            b.sources["launch.nnodes"] = "hardware.num_nodes"
        b.decide("strategy", strategy, strategy_why)
        b.sources["strategy"] = "hardware.strategy"
        if not cuda:
            training["ddp_backend"] = b.decide("TrainingArguments.ddp_backend", "gloo",
                                               "processes on the CPU communicate through gloo (NCCL needs CUDA)")
            b.sources["TrainingArguments.ddp_backend"] = "hardware.accelerator"
        training["ddp_timeout"] = b.decide(
            "TrainingArguments.ddp_timeout", DDP_TIMEOUT_S,
            "a collective waits at most 10 minutes (torch's default is 30): when a rank dies the others stop with "
            "an error naming the wait instead of hanging; torchrun's agent stops them at once anyway")
        b.sources["TrainingArguments.ddp_timeout"] = "hardware.num_devices"
        if strategy == "ddp":
            training["ddp_find_unused_parameters"] = b.decide(
                "TrainingArguments.ddp_find_unused_parameters", False,
                "the Trainer turns it off only for a PreTrainedModel, which a PeftModel is not; left on, DDP searches "
                "the frozen base every step and fails beside gradient checkpointing")
            b.sources["TrainingArguments.ddp_find_unused_parameters"] = "hardware.num_devices"
        else:
            _fsdp(b, cfg, training)
    if training.get("gradient_checkpointing"):
        training["gradient_checkpointing_kwargs"] = b.decide(
            "TrainingArguments.gradient_checkpointing_kwargs", {"use_reentrant": False},
            "reentrant checkpointing needs inputs that require grad, which a frozen base under PEFT does not give")
        b.sources["TrainingArguments.gradient_checkpointing_kwargs"] = "schedule.gradient_checkpointing"
    training["report_to"] = b.decide("TrainingArguments.report_to", "none",
                                     "metrics go to the run directory; no tracker is contacted")
    if training.get("warmup_steps", 0) == 0:
        training.pop("warmup_steps", None)

    spec = data_spec(data)
    mode = sequences(spec, model["task"])
    b.decide("data.sequences", mode, SEQUENCES[mode])

    # -- model loading --------------------------------------------------------------------------
    auto_class, task_type = AUTO_CLASSES[model["task"]]
    dtype = resolve_dtype(cfg)
    why = "4-bit base: non-quantized modules in the compute dtype" if quant.get("load_in_4bit") else \
        f"matches {precision} training"
    if strategy == "fsdp":
        device_map, dm_why = None, "FSDP places each process's shards itself (a device map would fight it)"
    elif cuda and d.world_size > 1:
        device_map, dm_why = "local_rank", "one process per device: each loads onto its own GPU ({'': LOCAL_RANK})"
    elif cuda:
        device_map, dm_why = "auto", "a single CUDA device"
    else:
        device_map, dm_why = None, "CPU: no device map"
    from_pretrained = {
        "dtype": b.decide("from_pretrained.dtype", dtype, why),
        "device_map": b.decide("from_pretrained.device_map", device_map, dm_why),
        "attn_implementation": model.get("attn_implementation"),
        "trust_remote_code": model["trust_remote_code"],
    }
    if model.get("revision"):
        from_pretrained["revision"] = model["revision"]
    if model.get("num_labels") and model["task"] in ("seq-cls", "token-cls"):
        from_pretrained["num_labels"] = model["num_labels"]
    for k in ("attn_implementation", "trust_remote_code", "revision", "num_labels"):
        b.sources[f"from_pretrained.{k}"] = f"model.{k}"

    lora_kwargs: dict[str, Any] = {"task_type": task_type}
    b.take(lora_kwargs, "LoraConfig", lora, "lora", _LORA_KEYS)
    b.sources["LoraConfig.task_type"] = "model.task"
    heads = {"classifier", "score"}
    if model["task"] == "token-cls" and lora_kwargs.get("target_modules") == "all-linear" \
            and model.get("linear_modules"):
        lora_kwargs["target_modules"] = b.decide(
            "LoraConfig.target_modules", sorted(set(model["linear_modules"]) - heads),
            "all-linear -> every linear module but the classification head: peft leaves the head out of "
            "all-linear only for SEQ_CLS; for TOKEN_CLS it adapts the head that modules_to_save trains in full "
            "and get_peft_model fails ('modules_to_save cannot be applied to modules of type Linear')")

    bnb: dict[str, Any] | None = None
    if quantized:
        bnb = {}
        b.take(bnb, "BitsAndBytesConfig", quant, "quant", _BNB_KEYS)
        if "llm_int8_threshold" in bnb:  # BitsAndBytesConfig refuses an int ("must be a float")
            bnb["llm_int8_threshold"] = float(bnb["llm_int8_threshold"])
        if model["task"] in ("seq-cls", "token-cls"):
            head = sorted(heads & set(model.get("linear_modules") or heads))
            skip = list(dict.fromkeys([*(bnb.get("llm_int8_skip_modules") or []), *head]))
            bnb["llm_int8_skip_modules"] = b.decide(
                "BitsAndBytesConfig.llm_int8_skip_modules", skip,
                f"the new classification head ({', '.join(head)}) stays unquantized: peft trains it in full "
                f"(modules_to_save) and a copy of a 4-bit Linear loses its quantization state (bitsandbytes "
                f"fails at the first forward)")
            b.sources["BitsAndBytesConfig.llm_int8_skip_modules"] = "model.task"
        if strategy == "fsdp" and quant.get("load_in_4bit") and not quant.get("bnb_4bit_quant_storage"):
            bnb["bnb_4bit_quant_storage"] = b.decide(
                "BitsAndBytesConfig.bnb_4bit_quant_storage", dtype,
                f"FSDP flattens and shards parameters of one dtype: the packed 4-bit weights are stored as {dtype}, "
                f"the dtype of the rest of the model, instead of uint8 (which FSDP cannot shard)")
            b.sources["BitsAndBytesConfig.bnb_4bit_quant_storage"] = "hardware.strategy"

    plan: dict[str, Any] = {
        "plan_version": PLAN_VERSION,
        "loracfg_version": loracfg_version(),
        "run_id": run_id,
        "overrides": list(comp.overrides),
        "choices": comp.choices,
        "config": cfg,
        "model": {
            "name_or_path": model["name_or_path"],
            "task": model["task"],
            "auto_class": auto_class,
            "from_config": model["from_config"],
            "architecture": model["config"],
            "tokenizer": model.get("tokenizer_name_or_path") or model["name_or_path"],
            "from_pretrained": from_pretrained,
        },
        "quantization": {"BitsAndBytesConfig": bnb} if bnb is not None else None,
        "lora": {"LoraConfig": lora_kwargs},
        "training": {"TrainingArguments": training},
        "data": spec,
        "resolved": {
            "precision": precision,
            "optim": optim,
            "effective_batch_size": d.effective_batch_size,
            "train_samples": d.train_samples,
            "eval_samples": d.eval_samples,
            "steps_per_epoch": d.steps_per_epoch,
            "total_steps": d.total_steps,
            "warmup_steps": d.warmup_steps,
            "epochs": round(d.epochs, 4),
            "world_size": d.world_size,
            "strategy": strategy,
            "sequences": mode,
        },
        "decisions": b.decisions,
        "mapping": [],
        "sources": b.sources,
    }
    return plan


def _fsdp(b: _Builder, cfg: dict[str, Any], training: dict[str, Any]) -> None:
    """TrainingArguments for FSDP2 through the Trainer (accelerate's plugin), each setting a decision."""
    layers = cfg["model"].get("no_split_modules")
    training["fsdp"] = b.decide("TrainingArguments.fsdp", True, "strategy fsdp: the Trainer wraps the model in "
                                "accelerate's FSDP plugin; weights, gradients and optimizer states are sharded")
    fsdp_config: dict[str, Any] = {
        "version": b.decide("fsdp_config.version", 2, "FSDP2 (per-parameter DTensor sharding): FSDP1 is deprecated in "
                            "transformers 5 and its use_orig_params / sync_module_states have no FSDP2 counterpart "
                            "(parameters are always the originals; cpu_ram_efficient_loading broadcasts rank 0's)"),
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "cpu_ram_efficient_loading": b.decide(
            "fsdp_config.cpu_ram_efficient_loading", True,
            "rank 0 alone reads the checkpoint into host memory; the others start empty and receive it by broadcast "
            "(eight full copies of a 70B base would not fit one host)"),
        "state_dict_type": "FULL_STATE_DICT",
        "reshard_after_forward": True,
    }
    if layers:
        fsdp_config["transformer_layer_cls_to_wrap"] = b.decide(
            "fsdp_config.transformer_layer_cls_to_wrap", list(layers),
            f"the model's layer classes (model.no_split_modules, read off the architecture): each "
            f"{' / '.join(layers)} is one FSDP unit, gathered whole for its forward and backward")
        b.sources["fsdp_config.transformer_layer_cls_to_wrap"] = "model.no_split_modules"
    if training.get("gradient_checkpointing"):
        training["gradient_checkpointing"] = b.decide(
            "TrainingArguments.gradient_checkpointing", False,
            "schedule.gradient_checkpointing under FSDP goes to FSDP's own activation checkpointing "
            "(fsdp_config.activation_checkpointing): the model's would all-gather each layer a second time")
        fsdp_config["activation_checkpointing"] = True
        b.sources["fsdp_config.activation_checkpointing"] = "schedule.gradient_checkpointing"
    training["fsdp_config"] = fsdp_config
    b.sources["TrainingArguments.fsdp"] = "hardware.strategy"


def run_id_of(cfg: dict[str, Any]) -> str:
    """The run's directory name: a digest of the composed config, so the same run always lands in the
    same place (a re-run resumes there) and two different runs never share one."""
    body = json.dumps({k: v for k, v in cfg.items() if k != "output_dir"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def content_hash(plan: dict[str, Any]) -> str:
    body = {k: v for k, v in plan.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(plan: dict[str, Any]) -> dict[str, Any]:
    plan["hash"] = content_hash(plan)
    return plan


def dumps(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=False) + "\n"
