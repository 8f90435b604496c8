"""``builtin:NAME`` data sets that loracfg generates itself with a fixed seed (no download)."""

from __future__ import annotations

import random
from typing import Any, Callable

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


_COLOURS = {"the sky": "blue", "grass": "green", "snow": "white", "a banana": "yellow", "coal": "black",
            "a tomato": "red", "the sea": "blue", "an orange": "orange"}
_SYSTEM = "You answer in one short sentence."


def _question(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.6:
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
    thing = rng.choice(sorted(_COLOURS))
    return f"What colour is {thing}?", f"{thing[0].upper()}{thing[1:]} is {_COLOURS[thing]}."


def tiny_chat(n: int, seed: int = 0) -> list[Row]:
    """Short conversations (OpenAI messages): a system prompt sometimes, one or two question/answer turns."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        messages = [{"role": "system", "content": _SYSTEM}] if rng.random() < 0.3 else []
        for _ in range(1 if rng.random() < 0.75 else 2):
            q, a = _question(rng)
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        rows.append({"messages": messages})
    return rows


# tiny-tags' classes: 0 other, 1 subject, 2 verb, 3 object, 4 place (conll2003's column names)
TAGS = ("O", "SUBJECT", "VERB", "OBJECT", "PLACE")


def tiny_tags(n: int, seed: int = 0) -> list[Row]:
    """Sentences of the tiny-patterns grammar as words, each word tagged with its part of the sentence."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words: list[str] = []
        tags: list[int] = []
        parts = [(rng.choice(_SUBJECTS), 1), (rng.choice(_VERBS), 2), (rng.choice(_OBJECTS), 3)]
        if rng.random() < 0.7:
            parts.append((rng.choice(_PLACES), 4))
        for phrase, tag in parts:
            for word in phrase.split():
                words.append(word)
                tags.append(tag if word not in ("the", "a", "my", "our", "in", "at", "on", "by", "near", "under")
                            else 0)
        rows.append({"tokens": words + ["."], "ner_tags": tags + [0]})
    return rows


BUILTIN: dict[str, Callable[[int, int], list[Row]]] = {
    "tiny-patterns": tiny_patterns, "tiny-sentiment": tiny_sentiment, "tiny-chat": tiny_chat, "tiny-tags": tiny_tags}
