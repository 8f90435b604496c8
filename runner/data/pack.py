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


# Examples packed together at most: bins are filled within each chunk of this many examples (datasets'
# batched map, on Arrow columns, cached by fingerprint like the tokenization), so memory stays bounded.
CHUNK = 10_000


def _list_array(offsets: Any, values: Any) -> Any:
    import pyarrow as pa

    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), pa.array(values))


def _bfd_chunk(table: Any, max_length: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids, labels = table.column("input_ids").combine_chunks(), table.column("labels").combine_chunks()
    lengths = pc.list_value_length(ids).to_numpy(zero_copy_only=False)
    groups = [sorted(g) for g in bins(lengths.tolist(), max_length)]  # file order within a bin
    order = pa.array([i for g in groups for i in g], type=pa.int64())
    ids, labels, lens = pc.take(ids, order), pc.take(labels, order), lengths[order.to_numpy()]
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    flat_labels = pc.list_flatten(labels).to_numpy(zero_copy_only=False).copy()
    flat_labels[starts[lens > 0]] = IGNORE  # in a flattened row it would be predicted from the previous example
    positions = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(starts, lens)
    offsets = np.concatenate([[0], np.cumsum([int(lengths[g].sum()) for g in groups])])
    return pa.table({"input_ids": _list_array(offsets, pc.list_flatten(ids)),
                     "labels": _list_array(offsets, flat_labels), "position_ids": _list_array(offsets, positions)})


def _wrapped_chunk(table: Any, max_length: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pc.list_flatten(table.column("input_ids").combine_chunks())
    labels = pc.list_flatten(table.column("labels").combine_chunks())
    n = len(ids) // max_length * max_length
    offsets = np.arange(0, n + 1, max_length)
    return pa.table({"input_ids": _list_array(offsets, ids[:n]), "attention_mask": _list_array(offsets, [1] * n),
                     "labels": _list_array(offsets, labels[:n])})


def _pack(ds: Any, chunk: Any, max_length: int) -> Any:
    packed = ds.with_format("arrow").map(chunk, batched=True, batch_size=CHUNK, fn_kwargs={"max_length": max_length},
                                         remove_columns=ds.column_names, desc=None)
    return packed.with_format(None)


def pack_bfd(ds: Any, max_length: int) -> Any:
    """Whole examples in bins of at most max_length tokens (best-fit decreasing within chunks of CHUNK
    examples); position ids restart per example and the first label of each example is -100."""
    return _pack(ds, _bfd_chunk, max_length)


def pack_wrapped(ds: Any, max_length: int) -> Any:
    """Concatenate the examples and cut blocks of exactly max_length tokens (within chunks of CHUNK examples;
    the tail of a chunk that does not fill a block is left out)."""
    return _pack(ds, _wrapped_chunk, max_length)


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
    from transformers import (DataCollatorForSeq2Seq, DataCollatorForTokenClassification,
                              DataCollatorWithFlattening, DataCollatorWithPadding)

    if task == "token-cls":  # pads the labels with -100 as well
        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)
    if task != "causal-lm":
        return DataCollatorWithPadding(tokenizer)
    if mode == "packed-bfd":
        return FlattenPacked()
    if mode == "padding-free":
        return DataCollatorWithFlattening(separator_id=IGNORE)
    # explicit labels: -100 on what is not learned, and the EOS learned even where pad is EOS
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
