"""Using a trained run: ``loracfg export`` (the adapter, or a merged model, with a model card) and
``loracfg generate`` (base + adapter, loaded the way the run trained, answering a prompt).

Both read only the run directory the runner wrote (``plan.json``, ``metrics.json``, ``adapter/`` or, for an
unfinished run, its last complete checkpoint) and the base model the plan names.

A merge loads the base in the training compute dtype and folds the adapter in with peft's
``merge_and_unload``. A 4-bit (QLoRA) base is never merged while quantized (peft would re-quantize the sum and
lose the update): the base is loaded 4-bit as it trained, de-quantized with transformers' ``dequantize()``
into the compute dtype (the weights the adapter learned against), and the adapter merged into that.
The output is written to a temporary directory beside the target and renamed into place when complete.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loracfg.runner.errors import RunError

ADAPTER = "adapter"


@dataclass
class Run:
    run_dir: Path
    plan: dict[str, Any]
    metrics: dict[str, Any]
    adapter: Path  # adapter/ of a finished run, else its last complete checkpoint

    @property
    def task(self) -> str:
        return self.plan["model"]["task"]

    @property
    def quantized(self) -> str | None:
        q = (self.plan.get("quantization") or {}).get("BitsAndBytesConfig") or {}
        return "4-bit" if q.get("load_in_4bit") else "8-bit" if q.get("load_in_8bit") else None


def open_run(run_dir: str | Path, allow_unfinished: bool = False) -> Run:
    """The run in ``run_dir``; a RunError when it is not one, or did not finish (unless ``allow_unfinished``)."""
    from loracfg.runner.run import METRICS, last_complete_checkpoint
    from loracfg.runner.runs import status

    run_dir = Path(run_dir)
    if not (run_dir / "plan.json").is_file():
        raise RunError(f"'{run_dir}' is not a run directory (no plan.json); `loracfg runs OUTPUT_DIR` lists the "
                       f"runs under a folder")
    try:
        plan = json.loads((run_dir / "plan.json").read_text())
        metrics = json.loads((run_dir / METRICS).read_text()) if (run_dir / METRICS).is_file() else {}
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"'{run_dir}' has an unreadable plan.json or metrics.json: {e}") from e
    adapter = run_dir / ADAPTER
    if metrics.get("finished") and (adapter / "adapter_config.json").is_file():
        return Run(run_dir, plan, metrics, adapter)
    state = status(metrics) if metrics else "never started training"
    if not allow_unfinished:
        raise RunError(f"run {run_dir.name} did not finish ({state}); finish it (run the same command again), or "
                       f"pass --allow-unfinished to use its last complete checkpoint")
    last = last_complete_checkpoint(run_dir)
    if last is None or not (Path(last) / "adapter_config.json").is_file():
        raise RunError(f"run {run_dir.name} did not finish ({state}) and has no complete checkpoint with an adapter")
    return Run(run_dir, plan, metrics, Path(last))


def _tokenizer(run: Run) -> Any:
    from loracfg.runner.run import _tokenizer as plan_tokenizer
    from transformers import AutoTokenizer

    if (run.adapter / "tokenizer_config.json").is_file():  # saved beside the adapter, chat template included
        try:
            tok = AutoTokenizer.from_pretrained(run.adapter)
        except (OSError, ValueError):
            tok = None
        if tok is not None:
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            return tok
    return plan_tokenizer(run.plan)


def _source(run: Run, base: str | None) -> str | None:
    """Where the base weights come from: ``--base``, the base the run saved (a from_config model that was
    quantized), the plan's model; None for a from_config model rebuilt from its seed."""
    from loracfg.runner.run import missing_local_model

    if base is not None:
        path = Path(base).expanduser()
        if not (path / "config.json").is_file():
            raise RunError(f"the base model '{base}' is missing (no config.json there); pass --base a directory "
                           f"saved with save_pretrained")
        return str(path)
    if (run.run_dir / "base-model" / "config.json").is_file():
        return str(run.run_dir / "base-model")
    m = run.plan["model"]
    if m["from_config"]:
        return None
    name = m["name_or_path"]
    if missing_local_model(name):
        raise RunError(f"the base model '{name}' (model.name_or_path of the run) is missing; pass --base the "
                       f"directory that holds it now")
    return name


