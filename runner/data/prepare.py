"""Rows -> training examples: each format's adapter, then one render-tokenize-mask path for every format.

Causal LM examples carry explicit ``labels`` (-100 where nothing is learned), so the end-of-sequence token
is learned even when the tokenizer's pad token is the EOS token (a collator that masks pad ids would
mask it: TRL #1623). A row whose learned tokens ``max_length`` cuts off entirely is dropped and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loracfg.runner.data import templates
from loracfg.runner.data.formats import FORMATS
from loracfg.runner.data.formats._base import BadRow
from loracfg.runner.data.pack import pack_bfd, pack_wrapped
from loracfg.runner.data.read import read_rows, row_location
from loracfg.runner.errors import RunError

IGNORE = -100


@dataclass
class Prepared:
    dataset: Any  # datasets.Dataset with input_ids, attention_mask, labels
    stats: dict[str, Any] = field(default_factory=dict)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (row index in the file, what is wrong)
    lengths: list[int] = field(default_factory=list)  # of the kept examples, after truncation, before packing


def split(rows: Any, test_size: float, seed: int) -> tuple[Any, Any]:
    """Train and eval rows (``datasets.Dataset.train_test_split`` with the run's seed); eval is None without a split."""
    rows = rows.add_column("_row", list(range(len(rows))))
    if not test_size:
        return rows, None
    try:
        parts = rows.train_test_split(test_size=test_size, seed=seed)
    except ValueError as e:  # too few rows for the split: datasets says which side would be empty
        raise RunError(f"data.test_size={test_size} cannot split {len(rows)} row(s) into a train and an eval set "
                       f"({str(e).splitlines()[0]}); add rows, or set data.test_size=0 and "
                       f"schedule.eval_strategy=no", key="data.test_size") from e
    return parts["train"], parts["test"]


def _truncate(ids: list[int], labels: list[int], max_length: int, mode: str) -> tuple[list[int], list[int]]:
    if len(ids) <= max_length:
        return ids, labels
    if mode == "keep_end":
        return ids[-max_length:], labels[-max_length:]
    return ids[:max_length], labels[:max_length]


class Encoder:
    """Turns one row into input_ids / labels with the run's tokenizer, template and data keys."""

    def __init__(self, tokenizer: Any, data: dict[str, Any], task: str, template: tuple[str, str] | None = None):
        self.tokenizer, self.data, self.task = tokenizer, data, task
        self.format = FORMATS[data["format"]]
        self.template = (template or templates.resolve(tokenizer, data["chat_template"])) if self.format.CHAT else None
        self.eos = eos_id(tokenizer, data.get("eos_token"))
        probe = tokenizer("a")["input_ids"]
        self.bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and probe[:1] == [
            tokenizer.bos_token_id] else []
        self.generation = bool(self.template) and templates.has_generation(self.template[1]) and bool(
            getattr(tokenizer, "is_fast", False))

    def batch(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """``datasets.Dataset.map(batched=True)``: text rows go through the tokenizer in one call per batch."""
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        texts: dict[int, list[int]] = {}
        if self.format.NAME == "text" and self.task == "causal-lm":
            good = {}
            for i, row in enumerate(rows):
                try:
                    good[i] = self.format.convert(row, self.data).text
                except BadRow:
                    pass  # __call__ records it
            texts = dict(zip(good, self.tokenizer(list(good.values()))["input_ids"])) if good else {}
        outs = [self(row, texts.get(i)) for i, row in enumerate(rows)]
        return {k: [o[k] for o in outs] for k in outs[0]} if outs else {}

    def __call__(self, row: dict[str, Any], text_ids: list[int] | None = None) -> dict[str, Any]:
        out = {"input_ids": [], "attention_mask": [], "labels": [], "_bad": "", "_dropped": False, "_length": 0}
        if self.task == "seq-cls":
            out["labels"] = 0  # one class per row (a scalar, as the model and the accuracy metric take it)
        try:
            example = self.format.convert(row, self.data)
        except BadRow as e:
            out["_bad"] = str(e)
            return out
        max_length, mode = int(self.data["max_length"]), self.data["truncation_mode"]
        if self.task == "token-cls":
            return self._tagged(example, out, max_length)
        if self.task == "seq-cls":
            enc = self.tokenizer(example.text, truncation=True, max_length=max_length)
            full = len(self.tokenizer(example.text)["input_ids"]) if len(enc["input_ids"]) >= max_length else 0
            out.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=example.label,
                       _length=max(full, len(enc["input_ids"])))
            return out
        if example.text is not None:  # text: learned whole, with the tokenizer's own special tokens
            ids = text_ids if text_ids is not None else self.tokenizer(example.text)["input_ids"]
            if self.eos is not None and ids[-1:] != [self.eos]:
                ids = ids + [self.eos]
            labels = list(ids)
        else:
            try:
                ids, labels = self._conversation(example.turns)
            except templates.TemplateError as e:
                raise RunError(str(e), key="data.chat_template") from e
            if self.bos and ids[:1] != self.bos:  # the tokenizer starts sequences with BOS; the template did not
                ids, labels = self.bos + ids, [IGNORE] + labels
            if self.eos is not None and self.eos not in ids[-2:]:
                ids.append(self.eos)  # the EOS ends the completion and is learned: a model never shown it never stops
                labels.append(self.eos)
        length = len(ids)
        ids, labels = _truncate(ids, labels, max_length, mode)
        out.update(input_ids=ids, attention_mask=[1] * len(ids), labels=labels, _length=length,
                   _dropped=all(x == IGNORE for x in labels))
        return out


    def _tagged(self, example: Any, out: dict[str, Any], max_length: int) -> dict[str, Any]:
        """Words -> sub-tokens: the first sub-token of each word learns its tag; the word's other sub-tokens
        and the special tokens get -100 (the Hugging Face token-classification recipe)."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise RunError("format token-cls aligns tags to sub-tokens with a fast tokenizer's word_ids(); this "
                           "tokenizer is a slow one: use a model whose tokenizer has a tokenizer.json",
                           key="model.tokenizer_name_or_path")
        enc = self.tokenizer(example.words, is_split_into_words=True, truncation=True, max_length=max_length)
        full = len(self.tokenizer(example.words, is_split_into_words=True)["input_ids"]) \
            if len(enc["input_ids"]) >= max_length else len(enc["input_ids"])
        labels, previous = [], None
        for word in enc.word_ids():
            labels.append(IGNORE if word is None or word == previous else example.tags[word])
            previous = word
        out.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels, _length=full,
                   _dropped=all(x == IGNORE for x in labels))
        return out

    def _conversation(self, turns: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
        """input_ids and labels of a rendered conversation: from the template's ``{% generation %}`` blocks
        (the tokenizer's assistant mask) where it has them and the tokenizer is fast, else by prefix rendering."""
        learn_all = self.data["train_on_inputs"]
        if self.generation:
            ids, mask = templates.assistant_mask(self.tokenizer, self.template, turns)
            return ids, [i if m or learn_all else IGNORE for i, m in zip(ids, mask)]
        ids, labels = [], []
        for text, learned in templates.segments(self.tokenizer, self.template, turns, learn_all):
            piece = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if learned else [IGNORE] * len(piece)
        return ids, labels


def eos_id(tokenizer: Any, eos_token: str | None) -> int | None:
    """The id of data.eos_token (TRL's ``eos_token``), or of the tokenizer's EOS token."""
    if eos_token is None:
        return tokenizer.eos_token_id
    ids = tokenizer(eos_token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise RunError(f"data.eos_token {eos_token!r} is {len(ids)} tokens for this tokenizer, not one; name a "
                       f"token of its vocabulary (its EOS is {tokenizer.eos_token!r}) or set data.eos_token=null",
                       key="data.eos_token")
    return ids[0]


def prepare(rows: Any, tokenizer: Any, data: dict[str, Any], task: str, sequences: str = "padded",
            template: tuple[str, str] | None = None) -> Prepared:
    """Encode every row (``sequences``: the plan's batching mode, see loracfg.runner.data.pack); bad rows are left out
    and listed (``check_bad_rows`` stops the run on them)."""
    import numpy as np
    import pyarrow.compute as pc

    encoder = Encoder(tokenizer, data, task, template)
    extra = [c for c in rows.column_names if c != "_row"]
    encoded = rows.map(encoder.batch, batched=True, remove_columns=extra, desc=None,
                       num_proc=data.get("dataset_num_proc"))
    # the statistics from the Arrow columns (memory-mapped), never the rows as Python objects
    table = encoded.with_format("arrow")[:]
    is_bad = pc.not_equal(table["_bad"], "").to_numpy(zero_copy_only=False)
    keep = ~is_bad & ~table["_dropped"].to_numpy(zero_copy_only=False)
    lengths = np.sort(table["_length"].to_numpy(zero_copy_only=False)[~is_bad])  # before truncation
    bad = [(table["_row"][int(i)].as_py(), table["_bad"][int(i)].as_py()) for i in np.flatnonzero(is_bad)]
    stats = {"rows": len(rows), "bad_rows_skipped": len(bad), "dropped_no_learned_tokens": int((~is_bad).sum() -
                                                                                                 keep.sum()),
             "truncated": int((lengths > int(data["max_length"])).sum()),
             "length_p50": percentile(lengths, 50), "length_p95": percentile(lengths, 95),
             "length_max": int(lengths[-1]) if len(lengths) else 0}
    kept = encoded.select(np.flatnonzero(keep)).remove_columns(["_bad", "_dropped", "_row", "_length"])
    unpacked = pc.list_value_length(kept.with_format("arrow")["input_ids"]).to_numpy(zero_copy_only=False).tolist()
    if sequences == "packed-bfd":
        kept = pack_bfd(kept, int(data["max_length"]))
    elif sequences == "packed-wrapped":
        kept = pack_wrapped(kept, int(data["max_length"]))
    columns = kept.with_format("arrow")[:]
    tokens = int(pc.sum(pc.list_value_length(columns["input_ids"])).as_py() or 0)
    learned = tokens if task == "seq-cls" else int(pc.sum(pc.not_equal(pc.list_flatten(columns["labels"]),
                                                                          IGNORE)).as_py() or 0)
    stats.update(examples=len(kept), tokens=tokens, learned_tokens=learned)
    return Prepared(kept, stats, bad, unpacked)


def percentile(ordered: Any, q: float) -> int:
    """The nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not len(ordered):
        return 0
    return int(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)])


def padding_fraction(lengths: list[int], batch_size: int) -> float:
    """Share of the batches' tokens that is padding, batching the examples in order, each batch padded to its
    longest (what the Trainer's collator does with shuffling off)."""
    padded = sum(max(lengths[i:i + batch_size]) * len(lengths[i:i + batch_size])
                 for i in range(0, len(lengths), batch_size))
    return round(1 - sum(lengths) / padded, 4) if padded else 0.0


def check_bad_rows(data: dict[str, Any], *parts: Prepared | None) -> None:
    """With on_bad_row: error, stop at the first bad row in file order, with its file:line."""
    bad = sorted(b for p in parts if p is not None for b in p.bad)
    if bad and data["on_bad_row"] == "error":
        row, message = bad[0]
        more = f" ({len(bad) - 1} more bad rows; data.on_bad_row=skip drops and counts them)" if len(bad) > 1 else ""
        raise RunError(f"{row_location(data, row)}: {message}{more}", key="data.path")


@dataclass
class RunData:
    """A run's data as the runner trains on it (and ``loracfg data`` reports it)."""

    rows: int
    train_rows: Any
    eval_rows: Any  # None without an eval split
    train: Prepared
    evaluation: Prepared | None
    template: tuple[str, str] | None  # (name, Jinja source) for chat formats, set on the tokenizer


def prepare_run(data: dict[str, Any], tokenizer: Any, seed: int, task: str, sequences: str = "padded") -> RunData:
    """Read, split and prepare a plan's data; stop on bad rows (file:line) and on a split left empty."""
    template = templates.apply(tokenizer, data) if FORMATS[data["format"]].CHAT else None
    rows = read_rows(data, seed)
    train_rows, eval_rows = split(rows, data["test_size"], seed)
    train = prepare(train_rows, tokenizer, data, task, sequences, template)
    evaluation = prepare(eval_rows, tokenizer, data, task, sequences, template) if eval_rows is not None else None
    check_bad_rows(data, train, evaluation)
    for part, prepared in (("training", train), ("evaluation", evaluation)):
        if prepared is not None and not len(prepared.dataset):
            raise RunError(f"no {part} example is left from data.path '{data['path']}' ({prepared.stats}); raise "
                           f"data.max_length or check the rows", key="data.max_length")
    return RunData(len(rows), train_rows, eval_rows, train, evaluation, template)