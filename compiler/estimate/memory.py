"""Parameter counts and a per-device memory estimate of a composed config, from its facts alone.

Pure arithmetic on the composed config (no torch): the model option's ``linear_modules`` and
``other_modules`` (see ``loracfg.compiler.plan.facts``), the LoRA, quantization, schedule, hardware and data
groups. The counts follow what peft does (``get_peft_model`` then ``get_nb_trainable_parameters``)
and a test holds them equal on the real architectures. The memory model follows what is
resident on one device at the peak of a training step:

- base weights by quantization: 16/32-bit, int8 (LLM.int8: 1 byte + one fp32 scale per row),
  4-bit (half a byte + an fp32 absmax per 64 values, or with double quantization an 8-bit absmax
  and an fp32 scale per 256 blocks). The output head stays unquantized, and
  ``prepare_model_for_kbit_training`` casts every unquantized parameter to fp32;
- adapter weights in fp32 (peft's ``autocast_adapter_dtype``), their gradients, optimizer states
  by optimizer (AdamW: two fp32 states; 8-bit AdamW: two bytes for tensors of 4096 values or
  more; paged: the same bytes, in CUDA unified memory that can spill to the host);
- activations saved for the backward pass, per token and layer, by sequence length, micro-batch,
  hidden and intermediate sizes, attention implementation (eager keeps the s x s probabilities,
  sdpa/flash keep one logsumexp per head and position), LoRA inputs and dropout masks, with
  gradient checkpointing keeping one hidden state per layer plus one recomputed layer;
- the logits and the loss's fp32 log-softmax over the vocabulary;
- the CUDA context (not in ``torch.cuda.max_memory_allocated``, but on the device).
"""

from __future__ import annotations

import math
import re
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from loracfg.compiler.derived import (
    derive,
    resolve_dtype,
    resolve_optim,
    resolve_precision,
    world_size,
)

GIB = 1024 ** 3
CUDA_CONTEXT_BYTES = 512 * 1024 ** 2
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
QUANT_BLOCK = 64          # bitsandbytes 4-bit block size (transformers' default)
NESTED_BLOCK = 256        # double quantization: one fp32 scale per 256 absmax values
BNB_MIN_8BIT_SIZE = 4096  # bitsandbytes 8-bit optimizers keep smaller tensors in 32-bit
SEQ_CLS_HEADS = ("score", "classifier")  # peft's SEQ_CLS_HEAD_NAMES, the order it checks them in
CLS_TASKS = ("seq-cls", "token-cls")  # tasks whose head peft trains in full (modules_to_save)
OUTPUT_HEADS = {"causal-lm": "lm_head", "seq2seq-lm": "lm_head"}
# peft's default target_modules (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) where none are given
PEFT_DEFAULT_TARGETS = {
    "llama": ["q_proj", "v_proj"], "mistral": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"],
    "bert": ["query", "value"], "gemma": ["q_proj", "v_proj"], "phi3": ["qkv_proj"],
}
EIGHT_BIT_OPTIMS = ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_lion_8bit", "lion_8bit",
                    "paged_ademamix_8bit", "ademamix_8bit", "adamw_torch_8bit")


@dataclass(frozen=True)
class Parameters:
    total: int               # what peft's get_nb_trainable_parameters() reports as all params
    trainable: int           # ... and as trainable params
    base: int                # the architecture alone
    lora: int                # lora_A + lora_B
    dora_magnitude: int      # DoRA's magnitude vectors
    modules_to_save: int     # the trainable copies of modules_to_save
    trainable_bias: int      # existing biases made trainable by `bias: all | lora_only`
    lora_layers: int         # linear modules wrapped with an adapter
    targets: tuple[str, ...] # their names
    exact: bool              # False where the facts cannot say (regex target_modules, unknown default)
    note: str | None = None


def _linear_params(e: Mapping[str, Any]) -> int:
    return 0 if e.get("tied") else e["count"] * (e["in_features"] * e["out_features"] + (e["out_features"] if e["bias"] else 0))


def head_name(model: Mapping[str, Any]) -> str | None:
    """The output/classification head peft's all-linear leaves out (and bitsandbytes leaves unquantized)."""
    linear = model["linear_modules"]
    if model["task"] in OUTPUT_HEADS and OUTPUT_HEADS[model["task"]] in linear:
        return OUTPUT_HEADS[model["task"]]
    return next((h for h in SEQ_CLS_HEADS if h in linear), None)