def load_base(run: Run, tokenizer: Any, base: str | None = None, quantized: bool = True) -> Any:
    """The base model as the run loaded it (its dtype; its quantization when ``quantized``)."""
    import torch
    from loracfg.compiler.plan import hf
    from loracfg.runner.run import _from_config, _load_model

    kwargs = hf.from_pretrained_kwargs(run.plan)
    kwargs["device_map"] = "auto" if torch.cuda.is_available() and run.quantized else None
    if quantized and run.quantized:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(**hf.bnb_kwargs(run.plan))
    source = _source(run, base)
    if source is None:
        return _from_config(run.plan, tokenizer).to(kwargs.get("dtype") or kwargs.get("torch_dtype"))
    model = _load_model(run.plan, source, kwargs)
    _check_fits(run, model, source)
    return model


_SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
               "num_key_value_heads", "vocab_size")


def _check_fits(run: Run, model: Any, source: str) -> None:
    trained = run.plan["model"]["architecture"]
    got = model.config.to_dict()
    differ = [f"{k} {trained[k]} in the run, {got.get(k)} in the base" for k in _SHAPE_KEYS
              if k in trained and got.get(k) is not None and got.get(k) != trained[k]]
    if differ:
        raise RunError(f"the adapter of run {run.run_dir.name} does not fit the base '{source}': {'; '.join(differ)}")


def with_adapter(run: Run, model: Any) -> Any:
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(run.adapter))
    except (RuntimeError, ValueError, KeyError) as e:  # size mismatch, target modules not in the model
        first = next((line for line in str(e).splitlines() if line.strip()), str(e))
        raise RunError(f"the adapter in {run.adapter} does not fit the base model: {first[:400]}") from e


def merged_model(run: Run, tokenizer: Any, base: str | None = None) -> tuple[Any, str]:
    """base + adapter merged into one plain transformers model, and how it was merged (for the card)."""
    model = load_base(run, tokenizer, base, quantized=True)
    how = f"merged with peft's merge_and_unload into the base in {run.plan['model']['from_pretrained'].get('dtype')}"
    if run.quantized:
        model = model.dequantize()
        how = (f"the {run.quantized} base was de-quantized to {run.plan['model']['from_pretrained'].get('dtype')} "
               f"(the weights the adapter trained against, not the original checkpoint) and the adapter merged "
               f"into it with peft's merge_and_unload; never merged into the quantized weights")
    peft_model = with_adapter(run, model)
    return peft_model.merge_and_unload(), how


def _replace(tmp: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise RunError(f"'{out}' exists; pass --force to replace it")
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def export(run_dir: str | Path, out: str | Path, merge: bool = False, force: bool = False,
           allow_unfinished: bool = False, base: str | None = None) -> dict[str, Any]:
    """Write the adapter (or, with ``merge``, the merged model) with its tokenizer and a model card to ``out``."""
    from loracfg.runner import card

    run = open_run(run_dir, allow_unfinished)
    out = Path(out)
    if out.exists() and not force:
        raise RunError(f"'{out}' exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(run)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if merge:
            model, how = merged_model(run, tokenizer, base)
            model.save_pretrained(tmp, safe_serialization=True, max_shard_size="2GB")
            if getattr(model, "generation_config", None) is not None:
                model.generation_config.save_pretrained(tmp)
        else:
            for f in run.adapter.iterdir():
                if f.name.startswith("adapter_") and f.is_file():
                    shutil.copy2(f, tmp / f.name)
            how = f"the adapter alone (load it onto {run.plan['model']['name_or_path']} with peft)"
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card.model_card(run, merged=merge, how=how))
        _replace(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "merged": merge, "how": how, "adapter": str(run.adapter)}


def generate(run_dir: str | Path, prompt: str | None = None, messages: list[dict[str, str]] | None = None,
             max_new_tokens: int = 64, allow_unfinished: bool = False, base: str | None = None) -> str:
    """The run's answer to ``prompt`` (or a chat ``messages`` list), greedy, from base + adapter loaded as the run
    trained (quantization included), through the chat template the run trained with where it had one."""
    import torch

    run = open_run(run_dir, allow_unfinished)
    if run.task != "causal-lm":
        raise RunError(f"run {run.run_dir.name} trained a {run.task} model, which does not generate text")
    tokenizer = _tokenizer(run)
    model = with_adapter(run, load_base(run, tokenizer, base, quantized=True))
    chat = messages is not None or bool(getattr(tokenizer, "chat_template", None))
    if chat:
        conversation = messages if messages is not None else [{"role": "user", "content": prompt or ""}]
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    else:
        text = prompt or ""
    ids = tokenizer(text, add_special_tokens=not chat, return_tensors="pt")["input_ids"]
    if ids.shape[1] > 1 and tokenizer.eos_token_id is not None and int(ids[0, -1]) == tokenizer.eos_token_id:
        ids = ids[:, :-1]  # a tokenizer that ends every text with EOS (T5's, the byte-level one): continue it instead
    ids = ids.to(model.device)
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
