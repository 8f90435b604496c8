"""Execute a plan: load the model, wrap it with LoRA, prepare the data, train, save.

Runs are crash and preemption safe: the run directory comes from the plan (no timestamp), a
re-run resumes from the last complete checkpoint, SIGTERM and SIGUSR2 (what SLURM sends before
preempting) save a checkpoint and stop, and a finished run re-run only reports its metrics.
Every check of user input happens before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from loracfg.compiler.files import write_json
from loracfg.runner.errors import RunError

PREEMPTION_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR2", None)) if s)
METRICS = "metrics.json"


class Preempted(Exception):
    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved")
        self.signum, self.step = signum, step


def check_plan(plan: dict[str, Any]) -> None:
    from loracfg.compiler.plan.build import PLAN_VERSION

    v = plan.get("plan_version")
    if not isinstance(v, int) or "hash" not in plan:
        raise RunError("this file is not a loracfg plan (no plan_version/hash); write one with `loracfg compile`")
    if v < PLAN_VERSION:
        raise RunError(f"the plan was compiled by an older loracfg ({plan.get('loracfg_version')}, plan version {v}); "
                       f"this loracfg reads plan version {PLAN_VERSION}: compile the config again", key="plan_version")
    if v > PLAN_VERSION:
        raise RunError(f"the plan was compiled by loracfg {plan.get('loracfg_version')} (plan version {v}); this "
                       f"loracfg reads plan version {PLAN_VERSION} and older. Upgrade loracfg where it runs, or "
                       f"compile the config again with this one", key="plan_version")


def run_dir_of(plan: dict[str, Any]) -> Path:
    return Path(plan["training"]["TrainingArguments"]["output_dir"])


def _complete(checkpoint: Path) -> bool:
    """A checkpoint is complete once the Trainer wrote its state, the last file it saves, in full."""
    try:
        return isinstance(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def last_complete_checkpoint(run_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` whose trainer state is whole.

    transformers' get_last_checkpoint takes the highest N even when a kill left that folder with
    weights and no (or a truncated) trainer state, and the resume then fails or restarts wrongly."""
    if not run_dir.is_dir():
        return None
    numbered = [p for p in run_dir.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    for p in sorted(numbered, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        if _complete(p):
            return str(p)
    return None


def cpu_threads() -> int:
    """CPU threads this process may use: the SLURM allocation if any, else its CPU affinity.

    torch starts one thread per core of the machine; two jobs sharing a node then spin against each
    other (measured here: 40 tokens/s instead of 3000 for two 1-CPU jobs on a 2-core node)."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit():
        return int(slurm)  # per task already
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # the processes torch.distributed.run started on this host share its cores
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def _peak_memory() -> tuple[int, str]:
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return int(torch.cuda.max_memory_allocated()), "cuda_max_memory_allocated"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "rss_peak"


def _tokenizer(plan: dict[str, Any]):
    from transformers import AutoTokenizer

    name = plan["model"]["tokenizer"]
    if name == "byte-level":
        from transformers import ByT5Tokenizer

        return ByT5Tokenizer()
    try:
        tok = AutoTokenizer.from_pretrained(name, trust_remote_code=plan["model"]["from_pretrained"]["trust_remote_code"])
    except (OSError, ValueError) as e:
        raise RunError(f"cannot load the tokenizer '{name}': {str(e).splitlines()[0]}. Point "
                       f"model.tokenizer_name_or_path (or model.name_or_path) at a local directory that has it",
                       key="model.tokenizer_name_or_path") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _sample(model: Any, tokenizer: Any, data: dict[str, Any], rows: Any, template: tuple[str, str],
            max_new_tokens: int = 48) -> dict[str, str]:
    """A greedy answer of the trained adapter to the first held-out conversation's first question."""
    import torch
    from loracfg.runner.data import templates
    from loracfg.runner.data.formats import FORMATS
    from loracfg.runner.data.formats._base import BadRow

    for row in rows:
        try:
            turns = FORMATS[data["format"]].convert(row, data).turns
        except BadRow:
            continue
        first = next(i for i, (role, _) in enumerate(turns) if role == "assistant")
        text = templates.prompt(tokenizer, template, turns[:first])
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
        model.eval()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
        answer = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        return {"prompt": turns[first - 1][1] if first else "", "answer": answer, "expected": turns[first][1]}
    return {"prompt": "", "answer": "", "expected": ""}


def missing_local_model(name: str) -> bool:
    """``name`` is a local path (not a hub id) without a saved model (no config.json) there."""
    looks_local = name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()
    return looks_local and not (Path(name).expanduser() / "config.json").is_file()


def _check_model_source(plan: dict[str, Any]) -> None:
    m = plan["model"]
    if m["from_config"]:
        return
    name = m["name_or_path"]
    if missing_local_model(name):
        raise RunError(f"model.name_or_path '{name}' is not a model directory (no config.json there); point it at "
                       f"a directory saved with save_pretrained, or set model.from_config=true", key="model.name_or_path")


def _check_lengths(plan: dict[str, Any]) -> None:
    limit = plan["model"]["architecture"].get("max_position_embeddings")
    want = plan["data"]["max_length"]
    if limit and want > limit:
        raise RunError(f"data.max_length is {want} but {plan['model']['name_or_path']} supports at most {limit} "
                       f"positions; set data.max_length={limit} or less", key="data.max_length")


def _from_config(plan: dict[str, Any], tokenizer: Any):
    """A from_config model with seeded random weights: the same weights in every process, so resumes match."""
    import torch
    import transformers
    from transformers import AutoConfig

    m = plan["model"]
    extra = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    if m["from_pretrained"].get("num_labels"):
        extra["num_labels"] = m["from_pretrained"]["num_labels"]
    config = AutoConfig.for_model(**m["architecture"], **extra)
    torch.manual_seed(plan["config"]["seed"])
    return getattr(transformers, m["auto_class"]).from_config(config)


def _materialize_base(plan: dict[str, Any], tokenizer: Any, run_dir: Path) -> str:
    """A from_config model saved once, for what only from_pretrained can do (bitsandbytes quantization)."""
    target = run_dir / "base-model"
    if (target / "config.json").is_file():
        return str(target)
    model = _from_config(plan, tokenizer)
    tmp = run_dir / ".base-model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tmp.replace(target)
    return str(target)


def _load_model(plan: dict[str, Any], source: str, model_kwargs: dict[str, Any]):
    import transformers

    kwargs = {k: v for k, v in model_kwargs.items() if v is not None}
    if kwargs.get("device_map") == "local_rank":
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if plan["model"]["from_config"]:
        kwargs.pop("num_labels", None)  # already in the saved config
    cls = getattr(transformers, plan["model"]["auto_class"])
    transformers.set_seed(plan["config"]["seed"])  # a new head (num_labels) is initialised at random: seeded
    try:
        return cls.from_pretrained(source, **kwargs)
    except OSError as e:
        raise RunError(f"cannot load model.name_or_path '{source}': {str(e).splitlines()[0]}. Use a local "
                       f"directory (nothing is downloaded when the hub is unreachable)", key="model.name_or_path") from e


def _keep_4bit_weights_trainable_on_cpu(model: Any) -> int:
    """bitsandbytes (0.49-0.50) repacks a Linear4bit's weight for CPU inference the first time it runs in eval
    mode on a CPU with AVX512-BF16, and keeps it so: the next training step then goes through gemv_4bit, which
    has no autograd kernel (torch: 'silently incorrect behavior': no gradient reaches the adapters below) and
    fails on layers with a bias. The runner evaluates before and while it trains, so the repacking is turned
    off for the run. Returns how many layers it touched."""
    touched = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            touched += 1
    return touched


def _unprepare_after_evaluation(trainer: Any) -> None:
    """Let train() wrap the model in DistributedDataParallel after an evaluation.

    transformers' evaluation loop has accelerate prepare the model in evaluation mode (no DDP wrapper) and
    accelerate marks it prepared; train() then skips the wrap and every rank trains alone on its shard, with
    nothing all-reduced (measured on two CPU processes: the ranks' adapter weights differed from the second
    step, and the loss left the one-process curve by 0.7% in 10 steps). Forgetting the mark restores DDP."""
    if trainer.args.world_size <= 1:
        return
    trainer.model.__dict__.pop("_is_accelerate_prepared", None)
    trainer.accelerator._models[:] = [m for m in trainer.accelerator._models if m is not trainer.model]


def _same_plan_on_every_rank(plan: dict[str, Any]) -> None:
    """Every rank must train the same plan: one edited between two launches (or a stale copy on one node) would
    train different models that the all-reduce silently averages. The ranks compare plan hashes first."""
    import torch.distributed as dist

    hashes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(hashes, plan["hash"])
    if len(set(hashes)) > 1:
        odd = [f"rank {r}: {h}" for r, h in enumerate(hashes) if h != hashes[0]]
        raise RunError(f"the ranks of this run disagree on the plan (rank 0: {hashes[0]}; {'; '.join(odd)}): the plan "
                       f"changed between launches or differs between nodes; compile once and start every rank from "
                       f"that file")


def _accuracy(prediction: Any) -> dict[str, float]:
    import numpy as np

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    labels = prediction.label_ids
    learned = labels != -100  # token-cls: the first sub-token of each word; seq-cls: every row
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels)[learned].mean())}