def target_names(cfg: Mapping[str, Any]) -> tuple[list[str], bool, str | None]:
    """The linear module names LoRA wraps, whether that is exact, and why not."""
    model, targets = cfg["model"], cfg["lora"].get("target_modules")
    linear = model["linear_modules"]
    if targets is None:
        default = PEFT_DEFAULT_TARGETS.get(model["config"]["model_type"])
        if default is None:
            return [], False, f"peft's default target_modules for {model['config']['model_type']} is not known here"
        return [n for n in default if n in linear], True, None
    if isinstance(targets, str):
        if targets.lower() == "all-linear":
            # seq-cls: peft leaves the head out; token-cls: the plan spells all-linear out without it
            head = head_name(model) if model["task"] in OUTPUT_HEADS or model["task"] in CLS_TASKS else None
            return [n for n in linear if n != head], True, None
        names = [n for n in linear if re.fullmatch(targets, n)]
        return names, False, "a regular expression in target_modules is matched against full module paths; " \
                             "counted on the last name only"
    last_names = {t.rsplit(".", 1)[-1] for t in targets}
    return [n for n in linear if n in last_names], \
        all("." not in t for t in targets), None


def count_parameters(cfg: Mapping[str, Any]) -> Parameters:
    model, lora = cfg["model"], cfg["lora"]
    linear, other = model["linear_modules"], model["other_modules"]
    base = sum(_linear_params(e) for shapes in linear.values() for e in shapes) + \
        sum(o["parameters"] for o in other.values())
    names, exact, note = target_names(cfg)
    r = int(lora["r"])
    lora_params = dora = layers = lora_bias = 0
    for n in names:
        for e in linear[n]:
            layers += e["count"]
            lora_params += e["count"] * r * (e["in_features"] + e["out_features"])
            if lora.get("use_dora"):
                dora += e["count"] * e["out_features"]
            if e["bias"]:
                lora_bias += e["count"] * e["out_features"]
    save = list(lora.get("modules_to_save") or [])
    if model["task"] in CLS_TASKS:
        save += [h for h in SEQ_CLS_HEADS if h not in save]  # peft adds the head for SEQ_CLS and TOKEN_CLS
    # peft matches modules_to_save by the end of the module path, and wraps a copy that trains
    saved_names = {n for n in [*linear, *other] if n not in names and any(n.endswith(t) for t in save)}
    saved = sum(_linear_params({**e, "tied": False}) for n in saved_names & set(linear) for e in linear[n])
    saved += sum(other[n]["parameters"] for n in saved_names & set(other))
    bias_mode = lora.get("bias", "none")
    if bias_mode == "all":  # every existing bias, except the frozen originals of modules_to_save
        trainable_bias = sum(e["count"] * e["out_features"] for n, shapes in linear.items() if n not in saved_names
                             for e in shapes if e["bias"]) \
            + sum(o["bias_parameters"] for n, o in other.items() if n not in saved_names)
    elif bias_mode == "lora_only":
        trainable_bias = lora_bias
    else:
        trainable_bias = 0
    return Parameters(
        total=base + lora_params + dora + saved,
        trainable=lora_params + dora + saved + trainable_bias,
        base=base, lora=lora_params, dora_magnitude=dora, modules_to_save=saved, trainable_bias=trainable_bias,
        lora_layers=layers, targets=tuple(names), exact=exact, note=note,
    )


# -- memory ------------------------------------------------------------------------------------

SHARDED_TERMS = ("base_weights", "adapter_weights", "gradients", "optimizer_states")  # what FSDP divides


@dataclass
class Memory:
    strategy: str                  # single | ddp | fsdp (resolve_strategy)
    micro_batch: int
    seq_len: int
    breakdown: dict[str, int]      # component -> bytes on one device
    peak_bytes_per_device: int
    limit_bytes: int
    fits: bool
    max_micro_batch: int           # the largest per-device batch that fits (0: not even one sequence)
    notes: list[str] = field(default_factory=list)


