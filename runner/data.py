"""The plan's data: read (or generate) the rows, split, tokenize, pack or pad.

Files are read with the standard library (jsonl, json, csv, text), so running a plan needs no
``datasets`` package and nothing is downloaded; ``builtin:NAME`` sets are generated here with a
fixed seed.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Any, Callable

from runner.errors import RunError

Row = dict[str, Any]

_SUBJECTS = ["the cat", "a dog", "my robot", "the old king", "a small bird", "the teacher", "our neighbour", "a fox"]
_VERBS = ["sees", "likes", "finds", "paints", "follows", "carries", "counts", "draws"]
_OBJECTS = ["a red ball", "the blue door", "three apples", "a green kite", "the tall tree", "two stones",
            "a yellow hat", "the white boat"]
_PLACES = ["in the garden", "at the market", "near the river", "on the hill", "by the sea", "under the bridge"]


def tiny_patterns(n: int, seed: int = 0) -> list[Row]:
    """Short sentences from a small grammar plus a little arithmetic: a byte-level model learns them fast."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if rng.random() < 0.7:
            s, v, o, p = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_PLACES)
            text = f"{s} {v} {o} {p}."
        else:
            a, b = rng.randint(0, 20), rng.randint(0, 20)
            text = f"{a} plus {b} is {a + b}."
        rows.append({"text": text})
    return rows


def tiny_sentiment(n: int, seed: int = 0) -> list[Row]:
    """Labelled sentences (1 positive, 0 negative) for sequence classification."""
    rng = random.Random(seed)
    good = ["wonderful", "great", "lovely", "excellent", "delightful", "superb", "pleasant", "brilliant"]
    bad = ["terrible", "awful", "horrible", "dreadful", "boring", "poor", "disappointing", "miserable"]
    things = ["film", "meal", "book", "trip", "concert", "hotel", "game", "show"]
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        word = rng.choice(good if label else bad)
        thing = rng.choice(things)
        template = rng.choice(["the {t} was {w}.", "what a {w} {t}!", "i found the {t} {w}.", "a {w} {t}, really."])
        rows.append({"text": template.format(t=thing, w=word), "label": label})
    return rows


BUILTIN: dict[str, Callable[[int, int], list[Row]]] = {"tiny-patterns": tiny_patterns, "tiny-sentiment": tiny_sentiment}


def read_rows(data: dict[str, Any], seed: int) -> list[Row]:
    path, fmt = data["path"], data["format"]
    if fmt == "builtin" or path.startswith("builtin:"):
        name = path.removeprefix("builtin:")
        if name not in BUILTIN:
            raise RunError(f"data.path '{path}' names no builtin data set; builtin sets: "
                           f"{', '.join('builtin:' + k for k in BUILTIN)}", key="data.path")
        return BUILTIN[name](int(data["num_samples"]), seed)
    if fmt == "hub":
        raise RunError(f"data.format 'hub' ({path}) would download a data set; loracfg's runner reads local "
                       f"files only: export it to jsonl and set data.path and data.format=jsonl", key="data.format")
    p = Path(path).expanduser()
    if not p.is_file():
        raise RunError(f"data.path '{path}' does not exist (looked in {p.resolve().parent}); point data.path at a "
                       f"{fmt} file", key="data.path")
    try:
        with open(p, encoding="utf-8", newline="") as f:
            if fmt == "jsonl":
                rows = [json.loads(line) for line in f if line.strip()]
            elif fmt == "json":
                loaded = json.load(f)
                rows = loaded if isinstance(loaded, list) else loaded.get("data", [])
            elif fmt == "csv":
                rows = list(csv.DictReader(f))
            else:
                rows = [{data["text_field"]: line.rstrip("\n")} for line in f if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as e:
        raise RunError(f"data.path '{path}' is not valid {fmt}: {e}", key="data.path") from e
    if not rows:
        raise RunError(f"data.path '{path}' has no rows", key="data.path")
    return rows


def check_fields(rows: list[Row], data: dict[str, Any], path: str) -> None:
    for field_key in ("text_field", "label_field"):
        name = data.get(field_key)
        if name and any(not isinstance(r, dict) or name not in r for r in rows[:100]):
            found = sorted(rows[0]) if isinstance(rows[0], dict) else type(rows[0]).__name__
            raise RunError(f"data.{field_key} is '{name}' but the rows of '{path}' have no such field; their fields: "
                           f"{found}. Set data.{field_key} to one of them", key=f"data.{field_key}")


def split(rows: list[Row], test_size: float, seed: int) -> tuple[list[Row], list[Row]]:
    """Shuffle with the seed, hold out ceil(test_size x n) rows for evaluation (as datasets' train_test_split)."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n_eval = math.ceil(len(rows) * test_size) if test_size else 0
    return rows[n_eval:], rows[:n_eval]


class ListDataset:
    """A torch-style map dataset over tokenized rows (the Trainer needs only __len__ and __getitem__)."""

    def __init__(self, items: list[dict[str, Any]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def tokenize(rows: list[Row], tokenizer: Any, data: dict[str, Any], task: str) -> ListDataset:
    texts = [str(r[data["text_field"]]) for r in rows]
    max_len = int(data["max_seq_length"])
    if task == "causal-lm" and data.get("packing"):
        eos = tokenizer.eos_token_id
        stream: list[int] = []
        for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
            stream.extend(ids + ([eos] if eos is not None else []))
        blocks = [stream[i:i + max_len] for i in range(0, len(stream) - max_len + 1, max_len)]
        return ListDataset([{"input_ids": b, "attention_mask": [1] * len(b)} for b in blocks])
    enc = tokenizer(texts, truncation=True, max_length=max_len)
    items = [{"input_ids": ids, "attention_mask": mask} for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    if task == "seq-cls":
        for item, row in zip(items, rows):
            item["labels"] = int(row[data["label_field"]])
    return ListDataset(items)


def count_tokens(ds: ListDataset) -> int:
    return sum(len(item["input_ids"]) for item in ds.items)
