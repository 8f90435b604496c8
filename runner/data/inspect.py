"""``loracfg data``: what a run's data becomes, before any GPU time: rows, split, lengths before truncation,
what max_length truncates and drops, the learned-token fraction, padding with and without packing, and one
rendered example with its learned part marked."""

from __future__ import annotations

from typing import Any

from loracfg.runner.data.pack import pack_bfd, pack_wrapped
from loracfg.runner.data.prepare import IGNORE, padding_fraction, prepare_run

GREEN, RESET = "\033[32;1m", "\033[0m"


def inspect(plan: dict[str, Any]) -> dict[str, Any]:
    """The statistics of a plan's data, prepared with the run's tokenizer exactly as the runner prepares it."""
    from loracfg.runner.run import _tokenizer

    data, seed, task = plan["data"], plan["config"]["seed"], plan["model"]["task"]
    tokenizer = _tokenizer(plan)
    prepared = prepare_run(data, tokenizer, seed, task)  # unpacked; packing is reported below, both ways
    train, evaluation = prepared.train, prepared.evaluation
    batch = int(plan["training"]["TrainingArguments"]["per_device_train_batch_size"])
    max_length = int(data["max_length"])
    packing: dict[str, Any] | None = None
    if task == "causal-lm" and len(train.dataset):
        tokens = train.stats["tokens"]
        bfd = pack_bfd(train.dataset, max_length)
        blocks = len(pack_wrapped(train.dataset, max_length))
        packing = {"sequences": plan["resolved"]["sequences"],
                   "bfd": {"sequences": len(bfd), "fill": round(tokens / (len(bfd) * max_length), 4),
                           "examples_per_sequence": round(len(train.dataset) / len(bfd), 2)},
                   "wrapped": {"sequences": blocks, "tokens_left_at_the_tail": tokens - blocks * max_length}}
    learned = train.stats["learned_tokens"] / train.stats["tokens"] if train.stats["tokens"] else 0.0
    return {
        "path": data["path"], "format": data["format"], "task": task,
        "chat_template": prepared.template[0] if prepared.template else None,
        "tokenizer": plan["model"]["tokenizer"], "max_length": max_length,
        "truncation_mode": data["truncation_mode"],
        "rows": prepared.rows, "train_rows": len(prepared.train_rows),
        "eval_rows": len(prepared.eval_rows) if prepared.eval_rows is not None else 0,
        "train": train.stats, "eval": evaluation.stats if evaluation is not None else None,
        "learned_token_fraction": round(learned, 4),
        "padding_fraction": padding_fraction(train.lengths, batch), "per_device_train_batch_size": batch,
        "packing": packing,
        "example": _spans(tokenizer, train.dataset[0], task) if len(train.dataset) else [],
    }


def _spans(tokenizer: Any, example: dict[str, Any], task: str) -> list[dict[str, Any]]:
    """The first training example as consecutive decoded pieces, each learned or not."""
    ids = example["input_ids"]
    flags = [True] * len(ids) if task == "seq-cls" else [lab != IGNORE for lab in example["labels"]]
    spans: list[dict[str, Any]] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or flags[i] != flags[start]:
            spans.append({"text": tokenizer.decode(ids[start:i]), "learned": flags[start]})
            start = i
    return spans


def render(info: dict[str, Any], color: bool = False) -> str:
    t = info["train"]
    lines = [
        f"data        {info['path']} ({info['format']} rows for a {info['task']} model), tokenizer {info['tokenizer']}"
        + (f", chat template {info['chat_template']}" if info["chat_template"] else ""),
        f"rows        {info['rows']} read: {info['train_rows']} train, {info['eval_rows']} eval",
        f"lengths     tokens per train example before truncation: p50 {t['length_p50']}, p95 {t['length_p95']}, "
        f"max {t['length_max']}",
        f"max_length  {info['max_length']} ({info['truncation_mode']}): truncates {t['truncated']} example(s), drops "
        f"{t['dropped_no_learned_tokens']} left with nothing to learn; {t['bad_rows_skipped']} bad row(s) skipped",
        f"learned     {t['learned_tokens']:,} of {t['tokens']:,} train tokens "
        f"({100 * info['learned_token_fraction']:.1f}%)",
        f"padding     {100 * info['padding_fraction']:.1f}% of each batch of {info['per_device_train_batch_size']} "
        f"without packing",
    ]
    p = info["packing"]
    if p is not None:
        b, w = p["bfd"], p["wrapped"]
        lines += [f"packing     in effect: {p['sequences']}; bfd packs {b['examples_per_sequence']} examples per "
                  f"sequence into {b['sequences']} sequence(s) filled to {100 * b['fill']:.1f}% of max_length, 0% "
                  f"padding computed (padding-free), examples kept apart",
                  f"            wrapped would cut {w['sequences']} block(s) of {info['max_length']} tokens "
                  f"({w['tokens_left_at_the_tail']} token(s) left at the tail), examples split and attending across"]
    legend = "learned part highlighted" if color else "learned part between « »"
    shown = "".join((f"{GREEN}{s['text']}{RESET}" if color else f"«{s['text']}»") if s["learned"] else s["text"]
                    for s in info["example"])
    lines += ["", f"first train example ({legend}):", shown]
    return "\n".join(lines)