def _weights(cfg: Mapping[str, Any], params: Parameters) -> tuple[int, list[str]]:
    model, quant = cfg["model"], cfg["quant"]
    dtype_bytes = DTYPE_BYTES[resolve_dtype(cfg)]
    head = head_name(model)
    four, eight = bool(quant.get("load_in_4bit")), bool(quant.get("load_in_8bit"))
    if not (four or eight):
        return params.base * dtype_bytes, []
    skip = set(quant.get("llm_int8_skip_modules") or []) | ({head} if head else set())
    total = 0
    for name, shapes in model["linear_modules"].items():
        for e in shapes:
            n_w, n_b = e["in_features"] * e["out_features"], e["out_features"] if e["bias"] else 0
            if name in skip or e.get("tied"):
                total += e["count"] * 4 * (0 if e.get("tied") else n_w + n_b)  # kept, then cast to fp32
                continue
            if four:
                blocks = math.ceil(n_w / QUANT_BLOCK)
                consts = blocks + 4 * math.ceil(blocks / NESTED_BLOCK) if quant.get("bnb_4bit_use_double_quant") \
                    else 4 * blocks
                per = math.ceil(n_w / 2) + consts
            else:
                per = n_w + 4 * e["out_features"]
            total += e["count"] * (per + 4 * n_b)
    total += 4 * sum(o["parameters"] for o in model["other_modules"].values())
    return total, ["prepare_model_for_kbit_training casts the unquantized modules (embeddings, norms, "
                   f"{head or 'head'}) to fp32"]


def _optimizer_bytes(cfg: Mapping[str, Any], trainable_tensors: list[int]) -> tuple[int, str]:
    optim = resolve_optim(cfg)
    if optim == "sgd":
        return 0, optim
    if optim.startswith("adafactor"):
        return sum(4 * max(n, 1) for n in trainable_tensors) // 8, optim  # factored second moment, no first
    if optim in EIGHT_BIT_OPTIMS:
        return sum(2 * n + 8 * math.ceil(n / 2048) if n >= BNB_MIN_8BIT_SIZE else 8 * n
                   for n in trainable_tensors), optim
    states = 1 if "lion" in optim else 3 if "ademamix" in optim else 2
    return sum(4 * states * n for n in trainable_tensors), optim


def _trainable_tensors(cfg: Mapping[str, Any], params: Parameters) -> list[int]:
    """The sizes of the trainable tensors (8-bit optimizers treat small ones apart)."""
    linear, r = cfg["model"]["linear_modules"], int(cfg["lora"]["r"])
    sizes: list[int] = []
    for n in params.targets:
        for e in linear[n]:
            sizes += [r * e["in_features"], r * e["out_features"]] * e["count"]
            if cfg["lora"].get("use_dora"):
                sizes += [e["out_features"]] * e["count"]
    rest = params.trainable - sum(sizes)
    if rest > 0:
        sizes.append(rest)
    return sizes