def _prefixed(prefix: str, evaluation: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in evaluation.items() if k in ("eval_loss", "eval_accuracy")}


def _callbacks(state: dict[str, Any]):
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_step_end(self, args, st, control, **kw):
            state.setdefault("first_step_unix", time.time())
            if args.world_size > 1:  # a signal to any rank stops all of them at this step, with one checkpoint
                import torch
                import torch.distributed as dist

                flag = torch.tensor([state.get("signum") or 0], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                if int(flag.item()):
                    state["signum"] = int(flag.item())
            if state.get("signum"):
                control.should_save = True
                control.should_training_stop = True
            return control

    return [Recorder()]


def run(plan: dict[str, Any], out: Any = None, objects: Any = None) -> dict[str, Any]:
    """Train the plan to completion (resuming if it ran before); returns its metrics.

    ``objects``: the plan's Hugging Face objects where the caller built them already (train.py)."""
    t_start = time.time()
    out = out or sys.stdout  # looked up per call: a stream captured at import time may be closed by now
    check_plan(plan)
    run_dir = run_dir_of(plan)
    metrics_path = run_dir / METRICS
    previous = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if previous.get("finished") and previous.get("plan_hash") == plan["hash"]:
        print(f"run {run_dir} already finished at step {previous['global_step']} "
              f"(eval loss {previous.get('final_eval_loss')}); nothing to do", file=out)
        return previous

    import torch
    from loracfg.compiler.plan import hf
    from loracfg.runner.data.pack import collator as data_collator
    from loracfg.runner.data.pack import prepare_model
    from loracfg.runner.data.prepare import prepare_run
    from transformers import Trainer

    if plan["config"]["hardware"]["accelerator"] == "cuda" and not torch.cuda.is_available():
        raise RunError("the plan was compiled for CUDA (hardware.accelerator=cuda) but this machine has no CUDA "
                       "device; run it on a GPU node, or compile with hardware=cpu", key="hardware.accelerator")
    threads = cpu_threads()
    torch.set_num_threads(threads)
    seed, task = plan["config"]["seed"], plan["model"]["task"]
    data = plan["data"]
    _check_lengths(plan)
    _check_model_source(plan)
    # the TrainingArguments join the process group under a distributed launch: built before anything waits on it
    objects = objects or hf.to_hf(plan, keep_environment=True)
    if objects.diagnostics:
        raise RunError("; ".join(d.message for d in objects.diagnostics))
    args = objects.training_arguments
    main = args.process_index == 0  # rank 0 alone writes the run directory and prints
    want = int(plan["resolved"].get("world_size", 1))
    if args.world_size != want:  # e.g. arguments built before the process joined its group: it would train alone
        raise RunError(f"the plan is for {want} processes but this one trains in a group of {args.world_size} "
                       f"(accelerate's distributed type {args.distributed_state.distributed_type.value}); start it through the app, python -m loracfg.runner PLAN, or one "
                       f"SLURM task per device", key="hardware.num_devices")
    if args.world_size > 1:
        _same_plan_on_every_rank(plan)
    out = out if main else open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
    tokenizer = _tokenizer(plan)
    sequences = plan["resolved"]["sequences"]
    with args.main_process_first(desc="data"):  # rank 0 fills datasets' cache; the others read it
        prepared = prepare_run(data, tokenizer, seed, task, sequences)
    train, evaluation, template = prepared.train, prepared.evaluation, prepared.template

    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        write_json(run_dir / "plan.json", plan)
        write_json(run_dir / "config.json", plan["config"])
    if plan["model"]["from_config"] and objects.bnb_config is None:
        model = _from_config(plan, tokenizer).to(objects.model_kwargs.get("dtype") or objects.model_kwargs["torch_dtype"])
    else:
        with args.main_process_first(desc="base model"):  # saved once, by rank 0
            source = _materialize_base(plan, tokenizer, run_dir) if plan["model"]["from_config"] \
                else plan["model"]["name_or_path"]
        model = _load_model(plan, source, objects.model_kwargs)
    if objects.bnb_config is not None:
        from peft import prepare_model_for_kbit_training

        ta = plan["training"]["TrainingArguments"]
        gc = bool(ta.get("gradient_checkpointing") or ta.get("activation_checkpointing"))
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc)
        _keep_4bit_weights_trainable_on_cpu(model)
    from peft import get_peft_model

    prepare_model(model, sequences)
    model = get_peft_model(model, objects.lora_config)
    quantized = sum(type(mod).__module__.startswith("bitsandbytes") and type(mod).__name__ in ("Linear4bit", "Linear8bitLt")
                    for mod in model.modules())
    trainable, total = model.get_nb_trainable_parameters()
    print(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}",
          file=out)

    train_ds = train.dataset
    eval_ds = evaluation.dataset if evaluation is not None and len(evaluation.dataset) else None
    collator = data_collator(sequences, tokenizer, task)
    state: dict[str, Any] = {}
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=collator, callbacks=_callbacks(state),
                      compute_metrics=_accuracy if task in ("seq-cls", "token-cls") else None,
                      **{plan["trainer"]["tokenizer_argument"]: tokenizer})

    resume = last_complete_checkpoint(run_dir)
    metrics: dict[str, Any] = {"plan_hash": plan["hash"], "run_dir": str(run_dir), "finished": False,
                               "host": socket.gethostname(), "pid": os.getpid(), "started_unix": round(t_start, 3),
                               "trainable_params": trainable, "total_params": total, "resumed_from": [],
                               "quantized_linear_modules": quantized, "cpu_threads": threads,
                               "world_size": args.world_size,
                               "strategy": plan["resolved"].get("strategy", "single"),
                               "distributed_type": trainer.accelerator.distributed_type.value,
                               "data": {"sequences": sequences, "train": train.stats,
                                        "eval": evaluation.stats if evaluation else None,
                                        "chat_template": template[0] if template else None}}
    if previous.get("plan_hash") == plan["hash"]:
        metrics.update({k: v for k, v in previous.items() if k.startswith("initial_") or k == "resumed_from"})
    if "initial_eval_loss" not in metrics and eval_ds is not None and resume is None:
        metrics.update(_prefixed("initial_", trainer.evaluate()))
        _unprepare_after_evaluation(trainer)
    if resume:
        metrics["resumed_from"] = [*metrics["resumed_from"], resume]
        print(f"resuming from {resume}", file=out)
    if main:
        write_json(metrics_path, metrics)

    handlers = {s: signal.signal(s, lambda signum, frame: state.__setitem__("signum", signum))
                for s in PREEMPTION_SIGNALS}
    t_train = time.time()
    try:
        result = trainer.train(resume_from_checkpoint=resume)
    except Exception as e:  # recorded for `loracfg runs`, then raised as before
        if main:
            write_json(metrics_path, {**metrics, "error": f"{type(e).__name__}: {e}".splitlines()[0][:500],
                                      "global_step": trainer.state.global_step})
        raise
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    previous = handlers.get(state.get("signum"))
    if callable(previous):
        # e.g. submitit's SIGUSR2 handler: with the checkpoint saved, let it requeue the job as it does
        previous(state["signum"], None)
    wall = time.time() - t_train
    step = trainer.state.global_step
    history = trainer.state.log_history
    metrics.update({
        "global_step": step,
        "max_steps": trainer.state.max_steps,
        "train_loss_curve": [[h["step"], h["loss"]] for h in history if "loss" in h],
        "eval_loss_curve": [[h["step"], h["eval_loss"]] for h in history if "eval_loss" in h],
        "train_loss": result.training_loss,
        "train_wall_time_s": round(wall, 3),
        "time_to_first_step_s": round(state["first_step_unix"] - t_start, 3) if "first_step_unix" in state else None,
        "first_step_unix": state.get("first_step_unix"),
    })
    if state.get("signum"):
        metrics["stopped_by"] = signal.Signals(state["signum"]).name
        if main:
            write_json(metrics_path, metrics)
        raise Preempted(state["signum"], step)

    if eval_ds is not None:
        metrics.update(_prefixed("final_", trainer.evaluate()))
    if template is not None and main:
        rows = prepared.eval_rows if prepared.eval_rows is not None else prepared.train_rows
        metrics["sample"] = _sample(trainer.model, tokenizer, data, rows, template)
        print(f"sample (greedy, from the trained adapter):\n  prompt: {metrics['sample']['prompt']!r}\n"
              f"  answer: {metrics['sample']['answer']!r}", file=out)
    epochs_done = step / max(1, plan["resolved"]["steps_per_epoch"])
    seen_tokens = train.stats["tokens"] * epochs_done
    memory, memory_kind = _peak_memory()
    metrics.update({
        "finished": True,
        "train_tokens": int(seen_tokens),
        "tokens_per_second": round(seen_tokens / wall, 1) if wall > 0 else None,
        "wall_time_s": round(time.time() - t_start, 3),
        "peak_memory_bytes": memory,
        "peak_memory_kind": memory_kind,
    })
    if main:
        adapter = run_dir / "adapter"
        trainer.model.save_pretrained(adapter)
        tokenizer.save_pretrained(adapter)
        write_json(metrics_path, metrics)
    args.distributed_state.wait_for_everyone()  # no rank leaves (and its launcher reports done) before the files
    shown = {k: metrics.get(k) for k in ("global_step", "initial_eval_loss", "final_eval_loss", "tokens_per_second")}
    print(f"finished {run_dir}: {shown}", file=out)
    return metrics


def eval_metric(metrics: dict[str, Any]) -> float:
    """The number sweepers optimize: final eval loss (train loss when there is no eval split)."""
    value = metrics.get("final_eval_loss", metrics.get("train_loss"))
    return float(value) if value is not None else math.nan
