"""Packing: several examples in one sequence, two ways (TRL's ``packing_strategy`` names), and the collator
that feeds packed or padding-free batches to the model.

``bfd`` keeps examples whole: best-fit decreasing puts them into bins of at most max_length tokens, each
bin one row whose ``position_ids`` restart at 0 for every example. Batches are flattened into one row with
no attention mask; transformers then derives the per-example causal mask from the position ids
(``masking_utils.find_packed_sequence_indices`` for sdpa/eager, varlen kernels for flash-attention), so no
example attends to another and no padding is computed. ``wrapped`` cuts the concatenated token stream into
blocks of exactly max_length tokens (continued pre-training's classic grouping): examples are split and
attend across each other.
"""

from __future__ import annotations

import bisect
from typing import Any

IGNORE = -100


def bins(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing: indices of the examples in each bin, no bin over ``capacity`` tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    free: list[tuple[int, int]] = []  # (space left, bin number), ascending
    out: list[list[int]] = []
    for i in order:
        at = bisect.bisect_left(free, (lengths[i], -1))  # the tightest bin with room
        if at < len(free):
            space, b = free.pop(at)
        else:
            space, b = capacity, len(out)
            out.append([])
        out[b].append(i)
        if space - lengths[i] > 0:
            bisect.insort(free, (space - lengths[i], b))
    return out


def pack_bfd(ds: Any, max_length: int) -> Any:
    """Whole examples in bins of at most max_length tokens; position ids restart per example and the first
    label of each example is -100 (in a flattened row it would be predicted from the previous example)."""
    from datasets import Dataset

    ids_all, labels_all = ds["input_ids"], ds["labels"]
    rows: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    for members in bins([len(x) for x in ids_all], max_length):
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in sorted(members):  # file order within a bin
            ids += ids_all[i]
            labels += [IGNORE] + labels_all[i][1:]
            positions += range(len(ids_all[i]))
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
        rows["position_ids"].append(positions)
    return Dataset.from_dict(rows)


def pack_wrapped(ds: Any, max_length: int) -> Any:
    """Concatenate the examples and cut blocks of exactly max_length tokens (the tail that does not fill one
    is left out)."""
    from datasets import Dataset

    stream: list[int] = []
    labels: list[int] = []
    for ids, lab in zip(ds["input_ids"], ds["labels"]):
        stream.extend(ids)
        labels.extend(lab)
    blocks = range(0, len(stream) - max_length + 1, max_length)
    return Dataset.from_dict({"input_ids": [stream[i:i + max_length] for i in blocks],
                              "attention_mask": [[1] * max_length for _ in blocks],
                              "labels": [labels[i:i + max_length] for i in blocks]})


class FlattenPacked:
    """Collator for ``bfd`` bins: the batch's bins side by side in one row, with their position ids and no
    attention mask (transformers' ``DataCollatorWithFlattening`` does the same for unpacked examples but
    numbers each feature's positions from 0, which would merge the examples of a bin into one)."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
        for f in features:
            for k in batch:
                batch[k] += list(f[k])
        return {k: torch.tensor([v], dtype=torch.long) for k, v in batch.items()}


def prepare_model(model: Any, mode: str) -> None:
    """Turn off the KV cache for training on flattened batches: transformers derives the per-example mask from
    the position ids only when no cache is passed, and a causal LM builds one by default (``use_cache``), even
    in training, so without this every packed example would attend to the ones before it."""
    if mode in ("packed-bfd", "padding-free"):
        model.config.use_cache = False


def collator(mode: str, tokenizer: Any, task: str) -> Any:
    """The data collator for a plan's ``resolved.sequences`` mode."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening, DataCollatorWithPadding

    if task != "causal-lm":
        return DataCollatorWithPadding(tokenizer)
    if mode == "packed-bfd":
        return FlattenPacked()
    if mode == "padding-free":
        return DataCollatorWithFlattening(separator_id=IGNORE)
    # explicit labels: -100 on what is not learned, and the EOS learned even where pad is EOS
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