def _per_sequence_activations(cfg: Mapping[str, Any], params: Parameters, seq: int) -> tuple[int, dict[str, int]]:
    """Bytes saved for backward per sequence of ``seq`` tokens: the layers, and the logits + loss."""
    model, lora, sched, quant = cfg["model"], cfg["lora"], cfg["schedule"], cfg["quant"]
    c = model["config"]
    h, layers, heads = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
    head_dim = c.get("head_dim") or h // heads
    kv = (c.get("num_key_value_heads") or heads) * head_dim
    inter = c["intermediate_size"]
    bf16, fp16 = resolve_precision(cfg)
    half = bf16 or fp16
    cuda = cfg["hardware"]["accelerator"] == "cuda"
    mixed = 2 if half else 4                              # what autocast computes matmuls in
    kbit = bool(quant.get("load_in_4bit") or quant.get("load_in_8bit"))
    # frozen linears return their input's dtype: the residual stream's, fp32 after prepare_model_for_kbit_training
    linear_out = 4 if (kbit or not half or resolve_dtype(cfg) == "float32") else 2
    # -- one layer, per token (coefficients measured with saved-tensor hooks; see benchmarks/README.md)
    attn_impl = model.get("attn_implementation") or "sdpa"
    norms = 2 * 4 + 8                                     # two norms: an fp32 copy each (x h below) and 1/rms
    hidden = (8 + 3 * linear_out) * h                     # norm copies; q, attention output, norm outputs
    attn = 2 * mixed * kv + (4 * heads if attn_impl != "eager" else 0)  # k, v; logsumexp per head
    mlp = 3 * inter * linear_out                          # gate and up outputs, the activation
    dropout = float(lora.get("lora_dropout") or 0)
    casts = mixed != 4                                    # adapters are fp32: half inputs get cast per adapter
    r = int(lora["r"])
    lora_tok = 0.0
    widths: set[int] = set()
    for n in params.targets:
        for e in model["linear_modules"][n]:
            per_layer = e["count"] / layers if layers else 0
            if dropout > 0:       # dropout's mask (bool on CUDA, a float tensor on CPU) and its output
                saved = e["in_features"] * (mixed + (1 if cuda else 4))
            elif casts:           # the input autocast copies for lora_A
                saved = e["in_features"] * mixed
            else:                 # no copy: the input is shared with the frozen layer; new once per width
                saved = 0 if e["in_features"] in widths else e["in_features"] * 4
                widths.add(e["in_features"])
            saved += r * mixed
            if lora.get("use_dora"):
                saved += e["out_features"] * mixed      # DoRA's base output for the magnitude's gradient
            lora_tok += saved * per_layer
    layer_tok = norms + hidden + attn + mlp + lora_tok
    layer_seq = layer_tok * seq + (heads * seq * seq * (4 + mixed) if attn_impl == "eager" else 0)
    if sched.get("gradient_checkpointing"):
        body = layers * h * seq * linear_out + layer_seq  # one hidden state per layer + one recomputed layer
    else:
        body = layers * layer_seq
    vocab_out = 0
    head = head_name(model)
    if model["task"] in OUTPUT_HEADS and head:
        v = model["linear_modules"][head][0]["out_features"]
        vocab_out = seq * v * (mixed + 4 + 4)            # logits, their fp32 copy, the fp32 log-softmax
    embed = seq * h * (linear_out + 4)                    # embedding output, final norm's fp32 copy
    return int(body + vocab_out + embed), {"layers": int(body), "logits_and_loss": vocab_out, "embeddings": embed}


def resolve_strategy(cfg: Mapping[str, Any], params: Parameters | None = None) -> tuple[str, str]:
    """(strategy, why): ``single`` for one process; ``hardware.strategy`` when set; ``auto`` is ddp when the
    whole model's estimate fits one device (or off CUDA: the Trainer's FSDP path needs an accelerator), fsdp
    when it does not."""
    world = world_size(cfg)
    chosen = cfg["hardware"].get("strategy") or "auto"
    if world <= 1:
        return "single", "one process: nothing to split"
    if chosen != "auto":
        return chosen, f"hardware.strategy is {chosen}"
    if cfg["hardware"]["accelerator"] != "cuda":
        return "ddp", f"strategy: auto -> ddp: {world} processes on {cfg['hardware']['accelerator']} (FSDP through " \
                      "the Trainer needs CUDA)"
    whole = estimate_memory(cfg, params, strategy="ddp")
    if whole.fits:
        return "ddp", f"strategy: auto -> ddp: the whole model's estimate, {fmt_bytes(whole.peak_bytes_per_device)}, " \
                      f"fits one device ({fmt_bytes(whole.limit_bytes)}); each of the {world} processes holds it all"
    return "fsdp", f"strategy: auto -> fsdp: the whole model needs {fmt_bytes(whole.peak_bytes_per_device)} per " \
                   f"device, over {fmt_bytes(whole.limit_bytes)}: weights, gradients and optimizer states are " \
                   f"sharded over the {world} processes"


