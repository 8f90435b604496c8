"""``format: token-cls``: words and one integer tag per word (conll2003's ``tokens`` / ``ner_tags``), for
token classifiers; the first sub-token of each word learns the word's tag."""

from loracfg.runner.data.formats._base import BadRow, Example, column

NAME = "token-cls"
CHAT = False


def convert(row: dict, data: dict) -> Example:
    words = column(row, data["tokens_field"], "tokens_field")
    tags = column(row, data["tags_field"], "tags_field")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise BadRow(f"'{data['tokens_field']}' is not a non-empty list of strings")
    if not isinstance(tags, list) or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                             for t in tags):
        raise BadRow(f"'{data['tags_field']}' is not a list of class numbers (integers from 0)")
    if len(tags) != len(words):
        raise BadRow(f"{len(words)} words but {len(tags)} tags: one tag per word")
    return Example(words=words, tags=tags)
