"""Packing: best-fit decreasing keeps examples whole within max_length, position ids restart per example, the
first label of each example is not learned, and, the claim the plan makes for bfd and padding-free batches,
no example attends to another (logits of a packed example equal its logits alone; a tiny Llama from config)."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from loracfg.runner.data.pack import (  # noqa: E402
    IGNORE,
    FlattenPacked,
    bins,
    collator,
    pack_bfd,
    pack_wrapped,
    prepare_model,
)


def examples(lengths: list[int]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({
        "input_ids": [[10 * (n + 1) + j for j in range(n)] for n in lengths],
        "labels": [[10 * (n + 1) + j for j in range(n)] for n in lengths]})


def test_best_fit_decreasing_keeps_examples_whole_within_capacity():
    lengths = [6, 5, 4, 3, 2, 9, 1]
    out = bins(lengths, 10)
    assert sorted(i for b in out for i in b) == list(range(len(lengths)))  # each example once
    assert all(sum(lengths[i] for i in b) <= 10 for b in out)
    assert len(out) == 3  # 30 tokens in bins of 10: as few as possible
    assert bins([11], 10) == [[0]]  # a longer example (truncation makes none) gets a bin of its own


def test_bfd_rows_restart_positions_and_do_not_learn_across_the_seam():
    packed = pack_bfd(examples([3, 4, 5]), 8)
    assert len(packed) == 2
    by_len = {len(r["input_ids"]): r for r in packed}
    row = by_len[8]  # 5 first, then 3 fills its bin exactly (best fit), in file order; 4 alone
    assert row["position_ids"] == [0, 1, 2, 0, 1, 2, 3, 4]
    assert row["labels"] == [IGNORE, 41, 42, IGNORE, 61, 62, 63, 64]
    assert by_len[4]["position_ids"] == [0, 1, 2, 3]


def test_wrapped_blocks_are_exactly_max_length_and_drop_the_tail():
    packed = pack_wrapped(examples([3, 4, 5]), 5)
    assert [len(r) for r in packed["input_ids"]] == [5, 5] and packed["input_ids"][0] == [40, 41, 42, 50, 51]


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return {impl: transformers.AutoModelForCausalLM.from_config(config, attn_implementation=impl)
            for impl in ("sdpa", "eager")}


def alone(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("mode", ["packed-bfd", "padding-free"])
def test_packed_examples_do_not_attend_to_each_other(llama, impl, mode):
    model = llama[impl].train()  # as the Trainer runs it (dropout is 0 in this config)
    prepare_model(model, mode)  # what the runner does: without it the model's default KV cache hides the seams
    a, b, c = [5, 6, 7, 8, 9, 10, 11], [20, 21, 22, 23, 24], [30, 31, 32]
    ds = examples([1]).from_dict({"input_ids": [a, b, c], "labels": [a, b, c]})
    features = list(pack_bfd(ds, 12)) if mode == "packed-bfd" else list(ds)
    batch = collator(mode, None, "causal-lm")(features)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        mixed = model(input_ids=batch["input_ids"]).logits[0]  # one sequence: what wrapped packing trains on
    flat = batch["input_ids"][0].tolist()
    for ex in (a, b, c):
        start = next(i for i in range(len(flat)) if flat[i:i + len(ex)] == ex)
        assert torch.allclose(logits[start:start + len(ex)], alone(model, ex), atol=1e-5), (impl, ex)
        if start:  # the control: without the position ids, a later example sees the ones before it
            assert not torch.allclose(mixed[start:start + len(ex)], alone(model, ex), atol=1e-3)
    assert any(batch["input_ids"][0].tolist()[i:i + len(b)] == b for i in range(1, len(flat)))  # b not first


def test_flatten_packed_keeps_each_bins_positions():
    bin_rows = [{"input_ids": [1, 2, 3], "labels": [IGNORE, 2, 3], "position_ids": [0, 0, 1]},
                {"input_ids": [4], "labels": [IGNORE], "position_ids": [0]}]
    batch = FlattenPacked()(bin_rows)
    assert batch["position_ids"].tolist() == [[0, 0, 1, 0]] and batch["labels"].tolist() == [[IGNORE, 2, 3, IGNORE]]