def estimate_memory(cfg: Mapping[str, Any], params: Parameters | None = None,
                    micro_batch: int | None = None, strategy: str | None = None) -> Memory:
    params = params or count_parameters(cfg)
    strategy = strategy or resolve_strategy(cfg, params)[0]
    sched, hw, data = cfg["schedule"], cfg["hardware"], cfg["data"]
    cuda = hw["accelerator"] == "cuda"
    micro = int(micro_batch or sched["per_device_train_batch_size"])
    seq = int(data["max_length"])
    weights, notes = _weights(cfg, params)
    kbit = bool(cfg["quant"].get("load_in_4bit") or cfg["quant"].get("load_in_8bit"))
    # adapters are fp32 (peft's autocast_adapter_dtype); copies and biases keep their module's dtype,
    # which is fp32 after prepare_model_for_kbit_training
    module_bytes = 4 if kbit else DTYPE_BYTES[resolve_dtype(cfg)]
    new = params.lora + params.dora_magnitude
    adapters = 4 * new + module_bytes * params.modules_to_save
    gradients = 4 * new + module_bytes * (params.modules_to_save + params.trainable_bias)
    optimizer, optim = _optimizer_bytes(cfg, _trainable_tensors(cfg, params))
    per_seq, parts = _per_sequence_activations(cfg, params, seq)
    breakdown = {
        "base_weights": weights,
        "adapter_weights": adapters,
        "gradients": gradients,
        "optimizer_states": optimizer,
        "activations": per_seq * micro - parts["logits_and_loss"] * micro,
        "logits_and_loss": parts["logits_and_loss"] * micro,
        "cuda_context": CUDA_CONTEXT_BYTES if cuda else 0,
    }
    if strategy == "fsdp":  # each process keeps 1/world of these; a layer is gathered whole for its forward/backward
        world = world_size(cfg)
        layers = max(int(cfg["model"]["config"].get("num_hidden_layers") or 1), 1)
        gathered = 2 * math.ceil(breakdown["base_weights"] / layers)  # the layer in use and the one prefetched
        for term in SHARDED_TERMS:
            breakdown[term] = math.ceil(breakdown[term] / world)
        breakdown["fsdp_gathered_layers"] = gathered
        notes.append(f"FSDP over {world} processes: {', '.join(SHARDED_TERMS)} are sharded (1/{world} each); "
                     "activations are not; two layers' weights are gathered whole at a time")
    if optim.startswith("paged_"):
        notes.append(f"{optim} keeps its states in CUDA unified memory: they count here, and can spill to host "
                     "memory under pressure (torch.cuda.max_memory_allocated does not see them)")
    peak = sum(breakdown.values())
    limit = int(float(hw["device_memory_gib"]) * GIB)
    static = peak - per_seq * micro
    max_micro = max((limit - static) // per_seq, 0) if per_seq else 0
    return Memory(strategy=strategy, micro_batch=micro, seq_len=seq, breakdown=breakdown, peak_bytes_per_device=peak,
                  limit_bytes=limit, fits=peak <= limit, max_micro_batch=int(max_micro), notes=notes)


@dataclass
class Estimate:
    parameters: Parameters
    memory: Memory
    steps: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        p, m = self.parameters, self.memory
        return {
            "total_params": p.total, "trainable_params": p.trainable,
            "trainable_percent": round(100 * p.trainable / p.total, 4) if p.total else 0.0,
            "parameters": asdict(p) | {"targets": list(p.targets)},
            "peak_bytes_per_device": m.peak_bytes_per_device, "limit_bytes_per_device": m.limit_bytes,
            "strategy": m.strategy, "fits": m.fits, "max_micro_batch": m.max_micro_batch, "micro_batch": m.micro_batch,
            "seq_len": m.seq_len, "memory_breakdown": m.breakdown, "notes": m.notes, "steps": self.steps,
        }


def steps_of(cfg: Mapping[str, Any]) -> dict[str, Any]:
    d = derive(cfg)
    return {"world_size": d.world_size, "train_samples": d.train_samples, "eval_samples": d.eval_samples,
            "effective_batch_size": d.effective_batch_size, "steps_per_epoch": d.steps_per_epoch,
            "total_steps": d.total_steps, "warmup_steps": d.warmup_steps, "epochs": round(d.epochs, 4),
            "max_steps_set": int(cfg["schedule"]["max_steps"]) > 0}


def estimate(cfg: Mapping[str, Any]) -> Estimate:
    params = count_parameters(cfg)
    return Estimate(params, estimate_memory(cfg, params), steps_of(cfg))


def with_changes(cfg: Mapping[str, Any], **groups: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``cfg`` with some keys of some groups replaced (for "what would fit" questions)."""
    out = deepcopy(dict(cfg))
    for group, values in groups.items():
        out[group] = {**out[group], **values}
    return out


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"
